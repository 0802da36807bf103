"""The store contract: tax documents, their event log, the unposted queue and the offline rates.

SQLite is the embedded default; the protocol leaves room for PostgreSQL when several ERP servers
share one queue. Writes that belong together (a document, its event, its queue entry) are one
call, and so one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Protocol

from attrs import frozen

from taxbridge.flags import FinalTaxFlag
from taxbridge.models import (
    CreditedLine,
    DocumentEvent,
    DocumentKind,
    Exemption,
    Stage,
    TaxDocument,
)
from taxbridge.rates import RateTable


@frozen
class QueueEntry:
    """A U document waiting to be reposted."""

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
    refused, circuit open): then a repost may post without looking the code up first."""

    @property
    def needs_fix(self) -> bool:
        """The engine rejected the document: reposted only after a change or when asked."""
        return not self.retryable


@frozen
class DocumentHead:
    """The few columns a stage needs to decide its path, without loading lines or request."""

    code: str
    kind: DocumentKind
    stage: Stage
    flag: FinalTaxFlag
    invoice_code: str | None


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
class ReferenceData:
    """What the end-of-day refresh brings from the engine; None parts are left as they are."""

    as_of: dt.date | None = None
    """The business date refreshed; None: a partial load that is not a refresh."""
    tax_codes: frozenset[str] | None = None
    entity_use_codes: Mapping[str, str] | None = None
    nexus: Mapping[str, frozenset[str]] | None = None
    """Company code -> regions."""
    rates: RateTable | None = None


class Store(Protocol):
    """Where tax documents live."""

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
    ) -> None:
        """Write documents (with lines and breakdown), events and the queue change atomically.

        ``dequeue`` settles the entry (kept as history until purged). With ``holder``, the entry
        must still be claimed by that repost worker, else ``LeaseLost`` and nothing is written.

        With ``invoiced``, the stored order documents it names get the invoice code, stage
        ``invoice`` and a log entry, unless they already carry that code.
        """
        ...

    def credited(
        self, invoice_code: str, *, excluding: str = ""
    ) -> dict[str, tuple[Decimal, Decimal]]:
        """Invoice line -> (amount, tax) credited so far, leaving out credit ``excluding``."""
        ...

    def head(self, code: str) -> DocumentHead | None:
        """Code, kind, stage, flag and invoice code of a stored document, or None."""
        ...

    def get(self, code: str) -> TaxDocument | None:
        """The stored document with this code, or None."""
        ...

    def documents(
        self,
        *,
        flags: Sequence[FinalTaxFlag] | None = None,
        kind: DocumentKind | None = None,
    ) -> list[TaxDocument]:
        """Stored documents, optionally only those with one of ``flags`` or of one ``kind``."""
        ...

    def events(self, code: str) -> list[DocumentEvent]:
        """A document's log, oldest first."""
        ...

    def queue(
        self, *, due_at: dt.datetime | None = None, needs_fix: bool | None = None
    ) -> list[QueueEntry]:
        """Open queue entries, oldest first; with ``due_at``, only those due by then; with
        ``needs_fix``, only those that do or do not need a fix."""
        ...

    def queue_entry(self, code: str) -> QueueEntry | None:
        """The open queue entry of one document, or None."""
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
        """Lease due retryable entries (or one ``code``) to ``holder``; atomic across
        processes, so two workers never hold the same entry."""
        ...

    def release(self, code: str, holder: str) -> None:
        """Give back a claimed entry unchanged."""
        ...

    def purge(self, settled_before: dt.datetime) -> int:
        """Delete settled queue history older than the date; never an open entry."""
        ...

    def offline_rates(self) -> RateTable:
        """The offline rate table."""
        ...

    def replace_offline_rates(self, rates: RateTable) -> None:
        """Replace the whole offline table in one transaction: a failure keeps the old one."""
        ...

    def replace_reference(self, reference: ReferenceData) -> None:
        """Replace the refreshed tables (and the offline rates) in one transaction."""
        ...

    def active_tax_codes(self) -> frozenset[str] | None:
        """The refreshed active tax codes, or None before the first refresh."""
        ...

    def entity_use_codes(self) -> dict[str, str]:
        """The refreshed entity use codes."""
        ...

    def nexus(self, company_code: str) -> frozenset[str]:
        """The refreshed nexus regions of a company."""
        ...

    def save_exemption(self, exemption: Exemption) -> None:
        """Add or replace an exemption database entry."""
        ...

    def delete_exemption(self, customer_code: str, region: str, effective: dt.date) -> bool:
        """Remove an exemption database entry."""
        ...

    def exemptions(self, customer_code: str | None = None) -> list[Exemption]:
        """Exemption database entries of a customer (or all)."""
        ...

    def get_meta(self, key: str) -> str | None:
        """A store-level setting."""
        ...

    def set_meta(self, key: str, value: str) -> None:
        """Set a store-level setting."""
        ...

    def close(self) -> None:
        """Close the store."""
        ...
