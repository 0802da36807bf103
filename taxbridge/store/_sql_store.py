"""What the SQLite and PostgreSQL stores share: every read and write of documents, the queue,
reference data and exemptions, in SQL written once (SQLite's dialect; the PostgreSQL store's
connection translates it). A store supplies its connections and the few places the databases
differ: how writers of a document wait for one another, how claimed rows are locked, and how
text sorts. PostgreSQL makes a stage's writes (:meth:`SQLStore.save_all`) with a server-side
function of its own instead."""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any

from taxbridge.errors import ConcurrentChange, LeaseLost
from taxbridge.flags import FinalTaxFlag
from taxbridge.models import DocumentEvent, DocumentKind, Exemption, Stage, TaxDocument
from taxbridge.rates import RateTable, ZipRate
from taxbridge.store._certificate_sql import CertificatesMixin
from taxbridge.store._codec import (
    BREAKDOWN_COLUMNS,
    CREDIT_COLUMNS,
    DOCUMENT_COLUMNS,
    EVENT_COLUMNS,
    EXEMPTION_COLUMNS,
    LINE_COLUMNS,
    LINE_READ_COLUMNS,
    QUEUE_COLUMNS,
    WRITTEN_DOCUMENT_COLUMNS,
    DocumentRows,
    credit_rows,
    credited_totals,
    document_from_rows,
    document_rows,
    event_from_row,
    event_row,
    exemption_from_row,
    exemption_row,
    invoiced_log,
    queue_entry_from_row,
    queue_row,
)
from taxbridge.store._ledger_sql import ExportsMixin, LedgerMixin, Runner, read_allocation
from taxbridge.store._meta_sql import MetaMixin
from taxbridge.store._sqlite_reference import delete_exemption, exemption_rows, replace_reference
from taxbridge.store._statements import upsert
from taxbridge.store.base import (
    CreditAllocation,
    DocumentHead,
    Expected,
    InvoiceLink,
    QueueEntry,
    ReferenceData,
    Refusal,
    SettledEntry,
    Write,
)


def _marks(columns: str | Sequence[str]) -> str:
    """Placeholders for a column list ("a, b") or for each value of a sequence."""
    names = columns.split(", ") if isinstance(columns, str) else columns
    return ", ".join("?" for _ in names)


_IN_CHUNK = 500
"""Codes per ``IN (...)`` list: well under any database's limit on parameters."""


_DOC_UPSERT = (
    f"INSERT INTO documents ({WRITTEN_DOCUMENT_COLUMNS}) "
    f"VALUES ({_marks(WRITTEN_DOCUMENT_COLUMNS)}) ON CONFLICT (code) DO UPDATE SET "
    + ", ".join(f"{n} = excluded.{n}" for n in WRITTEN_DOCUMENT_COLUMNS.split(", ") if n != "code")
)
_LINE_INSERT = f"INSERT INTO document_lines ({LINE_COLUMNS}) VALUES ({_marks(LINE_COLUMNS)})"
_BREAKDOWN_INSERT = (
    f"INSERT INTO document_breakdown ({BREAKDOWN_COLUMNS}) VALUES ({_marks(BREAKDOWN_COLUMNS)})"
)
_EVENT_INSERT = f"INSERT INTO document_events ({EVENT_COLUMNS}) VALUES ({_marks(EVENT_COLUMNS)})"
_QUEUE_UPSERT = upsert(
    "unposted_queue", f"{QUEUE_COLUMNS}, settled_at, outcome", f"{_marks(QUEUE_COLUMNS)}, NULL, ''"
)
_CREDIT_INSERT = (
    f"INSERT INTO credit_allocations ({CREDIT_COLUMNS}) VALUES ({_marks(CREDIT_COLUMNS)})"
)


class SQLStore(LedgerMixin, ExportsMixin, CertificatesMixin, MetaMixin, abc.ABC):
    """The store protocols over SQL connections; subclasses open them and say how their
    database locks, batches and sorts."""

    _read: Callable[..., AbstractContextManager[Runner]]
    _write: Callable[[], AbstractContextManager[Runner]]

    COLLATE = ""
    """Appended to ``ORDER BY code``: text sorts by bytes, as SQLite sorts it."""
    CLAIM_ROWS = ""
    """Appended to the read of the entries a claim takes (skip rows being claimed)."""

    def _read_one(self) -> AbstractContextManager[Runner]:
        """A read of one statement (a store may skip the transaction around it)."""
        return self._read()

    def _serialise(self, conn: Runner, keys: Sequence[str]) -> None:
        """Make writers of the same ``keys`` wait for one another (the database lock may
        already do it)."""

    @property
    def schema_version(self) -> int:
        """The highest migration applied to this store."""
        with self._read_one() as conn:
            row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abc.abstractmethod
    def close(self) -> None:
        """Close the store's connections."""

    # -- documents -----------------------------------------------------------------------------

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
        """Write documents, events, a queue change, invoiced orders and what a credit takes
        off its invoice's lines, in one transaction.

        With ``holder``, the queue entry changed must still be claimed by that worker and not
        settled; with ``expected``, each document must still have the flag and invoice link the
        stage read. Otherwise :class:`LeaseLost` or :class:`ConcurrentChange` is raised and
        nothing is written.
        """
        write = Write(
            tuple(documents),
            tuple(events),
            enqueue=enqueue,
            dequeue=dequeue,
            invoiced=invoiced,
            holder=holder,
            credits=credits,
            expected=expected,
        )
        refused = self.save_all([write])[0]
        if refused is not None:
            raise refused

    def save_all(self, writes: Sequence[Write]) -> list[Refusal | None]:
        """Several writes in one transaction, each all or nothing: one refused by its lease or
        expected state is skipped (its refusal in its place), the others are made. Writers of
        all the writes' codes wait for one another first, so checks and writes see one state."""
        # rows are built before the transaction: other writers wait only for the database
        built = [
            (write, list(map(document_rows, write.documents)), list(map(event_row, write.events)))
            for write in writes
        ]
        refusals: list[Refusal | None] = []
        with self._write() as conn:
            self._serialise(conn, sorted(frozenset().union(*(write.keys for write in writes))))
            for write, rows, event_rows in built:
                try:
                    self._check(conn, write)
                except (LeaseLost, ConcurrentChange) as exc:
                    refusals.append(exc)
                    continue
                refusals.append(None)
                for written in rows:
                    _write_document(conn, written)
                conn.executemany(_EVENT_INSERT, event_rows)
                _queue_change(conn, write)
                if write.invoiced is not None:
                    _link_orders(conn, write.invoiced)
                if write.credits is not None:
                    conn.execute(
                        "DELETE FROM credit_allocations WHERE credit_code = ?",
                        (write.credits.credit_code,),
                    )
                    conn.executemany(_CREDIT_INSERT, credit_rows(write.credits))
        return refusals

    def _check(self, conn: Runner, write: Write) -> None:
        """Raise :class:`LeaseLost` or :class:`ConcurrentChange` when ``write`` may not be
        made: its worker no longer holds its queue entry, or a document changed since read."""
        if write.held is not None:
            self._check_holder(conn, *write.held)
        if write.expected is not None:
            for code in write.checked:
                self._check_expected(conn, code, write.expected)

    def _check_expected(self, conn: Runner, code: str, expected: Expected) -> None:
        row = conn.execute(
            "SELECT flag, invoice_code FROM documents WHERE code = ?", (code,)
        ).fetchone()
        found = Expected(None) if row is None else Expected(FinalTaxFlag(row[0]), row[1] or None)
        if found != expected:
            raise ConcurrentChange(code, expected.describe(), found.describe())

    def _check_holder(self, conn: Runner, code: str, holder: str) -> None:
        row = conn.execute(
            "SELECT claimed_by, settled_at FROM unposted_queue WHERE code = ?",
            (code,),
        ).fetchone()
        if row is None or row[1] is not None or row[0] != holder:
            raise LeaseLost(code, holder, None if row is None else row[0])

    def credited(
        self, invoice_code: str, *, excluding: str = ""
    ) -> dict[str, tuple[Decimal, Decimal]]:
        """Invoice line -> (amount, tax) credited so far by claims allocated to it, leaving out
        the credit ``excluding`` (the one being worked out)."""
        with self._read_one() as conn:
            rows = conn.execute(
                "SELECT invoice_line, amount, tax FROM credit_allocations "
                "WHERE invoice_code = ? AND credit_code != ?",
                (invoice_code, excluding),
            ).fetchall()
        return credited_totals(rows)

    def allocation(self, credit_code: str) -> CreditAllocation | None:
        """What a credit takes off its invoice's lines, or None."""
        with self._read_one() as conn:
            return read_allocation(conn, credit_code)

    def credits_of(self, invoice_code: str) -> list[str]:
        """The credits that take something off the invoice's lines (not voided), by code."""
        with self._read_one() as conn:
            rows = conn.execute(
                "SELECT credit_code FROM credit_allocations WHERE invoice_code = ? "
                f"GROUP BY credit_code ORDER BY credit_code{self.COLLATE}",
                (invoice_code,),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def head(self, code: str) -> DocumentHead | None:
        """Code, kind, stage, flag and invoice code, without lines or request."""
        with self._read_one() as conn:
            row = conn.execute(
                "SELECT code, kind, stage, flag, invoice_code FROM documents WHERE code = ?",
                (code,),
            ).fetchone()
        if row is None:
            return None
        return DocumentHead(
            code=row[0],
            kind=DocumentKind(row[1]),
            stage=Stage(row[2]),
            flag=FinalTaxFlag(row[3]),
            invoice_code=row[4],
        )

    def get(self, code: str) -> TaxDocument | None:
        """The stored document, with lines, breakdown and request."""
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {DOCUMENT_COLUMNS} FROM documents WHERE code = ?", (code,)
            ).fetchone()
            fetched = None if row is None else _all_parts(conn, [row])[0]
        return None if fetched is None else document_from_rows(*fetched)

    def get_many(self, codes: Sequence[str]) -> dict[str, TaxDocument]:
        """The stored documents of ``codes`` by code, in one snapshot (three statements per
        500 codes, not three per code); a code not stored is left out."""
        wanted = list(dict.fromkeys(codes))
        with self._read() as conn:
            rows = []
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                rows += conn.execute(
                    f"SELECT {DOCUMENT_COLUMNS} FROM documents WHERE code IN ({_marks(chunk)})",
                    chunk,
                ).fetchall()
            fetched = _all_parts(conn, rows)
        return {parts[0][0]: document_from_rows(*parts) for parts in fetched}

    def document_codes(self) -> list[str]:
        """Every stored document's code, in code order."""
        with self._read_one() as conn:
            rows = conn.execute(f"SELECT code FROM documents ORDER BY code{self.COLLATE}")
            return [str(row[0]) for row in rows.fetchall()]

    def documents(
        self,
        *,
        flags: Sequence[FinalTaxFlag] | None = None,
        kind: DocumentKind | None = None,
    ) -> list[TaxDocument]:
        """Stored documents in code order, filtered by flag and kind."""
        sql = f"SELECT {DOCUMENT_COLUMNS} FROM documents WHERE 1=1"
        params: list[str] = []
        if flags is not None:
            sql += f" AND flag IN ({', '.join('?' for _ in flags)})" if flags else " AND 1=0"
            params.extend(flag.value for flag in flags)
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind.value)
        with self._read() as conn:
            rows = conn.execute(sql + f" ORDER BY code{self.COLLATE}", params).fetchall()
            fetched = _all_parts(conn, rows)
        return [document_from_rows(*parts) for parts in fetched]

    def events(self, code: str) -> list[DocumentEvent]:
        """The document's log, oldest first."""
        with self._read_one() as conn:
            rows = conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM document_events WHERE code = ? ORDER BY id",
                (code,),
            ).fetchall()
        return [event_from_row(row) for row in rows]

    # -- the unposted queue --------------------------------------------------------------------

    def queue(
        self, *, due_at: dt.datetime | None = None, needs_fix: bool | None = None
    ) -> list[QueueEntry]:
        """Open queue entries by next attempt time; with ``due_at``, only those due by then;
        with ``needs_fix``, only those that do (True) or do not (False) need a fix."""
        sql = f"SELECT {QUEUE_COLUMNS} FROM unposted_queue WHERE settled_at IS NULL"
        params: list[object] = []
        if due_at is not None:
            sql += " AND next_attempt_at <= ?"
            params.append(due_at.isoformat())
        if needs_fix is not None:
            sql += " AND retryable = ?"
            params.append(int(not needs_fix))
        with self._read_one() as conn:
            rows = conn.execute(
                sql + f" ORDER BY next_attempt_at, code{self.COLLATE}", params
            ).fetchall()
        return [queue_entry_from_row(row) for row in rows]

    def queue_entry(self, code: str) -> QueueEntry | None:
        """The open queue entry of ``code``, or None (never queued, or settled)."""
        with self._read_one() as conn:
            row = conn.execute(
                f"SELECT {QUEUE_COLUMNS} FROM unposted_queue WHERE code = ? AND settled_at IS NULL",
                (code,),
            ).fetchone()
        return None if row is None else queue_entry_from_row(row)

    def claim(
        self,
        holder: str,
        *,
        now: dt.datetime,
        lease: dt.timedelta,
        limit: int | None = None,
        code: str | None = None,
    ) -> list[QueueEntry]:
        """Take due, retryable entries (or the one ``code``, due or not, needing a fix or not)
        for ``holder`` until ``now + lease``, in one transaction: no other holder gets them
        until the lease runs out. Entries another holder leases are left alone; one whose
        holder's lease ran out is taken and reported in ``taken_over_from``."""
        stamp = now.isoformat()
        free = "(claimed_by IS NULL OR lease_expires_at <= ?)"
        if code is not None:
            sql = (
                "SELECT code, claimed_by FROM unposted_queue WHERE settled_at IS NULL "
                f"AND code = ? AND ({free} OR claimed_by = ?)"
            )
            params: list[object] = [code, stamp, holder]
        else:
            # never the holder's own claims: a batch loop must not take an entry twice
            sql = (
                "SELECT code, claimed_by FROM unposted_queue WHERE settled_at IS NULL "
                f"AND retryable = 1 AND next_attempt_at <= ? AND {free} "
                f"ORDER BY next_attempt_at, code{self.COLLATE}"
            )
            params = [stamp, stamp]
            if limit is not None:
                sql += " LIMIT ?"
                params.append(limit)
        with self._write() as conn:
            found = conn.execute(sql + self.CLAIM_ROWS, params).fetchall()
            taken: dict[str, Any] = {}
            codes = [c for c, _ in found]
            for start in range(0, len(codes), _IN_CHUNK):
                chunk = codes[start : start + _IN_CHUNK]
                marks = _marks(chunk)
                conn.execute(
                    "UPDATE unposted_queue SET claimed_by = ?, lease_expires_at = ? "
                    f"WHERE code IN ({marks})",
                    [holder, (now + lease).isoformat(), *chunk],
                )
                sql = f"SELECT {QUEUE_COLUMNS} FROM unposted_queue WHERE code IN ({marks})"
                taken.update((row[0], row) for row in conn.execute(sql, chunk).fetchall())
        return [
            queue_entry_from_row(
                taken[c], taken_over_from=None if previous in (None, holder) else str(previous)
            )
            for c, previous in found
        ]

    def release(self, holder: str, codes: Sequence[str], *, in_doubt: Sequence[str] = ()) -> int:
        """Give back entries ``holder`` claimed and never sent (see the protocol)."""
        released = 0
        doubtful = set(in_doubt)
        with self._write() as conn:
            for start in range(0, len(codes), _IN_CHUNK):
                chunk = list(codes[start : start + _IN_CHUNK])
                marks = _marks(chunk)
                held = f"code IN ({marks}) AND claimed_by = ? AND settled_at IS NULL"
                marked = [code for code in chunk if code in doubtful]
                if marked:
                    conn.execute(
                        "UPDATE unposted_queue SET may_have_landed = 1 "
                        f"WHERE code IN ({_marks(marked)}) AND claimed_by = ?",
                        [*marked, holder],
                    )
                cursor = conn.execute(
                    "UPDATE unposted_queue SET claimed_by = NULL, lease_expires_at = NULL "
                    f"WHERE {held}",
                    [*chunk, holder],
                )
                released += int(cursor.rowcount)
        return released

    def purge(self, settled_before: dt.datetime) -> int:
        """Delete settled queue history older than ``settled_before``; open (U) entries stay."""
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM unposted_queue WHERE settled_at IS NOT NULL AND settled_at < ?",
                (settled_before.isoformat(),),
            )
            return int(cursor.rowcount)

    def settled(self) -> list[SettledEntry]:
        """Queue history: entries settled R or M and not yet purged, oldest first."""
        with self._read_one() as conn:
            rows = conn.execute(
                "SELECT code, outcome, settled_at FROM unposted_queue "
                f"WHERE settled_at IS NOT NULL ORDER BY settled_at, code{self.COLLATE}"
            ).fetchall()
        return [
            SettledEntry(str(r[0]), str(r[1]), dt.datetime.fromisoformat(str(r[2]))) for r in rows
        ]

    # -- reference data (end-of-day refresh), the offline rates, exemptions, meta ------------

    def offline_rates(self) -> RateTable:
        """The offline table as stored."""
        with self._read_one() as conn:
            rows = conn.execute(
                f"SELECT * FROM offline_rates ORDER BY state, zip_code{self.COLLATE}"
            ).fetchall()
        return RateTable(ZipRate.from_row(row) for row in rows)

    def replace_reference(self, reference: ReferenceData) -> None:
        """Replace the refreshed tables in one transaction: a failure keeps yesterday's, and
        two refreshes (servers seeding the offline table together) run one after the other."""
        with self._write() as conn:
            self._serialise(conn, ["reference data"])
            replace_reference(conn, reference)

    def active_tax_codes(self) -> frozenset[str] | None:
        """The refreshed active tax codes, or None before the first refresh."""
        with self._read_one() as conn:
            rows = conn.execute("SELECT code FROM reference_tax_codes").fetchall()
        return frozenset(row[0] for row in rows) or None

    def entity_use_codes(self) -> dict[str, str]:
        """The refreshed entity use codes and descriptions."""
        with self._read_one() as conn:
            rows = conn.execute("SELECT code, description FROM reference_entity_use_codes")
            return dict(rows.fetchall())

    def nexus(self, company_code: str) -> frozenset[str]:
        """The refreshed nexus regions of a company (empty before the first refresh)."""
        with self._read_one() as conn:
            rows = conn.execute(
                "SELECT region FROM reference_nexus WHERE company_code = ?", (company_code,)
            ).fetchall()
        return frozenset(row[0] for row in rows)

    def save_exemption(self, exemption: Exemption) -> None:
        """Add or replace an exemption (keyed by customer, region and effective date)."""
        self.save_exemptions([exemption])

    def save_exemptions(self, exemptions: Sequence[Exemption]) -> None:
        """Add or replace exemptions in one transaction."""
        with self._write() as conn:
            conn.executemany(
                upsert("exemptions", EXEMPTION_COLUMNS, "?, ?, ?, ?, ?, ?"),
                [exemption_row(exemption) for exemption in exemptions],
            )

    def delete_exemption(self, customer_code: str, region: str, effective: dt.date) -> bool:
        """Remove an exemption; False when there was none."""
        with self._write() as conn:
            return delete_exemption(conn, customer_code, region, effective)

    def exemptions(self, customer_code: str | None = None) -> list[Exemption]:
        """Exemptions of one customer (or all), by customer, region and effective date."""
        with self._read_one() as conn:
            return [exemption_from_row(row) for row in exemption_rows(conn, customer_code)]


def _write_document(conn: Runner, rows: DocumentRows) -> None:
    """Upsert a document and replace its lines and breakdown, unless the stored ones have the
    same digest (nothing to delete for a new one): lines are only ever written here."""
    document, lines, breakdown = rows
    code = document[0]
    stored = conn.execute("SELECT lines_digest FROM documents WHERE code = ?", (code,)).fetchone()
    conn.execute(_DOC_UPSERT, document)
    if stored is not None and stored[0] == document[-1]:
        return
    if stored is not None:
        conn.execute("DELETE FROM document_lines WHERE code = ?", (code,))
        conn.execute("DELETE FROM document_breakdown WHERE code = ?", (code,))
    conn.executemany(_LINE_INSERT, lines)
    conn.executemany(_BREAKDOWN_INSERT, breakdown)


def _queue_change(conn: Runner, write: Write) -> None:
    """A write's queue change: a new or next entry, and the entry settled."""
    if write.enqueue is not None:
        conn.execute(_QUEUE_UPSERT, queue_row(write.enqueue))
    if write.dequeue is not None:
        flag, at = write.settlement
        conn.execute(
            "UPDATE unposted_queue SET settled_at = ?, outcome = ?, "
            "claimed_by = NULL, lease_expires_at = NULL "
            "WHERE code = ? AND settled_at IS NULL",
            (at, flag, write.dequeue),
        )


def _all_parts(conn: Runner, rows: Sequence[Any]) -> list[tuple[Any, list[Any], list[Any]]]:
    """Document rows with their line and breakdown rows, in the rows' order: two statements per
    500 documents rather than two per document."""
    codes = [row[0] for row in rows]
    lines: dict[str, list[Any]] = {code: [] for code in codes}
    breakdown: dict[str, list[Any]] = {code: [] for code in codes}
    for start in range(0, len(codes), _IN_CHUNK):
        chunk = codes[start : start + _IN_CHUNK]
        marks = _marks(chunk)
        for code, *line in conn.execute(
            f"SELECT code, {LINE_READ_COLUMNS} FROM document_lines WHERE code IN ({marks}) "
            "ORDER BY code, seq",
            chunk,
        ):
            lines[code].append(line)
        for code, *part in conn.execute(
            "SELECT code, jurisdiction_type, name, region, rate, taxable, exempt, tax "
            f"FROM document_breakdown WHERE code IN ({marks}) ORDER BY code, seq",
            chunk,
        ):
            breakdown[code].append(part)
    return [(row, lines[row[0]], breakdown[row[0]]) for row in rows]


def _link_orders(conn: Runner, link: InvoiceLink) -> None:
    """Stamp the invoiced orders with the invoice code, stage and a log entry (once): writes
    only, each order's log entry taken from its row before the stamp, so a store may send them
    all at once."""
    message = invoiced_log(link)
    at = link.at.isoformat()
    not_yet = "WHERE code = ? AND (invoice_code IS NULL OR invoice_code != ?)"
    for code in link.order_codes:
        conn.execute(
            f"INSERT INTO document_events ({EVENT_COLUMNS}) "
            f"SELECT code, ?, ?, flag, flag, backend, ?, 0 FROM documents {not_yet}",
            (at, Stage.INVOICE.value, message, code, link.invoice_code),
        )
        conn.execute(
            f"UPDATE documents SET stage = ?, invoice_code = ?, last_log = ?, updated_at = ? "
            f"{not_yet}",
            (Stage.INVOICE.value, link.invoice_code, message, at, code, link.invoice_code),
        )
