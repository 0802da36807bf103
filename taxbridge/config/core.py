"""The whole configuration of a bridge: the control files, and which backend and store it runs
on. The backend and the store are named by kind and carry the settings their plugin reads, so
this module knows no concrete engine or database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from attrs import field, frozen

from taxbridge._registry import backend_plugin, store_plugin
from taxbridge._toml import TableReader
from taxbridge.config.certificates import (
    CertificateServiceKind,
    CertificateSettings,
    ReminderSettings,
    SMTPSettings,
)
from taxbridge.config.sections import (
    AddressValidation,
    CanadianRate,
    CompanyMapping,
    ExemptionSettings,
    GLAccount,
    LevyItem,
    NexusRegion,
    PendingRules,
    QueueSettings,
    QuotationSettings,
    TaxCodeMap,
    TransactionGroup,
)
from taxbridge.errors import ConfigError, UnknownCompanyError, UnknownTransactionGroupError
from taxbridge.money import RoundingLevel
from taxbridge.rates import ProvinceRate


def _refused(instance: object, key: str, value: Any, reason: str) -> ConfigError:
    return ConfigError.refusing(key, value, reason, source=getattr(instance, "source", ""))


def _tuple_of(kind: type[Any]) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, tuple):
            raise _refused(instance, attribute.name, value, "is not a sequence")
        for index, item in enumerate(value):
            if not isinstance(item, kind):
                key = f"{attribute.name}[{index}]"
                raise _refused(instance, key, item, f"is not a {kind.__name__}")

    return check


def _instance(kind: type[Any]) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, kind):
            raise _refused(instance, attribute.name, value, f"is not a {kind.__name__}")

    return check


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, Iterable) and not isinstance(value, str) else value


def _flag(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise _refused(instance, attribute.name, value, "is not true or false")


def _count(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _refused(instance, attribute.name, value, "is not a whole number >= 0")


@frozen
class BridgeConfig:
    """Everything a :class:`~taxbridge.TaxBridge` needs to know about the company.

    Built in code it is checked as a file is: a mistake raises ConfigError naming the key.
    """

    companies: tuple[CompanyMapping, ...] = field(
        converter=_as_tuple, validator=_tuple_of(CompanyMapping)
    )
    nexus: tuple[NexusRegion, ...] = field(converter=_as_tuple, validator=_tuple_of(NexusRegion))
    backend: str = "local"
    """The backend kind, a name in :data:`taxbridge.backends.BACKENDS` (``[backend] kind``)."""
    backend_settings: Any = None
    """What that backend read from ``[backend]`` (e.g. ``AvaTaxSettings``); None: defaults."""
    store: str = "sqlite"
    """The store kind, a name in :data:`taxbridge.store.STORES` (``[store] kind``)."""
    store_settings: Any = None
    """What that store read from ``[store]`` (e.g. ``SQLiteSettings``); None: defaults."""
    rounding: RoundingLevel = field(
        default=RoundingLevel.DOCUMENT, validator=_instance(RoundingLevel)
    )
    online_at_entry: bool = field(default=True, validator=_flag)
    """TMSDS/TAX-EXT2: calculate with the engine at order entry; off -> the offline table."""
    max_detail_lines: int = field(default=0, validator=_count)
    """BNADS/AV-IF1 *MAXDL: with a value, the breakdown is calculated only for documents with
    fewer lines; 0 is inactive."""
    freight_split: bool = field(default=False, validator=_flag)
    """BNADS/TAX-FRTS: split each freight line across the order's item level 1 values."""
    tax_codes: TaxCodeMap = field(factory=TaxCodeMap, validator=_instance(TaxCodeMap))
    transaction_groups: tuple[TransactionGroup, ...] = field(
        default=(), converter=_as_tuple, validator=_tuple_of(TransactionGroup)
    )
    levy_items: tuple[LevyItem, ...] = field(
        default=(), converter=_as_tuple, validator=_tuple_of(LevyItem)
    )
    canadian_rates: tuple[CanadianRate, ...] = field(
        default=(), converter=_as_tuple, validator=_tuple_of(CanadianRate)
    )
    address_validation: AddressValidation = field(
        factory=AddressValidation, validator=_instance(AddressValidation)
    )
    exemptions: ExemptionSettings = field(
        factory=ExemptionSettings, validator=_instance(ExemptionSettings)
    )
    pending: PendingRules = field(factory=PendingRules, validator=_instance(PendingRules))
    gl_accounts: tuple[GLAccount, ...] = field(
        default=(), converter=_as_tuple, validator=_tuple_of(GLAccount)
    )
    quotations: QuotationSettings = field(
        factory=QuotationSettings, validator=_instance(QuotationSettings)
    )
    queue: QueueSettings = field(factory=QueueSettings, validator=_instance(QueueSettings))
    certificates: CertificateSettings = field(
        factory=CertificateSettings, validator=_instance(CertificateSettings)
    )
    smtp: SMTPSettings = field(factory=SMTPSettings, validator=_instance(SMTPSettings))
    reminders: ReminderSettings = field(
        factory=ReminderSettings, validator=_instance(ReminderSettings)
    )
    source: str = "<code>"
    """Where the config came from, for messages."""

    def __attrs_post_init__(self) -> None:
        try:
            self._check()
        except ConfigError as exc:
            if exc.source:
                raise
            raise ConfigError(
                exc.reason, source=self.source, key=exc.key, value=exc.value
            ) from None

    def _check(self) -> None:
        object.__setattr__(
            self, "backend_settings", backend_plugin(self.backend).check(self.backend_settings)
        )
        object.__setattr__(
            self, "store_settings", store_plugin(self.store).check(self.store_settings)
        )
        if not self.companies:
            raise ConfigError("needs at least one [[companies]] entry", key="companies")
        _unique(
            [(c.erp_company, c.item_level1) for c in self.companies],
            "companies",
            "",
            "maps the same company and item level twice",
        )
        codes = {mapping.company_code for mapping in self.companies}
        for index, nexus in enumerate(self.nexus):
            if nexus.company_code and nexus.company_code not in codes:
                raise _at(
                    f"nexus[{index}].company_code", nexus.company_code, "is not in the company map"
                )
        _unique(
            [g.code for g in self.transaction_groups],
            "transaction_groups",
            ".code",
            "is defined twice",
        )
        _unique(
            [r.province for r in self.canadian_rates],
            "canadian_rates",
            ".province",
            "is defined twice",
        )
        seen_accounts: set[tuple[str, str]] = set()
        for index, account in enumerate(self.gl_accounts):
            if (account.company, account.region) in seen_accounts:
                owner = f" for company {account.company!r}" if account.company else ""
                raise _at(
                    f"gl_accounts[{index}].region",
                    account.region,
                    f"has an account already{owner}",
                )
            seen_accounts.add((account.company, account.region))
        for index, levy in enumerate(self.levy_items):
            for other_index, other in enumerate(self.levy_items[:index]):
                if levy.overlaps(other):
                    raise _at(
                        f"levy_items[{index}].effective",
                        levy.effective.isoformat(),
                        f"overlaps levy_items[{other_index}] ({levy.item_code} in {levy.region})",
                    )
        if self.certificates.service is CertificateServiceKind.AVATAX and self.backend != "avatax":
            raise _at(
                "certificates.service",
                "avatax",
                f"needs the avatax backend (its account keeps the certificates); the backend "
                f"is {self.backend!r}",
            )
        quoted = self.quotations.company_code
        if quoted and quoted not in codes:
            raise _at("quotations.company_code", quoted, "is not in the company map")

    def company_code_for(self, erp_company: str, item_level1: str = "") -> str:
        """The engine company code of an ERP company and item level 1 (exact level first)."""
        fallback = None
        for mapping in self.companies:
            if mapping.erp_company != erp_company:
                continue
            if mapping.item_level1 == item_level1:
                return mapping.company_code
            if not mapping.item_level1:
                fallback = mapping.company_code
        if fallback is None:
            raise UnknownCompanyError(erp_company, item_level1)
        return fallback

    def erp_company_for(self, company_code: str) -> str:
        """The ERP company an engine company code maps from, or blank."""
        for mapping in self.companies:
            if mapping.company_code == company_code:
                return mapping.erp_company
        return ""

    def nexus_regions(self, company_code: str) -> frozenset[str]:
        """Regions where ``company_code`` collects tax, as configured."""
        return frozenset(
            n.region for n in self.nexus if not n.company_code or n.company_code == company_code
        )

    @property
    def all_nexus_regions(self) -> frozenset[str]:
        """Every region in the nexus list, for the offline table."""
        return frozenset(n.region for n in self.nexus)

    def tax_code_for(self, override: str | None, classification: str, freight: bool) -> str:
        """Line tax code: override, else freight code, else classification's, else default."""
        if override:
            return override
        if freight:
            return self.tax_codes.freight
        return self.tax_codes.by_classification.get(classification, self.tax_codes.default)

    def interfaces(self, group: str) -> bool:
        """Whether documents of transaction group ``group`` go to the engine (AV-NX1).

        A blank group interfaces; a group not defined in AV-NX2 is an error.
        """
        if not group:
            return True
        for defined in self.transaction_groups:
            if defined.code == group:
                return defined.interface
        raise UnknownTransactionGroupError(group)

    def levies(self, region: str, on: dt.date) -> tuple[LevyItem, ...]:
        """Levy items that apply to an order shipped to ``region`` on ``on``."""
        return tuple(levy for levy in self.levy_items if levy.applies(region, on))

    def provinces(self) -> tuple[ProvinceRate, ...]:
        """The Canadian default rates (AV-TC1) as rate rows for the offline table."""
        return tuple(
            ProvinceRate(rate.province, gst=rate.gst, hst=rate.hst, pst=rate.pst)
            for rate in self.canadian_rates
        )

    def gl_account(self, region: str, company: str = "") -> str | None:
        """The tax liability account of a region (for an ERP company), or None."""
        entry = self.gl_entry(region, company)
        return None if entry is None else entry.liability_account

    def gl_entry(self, region: str, company: str = "") -> GLAccount | None:
        """The AV-GL entry of a company's region: the company's own, else the one for every
        company (blank company), else None."""
        fallback = None
        for account in self.gl_accounts:
            if account.region == region and account.company == company:
                return account
            if account.region == region and not account.company:
                fallback = account
        return fallback

    @property
    def lease(self) -> dt.timedelta:
        """How long a claim on a queue entry lasts (``[queue] lease_seconds``)."""
        return dt.timedelta(seconds=self.queue.lease_seconds)

    def with_store_file(self, path: str) -> BridgeConfig:
        """This config on the SQLite file ``path`` (the command line's ``--db``)."""
        return attrs.evolve(self, store="sqlite", store_settings=sqlite_file(path, "--db"))


def _at(key: str, value: Any, reason: str) -> ConfigError:
    return ConfigError.refusing(key, value, reason)


def _unique(keys: Iterable[Any], path: str, suffix: str, reason: str) -> None:
    seen: set[Any] = set()
    for index, key in enumerate(keys):
        if key in seen:
            raise _at(f"{path}[{index}]{suffix}", key, reason)
        seen.add(key)


def sqlite_file(path: str, source: str = "<code>") -> Any:
    """The settings of the embedded store on the file ``path``, read by its plugin."""
    return store_plugin("sqlite").settings({"path": path}, TableReader(source))


DEFAULT_NEXUS = ("CA", "FL", "IL", "MN", "NJ", "NY", "PA", "TX", "WA")
"""The nine taxing states of the shipped rate table."""


def default_config(store_path: str | None = None) -> BridgeConfig:
    """The embedded defaults: one company ``DEFAULT`` with nexus in the nine shipped tax states,
    the local engine and the SQLite file ``store_path`` (else ``TAXBRIDGE_DB``, else
    ``taxbridge.db``)."""
    return BridgeConfig(
        companies=(CompanyMapping(erp_company="01", company_code="DEFAULT"),),
        nexus=tuple(NexusRegion(region) for region in DEFAULT_NEXUS),
        store_settings=sqlite_file(store_path) if store_path else None,
        tax_codes=TaxCodeMap(by_classification={"CLOTH": "PC040100", "BOOK": "PB100000"}),
    )
