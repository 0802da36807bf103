"""The backend contract: one method and ``close()``, plus optional capabilities as named protocols.

A stage needs only :class:`TaxBackend`. Posting safely also uses :class:`DocumentRegister` (look a
code up before posting it again); the end-of-day refresh uses :class:`TaxCodeCatalog` and
:class:`RateDownload`. Address validation uses :class:`AddressResolver`; the refresh also reads
:class:`EntityUseCodeCatalog` and :class:`NexusCatalog`. A backend implements the ones it can; the
bridge checks with ``isinstance``.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from taxbridge.models import Address, DocumentType, TaxRequest, TaxResult
from taxbridge.rates import RateTable


class VoidReason(enum.Enum):
    """Why a document is voided (AvaTax VoidReasonCode)."""

    UNSPECIFIED = "Unspecified"
    POST_FAILED = "PostFailed"
    DOC_DELETED = "DocDeleted"
    DOC_VOIDED = "DocVoided"
    ADJUSTMENT_CANCELLED = "AdjustmentCancelled"


@runtime_checkable
class TaxBackend(Protocol):
    """Calculates a tax request; saves and commits it when the request's type and flag say so.

    Raises :class:`~taxbridge.errors.BackendUnavailable` when it may work later,
    :class:`~taxbridge.errors.DocumentRejected` when the document needs a fix, and
    :class:`~taxbridge.errors.AlreadyCommitted` when a committed code is sent again.
    """

    name: str

    def calculate(self, request: TaxRequest) -> TaxResult:
        """Calculate (and for a saved type with ``commit``, post) the request."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


@runtime_checkable
class DocumentRegister(Protocol):
    """A backend that keeps saved documents and can look them up, commit and void them."""

    def get_document(
        self, company_code: str, code: str, document_type: DocumentType
    ) -> TaxResult | None:
        """The saved document with this code, or None when the engine has none."""
        ...

    def commit_document(
        self, company_code: str, code: str, document_type: DocumentType
    ) -> TaxResult:
        """Commit a saved, uncommitted document."""
        ...

    def void_document(
        self,
        company_code: str,
        code: str,
        document_type: DocumentType,
        reason: VoidReason,
    ) -> TaxResult:
        """Void (cancel) a saved or committed document."""
        ...


@runtime_checkable
class TaxCodeCatalog(Protocol):
    """A backend that can list its active tax codes (BNADS/AV-TC2)."""

    def active_tax_codes(self) -> frozenset[str]:
        """Every tax code the engine accepts today."""
        ...


@runtime_checkable
class RateDownload(Protocol):
    """A backend that can hand out its rates by ZIP for the offline table."""

    def tax_rates_by_zip(self, regions: Iterable[str], as_of: dt.date | None = None) -> RateTable:
        """Rates of the given states in force on ``as_of`` (today), in the tax-rates-by-ZIP
        layout."""
        ...


@runtime_checkable
class EntityUseCodeCatalog(Protocol):
    """A backend that can list the entity use codes (exemption reasons, BNADS/AV-EX1)."""

    def entity_use_codes(self) -> dict[str, str]:
        """Code -> description."""
        ...


@runtime_checkable
class NexusCatalog(Protocol):
    """A backend that knows where each company is registered to collect (BNADS/AV-NX3)."""

    def company_nexus(self, company_code: str) -> frozenset[str]:
        """The company's nexus regions."""
        ...


@runtime_checkable
class AddressResolver(Protocol):
    """A backend that validates addresses (TMSCRM/AV-DFN: BNO155XA tax validation)."""

    def resolve_address(self, address: Address) -> Address:
        """The resolved address; :class:`~taxbridge.errors.DocumentRejected` when invalid."""
        ...
