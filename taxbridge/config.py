"""Typed configuration (the ERP's control files), loaded from TOML or built in code.

A mistake raises :class:`~taxbridge.errors.ConfigError` naming the file, the key path and the
value, e.g. ``taxbridge.toml: nexus[2].region: 'XX' is not a US state or Canadian province``.
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import Factory, field, frozen

from taxbridge.errors import ConfigError, UnknownCompanyError
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
class TaxCodeMap:
    """Tax codes (BNADS/AV-TC2M, TMSDS/IC-TXUS): item classification -> engine tax code."""

    default: str = "P0000000"
    """The blank-classification entry: the code of items with no classification mapped."""
    freight: str = "FR020100"
    """The code freight lines are sent with."""
    by_classification: Mapping[str, str] = Factory(dict)


@frozen
class BridgeConfig:
    """Everything a :class:`~taxbridge.TaxBridge` needs to know about the company."""

    companies: tuple[CompanyMapping, ...]
    nexus: tuple[NexusRegion, ...]
    store_path: str = "taxbridge.db"
    backend: BackendKind = BackendKind.LOCAL
    rounding: RoundingLevel = RoundingLevel.DOCUMENT
    online_at_entry: bool = True
    """TMSDS/TAX-EXT2: calculate with the engine at order entry; off -> the offline table."""
    tax_codes: TaxCodeMap = field(factory=TaxCodeMap)
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
        """Regions where ``company_code`` collects tax."""
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

    def string(self, data: dict[str, Any], key: str, path: str, default: str | None = None) -> str:
        if key not in data:
            if default is None:
                raise ConfigError("is required", source=self.source, key=path)
            return default
        value = data[key]
        if not isinstance(value, str):
            raise self.fail(path, value, "is not a string")
        return value.strip()

    def boolean(self, data: dict[str, Any], key: str, path: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(path, value, "is not true or false")
        return value

    def array(self, data: dict[str, Any], key: str) -> list[Any]:
        value = data.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, value, "is not an array")
        return value

    def choice(self, data: dict[str, Any], key: str, path: str, kind: type[enum.Enum]) -> Any:
        default = next(iter(kind))
        value = data.get(key, default.value)
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in kind)
            raise self.fail(path, value, f"is not one of {allowed}") from None

    def region(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or value.upper() not in REGIONS:
            raise self.fail(path, value, "is not a US state or Canadian province")
        return value.upper()


_TOP = {"store", "backend", "companies", "nexus", "calculation", "tax_codes"}


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

    backend = read.table(top.get("backend", {}), "backend", {"kind", "rounding"})
    kind = read.choice(backend, "kind", "backend.kind", BackendKind)
    rounding = read.choice(backend, "rounding", "backend.rounding", RoundingLevel)

    companies = []
    for index, entry in enumerate(read.array(top, "companies")):
        path = f"companies[{index}]"
        entry = read.table(entry, path, {"erp_company", "item_level1", "company_code"})
        companies.append(
            CompanyMapping(
                erp_company=read.string(entry, "erp_company", f"{path}.erp_company"),
                item_level1=read.string(entry, "item_level1", f"{path}.item_level1", ""),
                company_code=read.string(entry, "company_code", f"{path}.company_code"),
            )
        )
    if not companies:
        raise ConfigError("needs at least one [[companies]] entry", source=source, key="companies")
    seen: set[tuple[str, str]] = set()
    for index, mapping in enumerate(companies):
        key = (mapping.erp_company, mapping.item_level1)
        if key in seen:
            raise read.fail(
                f"companies[{index}]", key, "maps the same company and item level twice"
            )
        seen.add(key)
    codes = {mapping.company_code for mapping in companies}

    nexus = []
    for index, entry in enumerate(read.array(top, "nexus")):
        path = f"nexus[{index}]"
        entry = read.table(entry, path, {"region", "company_code"})
        if "region" not in entry:
            raise ConfigError("is required", source=source, key=f"{path}.region")
        region = read.region(entry["region"], f"{path}.region")
        company_code = read.string(entry, "company_code", f"{path}.company_code", "")
        if company_code and company_code not in codes:
            raise read.fail(f"{path}.company_code", company_code, "is not in the company map")
        nexus.append(NexusRegion(region=region, company_code=company_code))

    calculation = read.table(top.get("calculation", {}), "calculation", {"online_at_entry"})
    online = read.boolean(calculation, "online_at_entry", "calculation.online_at_entry", True)

    codes_table = read.table(
        top.get("tax_codes", {}),
        "tax_codes",
        {"default", "freight", "by_classification"},
    )
    by_class = codes_table.get("by_classification", {})
    if not isinstance(by_class, dict):
        raise read.fail("tax_codes.by_classification", by_class, "is not a table")
    mapping_codes = {}
    for name, code in by_class.items():
        if not isinstance(code, str) or not code.strip():
            raise read.fail(f"tax_codes.by_classification.{name}", code, "is not a tax code")
        mapping_codes[name] = code.strip()
    tax_codes = TaxCodeMap(
        default=read.string(codes_table, "default", "tax_codes.default", "P0000000"),
        freight=read.string(codes_table, "freight", "tax_codes.freight", "FR020100"),
        by_classification=mapping_codes,
    )
    if not tax_codes.default:
        raise read.fail("tax_codes.default", tax_codes.default, "must name a tax code")

    return BridgeConfig(
        companies=tuple(companies),
        nexus=tuple(nexus),
        store_path=store_path,
        backend=kind,
        rounding=rounding,
        online_at_entry=online,
        tax_codes=tax_codes,
        source=source,
    )


def load_config(path: str | Path) -> BridgeConfig:
    """Read a TOML config file; a relative ``store.path`` is taken from the file's folder."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror}", source=str(file)) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"is not valid TOML: {exc}", source=str(file)) from exc
    return parse_config(data, source=file.name, base=file.parent)
