"""The embedded store: one SQLite file in WAL mode, schema versioned by a migrations table."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from attrs import frozen

from taxbridge._toml import TableReader
from taxbridge.errors import ConcurrentChange, ConfigError, LeaseLost, StoreError
from taxbridge.flags import FinalTaxFlag
from taxbridge.models import (
    DocumentEvent,
    DocumentKind,
    Exemption,
    Stage,
    TaxDocument,
)
from taxbridge.rates import RateTable, ZipRate
from taxbridge.store import _ledger_sql as _ledger
from taxbridge.store._codec import (
    CREDIT_COLUMNS,
    DOCUMENT_COLUMNS,
    EVENT_COLUMNS,
    EXEMPTION_COLUMNS,
    LINE_COLUMNS,
    LINE_READ_COLUMNS,
    QUEUE_COLUMNS,
    DocumentRows,
    credit_rows,
    credited_totals,
    document_from_rows,
    document_rows,
    event_from_row,
    event_row,
    exemption_from_row,
    exemption_row,
    queue_entry_from_row,
    queue_row,
)
from taxbridge.store._sqlite_file import DEFAULT_PATH, connect, default_path, failure
from taxbridge.store._sqlite_reference import (
    delete_exemption,
    exemption_rows,
    replace_reference,
)
from taxbridge.store.base import (
    CreditAllocation,
    DocumentHead,
    Expected,
    InvoiceLink,
    QueueEntry,
    ReferenceData,
    SettledEntry,
)

_DOC_UPDATES = ", ".join(
    f"{name} = excluded.{name}" for name in DOCUMENT_COLUMNS.split(", ") if name != "code"
)
_DOC_PLACEHOLDERS = ", ".join("?" for _ in DOCUMENT_COLUMNS.split(", "))
_LINE_PLACEHOLDERS = ", ".join("?" for _ in LINE_COLUMNS.split(", "))


class SQLiteStore(_ledger.LedgerMixin, _ledger.ExportsMixin):
    """Tax documents, event log, unposted queue and offline rates in one SQLite file.

    Safe to share between threads of one process (one connection behind a lock) and between
    processes (WAL; writes take the database lock with ``BEGIN IMMEDIATE``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        timeout: float = 30.0,
        create: bool = True,
    ):
        raw = os.fspath(path) if path is not None else default_path()
        if not str(raw).strip() or "\x00" in str(raw):
            raise StoreError("the store path is empty or holds a NUL character", path=repr(raw))
        self.path = Path(raw)
        self._conn = connect(self.path, timeout, create=create)
        self._lock = threading.RLock()

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _read(self, doing: str = "cannot read the store") -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except (sqlite3.Error, OSError) as exc:
                raise failure(exc, self.path, doing) from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except (sqlite3.Error, OSError) as exc:
                raise failure(exc, self.path, "cannot write the store") from exc

    @property
    def schema_version(self) -> int:
        """The highest migration applied to this file."""
        with self._read() as conn:
            row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
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
        expected: Expected | None = None,
    ) -> None:
        """Write documents, events, a queue change, invoiced orders and what a credit takes
        off its invoice's lines, in one transaction.

        With ``holder``, the queue entry changed must still be claimed by that worker and not
        settled; with ``expected``, each document must still have the flag and invoice link the
        stage read. Otherwise :class:`LeaseLost` or :class:`ConcurrentChange` is raised and
        nothing is written.
        """
        # rows are built before the write lock is taken: other threads wait only for SQLite
        rows = [document_rows(doc) for doc in documents]
        event_rows = [event_row(e) for e in events]
        with self._write() as conn:
            if holder is not None:
                code = enqueue.code if enqueue is not None else dequeue
                self._check_holder(conn, str(code), holder)
            if expected is not None:
                for doc in documents:
                    self._check_expected(conn, doc.code, expected)
            for written in rows:
                self._write_document(conn, written)
            conn.executemany(
                f"INSERT INTO document_events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
                    f"INSERT INTO credit_allocations ({CREDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                    credit_rows(credits),
                )

    def credited(
        self, invoice_code: str, *, excluding: str = ""
    ) -> dict[str, tuple[Decimal, Decimal]]:
        """Invoice line -> (amount, tax) credited so far by claims allocated to it, leaving out
        the credit ``excluding`` (the one being worked out)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT invoice_line, amount, tax FROM credit_allocations "
                "WHERE invoice_code = ? AND credit_code != ?",
                (invoice_code, excluding),
            ).fetchall()
        return credited_totals(rows)

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
    def _write_document(conn: sqlite3.Connection, rows: DocumentRows) -> None:
        document, lines, breakdown = rows
        code = document[0]
        conn.execute(
            f"INSERT INTO documents ({DOCUMENT_COLUMNS}) "
            f"VALUES ({_DOC_PLACEHOLDERS}) "
            f"ON CONFLICT (code) DO UPDATE SET {_DOC_UPDATES}",
            document,
        )
        conn.execute("DELETE FROM document_lines WHERE code = ?", (code,))
        conn.execute("DELETE FROM document_breakdown WHERE code = ?", (code,))
        conn.executemany(
            f"INSERT INTO document_lines ({LINE_COLUMNS}) VALUES ({_LINE_PLACEHOLDERS})",
            lines,
        )
        conn.executemany(
            "INSERT INTO document_breakdown "
            "(code, seq, jurisdiction_type, name, region, rate, taxable, exempt, tax) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            breakdown,
        )

    def allocation(self, credit_code: str) -> CreditAllocation | None:
        """What a credit takes off its invoice's lines, or None."""
        with self._read() as conn:
            return _ledger.read_allocation(conn, credit_code)

    def head(self, code: str) -> DocumentHead | None:
        """Code, kind, stage, flag and invoice code, without lines or request."""
        with self._read() as conn:
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
            fetched = None if row is None else self._fetch_parts(row)
        return None if fetched is None else document_from_rows(*fetched)

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
            sql += f" AND flag IN ({', '.join('?' for _ in flags)})"
            params.extend(flag.value for flag in flags)
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind.value)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY code", params).fetchall()
            fetched = [self._fetch_parts(row) for row in rows]
        return [document_from_rows(*parts) for parts in fetched]

    def _fetch_parts(self, row: tuple[Any, ...]) -> tuple[Any, list[Any], list[Any]]:
        """A document row with its line and breakdown rows (under the lock; built later)."""
        code = row[0]
        lines = self._conn.execute(
            f"SELECT {LINE_READ_COLUMNS} FROM document_lines WHERE code = ? ORDER BY seq",
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
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM document_events WHERE code = ? ORDER BY id",
                (code,),
            ).fetchall()
        return [event_from_row(row) for row in rows]

    # -- unposted queue ------------------------------------------------------------------------

    def _write_queue(self, conn: sqlite3.Connection, entry: QueueEntry) -> None:
        conn.execute(
            f"INSERT OR REPLACE INTO unposted_queue ({QUEUE_COLUMNS}, settled_at, outcome) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, '')",
            queue_row(entry),
        )

    @staticmethod
    def _check_expected(conn: sqlite3.Connection, code: str, expected: Expected) -> None:
        row = conn.execute(
            "SELECT flag, invoice_code FROM documents WHERE code = ?", (code,)
        ).fetchone()
        found = Expected(None) if row is None else Expected(FinalTaxFlag(row[0]), row[1] or None)
        if found != expected:
            raise ConcurrentChange(code, expected.describe(), found.describe())

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
        sql = f"SELECT {QUEUE_COLUMNS} FROM unposted_queue WHERE settled_at IS NULL"
        params: list[object] = []
        if due_at is not None:
            sql += " AND next_attempt_at <= ?"
            params.append(due_at.isoformat())
        if needs_fix is not None:
            sql += " AND retryable = ?"
            params.append(int(not needs_fix))
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY next_attempt_at, code", params).fetchall()
        return [queue_entry_from_row(row) for row in rows]

    def queue_entry(self, code: str) -> QueueEntry | None:
        """The open queue entry of ``code``, or None (never queued, or settled)."""
        with self._read() as conn:
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
                "ORDER BY next_attempt_at, code"
            )
            params = [stamp, stamp]
            if limit is not None:
                sql += " LIMIT ?"
                params.append(limit)
        with self._write() as conn:
            found = conn.execute(sql, params).fetchall()
            conn.executemany(
                "UPDATE unposted_queue SET claimed_by = ?, lease_expires_at = ? WHERE code = ?",
                [(holder, (now + lease).isoformat(), c) for c, _ in found],
            )
            rows = [
                (
                    conn.execute(
                        f"SELECT {QUEUE_COLUMNS} FROM unposted_queue WHERE code = ?", (c,)
                    ).fetchone(),
                    None if previous in (None, holder) else str(previous),
                )
                for c, previous in found
            ]
        return [queue_entry_from_row(row, taken_over_from=previous) for row, previous in rows]

    def purge(self, settled_before: dt.datetime) -> int:
        """Delete settled queue history older than ``settled_before``; open (U) entries stay."""
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM unposted_queue WHERE settled_at IS NOT NULL AND settled_at < ?",
                (settled_before.isoformat(),),
            )
            return cursor.rowcount

    def settled(self) -> list[SettledEntry]:
        """Queue history: entries settled R or M and not yet purged, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT code, outcome, settled_at FROM unposted_queue "
                "WHERE settled_at IS NOT NULL ORDER BY settled_at, code"
            ).fetchall()
        return [
            SettledEntry(str(r[0]), str(r[1]), dt.datetime.fromisoformat(str(r[2]))) for r in rows
        ]

    # -- reference data (end-of-day refresh) and the offline rates ---------------------------

    def offline_rates(self) -> RateTable:
        """The offline table as stored."""
        with self._read() as conn:
            rows = conn.execute("SELECT * FROM offline_rates ORDER BY state, zip_code").fetchall()
        return RateTable(ZipRate.from_row(row) for row in rows)

    def replace_reference(self, reference: ReferenceData) -> None:
        """Replace the refreshed tables in one transaction: a failure keeps yesterday's."""
        with self._write() as conn:
            replace_reference(conn, reference)

    def active_tax_codes(self) -> frozenset[str] | None:
        """The refreshed active tax codes, or None before the first refresh."""
        with self._read() as conn:
            rows = conn.execute("SELECT code FROM reference_tax_codes").fetchall()
        return frozenset(row[0] for row in rows) or None

    def entity_use_codes(self) -> dict[str, str]:
        """The refreshed entity use codes and descriptions."""
        with self._read() as conn:
            rows = conn.execute("SELECT code, description FROM reference_entity_use_codes")
            return dict(rows.fetchall())

    def nexus(self, company_code: str) -> frozenset[str]:
        """The refreshed nexus regions of a company (empty before the first refresh)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT region FROM reference_nexus WHERE company_code = ?", (company_code,)
            ).fetchall()
        return frozenset(row[0] for row in rows)

    # -- exemption database ------------------------------------------------------------------

    def save_exemption(self, exemption: Exemption) -> None:
        """Add or replace an exemption (keyed by customer, region and effective date)."""
        self.save_exemptions([exemption])

    def save_exemptions(self, exemptions: Sequence[Exemption]) -> None:
        """Add or replace exemptions in one transaction."""
        with self._write() as conn:
            conn.executemany(
                f"INSERT OR REPLACE INTO exemptions ({EXEMPTION_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [exemption_row(exemption) for exemption in exemptions],
            )

    def delete_exemption(self, customer_code: str, region: str, effective: dt.date) -> bool:
        """Remove an exemption; False when there was none."""
        with self._write() as conn:
            return delete_exemption(conn, customer_code, region, effective)

    def exemptions(self, customer_code: str | None = None) -> list[Exemption]:
        """Exemptions of one customer (or all), by customer, region and effective date."""
        with self._read() as conn:
            return [exemption_from_row(row) for row in exemption_rows(conn, customer_code)]

    def get_meta(self, key: str) -> str | None:
        """A store-level setting, or None."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a store-level setting."""
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


@frozen
class SQLiteSettings:
    """``[store]`` of the SQLite store: the file (a relative path is taken from the config
    file's folder) and how long a writer waits for another process's lock."""

    path: str = DEFAULT_PATH
    timeout: float = 30.0

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path.strip() or "\x00" in self.path:
            raise _bad("path", self.path, "must be a file path")
        number = isinstance(self.timeout, (int, float)) and not isinstance(self.timeout, bool)
        if not number or self.timeout <= 0:
            raise _bad("timeout", self.timeout, "is not a number of seconds > 0")


def _bad(field: str, value: Any, reason: str) -> ConfigError:
    message = f"{value!r} {reason}"
    return ConfigError(message, key=f"SQLiteSettings.{field}", value=value, field=field)


class SQLitePlugin:
    """The ``sqlite`` store kind: ``[store] path`` (default ``taxbridge.db``), ``timeout``."""

    kind = "sqlite"

    def settings(self, table: Mapping[str, Any], read: TableReader) -> SQLiteSettings:
        """Read ``path`` and ``timeout``."""
        data = read.table(dict(table), "store", {"path", "timeout"})
        path = read.string(data, "path", "store.path", DEFAULT_PATH)
        if read.base is not None and path != ":memory:" and not Path(path).is_absolute():
            path = str(read.base / path)
        timeout = read.seconds(data, "timeout", "store.timeout") if "timeout" in data else 30.0
        return read.build("store", SQLiteSettings, path=path, timeout=timeout)

    def check(self, settings: Any) -> SQLiteSettings:
        """None: the default file (``TAXBRIDGE_DB`` or taxbridge.db)."""
        if settings is None:
            return SQLiteSettings(default_path())
        if not isinstance(settings, SQLiteSettings):
            raise ConfigError(
                f"{settings!r} is not SQLiteSettings", key="store_settings", value=settings
            )
        return settings

    def beside(self, settings: Any, name: str) -> str | None:
        """``<store stem>-<name>.db`` in the store file's folder; None for ``:memory:``."""
        checked = self.check(settings)
        if checked.path == ":memory:":
            return None
        path = Path(checked.path)
        return str(path.with_name(f"{path.stem}-{name}.db"))

    def open(self, settings: Any, *, create: bool = True) -> SQLiteStore:
        """Open the file (created when missing, if ``create``) and bring its schema up to date."""
        checked = self.check(settings)
        return SQLiteStore(checked.path, timeout=checked.timeout, create=create)


PLUGIN = SQLitePlugin()
