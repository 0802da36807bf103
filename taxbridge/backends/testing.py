"""A recording backend for tests and demos: wraps a real backend, records calls, fails on demand.

Use it in your own tests to assert what taxbridge sent, and to rehearse outages::

    engine = RecordingBackend(LocalEngine())
    engine.outage = True            # every call raises BackendUnavailable
    engine.lose_responses = 1       # the next call reaches the engine, then its answer is lost
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable

from taxbridge.backends.base import (
    AddressResolver,
    DocumentRegister,
    EntityUseCodeCatalog,
    NexusCatalog,
    RateDownload,
    TaxBackend,
    TaxCodeCatalog,
    VoidReason,
)
from taxbridge.errors import BackendUnavailable
from taxbridge.models import Address, DocumentType, TaxRequest, TaxResult
from taxbridge.rates import RateTable


class RecordingBackend:
    """Delegates to ``inner``; records every request and lookup; simulates outages."""

    def __init__(self, inner: TaxBackend, *, name: str | None = None):
        self.inner = inner
        self.name = name or inner.name
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
        """Delegate the lookup; None when the inner backend keeps no documents."""
        self.lookups.append(code)
        self._check_outage(code)
        if isinstance(self.inner, DocumentRegister):
            return self.inner.get_document(company_code, code, document_type)
        return None

    def commit_document(
        self, company_code: str, code: str, document_type: DocumentType
    ) -> TaxResult:
        """Delegate the commit."""
        self._check_outage(code)
        if not isinstance(self.inner, DocumentRegister):
            raise TypeError(f"{self.inner.name} keeps no documents")
        return self.inner.commit_document(company_code, code, document_type)

    def void_document(
        self,
        company_code: str,
        code: str,
        document_type: DocumentType,
        reason: VoidReason,
    ) -> TaxResult:
        """Delegate the void."""
        self._check_outage(code)
        if not isinstance(self.inner, DocumentRegister):
            raise TypeError(f"{self.inner.name} keeps no documents")
        return self.inner.void_document(company_code, code, document_type, reason)

    def active_tax_codes(self) -> frozenset[str]:
        """Delegate; an inner backend without a catalogue has no codes."""
        self._check_outage("")
        if isinstance(self.inner, TaxCodeCatalog):
            return self.inner.active_tax_codes()
        return frozenset()

    def tax_rates_by_zip(self, regions: Iterable[str], as_of: dt.date | None = None) -> RateTable:
        """Delegate; an inner backend without rates gives an empty table."""
        self._check_outage("")
        if isinstance(self.inner, RateDownload):
            return self.inner.tax_rates_by_zip(regions, as_of)
        return RateTable()

    def entity_use_codes(self) -> dict[str, str]:
        """Delegate; an inner backend without the catalogue has none."""
        self._check_outage("")
        if isinstance(self.inner, EntityUseCodeCatalog):
            return self.inner.entity_use_codes()
        return {}

    def company_nexus(self, company_code: str) -> frozenset[str]:
        """Delegate; an inner backend without nexus data has none."""
        self._check_outage("")
        if isinstance(self.inner, NexusCatalog):
            return self.inner.company_nexus(company_code)
        return frozenset()

    def resolve_address(self, address: Address) -> Address:
        """Delegate; an inner backend that cannot resolve accepts the address as it is."""
        self._check_outage("")
        if isinstance(self.inner, AddressResolver):
            return self.inner.resolve_address(address)
        return address

    def close(self) -> None:
        """Close the inner backend."""
        self.inner.close()
