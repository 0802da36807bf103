"""The store contract, in the parts the bridge really uses: documents and their log, the
unposted queue with its leases, reference data, and the exemption database.

:class:`Store` is all four plus ``close()``; SQLite is the embedded implementation, and a store
for several servers plugs in through :data:`taxbridge.store.STORES`. Writes that belong together
(a document, its event, its queue change, the orders it invoices, what a credit takes off its
invoice) are one call, and so one transaction. The store keeps and reports facts; what they mean
for posting (may an attempt have landed?) is decided in :mod:`taxbridge.posting`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from attrs import frozen

from taxbridge._toml import TableReader
from taxbridge.errors import ConcurrentChange, InvalidFieldError, LeaseLost
from taxbridge.flags import FinalTaxFlag
from taxbridge.models import (
    Certificate,
    CertificateRequest,
    CreditedLine,
    CustomerCard,
    CustomerNote,
    DateRange,
    DocumentEvent,
    DocumentKind,
    Exemption,
    Journal,
    JurisdictionLine,
    Stage,
    TaxDocument,
    WorkfileLine,
)
from taxbridge.rates import RateTable


@frozen
class QueueEntry:
    """A U document waiting to be reposted. Made only by :class:`taxbridge.queue.RetryPolicy`."""

    code: str
    attempts: int
    next_attempt_at: dt.datetime
    last_error_code: str
    last_error_message: str
    retryable: bool
    """False when the engine rejected the document: it needs a fix before it can post."""
    created_at: dt.datetime
    updated_at: dt.datetime
    claimed_by: str | None = None
    """The repost worker holding this entry, until ``lease_expires_at``."""
    lease_expires_at: dt.datetime | None = None
    may_have_landed: bool = True
    """False only while every attempt so far certainly never reached the engine (connection
    refused, circuit open)."""
    taken_over_from: str | None = None
    """Set by a claim that took the entry from another worker whose lease had run out (that
    worker's attempt may be lost mid-flight); not stored."""

    @property
    def needs_fix(self) -> bool:
        """The engine rejected the document: reposted only after a change or when asked."""
        return not self.retryable


class SettledEntry(NamedTuple):
    """Queue history: a U document that left the queue, how (R or M) and when."""

    code: str
    outcome: str
    """The flag it settled with: ``R`` or ``M``."""
    settled_at: dt.datetime


@frozen
class DocumentHead:
    """The few columns a stage needs to decide its path, without loading lines or request."""

    code: str
    kind: DocumentKind
    stage: Stage
    flag: FinalTaxFlag
    invoice_code: str | None


@frozen
class PostedHead:
    """An invoice or credit that reached posting (Y, R, M, U), voided or not, without lines:
    what the engine reconciliation compares with the engine's list."""

    code: str
    kind: DocumentKind
    flag: FinalTaxFlag
    company_code: str
    erp_company: str
    document_date: dt.date
    total_tax: Decimal
    voided_at: dt.datetime | None


@frozen
class Expected:
    """What a write expects of the stored document, checked inside its transaction: its flag
    (None: no document yet) and the invoice it is linked to (None: none)."""

    flag: FinalTaxFlag | None
    invoice_code: str | None = None

    def describe(self) -> str:
        """The state as a person reads it: ``U``, ``N invoiced as A-1``, ``no document``."""
        if self.flag is None:
            return "no document"
        linked = f" invoiced as {self.invoice_code}" if self.invoice_code else ""
        return f"{self.flag}{linked}"


@frozen
class InvoiceLink:
    """Order documents invoiced under one invoice code: stamped in the invoice's transaction."""

    invoice_code: str
    order_codes: tuple[str, ...]
    at: dt.datetime


@frozen
class CreditAllocation:
    """The invoice lines a credit takes amount and tax off: kept with the credit so the next
    credit of the same invoice line works from what is left."""

    credit_code: str
    invoice_code: str
    lines: tuple[CreditedLine, ...]


@frozen
class Write:
    """One stage's write as a value (what :meth:`DocumentStore.save` takes), so that several
    go to the store in one call: documents with their lines, breakdown and events, the queue
    change, the orders invoiced and what a credit takes, each all or nothing."""

    documents: tuple[TaxDocument, ...]
    events: tuple[DocumentEvent, ...]
    enqueue: QueueEntry | None = None
    dequeue: str | None = None
    invoiced: InvoiceLink | None = None
    holder: str | None = None
    """The repost worker that must still hold the queue entry changed."""
    credits: CreditAllocation | None = None
    expected: Expected | None = None
    """What each document must still be when written."""

    @property
    def keys(self) -> frozenset[str]:
        """The codes whose writers wait for one another: documents, orders and queue entry."""
        keys = {doc.code for doc in self.documents}
        keys.update(self.invoiced.order_codes if self.invoiced else ())
        queued = self.enqueue.code if self.enqueue is not None else None
        keys.update(code for code in (self.dequeue, queued) if code)
        return frozenset(keys)

    @property
    def held(self) -> tuple[str, str] | None:
        """(code, holder) of the queue entry the write's worker must still hold, or None."""
        if self.holder is None:
            return None
        return str(self.enqueue.code if self.enqueue is not None else self.dequeue), self.holder

    @property
    def checked(self) -> tuple[str, ...]:
        """The documents that must still be as ``expected``."""
        return tuple(doc.code for doc in self.documents) if self.expected is not None else ()

    @property
    def settlement(self) -> tuple[str, str]:
        """The flag the ``dequeue`` entry settles with (its document's) and when (its event's
        time, else its document's last change, ISO), as the queue history keeps them: both from
        the caller's clock, never the store's."""
        document = next((d for d in self.documents if d.code == self.dequeue), None)
        at = next((e.at for e in self.events if e.code == self.dequeue), None)
        if at is None and document is not None:
            at = document.updated_at
        if at is None:
            raise InvalidFieldError("Write", "dequeue", self.dequeue, "has no event or document")
        return (document.flag.value if document is not None else ""), at.isoformat()


COPY_KEY = "unfinished_copy"
"""The store's meta key marking it an unfinished copy (``taxbridge store migrate`` under way or
interrupted): every open refuses such a store until the copy's final check passes."""

BOOKS_KEY = "engine_books"
"""The store's meta key for the books (engine, environment, account) its documents were posted
through: written with the first posting, copied with the store."""

Refusal = LeaseLost | ConcurrentChange
"""Why a store refused one write of several: its worker's lease was lost, or a document is
no longer as the stage read it."""


@frozen
class ReferenceData:
    """What the end-of-day refresh brings from the engine; None parts are left as they are."""

    as_of: dt.date | None = None
    """The business date refreshed; None: a partial load that is not a refresh."""
    tax_codes: frozenset[str] | None = None
    entity_use_codes: Mapping[str, str] | None = None
    nexus: Mapping[str, frozenset[str]] | None = None
    """Company code -> regions."""
    rates: RateTable | None = None


class DocumentStore(Protocol):
    """Tax documents with their lines, breakdown and request, and each document's log."""

    def save(
        self,
        documents: Sequence[TaxDocument],
        events: Sequence[DocumentEvent],
        *,
        enqueue: QueueEntry | None = None,
        dequeue: str | None = None,
        invoiced: InvoiceLink | None = None,
        holder: str | None = None,
        credits: CreditAllocation | None = None,
        expected: Expected | None = None,
    ) -> None:
        """Write documents (with lines and breakdown), events and the queue change atomically.

        ``dequeue`` settles the entry (kept as history until purged). With ``holder``, the entry
        must still be claimed by that repost worker, else ``LeaseLost`` and nothing is written.
        With ``expected``, each document must still be as the stage read it, else
        ``ConcurrentChange`` and nothing is written.
        With ``invoiced``, the stored order documents it names get the invoice code, stage
        ``invoice`` and a log entry, unless they already carry that code. With ``credits``, what
        the credit takes off its invoice's lines replaces what it took before.
        """
        ...

    def save_all(self, writes: Sequence[Write]) -> list[Refusal | None]:
        """Make several :class:`Write` in one transaction, each all or nothing, in order: a
        write refused (lease lost, concurrent change) is skipped and its refusal returned in
        its place, the others are made; any other failure raises and makes none. A repost run
        records the answers that came in together with one call."""
        ...

    def head(self, code: str) -> DocumentHead | None:
        """Code, kind, stage, flag and invoice code of a stored document, or None."""
        ...

    def get(self, code: str) -> TaxDocument | None:
        """The stored document with this code, or None."""
        ...

    def document_codes(self) -> list[str]:
        """Every stored document's code, in code order (a copy reads the documents of a batch
        of them at a time)."""
        ...

    def get_many(self, codes: Sequence[str]) -> dict[str, TaxDocument]:
        """The stored documents of ``codes`` by code, read as one snapshot; a code not stored
        is left out. A repost run reads a claimed batch with it: one read, not one per code."""
        ...

    def documents(
        self,
        *,
        flags: Sequence[FinalTaxFlag] | None = None,
        kind: DocumentKind | None = None,
    ) -> list[TaxDocument]:
        """Stored documents in code order, optionally only those with one of ``flags`` or of
        one ``kind``."""
        ...

    def events(self, code: str) -> list[DocumentEvent]:
        """A document's log, oldest first."""
        ...

    def credited(
        self, invoice_code: str, *, excluding: str = ""
    ) -> dict[str, tuple[Decimal, Decimal]]:
        """Invoice line -> (amount, tax) credited so far, leaving out credit ``excluding``."""
        ...

    def allocation(self, credit_code: str) -> CreditAllocation | None:
        """What a credit takes off its invoice's lines, or None."""
        ...

    def credits_of(self, invoice_code: str) -> list[str]:
        """The credits that take something off the invoice's lines (not voided), by code."""
        ...


class QueueStore(Protocol):
    """The unposted queue: open entries, leases for repost workers, settled history."""

    def queue(
        self, *, due_at: dt.datetime | None = None, needs_fix: bool | None = None
    ) -> list[QueueEntry]:
        """Open queue entries by next attempt time; with ``due_at``, only those due by then;
        with ``needs_fix``, only those that do or do not need a fix."""
        ...

    def queue_entry(self, code: str) -> QueueEntry | None:
        """The open queue entry of one document, or None (never queued, or settled)."""
        ...

    def claim(
        self,
        holder: str,
        *,
        now: dt.datetime,
        lease: dt.timedelta,
        limit: int | None = None,
        code: str | None = None,
    ) -> list[QueueEntry]:
        """Lease due retryable entries (or the one ``code``, due or not) to ``holder`` until
        ``now + lease``; atomic across processes, so two workers never hold the same entry.
        An entry taken from a worker whose lease ran out says so in ``taken_over_from``."""
        ...

    def release(self, holder: str, codes: Sequence[str], *, in_doubt: Sequence[str] = ()) -> int:
        """Give back entries ``holder`` claimed and never sent, free to claim at once: how many
        it still held. Those in ``in_doubt`` (taken over from a worker that may have sent them)
        are marked as possibly landed, so that whoever takes them looks them up first."""
        ...

    def settled(self) -> list[SettledEntry]:
        """Queue history (entries settled R or M and not yet purged), oldest first."""
        ...

    def purge(self, settled_before: dt.datetime) -> int:
        """Delete settled queue history older than the date; never an open entry."""
        ...


class ReferenceStore(Protocol):
    """What the end-of-day refresh keeps: tax codes, entity use codes, nexus, offline rates."""

    def replace_reference(self, reference: ReferenceData) -> None:
        """Replace the parts given in one transaction: a failure keeps yesterday's tables."""
        ...

    def offline_rates(self) -> RateTable:
        """The offline rate table."""
        ...

    def active_tax_codes(self) -> frozenset[str] | None:
        """The refreshed active tax codes, or None before the first refresh."""
        ...

    def entity_use_codes(self) -> dict[str, str]:
        """The refreshed entity use codes and their descriptions."""
        ...

    def nexus(self, company_code: str) -> frozenset[str]:
        """The refreshed nexus regions of a company."""
        ...


class ExemptionStore(Protocol):
    """The customer exemption database (BNW150)."""

    def save_exemption(self, exemption: Exemption) -> None:
        """Add or replace an entry (keyed by customer, region and effective date)."""
        ...

    def save_exemptions(self, exemptions: Sequence[Exemption]) -> None:
        """Add or replace entries, all in one transaction."""
        ...

    def delete_exemption(self, customer_code: str, region: str, effective: dt.date) -> bool:
        """Remove an entry; False when there was none."""
        ...

    def exemptions(self, customer_code: str | None = None) -> list[Exemption]:
        """Entries of a customer (or all), by customer, region and effective date."""
        ...


class LedgerStore(Protocol):
    """Finance's reads of the documents (the workfile) and the GL journals kept with them."""

    def workfile(self, period: DateRange, *, company: str | None = None) -> Iterator[WorkfileLine]:
        """Lines of the invoices and credits dated in ``period`` that reached posting (Y, R, M,
        U) and are not voided, of one ERP company or all, by date, code and line; streamed in
        batches, never the whole range in memory."""
        ...

    def workfile_jurisdictions(
        self, period: DateRange, *, company: str | None = None
    ) -> Iterator[JurisdictionLine]:
        """The jurisdiction breakdown of the same documents, streamed likewise."""
        ...

    def posted_documents(
        self, period: DateRange, *, company: str | None = None
    ) -> Iterator[PostedHead]:
        """Invoices and credits dated in ``period`` that reached posting (Y, R, M, U),
        voided ones too, of one ERP company or all, by date and code; streamed."""
        ...

    def journal(self, key: str) -> Journal | None:
        """The stored journal with this key (with its lines and shares), or None."""
        ...

    def journals(self, company: str | None = None) -> list[Journal]:
        """Stored journals (of one company key, or all) by range, without lines or shares."""
        ...

    def save_journal(self, journal: Journal, *, expected: Journal | None) -> None:
        """Write ``journal`` with its lines and shares in one transaction, replacing the stored
        one. The stored journal must still be ``expected`` (status and version; None: no
        journal yet), else ``ConcurrentChange`` and nothing is written."""
        ...


class ExportStore(Protocol):
    """What files exported before said (seed 000): customer numbers sent to CertCapture, and
    the ECMS Cert IDs used, each with what it stood for."""

    def record_exports(self, kind: str, entries: Mapping[str, str], at: dt.datetime) -> None:
        """Remember ``key -> value`` pairs of one kind (replacing a key's earlier value)."""
        ...

    def exports(self, kind: str) -> dict[str, str]:
        """Every key of one kind remembered, with its value."""
        ...


class CertificateStore(Protocol):
    """What exempt customers leave (seeds 000, 002, 003): certificates (the local service's, or
    pulled back from the engine's), which order a single-use certificate went to, customer
    cards wanted and sent, certificate requests, and customer-history notes (TXEEXP)."""

    def save_certificates(
        self,
        certificates: Sequence[Certificate],
        *,
        service: str,
        at: dt.datetime,
        replace_customer: str | None = None,
    ) -> None:
        """Store certificates by id; ``replace_customer`` drops that customer's others (a pull
        back), in one transaction."""
        ...

    def certificates(self, customer_code: str | None = None) -> list[Certificate]:
        """Certificates of a customer, or all."""
        ...

    def certificate(self, certificate_id: str) -> Certificate | None:
        """One certificate, or None."""
        ...

    def use_certificate(self, certificate_id: str, order_number: str, at: dt.datetime) -> str:
        """Give a single-use certificate to an order unless one has it: the holder."""
        ...

    def certificate_uses(self) -> dict[str, str]:
        """Single-use certificates given: id -> order number."""
        ...

    def save_customer_card(self, card: CustomerCard, at: dt.datetime, *, sent: bool) -> None:
        """Keep the card wanted now (``sent``: the service has it too)."""
        ...

    def customer_cards(
        self, *, unsynced: bool = False
    ) -> list[tuple[CustomerCard, CustomerCard | None]]:
        """(wanted, sent) per customer; ``unsynced``: where they differ."""
        ...

    def customer_card(self, customer_code: str) -> tuple[CustomerCard, CustomerCard | None] | None:
        """One customer's (wanted, sent), or None."""
        ...

    def record_certificate_request(self, request: CertificateRequest) -> None:
        """Remember a certificate request sent."""
        ...

    def certificate_requests(self, customer_code: str | None = None) -> list[CertificateRequest]:
        """Requests sent, oldest first."""
        ...

    def add_customer_note(self, note: CustomerNote) -> bool:
        """Record a note; False when the customer has one of that type that day already."""
        ...

    def customer_notes(
        self, customer_code: str | None = None, note_type: str | None = None
    ) -> list[CustomerNote]:
        """Customer-history notes, oldest first."""
        ...

    def reminded(self) -> dict[tuple[str, str], dt.date]:
        """(customer, region) -> the day a reminder last went out for it."""
        ...

    def record_reminded(self, customer_code: str, regions: Sequence[str], day: dt.date) -> None:
        """Remember that a reminder for these regions of the customer went out on ``day``."""
        ...


class Store(
    DocumentStore,
    QueueStore,
    ReferenceStore,
    ExemptionStore,
    LedgerStore,
    ExportStore,
    CertificateStore,
    Protocol,
):
    """Everything the bridge keeps, in one place it can close."""

    def get_meta(self, key: str) -> str | None:
        """A store-level setting, or None."""
        ...

    def set_meta(self, key: str, value: str) -> None:
        """Set a store-level setting."""
        ...

    def meta_once(self, key: str, value: str) -> str:
        """Set a store-level setting unless it is set already (by any process); the value it
        has now."""
        ...

    def close(self) -> None:
        """Close the store."""
        ...


class StorePlugin(Protocol):
    """How a store kind is read from ``[store]`` and opened."""

    kind: str

    def settings(self, table: Mapping[str, Any], read: TableReader) -> Any:
        """This store's settings from the ``[store]`` keys other than ``kind``."""
        ...

    def check(self, settings: Any) -> Any:
        """Settings given in code: the defaults for None, else the settings checked."""
        ...

    def beside(self, settings: Any, name: str) -> str | None:
        """A file path next to this store for a companion file called ``name`` (the embedded
        engine's register); None for a store that is not a local file."""
        ...

    def open(self, settings: Any, *, create: bool = True, unfinished_ok: bool = False) -> Store:
        """The store itself, its schema brought up to date; without ``create`` a store that
        does not exist yet is a StoreError naming where it was looked for. An unfinished copy
        (:data:`COPY_KEY`) is a StoreError saying how to finish it, unless ``unfinished_ok``
        (the copy itself)."""
        ...
