"""The backend contract: one method and ``close()``, plus optional capabilities as named protocols.

A stage needs only :class:`TaxBackend`. Every backend declares what more it can do in
``capabilities`` (a set of :class:`Capability`); the bridge asks :class:`Capabilities` for a typed
handle and never sniffs methods or classes, so a wrapper that declares exactly its inner
backend's capabilities behaves exactly like it.

A backend is plugged in through :data:`taxbridge.backends.BACKENDS`: its :class:`BackendPlugin`
reads its own ``[backend]`` keys and builds it.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, cast

from attrs import frozen

from taxbridge._toml import TableReader
from taxbridge.models import Address, DocumentType, EngineDocument, TaxRequest, TaxResult
from taxbridge.money import RoundingLevel
from taxbridge.rates import ProvinceRate, RateTable


class Capability(enum.Enum):
    """What a backend can do beyond calculating (declared in its ``capabilities``)."""

    POSTING = "posting"
    """Saves and commits invoices and credits. Without it the backend is an estimator (the
    offline table): every result is flagged blank and nothing is posted or queued."""
    DOCUMENTS = "documents"
    """Looks saved documents up by code (:class:`DocumentRegister`): posting once needs it."""
    TAX_CODES = "tax_codes"
    """Lists its active tax codes (:class:`TaxCodeCatalog`)."""
    ENTITY_USE_CODES = "entity_use_codes"
    """Lists the entity use codes (:class:`EntityUseCodeCatalog`)."""
    NEXUS = "nexus"
    """Knows each company's nexus regions (:class:`NexusCatalog`)."""
    RATES = "rates"
    """Hands out rates by ZIP for the offline table (:class:`RateDownload`)."""
    ADDRESSES = "addresses"
    """Validates addresses (:class:`AddressResolver`)."""
    PING = "ping"
    """Says whether it is reachable and accepts the credentials (:class:`Pingable`)."""
    LISTING = "listing"
    """Lists a company's saved documents by date (:class:`DocumentListing`): the engine
    reconciliation needs it."""
    CERTIFICATES = "certificates"
    """Its account keeps exemption certificates too: ``certificate_service()`` gives the
    certificate service on the same connection (``[certificates] service = "avatax"``)."""


class VoidReason(enum.Enum):
    """Why a document is voided (AvaTax VoidReasonCode)."""

    UNSPECIFIED = "Unspecified"
    POST_FAILED = "PostFailed"
    DOC_DELETED = "DocDeleted"
    DOC_VOIDED = "DocVoided"
    ADJUSTMENT_CANCELLED = "AdjustmentCancelled"


@frozen
class PingResult:
    """Whether the engine answers: its version and whether it knows our credentials."""

    version: str
    authenticated: bool
    authentication_type: str = ""
    where: str = ""
    """What was reached (a base URL), for messages."""


class TaxBackend(Protocol):
    """Calculates a tax request; saves and commits it when the request's type and flag say so.

    Raises :class:`~taxbridge.errors.BackendUnavailable` when it may work later,
    :class:`~taxbridge.errors.DocumentRejected` when the document needs a fix, and
    :class:`~taxbridge.errors.AlreadyCommitted` when a committed code is sent again. It never
    looks a code up on its own: deciding when to is the posting rule's job
    (:mod:`taxbridge.posting`).
    """

    name: str
    capabilities: frozenset[Capability]

    def calculate(self, request: TaxRequest) -> TaxResult:
        """Calculate (and for a saved type with ``commit``, post) the request."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


class DocumentRegister(Protocol):
    """A backend that keeps saved documents and can look them up, commit and void them."""

    books: str
    """Whose books the documents it posts go to — the engine, its environment and account, as
    one line (``avatax sandbox-rest.avatax.com account 1100000000``): a store remembers it with
    its first posting and refuses to post through other books."""

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


class DocumentListing(Protocol):
    """A backend that lists a company's saved documents dated in a range (AvaTax
    ``ListTransactionsByCompany``), page by page."""

    def list_documents(
        self, company_code: str, start: dt.date, end: dt.date
    ) -> Iterator[EngineDocument]:
        """Saved documents of every status dated from ``start`` to ``end``, streamed."""
        ...


class TaxCodeCatalog(Protocol):
    """A backend that can list its active tax codes (BNADS/AV-TC2)."""

    def active_tax_codes(self) -> frozenset[str]:
        """Every tax code the engine accepts today."""
        ...


class RateDownload(Protocol):
    """A backend that can hand out its rates by ZIP for the offline table."""

    def tax_rates_by_zip(self, regions: Iterable[str], as_of: dt.date | None = None) -> RateTable:
        """Rates of the given states in force on ``as_of`` (today), in the tax-rates-by-ZIP
        layout."""
        ...


class EntityUseCodeCatalog(Protocol):
    """A backend that can list the entity use codes (exemption reasons, BNADS/AV-EX1)."""

    def entity_use_codes(self) -> dict[str, str]:
        """Code -> description."""
        ...


class NexusCatalog(Protocol):
    """A backend that knows where each company is registered to collect (BNADS/AV-NX3)."""

    def company_nexus(self, company_code: str, as_of: dt.date | None = None) -> frozenset[str]:
        """The company's nexus regions in force on ``as_of`` (the engine's today when None)."""
        ...


class AddressResolver(Protocol):
    """A backend that validates addresses (TMSCRM/AV-DFN: BNO155XA tax validation)."""

    def resolve_address(self, address: Address) -> Address:
        """The resolved address; :class:`~taxbridge.errors.DocumentRejected` when invalid."""
        ...


class Pingable(Protocol):
    """A backend that can be asked whether it answers and accepts the credentials."""

    def ping(self) -> PingResult:
        """Reach the engine once; :class:`~taxbridge.errors.BackendError` when it cannot."""
        ...


class Capabilities:
    """Typed access to what a backend declared it can do: each property is the backend as that
    protocol, or None when the backend did not declare the capability."""

    def __init__(self, backend: TaxBackend):
        self._backend = backend
        self._declared = frozenset(backend.capabilities)

    def __contains__(self, capability: object) -> bool:
        return capability in self._declared

    def _as(self, capability: Capability) -> Any:
        return self._backend if capability in self._declared else None

    @property
    def posts(self) -> bool:
        """Whether invoices are posted at all (False: an estimator such as the offline table)."""
        return Capability.POSTING in self._declared

    @property
    def documents(self) -> DocumentRegister | None:
        """Look-ups by code."""
        return cast(DocumentRegister | None, self._as(Capability.DOCUMENTS))

    @property
    def tax_codes(self) -> TaxCodeCatalog | None:
        """The active tax-code list."""
        return cast(TaxCodeCatalog | None, self._as(Capability.TAX_CODES))

    @property
    def entity_use_codes(self) -> EntityUseCodeCatalog | None:
        """The entity use codes."""
        return cast(EntityUseCodeCatalog | None, self._as(Capability.ENTITY_USE_CODES))

    @property
    def nexus(self) -> NexusCatalog | None:
        """Companies' nexus regions."""
        return cast(NexusCatalog | None, self._as(Capability.NEXUS))

    @property
    def rates(self) -> RateDownload | None:
        """Rates by ZIP."""
        return cast(RateDownload | None, self._as(Capability.RATES))

    @property
    def addresses(self) -> AddressResolver | None:
        """Address validation."""
        return cast(AddressResolver | None, self._as(Capability.ADDRESSES))

    @property
    def listing(self) -> DocumentListing | None:
        """Lists documents by date."""
        return cast(DocumentListing | None, self._as(Capability.LISTING))

    @property
    def ping(self) -> Pingable | None:
        """Reachability."""
        return cast(Pingable | None, self._as(Capability.PING))


# ---------------------------------------------------------------------------------------------
# Plugging a backend in


@frozen
class BuildContext:
    """What building a backend may need besides its own settings."""

    rounding: RoundingLevel = RoundingLevel.DOCUMENT
    provinces: tuple[ProvinceRate, ...] = ()
    """Default Canadian rates by province (BNADS/AV-TC1)."""
    nexus_regions: frozenset[str] = frozenset()
    """Every configured nexus region."""
    stored_rates: Callable[[], RateTable] = RateTable
    """The store's offline table (opening the store when first asked)."""
    register_path: str | None = None
    """Where an embedded engine keeps the documents it saves when its settings do not say: a
    file beside the store's (None: the store has no file, so in memory)."""


class BackendPlugin(Protocol):
    """How a backend kind is read from ``[backend]`` and built."""

    kind: str

    def settings(self, table: Mapping[str, Any], read: TableReader) -> Any:
        """This backend's settings from the ``[backend]`` keys other than ``kind`` and
        ``rounding``; a mistake raises ConfigError naming ``backend.<key>``."""
        ...

    def check(self, settings: Any) -> Any:
        """Settings given in code: the defaults for None, else the settings checked; a
        mistake raises ConfigError."""
        ...

    def build(self, settings: Any, context: BuildContext) -> TaxBackend:
        """The backend itself."""
        ...
