"""The embedded store: one SQLite file in WAL mode, schema versioned by a migrations table."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from taxbridge.errors import LeaseLost
from taxbridge.flags import FinalTaxFlag
from taxbridge.models import (
    DocumentEvent,
    DocumentKind,
    DocumentType,
    Exemption,
    JurisdictionTax,
    JurisdictionType,
    LineTax,
    Stage,
    TaxDocument,
)
from taxbridge.rates import RATE_COLUMNS, RateTable, ZipRate
from taxbridge.store._codec import request_from_json, request_to_json
from taxbridge.store.base import (
    CreditAllocation,
    DocumentHead,
    InvoiceLink,
    QueueEntry,
    ReferenceData,
)

DEFAULT_PATH = "taxbridge.db"
"""Store file used when neither the config nor ``TAXBRIDGE_DB`` names one."""

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE documents (
            code TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            stage TEXT NOT NULL,
            flag TEXT NOT NULL,
            erp_company TEXT NOT NULL,
            company_code TEXT NOT NULL,
            customer_code TEXT NOT NULL,
            document_type TEXT NOT NULL,
            document_date TEXT NOT NULL,
            tax_date TEXT,
            currency TEXT NOT NULL,
            total_amount TEXT NOT NULL,
            total_taxable TEXT NOT NULL,
            total_exempt TEXT NOT NULL,
            total_tax TEXT NOT NULL,
            backend TEXT NOT NULL,
            last_log TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            request_json TEXT,
            orders_json TEXT NOT NULL DEFAULT '[]',
            invoice_code TEXT
        );
        CREATE INDEX documents_flag ON documents (flag);
        CREATE TABLE document_lines (
            code TEXT NOT NULL,
            seq INTEGER NOT NULL,
            number TEXT NOT NULL,
            amount TEXT NOT NULL,
            taxable TEXT NOT NULL,
            exempt TEXT NOT NULL,
            tax TEXT NOT NULL,
            tax_code TEXT NOT NULL,
            rate TEXT NOT NULL,
            PRIMARY KEY (code, seq)
        ) WITHOUT ROWID;
        CREATE TABLE document_breakdown (
            code TEXT NOT NULL,
            seq INTEGER NOT NULL,
            jurisdiction_type TEXT NOT NULL,
            name TEXT NOT NULL,
            region TEXT NOT NULL,
            rate TEXT NOT NULL,
            taxable TEXT NOT NULL,
            exempt TEXT NOT NULL,
            tax TEXT NOT NULL,
            PRIMARY KEY (code, seq)
        ) WITHOUT ROWID;
        CREATE TABLE document_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            code TEXT NOT NULL,
            at TEXT NOT NULL,
            stage TEXT NOT NULL,
            flag_before TEXT,
            flag_after TEXT NOT NULL,
            backend TEXT NOT NULL,
            message TEXT NOT NULL,
            error INTEGER NOT NULL
        );
        CREATE INDEX document_events_code ON document_events (code, id);
        CREATE TABLE unposted_queue (
            code TEXT PRIMARY KEY REFERENCES documents (code),
            attempts INTEGER NOT NULL,
            next_attempt_at TEXT NOT NULL,
            last_error_code TEXT NOT NULL,
            last_error_message TEXT NOT NULL,
            retryable INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE offline_rates (
            zip_code TEXT NOT NULL,
            state TEXT NOT NULL,
            county TEXT NOT NULL,
            city TEXT NOT NULL,
            state_rate TEXT NOT NULL,
            state_use_rate TEXT NOT NULL,
            county_rate TEXT NOT NULL,
            county_use_rate TEXT NOT NULL,
            city_rate TEXT NOT NULL,
            city_use_rate TEXT NOT NULL,
            total_rate TEXT NOT NULL,
            total_use_rate TEXT NOT NULL,
            shipping_taxable TEXT NOT NULL,
            shipping_and_handling_taxable TEXT NOT NULL,
            PRIMARY KEY (zip_code, state)
        ) WITHOUT ROWID;
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
    ),
    (
        2,
        """
        CREATE TABLE reference_tax_codes (code TEXT PRIMARY KEY) WITHOUT ROWID;
        CREATE TABLE reference_entity_use_codes (
            code TEXT PRIMARY KEY,
            description TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE reference_nexus (
            company_code TEXT NOT NULL,
            region TEXT NOT NULL,
            PRIMARY KEY (company_code, region)
        ) WITHOUT ROWID;
        CREATE TABLE exemptions (
            customer_code TEXT NOT NULL,
            region TEXT NOT NULL,
            effective TEXT NOT NULL,
            exemption_no TEXT,
            entity_use_code TEXT,
            expiry TEXT,
            PRIMARY KEY (customer_code, region, effective)
        ) WITHOUT ROWID;
        """,
    ),
    (
        3,
        """
        ALTER TABLE unposted_queue ADD COLUMN claimed_by TEXT;
        ALTER TABLE unposted_queue ADD COLUMN lease_expires_at TEXT;
        ALTER TABLE unposted_queue ADD COLUMN settled_at TEXT;
        ALTER TABLE unposted_queue ADD COLUMN outcome TEXT NOT NULL DEFAULT '';
        CREATE INDEX unposted_queue_due ON unposted_queue (settled_at, next_attempt_at)
        """,
    ),
    (
        4,
        """
        ALTER TABLE unposted_queue ADD COLUMN may_have_landed INTEGER NOT NULL DEFAULT 1
        """,
    ),
    (
        5,
        """
        CREATE TABLE credit_allocations (
            credit_code TEXT NOT NULL,
            seq INTEGER NOT NULL,
            invoice_code TEXT NOT NULL,
            invoice_line TEXT NOT NULL,
            amount TEXT NOT NULL,
            tax TEXT NOT NULL,
            PRIMARY KEY (credit_code, seq)
        ) WITHOUT ROWID;
        CREATE INDEX credit_allocations_invoice ON credit_allocations (invoice_code)
        """,
    ),
)
"""Schema changes in order. Later features append a (version, sql) pair; never edit one."""

_DOC_COLUMNS = (
    "code, kind, stage, flag, erp_company, company_code, customer_code, document_type, "
    "document_date, tax_date, currency, total_amount, total_taxable, total_exempt, total_tax, "
    "backend, last_log, updated_at, request_json, orders_json, invoice_code"
)

_DOC_UPDATES = ", ".join(
    f"{name} = excluded.{name}" for name in _DOC_COLUMNS.split(", ") if name != "code"
)


def default_path() -> str:
    """The store path from ``TAXBRIDGE_DB``, else :data:`DEFAULT_PATH`."""
    return os.environ.get("TAXBRIDGE_DB", DEFAULT_PATH)


def _flag(value: str | None) -> FinalTaxFlag | None:
    return None if value is None else FinalTaxFlag(value)


_DocumentRows = tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def _document_rows(doc: TaxDocument) -> _DocumentRows:
    """The document's row, line rows and breakdown rows, as written."""
    document = (
        doc.code,
        doc.kind.value,
        doc.stage.value,
        doc.flag.value,
        doc.erp_company,
        doc.company_code,
        doc.customer_code,
        doc.document_type.value,
        doc.document_date.isoformat(),
        doc.tax_date.isoformat() if doc.tax_date else None,
        doc.currency,
        str(doc.total_amount),
        str(doc.total_taxable),
        str(doc.total_exempt),
        str(doc.total_tax),
        doc.backend,
        doc.last_log,
        doc.updated_at.isoformat(),
        request_to_json(doc.request) if doc.request is not None else None,
        json.dumps(list(doc.orders)),
        doc.invoice_code,
    )
    lines = [
        (
            doc.code,
            seq,
            line.number,
            str(line.amount),
            str(line.taxable),
            str(line.exempt),
            str(line.tax),
            line.tax_code,
            str(line.rate),
        )
        for seq, line in enumerate(doc.lines)
    ]
    breakdown = [
        (
            doc.code,
            seq,
            j.jurisdiction_type.value,
            j.name,
            j.region,
            str(j.rate),
            str(j.taxable),
            str(j.exempt),
            str(j.tax),
        )
        for seq, j in enumerate(doc.breakdown)
    ]
    return document, lines, breakdown


def _document(row: tuple[Any, ...], line_rows: list[Any], breakdown_rows: list[Any]) -> TaxDocument:
    """A document from its row, line rows and breakdown rows, as read."""
    (
        code,
        kind,
        stage,
        flag,
        erp_company,
        company_code,
        customer_code,
        document_type,
        document_date,
        tax_date,
        currency,
        total_amount,
        total_taxable,
        total_exempt,
        total_tax,
        backend,
        last_log,
        updated_at,
        request_json,
        orders_json,
        invoice_code,
    ) = row
    lines = tuple(
        LineTax(number, Decimal(a), Decimal(t), Decimal(e), Decimal(x), tax_code, Decimal(r))
        for number, a, t, e, x, tax_code, r in line_rows
    )
    breakdown = tuple(
        JurisdictionTax(
            JurisdictionType(jt), name, region, Decimal(r), Decimal(t), Decimal(e), Decimal(x)
        )
        for jt, name, region, r, t, e, x in breakdown_rows
    )
    return TaxDocument(
        code=str(code),
        kind=DocumentKind(kind),
        stage=Stage(stage),
        flag=FinalTaxFlag(flag),
        erp_company=str(erp_company),
        company_code=str(company_code),
        customer_code=str(customer_code),
        document_type=DocumentType(document_type),
        document_date=dt.date.fromisoformat(str(document_date)),
        tax_date=dt.date.fromisoformat(str(tax_date)) if tax_date else None,
        currency=str(currency),
        total_amount=Decimal(str(total_amount)),
        total_taxable=Decimal(str(total_taxable)),
        total_exempt=Decimal(str(total_exempt)),
        total_tax=Decimal(str(total_tax)),
        lines=lines,
        breakdown=breakdown,
        backend=str(backend),
        last_log=str(last_log),
        updated_at=dt.datetime.fromisoformat(str(updated_at)),
        request=request_from_json(str(request_json)) if request_json else None,
        orders=tuple(json.loads(str(orders_json))),
        invoice_code=str(invoice_code) if invoice_code else None,
    )


class SQLiteStore:
    """Tax documents, event log, unposted queue and offline rates in one SQLite file.

    Safe to share between threads of one process (one connection behind a lock) and between
    processes (WAL; writes take the database lock with ``BEGIN IMMEDIATE``).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout: float = 30.0):
        self.path = Path(path if path is not None else default_path())
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            str(self.path),
            timeout=timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in MIGRATIONS:
                if version in done:
                    continue
                for statement in sql.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, dt.datetime.now(dt.UTC).isoformat()),
                )

    @property
    def schema_version(self) -> int:
        """The highest migration applied to this file."""
        with self._lock:
            row = self._conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
    ) -> None:
        """Write documents, events, a queue change, invoiced orders and what a credit takes
        off its invoice's lines, in one transaction.

        With ``holder``, the queue entry changed must still be claimed by that worker and not
        settled; otherwise :class:`LeaseLost` is raised and nothing is written.
        """
        # rows are built before the write lock is taken: other threads wait only for SQLite
        rows = [_document_rows(doc) for doc in documents]
        event_rows = [
            (
                e.code,
                e.at.isoformat(),
                e.stage.value,
                None if e.flag_before is None else e.flag_before.value,
                e.flag_after.value,
                e.backend,
                e.message,
                int(e.error),
            )
            for e in events
        ]
        with self._write() as conn:
            if holder is not None:
                code = enqueue.code if enqueue is not None else dequeue
                self._check_holder(conn, str(code), holder)
            for document_rows in rows:
                self._write_document(conn, document_rows)
            conn.executemany(
                "INSERT INTO document_events "
                "(code, at, stage, flag_before, flag_after, backend, message, error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                event_rows,
            )
            if enqueue is not None:
                self._write_queue(conn, enqueue)
            if dequeue is not None:
                flag = next((d.flag.value for d in documents if d.code == dequeue), "")
                at = next((e.at for e in events if e.code == dequeue), None)
                conn.execute(
                    "UPDATE unposted_queue SET settled_at = ?, outcome = ?, claimed_by = NULL, "
                    "lease_expires_at = NULL WHERE code = ? AND settled_at IS NULL",
                    ((at or dt.datetime.now(dt.UTC)).isoformat(), flag, dequeue),
                )
            if invoiced is not None:
                self._link_orders(conn, invoiced)
            if credits is not None:
                conn.execute(
                    "DELETE FROM credit_allocations WHERE credit_code = ?", (credits.credit_code,)
                )
                conn.executemany(
                    "INSERT INTO credit_allocations "
                    "(credit_code, seq, invoice_code, invoice_line, amount, tax) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (
                            credits.credit_code,
                            seq,
                            credits.invoice_code,
                            line.invoice_line,
                            str(line.amount),
                            str(line.tax),
                        )
                        for seq, line in enumerate(credits.lines)
                    ],
                )

    def credited(
        self, invoice_code: str, *, excluding: str = ""
    ) -> dict[str, tuple[Decimal, Decimal]]:
        """Invoice line -> (amount, tax) credited so far by claims allocated to it, leaving out
        the credit ``excluding`` (the one being worked out)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT invoice_line, amount, tax FROM credit_allocations "
                "WHERE invoice_code = ? AND credit_code != ?",
                (invoice_code, excluding),
            ).fetchall()
        totals: dict[str, tuple[Decimal, Decimal]] = {}
        for line, amount, tax in rows:
            done_amount, done_tax = totals.get(line, (Decimal(0), Decimal(0)))
            totals[line] = (done_amount + Decimal(amount), done_tax + Decimal(tax))
        return totals

    def _link_orders(self, conn: sqlite3.Connection, link: InvoiceLink) -> None:
        message = f"invoiced as {link.invoice_code}"
        at = link.at.isoformat()
        for code in link.order_codes:
            found = conn.execute(
                "SELECT flag, backend FROM documents WHERE code = ? "
                "AND (invoice_code IS NULL OR invoice_code != ?)",
                (code, link.invoice_code),
            ).fetchone()
            if found is None:
                continue
            conn.execute(
                "INSERT INTO document_events "
                "(code, at, stage, flag_before, flag_after, backend, message, error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                (code, at, Stage.INVOICE.value, found[0], found[0], found[1], message),
            )
            conn.execute(
                "UPDATE documents SET stage = ?, invoice_code = ?, last_log = ?, updated_at = ? "
                "WHERE code = ?",
                (Stage.INVOICE.value, link.invoice_code, message, at, code),
            )

    @staticmethod
    def _write_document(conn: sqlite3.Connection, rows: _DocumentRows) -> None:
        document, lines, breakdown = rows
        code = document[0]
        conn.execute(
            f"INSERT INTO documents ({_DOC_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            f"ON CONFLICT (code) DO UPDATE SET {_DOC_UPDATES}",
            document,
        )
        conn.execute("DELETE FROM document_lines WHERE code = ?", (code,))
        conn.execute("DELETE FROM document_breakdown WHERE code = ?", (code,))
        conn.executemany(
            "INSERT INTO document_lines "
            "(code, seq, number, amount, taxable, exempt, tax, tax_code, rate) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            lines,
        )
        conn.executemany(
            "INSERT INTO document_breakdown "
            "(code, seq, jurisdiction_type, name, region, rate, taxable, exempt, tax) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            breakdown,
        )

    def head(self, code: str) -> DocumentHead | None:
        """Code, kind, stage, flag and invoice code, without lines or request."""
        with self._lock:
            row = self._conn.execute(
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
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_DOC_COLUMNS} FROM documents WHERE code = ?", (code,)
            ).fetchone()
            fetched = None if row is None else self._fetch_parts(row)
        return None if fetched is None else _document(*fetched)

    def documents(
        self,
        *,
        flags: Sequence[FinalTaxFlag] | None = None,
        kind: DocumentKind | None = None,
    ) -> list[TaxDocument]:
        """Stored documents in code order, filtered by flag and kind."""
        sql = f"SELECT {_DOC_COLUMNS} FROM documents WHERE 1=1"
        params: list[str] = []
        if flags is not None:
            sql += f" AND flag IN ({', '.join('?' for _ in flags)})"
            params.extend(flag.value for flag in flags)
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind.value)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY code", params).fetchall()
            fetched = [self._fetch_parts(row) for row in rows]
        return [_document(*parts) for parts in fetched]

    def _fetch_parts(self, row: tuple[Any, ...]) -> tuple[Any, list[Any], list[Any]]:
        """A document row with its line and breakdown rows (under the lock; built later)."""
        code = row[0]
        lines = self._conn.execute(
            "SELECT number, amount, taxable, exempt, tax, tax_code, rate "
            "FROM document_lines WHERE code = ? ORDER BY seq",
            (code,),
        ).fetchall()
        breakdown = self._conn.execute(
            "SELECT jurisdiction_type, name, region, rate, taxable, exempt, tax "
            "FROM document_breakdown WHERE code = ? ORDER BY seq",
            (code,),
        ).fetchall()
        return row, lines, breakdown

    def events(self, code: str) -> list[DocumentEvent]:
        """The document's log, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT code, at, stage, flag_before, flag_after, backend, message, error "
                "FROM document_events WHERE code = ? ORDER BY id",
                (code,),
            ).fetchall()
        return [
            DocumentEvent(
                code=row[0],
                at=dt.datetime.fromisoformat(row[1]),
                stage=Stage(row[2]),
                flag_before=_flag(row[3]),
                flag_after=FinalTaxFlag(row[4]),
                backend=row[5],
                message=row[6],
                error=bool(row[7]),
            )
            for row in rows
        ]

    # -- unposted queue ------------------------------------------------------------------------

    _QUEUE_COLUMNS = (
        "code, attempts, next_attempt_at, last_error_code, last_error_message, retryable, "
        "created_at, updated_at, claimed_by, lease_expires_at, may_have_landed"
    )

    def _write_queue(self, conn: sqlite3.Connection, entry: QueueEntry) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO unposted_queue (code, attempts, next_attempt_at, "
            "last_error_code, last_error_message, retryable, created_at, updated_at, "
            "claimed_by, lease_expires_at, settled_at, outcome, may_have_landed) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, '', ?)",
            (
                entry.code,
                entry.attempts,
                entry.next_attempt_at.isoformat(),
                entry.last_error_code,
                entry.last_error_message,
                int(entry.retryable),
                entry.created_at.isoformat(),
                entry.updated_at.isoformat(),
                int(entry.may_have_landed),
            ),
        )

    @staticmethod
    def _check_holder(conn: sqlite3.Connection, code: str, holder: str) -> None:
        row = conn.execute(
            "SELECT claimed_by, settled_at FROM unposted_queue WHERE code = ?", (code,)
        ).fetchone()
        if row is None or row[1] is not None or row[0] != holder:
            raise LeaseLost(code, holder, None if row is None else row[0])

    def queue(
        self, *, due_at: dt.datetime | None = None, needs_fix: bool | None = None
    ) -> list[QueueEntry]:
        """Open queue entries by next attempt time; with ``due_at``, only those due by then;
        with ``needs_fix``, only those that do (True) or do not (False) need a fix."""
        sql = f"SELECT {self._QUEUE_COLUMNS} FROM unposted_queue WHERE settled_at IS NULL"
        params: list[object] = []
        if due_at is not None:
            sql += " AND next_attempt_at <= ?"
            params.append(due_at.isoformat())
        if needs_fix is not None:
            sql += " AND retryable = ?"
            params.append(int(not needs_fix))
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY next_attempt_at, code", params).fetchall()
        return [self._queue_entry(row) for row in rows]

    def queue_entry(self, code: str) -> QueueEntry | None:
        """The open queue entry of ``code``, or None (never queued, or settled)."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {self._QUEUE_COLUMNS} FROM unposted_queue "
                "WHERE code = ? AND settled_at IS NULL",
                (code,),
            ).fetchone()
        return None if row is None else self._queue_entry(row)

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
        until the lease runs out. Entries another holder leases are left alone."""
        stamp = now.isoformat()
        free = "(claimed_by IS NULL OR lease_expires_at <= ?)"
        if code is not None:
            sql = (
                "SELECT code FROM unposted_queue WHERE settled_at IS NULL AND code = ? "
                f"AND ({free} OR claimed_by = ?)"
            )
            params: list[object] = [code, stamp, holder]
        else:
            # never the holder's own claims: a batch loop must not take an entry twice
            sql = (
                "SELECT code FROM unposted_queue WHERE settled_at IS NULL AND retryable = 1 "
                f"AND next_attempt_at <= ? AND {free} ORDER BY next_attempt_at, code"
            )
            params = [stamp, stamp]
            if limit is not None:
                sql += " LIMIT ?"
                params.append(limit)
        with self._write() as conn:
            codes = [row[0] for row in conn.execute(sql, params).fetchall()]
            # taking over from a worker whose lease ran out: its attempt may have landed
            conn.executemany(
                "UPDATE unposted_queue SET may_have_landed = 1 "
                "WHERE code = ? AND claimed_by IS NOT NULL AND claimed_by != ?",
                [(c, holder) for c in codes],
            )
            conn.executemany(
                "UPDATE unposted_queue SET claimed_by = ?, lease_expires_at = ? WHERE code = ?",
                [(holder, (now + lease).isoformat(), c) for c in codes],
            )
            rows = [
                conn.execute(
                    f"SELECT {self._QUEUE_COLUMNS} FROM unposted_queue WHERE code = ?", (c,)
                ).fetchone()
                for c in codes
            ]
        return [self._queue_entry(row) for row in rows]

    def release(self, code: str, holder: str) -> None:
        """Give a claimed entry back unchanged (a dry run, or a worker stopping early)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE unposted_queue SET claimed_by = NULL, lease_expires_at = NULL "
                "WHERE code = ? AND claimed_by = ?",
                (code, holder),
            )

    def purge(self, settled_before: dt.datetime) -> int:
        """Delete settled queue history older than ``settled_before``; open (U) entries stay."""
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM unposted_queue WHERE settled_at IS NOT NULL AND settled_at < ?",
                (settled_before.isoformat(),),
            )
            return cursor.rowcount

    def settled(self) -> list[tuple[str, str, dt.datetime]]:
        """Queue history: (code, outcome flag, settled at), oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT code, outcome, settled_at FROM unposted_queue "
                "WHERE settled_at IS NOT NULL ORDER BY settled_at, code"
            ).fetchall()
        return [(str(r[0]), str(r[1]), dt.datetime.fromisoformat(str(r[2]))) for r in rows]

    @staticmethod
    def _queue_entry(row: tuple[object, ...]) -> QueueEntry:
        return QueueEntry(
            code=str(row[0]),
            attempts=int(str(row[1])),
            next_attempt_at=dt.datetime.fromisoformat(str(row[2])),
            last_error_code=str(row[3]),
            last_error_message=str(row[4]),
            retryable=bool(row[5]),
            created_at=dt.datetime.fromisoformat(str(row[6])),
            updated_at=dt.datetime.fromisoformat(str(row[7])),
            claimed_by=None if row[8] is None else str(row[8]),
            lease_expires_at=None if row[9] is None else dt.datetime.fromisoformat(str(row[9])),
            may_have_landed=bool(row[10]),
        )

    # -- offline rates -------------------------------------------------------------------------

    def offline_rates(self) -> RateTable:
        """The offline table as stored."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT zip_code, state, county, city, state_rate, state_use_rate, county_rate, "
                "county_use_rate, city_rate, city_use_rate, total_rate, total_use_rate, "
                "shipping_taxable, shipping_and_handling_taxable FROM offline_rates "
                "ORDER BY state, zip_code"
            ).fetchall()
        return RateTable(
            ZipRate(
                zip_code=row[0],
                state=row[1],
                county=row[2],
                city=row[3],
                state_rate=Decimal(row[4]),
                state_use_rate=Decimal(row[5]),
                county_rate=Decimal(row[6]),
                county_use_rate=Decimal(row[7]),
                city_rate=Decimal(row[8]),
                city_use_rate=Decimal(row[9]),
                total_rate=Decimal(row[10]),
                total_use_rate=Decimal(row[11]),
                shipping_taxable=row[12] == "Y",
                shipping_and_handling_taxable=row[13] == "Y",
            )
            for row in rows
        )

    def replace_offline_rates(self, rates: RateTable) -> None:
        """Swap the whole table in one transaction: on any failure the old table stays."""
        placeholders = ", ".join("?" for _ in RATE_COLUMNS)
        with self._write() as conn:
            conn.execute("DELETE FROM offline_rates")
            conn.executemany(
                f"INSERT INTO offline_rates VALUES ({placeholders})",
                (rate.as_row() for rate in rates),
            )

    # -- reference data (end-of-day refresh) -----------------------------------------------

    def replace_reference(self, reference: ReferenceData) -> None:
        """Replace the refreshed tables in one transaction: a failure keeps yesterday's."""
        placeholders = ", ".join("?" for _ in RATE_COLUMNS)
        with self._write() as conn:
            if reference.tax_codes is not None:
                conn.execute("DELETE FROM reference_tax_codes")
                conn.executemany(
                    "INSERT INTO reference_tax_codes VALUES (?)",
                    [(code,) for code in sorted(reference.tax_codes)],
                )
            if reference.entity_use_codes is not None:
                conn.execute("DELETE FROM reference_entity_use_codes")
                conn.executemany(
                    "INSERT INTO reference_entity_use_codes VALUES (?, ?)",
                    sorted(reference.entity_use_codes.items()),
                )
            if reference.nexus is not None:
                conn.execute("DELETE FROM reference_nexus")
                conn.executemany(
                    "INSERT INTO reference_nexus VALUES (?, ?)",
                    [
                        (company, region)
                        for company, regions in sorted(reference.nexus.items())
                        for region in sorted(regions)
                    ],
                )
            if reference.rates is not None:
                conn.execute("DELETE FROM offline_rates")
                conn.executemany(
                    f"INSERT INTO offline_rates VALUES ({placeholders})",
                    (rate.as_row() for rate in reference.rates),
                )
            if reference.as_of is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('refreshed_as_of', ?)",
                    (reference.as_of.isoformat(),),
                )

    def active_tax_codes(self) -> frozenset[str] | None:
        """The refreshed active tax codes, or None before the first refresh."""
        with self._lock:
            rows = self._conn.execute("SELECT code FROM reference_tax_codes").fetchall()
        return frozenset(row[0] for row in rows) or None

    def entity_use_codes(self) -> dict[str, str]:
        """The refreshed entity use codes and descriptions."""
        with self._lock:
            rows = self._conn.execute("SELECT code, description FROM reference_entity_use_codes")
            return dict(rows.fetchall())

    def nexus(self, company_code: str) -> frozenset[str]:
        """The refreshed nexus regions of a company (empty before the first refresh)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT region FROM reference_nexus WHERE company_code = ?", (company_code,)
            ).fetchall()
        return frozenset(row[0] for row in rows)

    # -- exemption database ------------------------------------------------------------------

    def save_exemption(self, exemption: Exemption) -> None:
        """Add or replace an exemption (keyed by customer, region and effective date)."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO exemptions VALUES (?, ?, ?, ?, ?, ?)",
                (
                    exemption.customer_code,
                    exemption.region,
                    exemption.effective.isoformat(),
                    exemption.exemption_no,
                    exemption.entity_use_code,
                    exemption.expiry.isoformat() if exemption.expiry else None,
                ),
            )

    def delete_exemption(self, customer_code: str, region: str, effective: dt.date) -> bool:
        """Remove an exemption; False when there was none."""
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM exemptions WHERE customer_code = ? AND region = ? AND effective = ?",
                (customer_code, region, effective.isoformat()),
            )
            return cursor.rowcount > 0

    def exemptions(self, customer_code: str | None = None) -> list[Exemption]:
        """Exemptions of one customer (or all), by customer, region and effective date."""
        sql = (
            "SELECT customer_code, region, effective, exemption_no, entity_use_code, expiry "
            "FROM exemptions"
        )
        params: tuple[str, ...] = ()
        if customer_code is not None:
            sql += " WHERE customer_code = ?"
            params = (customer_code,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY 1, 2, 3", params).fetchall()
        return [
            Exemption(
                customer_code=row[0],
                region=row[1],
                effective=dt.date.fromisoformat(row[2]),
                exemption_no=row[3],
                entity_use_code=row[4],
                expiry=dt.date.fromisoformat(row[5]) if row[5] else None,
            )
            for row in rows
        ]

    # -- meta ----------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A store-level setting, or None."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a store-level setting."""
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
