"""The embedded local engine: deterministic tax from shipped tables, with a real document register.

It behaves like a tax engine in the ways posting depends on: estimates (SalesOrder) are never
saved; invoices are saved, committed, voided and looked up by code; and sending a committed code
again is refused with :class:`~taxbridge.errors.AlreadyCommitted`, as AvaTax answers
``400 GetTaxError "DocStatus is invalid for this operation"``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from taxbridge._toml import TableReader
from taxbridge.backends._calculate import calculate, rule_taxes
from taxbridge.backends._register import FileRegister, MemoryRegister, Register, with_status
from taxbridge.backends.base import BuildContext, Capability, VoidReason
from taxbridge.errors import AlreadyCommitted, DocumentRejected
from taxbridge.models import (
    Address,
    DocumentStatus,
    DocumentType,
    EngineDocument,
    TaxLine,
    TaxRequest,
    TaxResult,
)
from taxbridge.money import RoundingLevel
from taxbridge.rates import (
    RateRow,
    RateTable,
    TaxCodeTable,
    ZipRate,
    shipped_rates,
    shipped_tax_codes,
)

DEFAULT_TAX_CODE = "P0000000"
"""Tangible personal property: the engine's fall-back when a line names no tax code."""

ENTITY_USE_CODES: dict[str, str] = {
    "A": "Federal government",
    "B": "State government",
    "C": "Tribe / status Indian / Indian band",
    "D": "Foreign diplomat",
    "E": "Charitable organization",
    "F": "Religious organization",
    "G": "Resale",
    "H": "Agricultural production",
    "I": "Industrial production / manufacturer",
    "J": "Direct pay permit",
    "K": "Direct mail",
    "L": "Other",
    "M": "Educational organization",
    "N": "Local government",
    "P": "Commercial aquaculture",
    "Q": "Commercial fishery",
    "R": "Non-resident",
}
"""Entity use codes (exemption reasons, BNADS/AV-EX1) the local engine knows."""


class LocalEngine:
    """Tax engine that needs no network: rates by ZIP, a tax-code table and a document register."""

    capabilities = frozenset(
        {
            Capability.POSTING,
            Capability.DOCUMENTS,
            Capability.TAX_CODES,
            Capability.ENTITY_USE_CODES,
            Capability.NEXUS,
            Capability.RATES,
            Capability.ADDRESSES,
            Capability.LISTING,
        }
    )

    def __init__(
        self,
        rates: RateTable | None = None,
        tax_codes: TaxCodeTable | None = None,
        *,
        rounding: RoundingLevel = RoundingLevel.DOCUMENT,
        nexus: Mapping[str, Iterable[str]] | None = None,
        name: str = "local",
        register: Register | None = None,
    ):
        self.name = name
        self.books = "local engine"
        """The local engine's books are its register, which lives beside the store."""
        self.rates = rates if rates is not None else shipped_rates()
        self.tax_codes = tax_codes if tax_codes is not None else shipped_tax_codes()
        self.rounding = rounding
        self._nexus = {company: frozenset(regions) for company, regions in (nexus or {}).items()}
        self._register: Register = register if register is not None else MemoryRegister()
        self._lock = threading.Lock()
        self.commit_counts: Counter[str] = Counter()
        """How many times each code was committed: a test of exactly-once posting reads it."""

    # -- TaxBackend ----------------------------------------------------------------------------

    def calculate(self, request: TaxRequest) -> TaxResult:
        """Calculate; save SalesInvoice/ReturnInvoice, and commit them when asked."""
        if request.entity_use_code and request.entity_use_code not in ENTITY_USE_CODES:
            raise self._rejected(
                request,
                f"entity use code {request.entity_use_code!r} is unknown",
                "entityUseCode",
            )
        for line in request.lines:
            if line.entity_use_code and line.entity_use_code not in ENTITY_USE_CODES:
                raise self._rejected(
                    request,
                    f"entity use code {line.entity_use_code!r} is unknown",
                    f"Lines[{line.number}].entityUseCode",
                    line=line.number,
                )

        # Lines share a handful of addresses and tax codes: each rate row and each code's
        # taxability there is found once per request (keyed by the objects the request holds).
        rows: dict[int, ZipRate] = {}
        taxability: dict[tuple[str, int], bool] = {}
        exempt = request.exempt

        def rate_for(line: TaxLine) -> ZipRate:
            address = line.ship_to or request.ship_to
            row = rows.get(id(address))
            if row is None:
                row = rows[id(address)] = self._rate(request, address, line.number)
            return row

        def is_taxable(line: TaxLine, rate: RateRow) -> bool:
            if exempt or line.exempt:
                return False
            key = (line.tax_code, id(rate))
            taxable = taxability.get(key)
            if taxable is None:
                # Like AvaTax, a code the engine does not know falls back to the default code;
                # the pending check (BNO155BT) is what flags it as obsolete.
                rule = self.tax_codes.get(line.tax_code) or self.tax_codes.get(DEFAULT_TAX_CODE)
                taxable = taxability[key] = rule_taxes(rule, rate)
            return taxable

        saved = request.document_type.is_saved
        status = (
            DocumentStatus.COMMITTED
            if saved and request.commit
            else DocumentStatus.SAVED
            if saved
            else DocumentStatus.TEMPORARY
        )
        result = calculate(
            request,
            rate_for=rate_for,
            is_taxable=is_taxable,
            rounding=self.rounding,
            status=status,
            backend=self.name,
        )
        if not saved:
            return result
        key = (request.company_code, request.code, request.document_type)
        self._register.put(key, _compact(result), request.customer_code, unless=_not_committed)
        if status is DocumentStatus.COMMITTED:
            with self._lock:
                self.commit_counts[request.code] += 1
        return result

    def close(self) -> None:
        """Close the register's file, if it has one."""
        close = getattr(self._register, "close", None)
        if close is not None:
            close()

    # -- DocumentRegister ----------------------------------------------------------------------

    def get_document(
        self, company_code: str, code: str, document_type: DocumentType
    ) -> TaxResult | None:
        """The saved document, or None."""
        return self._register.get((company_code, code, document_type))

    def commit_document(
        self, company_code: str, code: str, document_type: DocumentType
    ) -> TaxResult:
        """Commit a saved document; committing a committed one is refused."""
        key = (company_code, code, document_type)
        committed = with_status(self._require(key), DocumentStatus.COMMITTED)
        self._register.put(key, committed, "", unless=_saved_only)
        with self._lock:
            self.commit_counts[code] += 1
        return committed

    def void_document(
        self,
        company_code: str,
        code: str,
        document_type: DocumentType,
        reason: VoidReason,
    ) -> TaxResult:
        """Cancel a saved or committed document; its code may then be used again."""
        key = (company_code, code, document_type)
        voided = with_status(self._require(key), DocumentStatus.CANCELLED)
        self._register.put(key, voided, "", unless=_not_cancelled)
        return voided

    def list_documents(
        self, company_code: str, start: dt.date, end: dt.date
    ) -> Iterator[EngineDocument]:
        """Saved documents of a company dated from ``start`` to ``end``."""
        return self._register.listed(company_code, start, end)

    # -- catalogues ----------------------------------------------------------------------------

    def active_tax_codes(self) -> frozenset[str]:
        """The codes of the shipped tax-code table."""
        return self.tax_codes.codes

    def tax_rates_by_zip(self, regions: Iterable[str], as_of: dt.date | None = None) -> RateTable:
        """The shipped rates of ``regions`` (one table, whatever the date)."""
        return self.rates.only(regions)

    def entity_use_codes(self) -> dict[str, str]:
        """Entity use codes (exemption reasons, BNADS/AV-EX1) and their descriptions."""
        return dict(ENTITY_USE_CODES)

    def company_nexus(self, company_code: str, as_of: dt.date | None = None) -> frozenset[str]:
        """Regions where ``company_code`` is registered: as set, else every taxing state (the
        local engine's nexus has no dates, so ``as_of`` changes nothing)."""
        with self._lock:
            found = self._nexus.get(company_code)
        if found is not None:
            return found
        return frozenset(rate.state for rate in self.rates if rate.total_rate > 0)

    def set_nexus(self, company_code: str, regions: Iterable[str]) -> None:
        """Register a company's nexus regions, as an administrator does at the engine."""
        with self._lock:
            self._nexus[company_code] = frozenset(regions)

    def resolve_address(self, address: Address) -> Address:
        """Check a US address against the ZIP table (unknown ZIP, ZIP not in the state: refused).

        Addresses outside the US cannot be checked here and are returned as they are.
        """
        if address.country == "US":
            self._rate(None, address, "")
        return address

    # -- helpers -------------------------------------------------------------------------------

    def _require(self, key: tuple[str, str, DocumentType]) -> TaxResult:
        existing = self._register.get(key)
        if existing is None:
            raise DocumentRejected(
                f"document {key[1]!r} ({key[2].value}) was not found",
                backend=self.name,
                code=key[1],
                status=404,
                error_code="EntityNotFoundError",
            )
        return existing

    def _rate(self, request: TaxRequest | None, address: Address, line: str) -> ZipRate:
        rate = self.rates.find(address.zip5, address.region) if address.country == "US" else None
        if rate is not None:
            return rate
        where = "Addresses" if not line else f"Lines[{line}].Addresses"
        if address.country != "US":
            raise self._rejected(
                request,
                f"country {address.country!r} is not calculated by the local engine",
                where,
                line=line or None,
            )
        if self.rates.has_zip(address.zip5):
            message = f"Zip {address.zip5} is not valid for the state {address.region}"
        else:
            message = f"Zip {address.zip5} ({address.region}) has no tax jurisdiction"
        raise self._rejected(request, message, where, line=line or None)

    def _rejected(
        self,
        request: TaxRequest | None,
        message: str,
        refers_to: str,
        *,
        line: str | None = None,
    ) -> DocumentRejected:
        return DocumentRejected(
            message,
            backend=self.name,
            code=request.code if request else "",
            status=400,
            error_code="GetTaxError",
            refers_to=refers_to,
            line=line,
        )


def _not_committed(existing: TaxResult) -> None:
    if existing.status is DocumentStatus.COMMITTED:
        raise AlreadyCommitted(
            "DocStatus is invalid for this operation.",
            backend="local",
            code=existing.code,
            status=400,
            error_code="GetTaxError",
            refers_to="DocStatus",
        )


def _saved_only(existing: TaxResult) -> None:
    if existing.status is not DocumentStatus.SAVED:
        raise AlreadyCommitted(
            f"document is {existing.status.value}, not Saved",
            backend="local",
            code=existing.code,
            status=400,
            error_code="InvalidDocumentStatus",
        )


def _not_cancelled(existing: TaxResult) -> None:
    if existing.status is DocumentStatus.CANCELLED:
        raise DocumentRejected(
            "The transaction is already cancelled.",
            backend="local",
            code=existing.code,
            status=400,
            error_code="TransactionAlreadyCancelled",
        )


def _compact(result: TaxResult) -> TaxResult:
    """The result as the register keeps it: lines without their per-jurisdiction details (the
    document summary stays), so a long-running engine holds a few objects per line, not five."""
    if not any(line.details for line in result.lines):
        return result
    return attrs.evolve(
        result, lines=tuple(attrs.evolve(line, details=()) for line in result.lines)
    )


@frozen
class LocalSettings:
    """``[backend]`` of the local engine: where it keeps the documents it saves (a file path;
    ``:memory:`` for none that outlives the process). Unset: beside the store's file."""

    register: str = ":memory:"

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.register, str) or not self.register.strip():
            from taxbridge.errors import ConfigError

            raise ConfigError(
                f"{self.register!r} is not a file path or :memory:",
                key="LocalSettings.register",
                value=self.register,
                field="register",
            )


class LocalPlugin:
    """The ``local`` backend kind: the embedded engine; ``[backend] register`` optional."""

    kind = "local"

    def settings(self, table: Mapping[str, Any], read: TableReader) -> LocalSettings | None:
        """Read ``register`` (a relative path is taken from the config file's folder)."""
        data = read.table(dict(table), "backend", {"kind", "rounding", "register"})
        if "register" not in data:
            return None
        path = read.string(data, "register", "backend.register")
        if read.base is not None and path != ":memory:" and not Path(path).is_absolute():
            path = str(read.base / path)
        return read.build("backend", LocalSettings, register=path)

    def check(self, settings: Any) -> LocalSettings | None:
        """None (the register beside the store) or LocalSettings."""
        if settings is not None and not isinstance(settings, LocalSettings):
            from taxbridge.errors import ConfigError

            raise ConfigError(
                f"{settings!r} is not LocalSettings", key="backend_settings", value=settings
            )
        return settings

    def build(self, settings: Any, context: BuildContext) -> LocalEngine:
        """The engine over the shipped tables, rounding as configured, its register where the
        settings say, else beside the store (in memory when the store has no file)."""
        checked = self.check(settings)
        path = checked.register if checked is not None else context.register_path
        return LocalEngine(rounding=context.rounding, register=register_at(path))


def register_at(path: str | None) -> Register:
    """The local engine's register in the SQLite file ``path`` (kept across runs), or in memory
    (``None`` or ``:memory:``)."""
    return FileRegister(path) if path is not None and path != ":memory:" else MemoryRegister()


def _no_settings(kind: str, settings: Any) -> None:
    if settings is not None:
        from taxbridge.errors import ConfigError

        raise ConfigError(
            f"{settings!r}: the {kind} backend takes no settings", key="backend_settings"
        )


PLUGIN = LocalPlugin()
