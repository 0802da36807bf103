"""The configuration file: TOML in, :class:`BridgeConfig` out. This module reads types and key
paths; the config classes check what the values mean, and the backend and store plugins read
their own ``[backend]`` and ``[store]`` keys.

A mistake raises :class:`~taxbridge.errors.ConfigError` naming the file, the key path and the
value, e.g. ``taxbridge.toml: nexus[2].region: 'XX' is not a US state or Canadian province``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from attrs import evolve

from taxbridge._registry import (
    BACKENDS,
    ENGINES_GROUP,
    STORES,
    STORES_GROUP,
    backend_plugin,
    kinds,
    store_plugin,
)
from taxbridge._toml import TableReader
from taxbridge.config.certificates import read_certificates, read_reminders, read_smtp
from taxbridge.config.core import BridgeConfig, sqlite_file
from taxbridge.config.sections import (
    AddressValidation,
    CanadianRate,
    CompanyMapping,
    ExemptionMode,
    ExemptionSettings,
    GLAccount,
    LevyItem,
    NexusRegion,
    PendingRules,
    QueueSettings,
    QuotationSettings,
    TaxCodeMap,
    TransactionGroup,
    address_from_table,
)
from taxbridge.errors import ConfigError
from taxbridge.models import PendCode
from taxbridge.money import RoundingLevel

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
    "queue",
    "certificates",
    "smtp",
    "reminders",
}


def parse_config(
    data: Mapping[str, Any], *, source: str = "<config>", base: Path | None = None
) -> BridgeConfig:
    """Build a :class:`BridgeConfig` from parsed TOML; a relative store path is under ``base``."""
    read = TableReader(source, base)
    top = read.table(dict(data), "", _TOP)

    store = read.table(top.get("store", {}), "store", None) if "store" in top else {}
    if "kind" not in store and "url" in store:
        store = {**store, "kind": "postgres"}  # a database URL names the PostgreSQL store
    store_kind = read.one_of(store, "kind", "store.kind", kinds(STORES, STORES_GROUP))
    store_settings = store_plugin(store_kind).settings(
        {key: value for key, value in store.items() if key != "kind"}, read
    )

    backend = read.table(top.get("backend", {}), "backend", None) if "backend" in top else {}
    kind = read.one_of(backend, "kind", "backend.kind", kinds(BACKENDS, ENGINES_GROUP))
    rounding = read.choice(backend, "rounding", "backend.rounding", RoundingLevel)
    backend_settings = backend_plugin(kind).settings(backend, read)

    calculation = read.table(
        top.get("calculation", {}),
        "calculation",
        {"online_at_entry", "max_detail_lines", "freight_split"},
    )
    return read.build(
        "",
        BridgeConfig,
        companies=tuple(_companies(read, top)),
        nexus=tuple(
            read.build(
                f"nexus[{index}]",
                NexusRegion,
                region=_required_key(read, entry, "region", f"nexus[{index}].region"),
                company_code=read.string(entry, "company_code", f"nexus[{index}].company_code", ""),
            )
            for index, entry in enumerate(read.tables(top, "nexus", {"region", "company_code"}))
        ),
        backend=kind,
        backend_settings=backend_settings,
        store=store_kind,
        store_settings=store_settings,
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
        quotations=_quotations(read, top),
        queue=_queue(read, top),
        certificates=read_certificates(read, top),
        smtp=read_smtp(read, top),
        reminders=read_reminders(read, top),
        source=source,
    )


def _required_key(read: TableReader, entry: dict[str, Any], key: str, path: str) -> Any:
    if key not in entry:
        raise read.missing(path)
    return entry[key]


def _companies(read: TableReader, top: dict[str, Any]) -> list[CompanyMapping]:
    entries = read.tables(top, "companies", {"erp_company", "item_level1", "company_code"})
    return [
        read.build(
            f"companies[{index}]",
            CompanyMapping,
            erp_company=read.required_string(
                entry, "erp_company", f"companies[{index}].erp_company"
            ),
            item_level1=read.string(entry, "item_level1", f"companies[{index}].item_level1", ""),
            company_code=read.required_string(
                entry, "company_code", f"companies[{index}].company_code"
            ),
        )
        for index, entry in enumerate(entries)
    ]


def _tax_codes(read: TableReader, top: dict[str, Any]) -> TaxCodeMap:
    if "tax_codes" not in top:
        return TaxCodeMap()
    table = read.table(
        top["tax_codes"], "tax_codes", {"default", "freight", "by_classification", "active"}
    )
    return read.build(
        "tax_codes",
        TaxCodeMap,
        default=read.required_string(table, "default", "tax_codes.default"),
        freight=(
            read.required_string(table, "freight", "tax_codes.freight")
            if "freight" in table
            else "FR020100"
        ),
        by_classification=read.mapping(table, "by_classification", "tax_codes.by_classification"),
        active=frozenset(read.strings(table, "active", "tax_codes.active")),
    )


def _transaction_groups(read: TableReader, top: dict[str, Any]) -> tuple[TransactionGroup, ...]:
    entries = read.tables(top, "transaction_groups", {"code", "description", "interface"})
    return tuple(
        read.build(
            f"transaction_groups[{index}]",
            TransactionGroup,
            code=read.required_string(entry, "code", f"transaction_groups[{index}].code"),
            description=read.string(
                entry, "description", f"transaction_groups[{index}].description", ""
            ),
            interface=read.boolean(
                entry, "interface", f"transaction_groups[{index}].interface", True
            ),
        )
        for index, entry in enumerate(entries)
    )


def _levy_items(read: TableReader, top: dict[str, Any]) -> tuple[LevyItem, ...]:
    allowed = {"region", "item_code", "tax_code", "amount", "effective", "expiry", "description"}
    levies = []
    for index, entry in enumerate(read.tables(top, "levy_items", allowed)):
        path = f"levy_items[{index}]"
        levies.append(
            read.build(
                path,
                LevyItem,
                region=_required_key(read, entry, "region", f"{path}.region"),
                item_code=read.required_string(entry, "item_code", f"{path}.item_code"),
                tax_code=read.required_string(entry, "tax_code", f"{path}.tax_code"),
                amount=read.decimal(entry, "amount", f"{path}.amount"),
                effective=read.date(entry, "effective", f"{path}.effective", required=True),
                expiry=read.date(entry, "expiry", f"{path}.expiry", required=False),
                description=read.string(entry, "description", f"{path}.description", ""),
            )
        )
    return tuple(levies)


def _canadian_rates(read: TableReader, top: dict[str, Any]) -> tuple[CanadianRate, ...]:
    entries = read.tables(top, "canadian_rates", {"province", "gst", "hst", "pst"})
    return tuple(
        read.build(
            f"canadian_rates[{index}]",
            CanadianRate,
            province=_required_key(read, entry, "province", f"canadian_rates[{index}].province"),
            gst=read.decimal(entry, "gst", f"canadian_rates[{index}].gst", "0"),
            hst=read.decimal(entry, "hst", f"canadian_rates[{index}].hst", "0"),
            pst=read.decimal(entry, "pst", f"canadian_rates[{index}].pst", "0"),
        )
        for index, entry in enumerate(entries)
    )


def _address_validation(read: TableReader, top: dict[str, Any]) -> AddressValidation:
    table = read.table(
        top.get("address_validation", {}),
        "address_validation",
        {"bypass_programs", "hard_error_programs"},
    )
    return read.build(
        "address_validation",
        AddressValidation,
        bypass_programs=read.strings(
            table, "bypass_programs", "address_validation.bypass_programs"
        ),
        hard_error_programs=read.strings(
            table, "hard_error_programs", "address_validation.hard_error_programs"
        ),
    )


def _exemptions(read: TableReader, top: dict[str, Any]) -> ExemptionSettings:
    table = read.table(top.get("exemptions", {}), "exemptions", {"mode", "overseas"})
    return read.build(
        "exemptions",
        ExemptionSettings,
        mode=read.choice(table, "mode", "exemptions.mode", ExemptionMode),
        overseas=read.mapping(table, "overseas", "exemptions.overseas"),
    )


def _pending(read: TableReader, top: dict[str, Any]) -> PendingRules:
    table = read.table(
        top.get("pending", {}), "pending", {"order_checks", "claim_checks", "expiry_warning_days"}
    )
    defaults = PendingRules()

    def checks(key: str, default: frozenset[PendCode]) -> frozenset[PendCode]:
        if key not in table:
            return default
        allowed = [code.value for code in PendCode]
        names = read.strings(table, key, f"pending.{key}")
        return frozenset(
            read.one_of({key: name}, key, f"pending.{key}[{index}]", allowed, PendCode)
            for index, name in enumerate(names)
        )

    return read.build(
        "pending",
        PendingRules,
        order_checks=checks("order_checks", defaults.order_checks),
        claim_checks=checks("claim_checks", defaults.claim_checks),
        expiry_warning_days=read.integer(
            table, "expiry_warning_days", "pending.expiry_warning_days", 30
        ),
    )


def _gl_accounts(read: TableReader, top: dict[str, Any]) -> tuple[GLAccount, ...]:
    entries = read.tables(
        top, "gl_accounts", {"region", "liability_account", "offset_account", "company"}
    )
    return tuple(
        read.build(
            f"gl_accounts[{index}]",
            GLAccount,
            region=_required_key(read, entry, "region", f"gl_accounts[{index}].region"),
            liability_account=read.string(
                entry, "liability_account", f"gl_accounts[{index}].liability_account"
            ),
            offset_account=read.string(
                entry, "offset_account", f"gl_accounts[{index}].offset_account", ""
            ),
            company=read.string(entry, "company", f"gl_accounts[{index}].company", ""),
        )
        for index, entry in enumerate(entries)
    )


def _quotations(read: TableReader, top: dict[str, Any]) -> QuotationSettings:
    table = read.table(top.get("quotations", {}), "quotations", {"company_code", "org_address"})
    org_address = None
    if "org_address" in table:
        fields = {"line1", "line2", "line3", "city", "region", "postal_code", "country"}
        raw = read.table(table["org_address"], "quotations.org_address", fields)
        values = {
            key: read.string(raw, key, f"quotations.org_address.{key}", "")
            for key in fields
            if key in raw
        }
        org_address = read.build(
            "quotations",
            lambda: address_from_table(values, "QuotationSettings", "org_address"),
        )
    return read.build(
        "quotations",
        QuotationSettings,
        company_code=read.string(table, "company_code", "quotations.company_code", ""),
        org_address=org_address,
    )


def _queue(read: TableReader, top: dict[str, Any]) -> QueueSettings:
    table = read.table(top.get("queue", {}), "queue", {"lease_seconds"})
    lease = read.integer(table, "lease_seconds", "queue.lease_seconds", 300, minimum=1)
    return read.build("queue", QueueSettings, lease_seconds=lease)


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


def example_config_text() -> str:
    """The annotated example ``taxbridge.toml`` shipped with the package."""
    return resources.files("taxbridge").joinpath("data", "taxbridge.toml").read_text("utf-8")


def example_config(store_path: str | None = None) -> BridgeConfig:
    """The shipped example config (the demo's), optionally on another SQLite file."""
    config = parse_config_text(example_config_text(), source="taxbridge.toml")
    if store_path is None:
        return config
    return evolve(config, store="sqlite", store_settings=sqlite_file(store_path))
