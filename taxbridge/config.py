"""Typed configuration: the ERP's control files, loaded from TOML or built in code.

Each section is one class whose docstring names its control file in the seed (the "IP1 Business
rules" table). A mistake raises :class:`~taxbridge.errors.ConfigError` naming the file, the key
path and the value, e.g. ``taxbridge.toml: nexus[2].region: 'XX' is not a US state or Canadian
province``.
"""

from __future__ import annotations

import datetime as dt
import enum
import tomllib
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from attrs import Factory, evolve, field, frozen

from taxbridge.backends.avatax.settings import AvaTaxSettings, Secret
from taxbridge.errors import (
    ConfigError,
    InvalidFieldError,
    UnknownCompanyError,
    UnknownTransactionGroupError,
)
from taxbridge.models import Address, PendCode
from taxbridge.money import RoundingLevel
from taxbridge.rates import STATE_NAMES

CANADIAN_PROVINCES = frozenset(
    {"AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"}
)
REGIONS = frozenset(STATE_NAMES) | CANADIAN_PROVINCES
"""Regions a nexus entry may name: US states (with DC and PR) and Canadian provinces."""


class BackendKind(enum.Enum):
    """Which tax backend a bridge built from config uses."""

    LOCAL = "local"
    """The embedded local engine (no network)."""
    OFFLINE = "offline"
    """The offline table only: every result is an estimate with the blank flag."""
    AVATAX = "avatax"
    """AvaTax REST v2 (the ``avatax`` settings of ``[backend]``)."""


class ExemptionMode(enum.Enum):
    """Who holds customer exemptions (BNADS/AV-IF1 *NOEXM)."""

    LOCAL = "local"
    """The ERP's own: customer-master tax number first, then the exemption database (BNW150)."""
    ENGINE = "engine"
    """The engine's certificates: no local exemption evidence is sent."""


@frozen
class CompanyMapping:
    """Company map (BNADS/AV-IF2): ERP company + item level 1 -> engine company code."""

    erp_company: str
    company_code: str
    item_level1: str = ""
    """Blank maps every item level 1 of the company that has no entry of its own."""


@frozen
class NexusRegion:
    """Company nexus (BNADS/AV-NX3): a region where a company collects and remits tax."""

    region: str
    company_code: str = ""
    """Blank: a nexus of every company in the company map."""


@frozen
class TransactionGroup:
    """Transaction group (BNADS/AV-NX2), and whether it interfaces (BNADS/AV-NX1)."""

    code: str
    description: str = ""
    interface: bool = True
    """False: documents of the group are calculated offline only and never posted."""


@frozen
class TaxCodeMap:
    """Tax codes: active list (BNADS/AV-TC2) and item classification map (AV-TC2M, IC-TXUS)."""

    default: str = "P0000000"
    """The blank-classification entry: the code of items with no classification mapped."""
    freight: str = "FR020100"
    """The code freight lines are sent with."""
    by_classification: Mapping[str, str] = Factory(dict)
    active: frozenset[str] = frozenset()
    """Active engine codes; empty: the engine's own list (the end-of-day refresh fills it)."""


@frozen
class LevyItem:
    """Tax region levy item (BNADS/AV-TC4): a charge added to orders in a region and period."""

    region: str
    item_code: str
    tax_code: str
    amount: Decimal
    """The levy's amount, used where the engine does not supply one."""
    effective: dt.date
    expiry: dt.date | None = None
    """Last day the levy applies; None: open-ended."""
    description: str = ""

    def applies(self, region: str, on: dt.date) -> bool:
        """True for an order shipped to ``region`` on date ``on``."""
        return (
            region == self.region
            and self.effective <= on
            and (self.expiry is None or on <= self.expiry)
        )


@frozen
class CanadianRate:
    """Default Canadian tax rate by province (BNADS/AV-TC1), for offline calculation."""

    province: str
    gst: Decimal = Decimal(0)
    hst: Decimal = Decimal(0)
    pst: Decimal = Decimal(0)
    """Provincial sales tax (QST in Quebec)."""


@frozen
class AddressValidation:
    """Address validation bypass (TMSCRM/AV-DFN2) and hard-error programs (AV-DFN3)."""

    bypass_programs: frozenset[str] = frozenset()
    """Programs that skip validation."""
    hard_error_programs: frozenset[str] = frozenset()
    """Programs that refuse to go on with an invalid address (no temporary override)."""


@frozen
class ExemptionSettings:
    """Exemptions: mode (AV-IF1 *NOEXM) and overseas-resident codes (TMSDS/CC-TXUS)."""

    mode: ExemptionMode = ExemptionMode.LOCAL
    overseas: Mapping[str, str] = Factory(dict)
    """Customer classification -> entity use code, for overseas-resident exemption."""


@frozen
class PendingRules:
    """Which pending checks run for orders (TMSDS/PEND-DOC, PEND-DO2) and claims (TMSAR).

    A check is named by the pend code it raises: ``tax_validation`` (BNO155B),
    ``exemption_expiry`` (BNW150C), ``obsolete_tax_code`` (BNO155BT)."""

    order_checks: frozenset[PendCode] = frozenset(PendCode)
    claim_checks: frozenset[PendCode] = frozenset({PendCode.TAX_VALIDATION})
    expiry_warning_days: int = 30
    """An exemption expiring within this many days pends the order (BNW150C)."""


@frozen
class GLAccount:
    """Tax liability account of a region (BNADS/AV-GL), for the GL journals."""

    region: str
    liability_account: str


@frozen
class QuotationSettings:
    """Tax calculation settings for customer quotations (seed 004): the engine company code
    quotes are calculated under (blank: the first company's) and the org address, the ship-from
    of a quote whose account has no warehouse."""

    company_code: str = ""
    org_address: Address | None = None


@frozen
class BridgeConfig:
    """Everything a :class:`~taxbridge.TaxBridge` needs to know about the company."""

    companies: tuple[CompanyMapping, ...]
    nexus: tuple[NexusRegion, ...]
    store_path: str = "taxbridge.db"
    backend: BackendKind = BackendKind.LOCAL
    avatax: AvaTaxSettings | None = None
    """Connection and credentials when ``backend`` is AVATAX."""
    rounding: RoundingLevel = RoundingLevel.DOCUMENT
    online_at_entry: bool = True
    """TMSDS/TAX-EXT2: calculate with the engine at order entry; off -> the offline table."""
    max_detail_lines: int = 0
    """BNADS/AV-IF1 *MAXDL: with a value, the breakdown is calculated only for documents with
    fewer lines; 0 is inactive."""
    freight_split: bool = False
    """BNADS/TAX-FRTS: split each freight line across the order's item level 1 values."""
    tax_codes: TaxCodeMap = field(factory=TaxCodeMap)
    transaction_groups: tuple[TransactionGroup, ...] = ()
    levy_items: tuple[LevyItem, ...] = ()
    canadian_rates: tuple[CanadianRate, ...] = ()
    address_validation: AddressValidation = field(factory=AddressValidation)
    exemptions: ExemptionSettings = field(factory=ExemptionSettings)
    pending: PendingRules = field(factory=PendingRules)
    gl_accounts: tuple[GLAccount, ...] = ()
    quotations: QuotationSettings = field(factory=QuotationSettings)
    source: str = "<code>"
    """Where the config came from, for messages."""

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

    def canadian_rate(self, province: str) -> CanadianRate | None:
        """The default rate of a province, or None."""
        for rate in self.canadian_rates:
            if rate.province == province:
                return rate
        return None

    def gl_account(self, region: str) -> str | None:
        """The tax liability account of a region, or None."""
        for account in self.gl_accounts:
            if account.region == region:
                return account.liability_account
        return None


def example_config_text() -> str:
    """The annotated example ``taxbridge.toml`` shipped with the package."""
    return resources.files("taxbridge").joinpath("data", "taxbridge.toml").read_text("utf-8")


def example_config(store_path: str | None = None) -> BridgeConfig:
    """The shipped example config (the demo's), optionally with another store path."""
    config = parse_config_text(example_config_text(), source="taxbridge.toml")
    return config if store_path is None else evolve(config, store_path=store_path)


def default_config(store_path: str = "taxbridge.db") -> BridgeConfig:
    """The embedded defaults: one company ``DEFAULT`` with nexus in the nine shipped tax states."""
    return BridgeConfig(
        companies=(CompanyMapping(erp_company="01", company_code="DEFAULT"),),
        nexus=tuple(
            NexusRegion(region) for region in ("CA", "FL", "IL", "MN", "NJ", "NY", "PA", "TX", "WA")
        ),
        store_path=store_path,
        tax_codes=TaxCodeMap(by_classification={"CLOTH": "PC040100", "BOOK": "PB100000"}),
    )


# ---------------------------------------------------------------------------------------------
# Loading


class _Reader:
    """Reads a parsed TOML table, turning every mistake into a ConfigError with its key path."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, value: Any, message: str) -> ConfigError:
        return ConfigError(f"{value!r} {message}", source=self.source, key=key, value=value)

    def missing(self, key: str) -> ConfigError:
        return ConfigError("is required", source=self.source, key=key)

    def table(self, data: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(key, data, "is not a table")
        for name in data:
            if name not in allowed:
                path = f"{key}.{name}" if key else name
                raise ConfigError(
                    f"unknown key (expected one of {', '.join(sorted(allowed))})",
                    source=self.source,
                    key=path,
                    value=data[name],
                )
        return data

    def tables(self, data: dict[str, Any], key: str, allowed: set[str]) -> list[dict[str, Any]]:
        value = data.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, value, "is not an array of tables")
        return [self.table(entry, f"{key}[{i}]", allowed) for i, entry in enumerate(value)]

    def string(self, data: dict[str, Any], key: str, path: str, default: str | None = None) -> str:
        if key not in data:
            if default is None:
                raise self.missing(path)
            return default
        value = data[key]
        if not isinstance(value, str):
            raise self.fail(path, value, "is not a string")
        return value.strip()

    def required_string(self, data: dict[str, Any], key: str, path: str) -> str:
        value = self.string(data, key, path)
        if not value:
            raise self.fail(path, value, "must not be empty")
        return value

    def boolean(self, data: dict[str, Any], key: str, path: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(path, value, "is not true or false")
        return value

    def integer(self, data: dict[str, Any], key: str, path: str, default: int) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(path, value, "is not a whole number >= 0")
        return value

    def decimal(
        self, data: dict[str, Any], key: str, path: str, default: str | None = None
    ) -> Decimal:
        if key not in data:
            if default is None:
                raise self.missing(path)
            return Decimal(default)
        value = data[key]
        if isinstance(value, float):
            raise self.fail(path, value, 'is a float; write money and rates as strings ("8.00")')
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(path, value, "is not a number")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise self.fail(path, value, "is not a number") from None
        if not number.is_finite() or number < 0:
            raise self.fail(path, value, "is not a number >= 0")
        return number

    def seconds(self, data: dict[str, Any], key: str, path: str) -> float:
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.fail(path, value, "is not a number of seconds > 0")
        return float(value)

    def rate(self, data: dict[str, Any], key: str, path: str) -> Decimal:
        number = self.decimal(data, key, path, "0")
        if number >= 1:
            raise self.fail(path, data[key], "is not a rate below 1 (write 13% as 0.13)")
        return number

    def date(self, data: dict[str, Any], key: str, path: str, *, required: bool) -> dt.date | None:
        if key not in data:
            if required:
                raise self.missing(path)
            return None
        value = data[key]
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise self.fail(path, value, "is not a date (YYYY-MM-DD)") from None
        raise self.fail(path, value, "is not a date (YYYY-MM-DD)")

    def strings(self, data: dict[str, Any], key: str, path: str) -> list[str]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(path, value, "is not an array of strings")
        return [v.strip() for v in value]

    def mapping(self, data: dict[str, Any], key: str, path: str) -> dict[str, str]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(path, value, "is not a table")
        result = {}
        for name, item in value.items():
            if not isinstance(item, str) or not item.strip():
                raise self.fail(f"{path}.{name}", item, "is not a non-empty string")
            result[name] = item.strip()
        return result

    def choice(self, data: dict[str, Any], key: str, path: str, kind: type[enum.Enum]) -> Any:
        default = next(iter(kind))
        value = data.get(key, default.value)
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in kind)
            raise self.fail(path, value, f"is not one of {allowed}") from None

    def region(self, value: Any, path: str, allowed: frozenset[str] = REGIONS) -> str:
        if not isinstance(value, str) or value.upper() not in allowed:
            kind = (
                "Canadian province"
                if allowed is CANADIAN_PROVINCES
                else ("US state or Canadian province")
            )
            raise self.fail(path, value, f"is not a {kind}")
        return value.upper()


_TOP = {
    "store",
    "backend",
    "companies",
    "nexus",
    "calculation",
    "tax_codes",
    "transaction_groups",
    "levy_items",
    "canadian_rates",
    "address_validation",
    "exemptions",
    "pending",
    "gl_accounts",
    "quotations",
}


_AVATAX_KEYS = {
    "environment", "base_url", "account_id", "license_key", "license_key_env", "token",
    "token_env", "app_name", "app_version", "machine_name", "connect_timeout", "read_timeout",
    "max_attempts", "max_retry_seconds", "backoff_initial", "backoff_max", "max_connections",
    "circuit_failures", "circuit_reset_seconds", "company_ids", "log_bodies",
}  # fmt: skip
"""``[backend]`` keys of the AvaTax backend (AvaTaxSettings fields, plus ``environment``)."""


def _avatax(read: _Reader, data: dict[str, Any]) -> AvaTaxSettings:
    """The AvaTax settings of ``[backend]``: environment or base_url, credentials, limits."""
    values: dict[str, Any] = {}
    for key in ("account_id", "license_key_env", "token_env", "app_name", "app_version",
                "machine_name"):  # fmt: skip
        if key in data:
            values[key] = read.string(data, key, f"backend.{key}")
    for key in ("license_key", "token"):
        if key in data:
            values[key] = Secret(read.required_string(data, key, f"backend.{key}"))
    for key in ("connect_timeout", "read_timeout", "max_retry_seconds", "backoff_initial",
                "backoff_max", "circuit_reset_seconds"):  # fmt: skip
        if key in data:
            values[key] = read.seconds(data, key, f"backend.{key}")
    for key in ("max_attempts", "max_connections", "circuit_failures"):
        if key in data:
            values[key] = read.integer(data, key, f"backend.{key}", 1)
    if "log_bodies" in data:
        values["log_bodies"] = read.boolean(data, "log_bodies", "backend.log_bodies", False)
    if "company_ids" in data:
        ids = read.table(data["company_ids"], "backend.company_ids", set(data["company_ids"]))
        for name, value in ids.items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise read.fail(f"backend.company_ids.{name}", value, "is not a company id > 0")
        values["company_ids"] = ids
    if "base_url" in data and "environment" in data:
        raise read.fail("backend.base_url", data["base_url"], "conflicts with environment")
    try:
        if "base_url" in data:
            return AvaTaxSettings(base_url=read.string(data, "base_url", "backend.base_url"),
                                  **values)  # fmt: skip
        environment = read.string(data, "environment", "backend.environment", "sandbox")
        return AvaTaxSettings.for_environment(environment, **values)
    except ConfigError as exc:
        raise ConfigError(exc.reason, source=read.source, key=exc.key, value=exc.value) from None


def parse_config(
    data: Mapping[str, Any], *, source: str = "<config>", base: Path | None = None
) -> BridgeConfig:
    """Build a :class:`BridgeConfig` from parsed TOML; a relative store path is under ``base``."""
    read = _Reader(source)
    top = read.table(dict(data), "", _TOP)

    store = read.table(top.get("store", {}), "store", {"path"})
    store_path = read.string(store, "path", "store.path", "taxbridge.db")
    if base is not None and store_path != ":memory:" and not Path(store_path).is_absolute():
        store_path = str(base / store_path)

    backend = read.table(top.get("backend", {}), "backend", {"kind", "rounding"} | _AVATAX_KEYS)
    kind = read.choice(backend, "kind", "backend.kind", BackendKind)
    rounding = read.choice(backend, "rounding", "backend.rounding", RoundingLevel)
    avatax = _avatax(read, backend) if kind is BackendKind.AVATAX else None
    for key in sorted(_AVATAX_KEYS & set(backend)):
        if avatax is None:
            raise read.fail(f"backend.{key}", backend[key], 'is only read with kind = "avatax"')

    companies = _companies(read, top)
    codes = {mapping.company_code for mapping in companies}
    nexus = []
    for index, entry in enumerate(read.tables(top, "nexus", {"region", "company_code"})):
        path = f"nexus[{index}]"
        if "region" not in entry:
            raise read.missing(f"{path}.region")
        region = read.region(entry["region"], f"{path}.region")
        company_code = read.string(entry, "company_code", f"{path}.company_code", "")
        if company_code and company_code not in codes:
            raise read.fail(f"{path}.company_code", company_code, "is not in the company map")
        nexus.append(NexusRegion(region=region, company_code=company_code))

    calculation = read.table(
        top.get("calculation", {}),
        "calculation",
        {"online_at_entry", "max_detail_lines", "freight_split"},
    )
    return BridgeConfig(
        companies=tuple(companies),
        nexus=tuple(nexus),
        store_path=store_path,
        backend=kind,
        avatax=avatax,
        rounding=rounding,
        online_at_entry=read.boolean(
            calculation, "online_at_entry", "calculation.online_at_entry", True
        ),
        max_detail_lines=read.integer(
            calculation, "max_detail_lines", "calculation.max_detail_lines", 0
        ),
        freight_split=read.boolean(
            calculation, "freight_split", "calculation.freight_split", False
        ),
        tax_codes=_tax_codes(read, top),
        transaction_groups=_transaction_groups(read, top),
        levy_items=_levy_items(read, top),
        canadian_rates=_canadian_rates(read, top),
        address_validation=_address_validation(read, top),
        exemptions=_exemptions(read, top),
        pending=_pending(read, top),
        gl_accounts=_gl_accounts(read, top),
        quotations=_quotations(read, top, codes),
        source=source,
    )


def _companies(read: _Reader, top: dict[str, Any]) -> list[CompanyMapping]:
    companies = []
    entries = read.tables(top, "companies", {"erp_company", "item_level1", "company_code"})
    for index, entry in enumerate(entries):
        path = f"companies[{index}]"
        companies.append(
            CompanyMapping(
                erp_company=read.required_string(entry, "erp_company", f"{path}.erp_company"),
                item_level1=read.string(entry, "item_level1", f"{path}.item_level1", ""),
                company_code=read.required_string(entry, "company_code", f"{path}.company_code"),
            )
        )
    if not companies:
        raise ConfigError(
            "needs at least one [[companies]] entry", source=read.source, key="companies"
        )
    seen: set[tuple[str, str]] = set()
    for index, mapping in enumerate(companies):
        key = (mapping.erp_company, mapping.item_level1)
        if key in seen:
            raise read.fail(
                f"companies[{index}]", key, "maps the same company and item level twice"
            )
        seen.add(key)
    return companies


def _tax_codes(read: _Reader, top: dict[str, Any]) -> TaxCodeMap:
    if "tax_codes" not in top:
        return TaxCodeMap()
    table = read.table(
        top["tax_codes"], "tax_codes", {"default", "freight", "by_classification", "active"}
    )
    default = read.required_string(table, "default", "tax_codes.default")
    freight = (
        read.required_string(table, "freight", "tax_codes.freight")
        if "freight" in table
        else "FR020100"
    )
    by_class = read.mapping(table, "by_classification", "tax_codes.by_classification")
    active = frozenset(read.strings(table, "active", "tax_codes.active"))
    if active:
        for name, code in [("default", default), ("freight", freight), *by_class.items()]:
            if code not in active:
                path = (
                    f"tax_codes.{name}"
                    if name in ("default", "freight")
                    else (f"tax_codes.by_classification.{name}")
                )
                raise read.fail(path, code, "is not in tax_codes.active")
    return TaxCodeMap(default=default, freight=freight, by_classification=by_class, active=active)


def _transaction_groups(read: _Reader, top: dict[str, Any]) -> tuple[TransactionGroup, ...]:
    groups = []
    seen = set()
    entries = read.tables(top, "transaction_groups", {"code", "description", "interface"})
    for index, entry in enumerate(entries):
        path = f"transaction_groups[{index}]"
        code = read.required_string(entry, "code", f"{path}.code")
        if code in seen:
            raise read.fail(f"{path}.code", code, "is defined twice")
        seen.add(code)
        groups.append(
            TransactionGroup(
                code=code,
                description=read.string(entry, "description", f"{path}.description", ""),
                interface=read.boolean(entry, "interface", f"{path}.interface", True),
            )
        )
    return tuple(groups)


def _levy_items(read: _Reader, top: dict[str, Any]) -> tuple[LevyItem, ...]:
    levies: list[LevyItem] = []
    allowed = {"region", "item_code", "tax_code", "amount", "effective", "expiry", "description"}
    for index, entry in enumerate(read.tables(top, "levy_items", allowed)):
        path = f"levy_items[{index}]"
        if "region" not in entry:
            raise read.missing(f"{path}.region")
        effective = read.date(entry, "effective", f"{path}.effective", required=True)
        expiry = read.date(entry, "expiry", f"{path}.expiry", required=False)
        assert effective is not None  # required=True
        if expiry is not None and expiry < effective:
            raise read.fail(f"{path}.expiry", expiry.isoformat(), "is before the effective date")
        levy = LevyItem(
            region=read.region(entry["region"], f"{path}.region"),
            item_code=read.required_string(entry, "item_code", f"{path}.item_code"),
            tax_code=read.required_string(entry, "tax_code", f"{path}.tax_code"),
            amount=read.decimal(entry, "amount", f"{path}.amount"),
            effective=effective,
            expiry=expiry,
            description=read.string(entry, "description", f"{path}.description", ""),
        )
        for other_index, other in enumerate(levies):
            if (other.region, other.item_code) == (levy.region, levy.item_code) and _overlap(
                other, levy
            ):
                raise read.fail(
                    f"{path}.effective",
                    levy.effective.isoformat(),
                    f"overlaps levy_items[{other_index}] ({levy.item_code} in {levy.region})",
                )
        levies.append(levy)
    return tuple(levies)


def _overlap(a: LevyItem, b: LevyItem) -> bool:
    a_end = a.expiry or dt.date.max
    b_end = b.expiry or dt.date.max
    return a.effective <= b_end and b.effective <= a_end


def _canadian_rates(read: _Reader, top: dict[str, Any]) -> tuple[CanadianRate, ...]:
    rates = []
    seen = set()
    for index, entry in enumerate(
        read.tables(top, "canadian_rates", {"province", "gst", "hst", "pst"})
    ):
        path = f"canadian_rates[{index}]"
        if "province" not in entry:
            raise read.missing(f"{path}.province")
        province = read.region(entry["province"], f"{path}.province", CANADIAN_PROVINCES)
        if province in seen:
            raise read.fail(f"{path}.province", province, "is defined twice")
        seen.add(province)
        rate = CanadianRate(
            province=province,
            gst=read.rate(entry, "gst", f"{path}.gst"),
            hst=read.rate(entry, "hst", f"{path}.hst"),
            pst=read.rate(entry, "pst", f"{path}.pst"),
        )
        if rate.hst and rate.gst:
            raise read.fail(
                f"{path}.hst", str(rate.hst), "and gst cannot both apply (HST includes GST)"
            )
        rates.append(rate)
    return tuple(rates)


def _address_validation(read: _Reader, top: dict[str, Any]) -> AddressValidation:
    table = read.table(
        top.get("address_validation", {}),
        "address_validation",
        {"bypass_programs", "hard_error_programs"},
    )
    bypass = frozenset(read.strings(table, "bypass_programs", "address_validation.bypass_programs"))
    hard = frozenset(
        read.strings(table, "hard_error_programs", "address_validation.hard_error_programs")
    )
    both = sorted(bypass & hard)
    if both:
        raise read.fail(
            "address_validation.hard_error_programs", both[0], "is also in bypass_programs"
        )
    return AddressValidation(bypass_programs=bypass, hard_error_programs=hard)


def _exemptions(read: _Reader, top: dict[str, Any]) -> ExemptionSettings:
    table = read.table(top.get("exemptions", {}), "exemptions", {"mode", "overseas"})
    return ExemptionSettings(
        mode=read.choice(table, "mode", "exemptions.mode", ExemptionMode),
        overseas=read.mapping(table, "overseas", "exemptions.overseas"),
    )


def _pending(read: _Reader, top: dict[str, Any]) -> PendingRules:
    table = read.table(
        top.get("pending", {}), "pending", {"order_checks", "claim_checks", "expiry_warning_days"}
    )

    def checks(key: str, default: frozenset[PendCode]) -> frozenset[PendCode]:
        if key not in table:
            return default
        result = set()
        for index, name in enumerate(read.strings(table, key, f"pending.{key}")):
            try:
                result.add(PendCode(name))
            except ValueError:
                allowed = ", ".join(repr(c.value) for c in PendCode)
                raise read.fail(
                    f"pending.{key}[{index}]", name, f"is not one of {allowed}"
                ) from None
        return frozenset(result)

    defaults = PendingRules()
    return PendingRules(
        order_checks=checks("order_checks", defaults.order_checks),
        claim_checks=checks("claim_checks", defaults.claim_checks),
        expiry_warning_days=read.integer(
            table, "expiry_warning_days", "pending.expiry_warning_days", 30
        ),
    )


def _gl_accounts(read: _Reader, top: dict[str, Any]) -> tuple[GLAccount, ...]:
    accounts = []
    seen = set()
    for index, entry in enumerate(read.tables(top, "gl_accounts", {"region", "liability_account"})):
        path = f"gl_accounts[{index}]"
        if "region" not in entry:
            raise read.missing(f"{path}.region")
        region = read.region(entry["region"], f"{path}.region")
        if region in seen:
            raise read.fail(f"{path}.region", region, "has an account already")
        seen.add(region)
        accounts.append(
            GLAccount(
                region=region,
                liability_account=read.required_string(
                    entry, "liability_account", f"{path}.liability_account"
                ),
            )
        )
    return tuple(accounts)


def _quotations(read: _Reader, top: dict[str, Any], codes: set[str]) -> QuotationSettings:
    table = read.table(top.get("quotations", {}), "quotations", {"company_code", "org_address"})
    company_code = read.string(table, "company_code", "quotations.company_code", "")
    if company_code and company_code not in codes:
        raise read.fail("quotations.company_code", company_code, "is not in the company map")
    org_address = None
    if "org_address" in table:
        fields = {"line1", "line2", "line3", "city", "region", "postal_code", "country"}
        raw = read.table(table["org_address"], "quotations.org_address", fields)
        values = {
            key: read.string(raw, key, f"quotations.org_address.{key}", "")
            for key in fields
            if key in raw
        }
        try:
            org_address = Address(**values)
        except TypeError as exc:
            raise read.fail("quotations.org_address", raw, f"is incomplete ({exc})") from None
        except InvalidFieldError as exc:
            raise read.fail(f"quotations.org_address.{exc.field}", exc.value, exc.reason) from None
    return QuotationSettings(company_code=company_code, org_address=org_address)


def load_config(path: str | Path) -> BridgeConfig:
    """Read a TOML config file; a relative ``store.path`` is taken from the file's folder."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror}", source=str(file)) from exc
    return parse_config_text(text, source=file.name, base=file.parent)


def parse_config_text(text: str, *, source: str, base: Path | None = None) -> BridgeConfig:
    """Parse TOML text into a :class:`BridgeConfig`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"is not valid TOML: {exc}", source=source) from exc
    return parse_config(data, source=source, base=base)
