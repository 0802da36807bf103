"""The ERP's control files, one class each; every docstring names its control file in the seed
(the "IP1 Business rules" table). Built in code or from TOML, a bad value raises
:class:`~taxbridge.errors.ConfigError` naming ``Class.field`` (from a file: its key path)."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs
from attrs import field, frozen

from taxbridge.errors import ConfigError, InvalidFieldError
from taxbridge.models import Address, PendCode
from taxbridge.regions import CANADIAN_PROVINCES as _PROVINCES
from taxbridge.regions import US_STATES

CANADIAN_PROVINCES = frozenset(_PROVINCES)
REGIONS = frozenset(US_STATES) | CANADIAN_PROVINCES
"""Regions a nexus entry may name: US states (with DC and PR) and Canadian provinces."""


def bad(owner: object, name: str, value: Any, reason: str) -> ConfigError:
    """The error of a config class's field (``Class.field``; a file's loader re-keys it)."""
    cls = owner if isinstance(owner, str) else type(owner).__name__
    return ConfigError.refusing(f"{cls}.{name}", value, reason, field=name)


def _as_dict(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


def _as_set(value: Any) -> Any:
    if isinstance(value, (str, Mapping)) or not isinstance(value, Iterable):
        return value  # refused by the field's validator
    return frozenset(value)


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _region(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in REGIONS:
        raise bad(instance, attribute.name, value, "is not a US state or Canadian province")


def _province(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in CANADIAN_PROVINCES:
        raise bad(instance, attribute.name, value, "is not a Canadian province")


def _required(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise bad(instance, attribute.name, value, "must not be empty")


def _text(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str):
        raise bad(instance, attribute.name, value, "is not a string")


def _money(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise bad(instance, attribute.name, value, "is not a number >= 0")


def _rate(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    _money(instance, attribute, value)
    if value >= 1:
        raise bad(instance, attribute.name, value, "is not a rate below 1 (write 13% as 0.13)")


def _date(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise bad(instance, attribute.name, value, "is not a date")


def _bool(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise bad(instance, attribute.name, value, "is not true or false")


def _strings(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, frozenset):
        raise bad(instance, attribute.name, value, "is not a set of strings")
    if not all(isinstance(item, str) and item.strip() for item in value):
        raise bad(instance, attribute.name, sorted(value), "must hold non-empty strings")


def _mapping(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, dict):
        raise bad(instance, attribute.name, value, "is not a table")
    for key, item in value.items():
        if not isinstance(item, str) or not item.strip():
            raise bad(instance, f"{attribute.name}.{key}", item, "is not a non-empty string")


class ExemptionMode(enum.Enum):
    """Who holds customer exemptions (BNADS/AV-IF1 *NOEXM)."""

    LOCAL = "local"
    """The ERP's own: customer-master tax number first, then the exemption database (BNW150)."""
    ENGINE = "engine"
    """The engine's certificates: no local exemption evidence is sent."""


@frozen
class CompanyMapping:
    """Company map (BNADS/AV-IF2): ERP company + item level 1 -> engine company code."""

    erp_company: str = field(validator=_required)
    company_code: str = field(validator=_required)
    item_level1: str = field(default="", validator=_text)
    """Blank maps every item level 1 of the company that has no entry of its own."""


@frozen
class NexusRegion:
    """Company nexus (BNADS/AV-NX3): a region where a company collects and remits tax."""

    region: str = field(converter=_upper, validator=_region)
    company_code: str = field(default="", validator=_text)
    """Blank: a nexus of every company in the company map."""


@frozen
class TransactionGroup:
    """Transaction group (BNADS/AV-NX2), and whether it interfaces (BNADS/AV-NX1)."""

    code: str = field(validator=_required)
    description: str = field(default="", validator=_text)
    interface: bool = field(default=True, validator=_bool)
    """False: documents of the group are calculated offline only and never posted."""


@frozen
class TaxCodeMap:
    """Tax codes: active list (BNADS/AV-TC2) and item classification map (AV-TC2M, IC-TXUS)."""

    default: str = field(default="P0000000", validator=_required)
    """The blank-classification entry: the code of items with no classification mapped."""
    freight: str = field(default="FR020100", validator=_required)
    """The code freight lines are sent with."""
    by_classification: Mapping[str, str] = field(
        factory=dict, converter=_as_dict, validator=_mapping
    )
    active: frozenset[str] = field(default=frozenset(), converter=_as_set, validator=_strings)
    """Active engine codes; empty: the engine's own list (the end-of-day refresh fills it)."""

    def __attrs_post_init__(self) -> None:
        if not self.active:
            return
        mapped = [("default", self.default), ("freight", self.freight)]
        mapped += [(f"by_classification.{k}", code) for k, code in self.by_classification.items()]
        for name, code in mapped:
            if code not in self.active:
                raise bad(self, name, code, "is not in tax_codes.active")


@frozen
class LevyItem:
    """Tax region levy item (BNADS/AV-TC4): a charge added to orders in a region and period."""

    region: str = field(converter=_upper, validator=_region)
    item_code: str = field(validator=_required)
    tax_code: str = field(validator=_required)
    amount: Decimal = field(validator=_money)
    """The levy's amount, used where the engine does not supply one."""
    effective: dt.date = field(validator=_date)
    expiry: dt.date | None = field(default=None)
    """Last day the levy applies; None: open-ended."""
    description: str = field(default="", validator=_text)

    def __attrs_post_init__(self) -> None:
        if self.expiry is not None and (
            not isinstance(self.expiry, dt.date) or self.expiry < self.effective
        ):
            raise bad(self, "expiry", self.expiry, "is before the effective date")

    def applies(self, region: str, on: dt.date) -> bool:
        """True for an order shipped to ``region`` on date ``on``."""
        return (
            region == self.region
            and self.effective <= on
            and (self.expiry is None or on <= self.expiry)
        )

    def overlaps(self, other: LevyItem) -> bool:
        """True when both are the same item in the same region on some day."""
        if (self.region, self.item_code) != (other.region, other.item_code):
            return False
        end, other_end = self.expiry or dt.date.max, other.expiry or dt.date.max
        return self.effective <= other_end and other.effective <= end


@frozen
class CanadianRate:
    """Default Canadian tax rate by province (BNADS/AV-TC1), for offline calculation."""

    province: str = field(converter=_upper, validator=_province)
    gst: Decimal = field(default=Decimal(0), validator=_rate)
    hst: Decimal = field(default=Decimal(0), validator=_rate)
    pst: Decimal = field(default=Decimal(0), validator=_rate)
    """Provincial sales tax (QST in Quebec)."""

    def __attrs_post_init__(self) -> None:
        if self.hst and self.gst:
            raise bad(self, "hst", self.hst, "and gst cannot both apply (HST includes GST)")


@frozen
class AddressValidation:
    """Address validation bypass (TMSCRM/AV-DFN2) and hard-error programs (AV-DFN3)."""

    bypass_programs: frozenset[str] = field(
        default=frozenset(), converter=_as_set, validator=_strings
    )
    """Programs that skip validation."""
    hard_error_programs: frozenset[str] = field(
        default=frozenset(), converter=_as_set, validator=_strings
    )
    """Programs that refuse to go on with an invalid address (no temporary override)."""

    def __attrs_post_init__(self) -> None:
        both = sorted(self.bypass_programs & self.hard_error_programs)
        if both:
            raise bad(self, "hard_error_programs", both[0], "is also in bypass_programs")


def _exemption_mode(value: Any) -> ExemptionMode:
    try:
        return ExemptionMode(value)
    except ValueError:
        return value  # type: ignore[no-any-return]  # refused by the validator, named


def _member(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    kind = ExemptionMode
    if not isinstance(value, kind):
        allowed = ", ".join(repr(member.value) for member in kind)
        raise bad(instance, attribute.name, value, f"is not one of {allowed}")


@frozen
class ExemptionSettings:
    """Exemptions: mode (AV-IF1 *NOEXM) and overseas-resident codes (TMSDS/CC-TXUS)."""

    mode: ExemptionMode = field(
        default=ExemptionMode.LOCAL, converter=_exemption_mode, validator=_member
    )
    overseas: Mapping[str, str] = field(factory=dict, converter=_as_dict, validator=_mapping)
    """Customer classification -> entity use code, for overseas-resident exemption."""


def _checks(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, frozenset):
        raise bad(instance, attribute.name, value, "is not a set of pend codes")
    for item in value:
        if not isinstance(item, PendCode):
            allowed = ", ".join(repr(code.value) for code in PendCode)
            raise bad(instance, attribute.name, item, f"is not one of {allowed}")


def _days(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3660:
        raise bad(instance, attribute.name, value, "is not a whole number of days, 0 to 3660")


@frozen
class PendingRules:
    """Which pending checks run for orders (TMSDS/PEND-DOC, PEND-DO2) and claims (TMSAR).

    A check is named by the pend code it raises: ``tax_validation`` (BNO155B),
    ``exemption_expiry`` (BNW150C), ``obsolete_tax_code`` (BNO155BT)."""

    order_checks: frozenset[PendCode] = field(
        default=frozenset(PendCode), converter=_as_set, validator=_checks
    )
    claim_checks: frozenset[PendCode] = field(
        default=frozenset({PendCode.TAX_VALIDATION}), converter=_as_set, validator=_checks
    )
    expiry_warning_days: int = field(default=30, validator=_days)
    """An exemption expiring within this many days pends the order (BNW150C)."""


@frozen
class GLAccount:
    """GL accounts of a region's tax (BNADS/AV-GL): the journal credits the liability account
    with the region's tax and debits the offset account (the tax clearing the sales ledger
    booked). ``company`` is an ERP company; blank: every company without an entry of its own."""

    region: str = field(converter=_upper, validator=_region)
    liability_account: str = field(validator=_required)
    offset_account: str = field(default="", validator=_text)
    company: str = field(default="", validator=_text)


def _address(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, Address):
        raise bad(instance, attribute.name, value, "is not an Address")


@frozen
class QuotationSettings:
    """Tax calculation settings for customer quotations (seed 004): the engine company code
    quotes are calculated under (blank: the first company's) and the org address, the ship-from
    of a quote whose account has no warehouse."""

    company_code: str = field(default="", validator=_text)
    org_address: Address | None = field(default=None, validator=_address)


def address_from_table(values: Mapping[str, Any], owner: str, name: str) -> Address:
    """An :class:`Address` from a config table, its errors as ConfigError at ``owner.name``."""
    try:
        return Address(**values)
    except TypeError as exc:
        raise bad(owner, name, dict(values), f"is incomplete ({exc})") from None
    except InvalidFieldError as exc:
        raise bad(owner, f"{name}.{exc.field}", exc.value, exc.reason) from None


def _lease(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 86_400:
        raise bad(instance, attribute.name, value, "is not a whole number of seconds, 1 to 86400")


@frozen
class QueueSettings:
    """The unposted queue: how long a repost worker (or the ERP reposting a U document) holds
    an entry before another may take it; a killed worker's entries wait this long."""

    lease_seconds: int = field(default=300, validator=_lease)
