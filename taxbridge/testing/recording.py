"""A recording backend for tests and demos: wraps a real backend, records calls, fails on demand.

Use it in your own tests to assert what taxbridge sent, and to rehearse outages::

    engine = RecordingBackend(LocalEngine())
    engine.outage = True            # every call raises BackendUnavailable
    engine.lose_responses = 1       # the next call reaches the engine, then its answer is lost

It is transparent: it declares exactly the capabilities of the backend it wraps, so a bridge
over it behaves as over the bare backend. A capability the inner backend lacks is refused with
:class:`TypeError` when called directly.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from taxbridge.backends.base import (
    Capabilities,
    Capability,
    PingResult,
    TaxBackend,
    VoidReason,
)
from taxbridge.errors import BackendUnavailable
from taxbridge.models import Address, DocumentType, EngineDocument, TaxRequest, TaxResult
from taxbridge.rates import RateTable


class RecordingBackend:
    """Delegates to ``inner``; records every request and lookup; simulates outages."""

    def __init__(self, inner: TaxBackend, *, name: str | None = None):
        self.inner = inner
        self.name = name or inner.name
        self.capabilities: frozenset[Capability] = frozenset(inner.capabilities)
        self._inner = Capabilities(inner)
        register = self._inner.documents
        self.books = register.books if register is not None else ""
        self.requests: list[TaxRequest] = []
        """Every request that reached :meth:`calculate`, in order (also those that failed)."""
        self.lookups: list[str] = []
        """Codes looked up with :meth:`get_document`."""
        self.outage = False
        """While True, every call raises :class:`BackendUnavailable` without reaching the engine."""
        self.lose_responses = 0
        """The next N calls reach the engine, which acts on them, and then time out."""

    def _check_outage(self, code: str) -> None:
        if self.outage:
            raise BackendUnavailable(
                "connection refused (simulated outage)", backend=self.name, code=code, sent=False
            )

    def _offered(self, found: Any, capability: Capability) -> Any:
        if found is None:
            raise TypeError(f"{self.inner.name} does not offer {capability.value}")
        return found

    def calculate(self, request: TaxRequest) -> TaxResult:
        """Record, then delegate unless an outage or a lost response is simulated."""
        self.requests.append(request)
        self._check_outage(request.code)
        result = self.inner.calculate(request)
        if self.lose_responses > 0:
            self.lose_responses -= 1
            raise BackendUnavailable(
                "read timed out after the request was sent (simulated)",
                backend=self.name,
                code=request.code,
            )
        return result

    @property
    def commit_counts(self) -> Counter[str]:
        """Commits per code at the inner engine (empty when it does not count them)."""
        counts = getattr(self.inner, "commit_counts", None)
        return counts if isinstance(counts, Counter) else Counter()

    @property
    def calls(self) -> int:
        """How many requests reached :meth:`calculate`."""
        return len(self.requests)

    def get_document(
        self, company_code: str, code: str, document_type: DocumentType
    ) -> TaxResult | None:
        """Record the lookup and delegate it."""
        inner = self._offered(self._inner.documents, Capability.DOCUMENTS)
        self.lookups.append(code)
        self._check_outage(code)
        found: TaxResult | None = inner.get_document(company_code, code, document_type)
        return found

    def commit_document(
        self, company_code: str, code: str, document_type: DocumentType
    ) -> TaxResult:
        """Delegate the commit."""
        inner = self._offered(self._inner.documents, Capability.DOCUMENTS)
        self._check_outage(code)
        committed: TaxResult = inner.commit_document(company_code, code, document_type)
        return committed

    def void_document(
        self,
        company_code: str,
        code: str,
        document_type: DocumentType,
        reason: VoidReason,
    ) -> TaxResult:
        """Delegate the void."""
        inner = self._offered(self._inner.documents, Capability.DOCUMENTS)
        self._check_outage(code)
        voided: TaxResult = inner.void_document(company_code, code, document_type, reason)
        return voided

    def list_documents(
        self, company_code: str, start: dt.date, end: dt.date
    ) -> Iterator[EngineDocument]:
        """Delegate the listing."""
        inner = self._offered(self._inner.listing, Capability.LISTING)
        self._check_outage("")
        listed: Iterator[EngineDocument] = inner.list_documents(company_code, start, end)
        return listed

    def active_tax_codes(self) -> frozenset[str]:
        """Delegate."""
        inner = self._offered(self._inner.tax_codes, Capability.TAX_CODES)
        self._check_outage("")
        codes: frozenset[str] = inner.active_tax_codes()
        return codes

    def tax_rates_by_zip(self, regions: Iterable[str], as_of: dt.date | None = None) -> RateTable:
        """Delegate."""
        inner = self._offered(self._inner.rates, Capability.RATES)
        self._check_outage("")
        rates: RateTable = inner.tax_rates_by_zip(regions, as_of)
        return rates

    def entity_use_codes(self) -> dict[str, str]:
        """Delegate."""
        inner = self._offered(self._inner.entity_use_codes, Capability.ENTITY_USE_CODES)
        self._check_outage("")
        codes: dict[str, str] = inner.entity_use_codes()
        return codes

    def company_nexus(self, company_code: str, as_of: dt.date | None = None) -> frozenset[str]:
        """Delegate."""
        inner = self._offered(self._inner.nexus, Capability.NEXUS)
        self._check_outage("")
        regions: frozenset[str] = inner.company_nexus(company_code, as_of)
        return regions

    def resolve_address(self, address: Address) -> Address:
        """Delegate."""
        inner = self._offered(self._inner.addresses, Capability.ADDRESSES)
        self._check_outage("")
        resolved: Address = inner.resolve_address(address)
        return resolved

    def ping(self) -> PingResult:
        """Delegate."""
        inner = self._offered(self._inner.ping, Capability.PING)
        self._check_outage("")
        result: PingResult = inner.ping()
        return result

    def close(self) -> None:
        """Close the inner backend."""
        self.inner.close()
