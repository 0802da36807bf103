"""The store for several ERP servers: PostgreSQL through psycopg 3 and a connection pool, one
shared unposted queue claimed with ``FOR UPDATE SKIP LOCKED``.

Every call is one transaction on a pooled connection. Writers of a document serialise on a
transaction-scoped advisory lock per code, so a stage's "still as I read it" check holds across
servers as SQLite's database lock holds it on one. A lost connection or a pool that cannot hand
one out is a :class:`~taxbridge.errors.StoreError` marked ``busy`` (the same call may pass
later); nothing is half-written. Needs the ``postgres`` extra (``taxbridge[postgres]``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from attrs import frozen

from taxbridge._toml import TableReader
from taxbridge.errors import ConcurrentChange, ConfigError, LeaseLost, StoreError
from taxbridge.flags import FinalTaxFlag
from taxbridge.models import DocumentEvent, DocumentKind, Exemption, Stage, TaxDocument
from taxbridge.rates import RateTable, ZipRate
from taxbridge.store import _ledger_sql as _ledger
from taxbridge.store import _pg_sql as _sql
from taxbridge.store._codec import (
    DOCUMENT_COLUMNS,
    EVENT_COLUMNS,
    EXEMPTION_COLUMNS,
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
from taxbridge.store._ledger_sql import ExportsMixin, LedgerMixin
from taxbridge.store._sqlite_reference import delete_exemption, exemption_rows, replace_reference
from taxbridge.store.base import (
    CreditAllocation,
    DocumentHead,
    Expected,
    InvoiceLink,
    QueueEntry,
    ReferenceData,
    SettledEntry,
)

LATEST = _sql.LATEST


class PostgresStore(LedgerMixin, ExportsMixin):
    """Tax documents, event log, the shared unposted queue, reference data, exemptions and
    the ledger in one PostgreSQL database."""

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        pool_min: int = 1,
        pool_max: int = 10,
        timeout: float = 30.0,
        create: bool = True,
    ):
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError as exc:
            raise StoreError(
                "the PostgreSQL store needs psycopg: pip install 'taxbridge[postgres]'",
                path=_shown(url),
            ) from exc
        self._psycopg = psycopg
        self.url = _shown(url)
        extra: dict[str, Any] = {"connect_timeout": max(1, int(timeout)), "autocommit": True}
        if password:
            extra["password"] = password
        try:
            self._pool = ConnectionPool(
                url, min_size=pool_min, max_size=pool_max, timeout=timeout, kwargs=extra,
                open=False,
            )  # fmt: skip
            self._pool.open(wait=True, timeout=timeout)
        except Exception as exc:
            raise StoreError(f"cannot connect: {_reason(exc)}", path=self.url, busy=True) from exc
        try:
            with self._write() as conn:
                _sql.migrate(conn, create=create, where=self.url)
        except BaseException:
            self._pool.close()
            raise

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _read(self, doing: str = "cannot read the store") -> Iterator[_sql.Connection]:
        """A read of several statements, in one transaction (one snapshot)."""
        with self._transaction(doing) as conn:
            yield conn

    @contextmanager
    def _read_one(self) -> Iterator[_sql.Connection]:
        """A read of one statement: no transaction around it (one round trip, not three)."""
        with self._transaction("cannot read the store", transaction=False) as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[_sql.Connection]:
        with self._transaction("cannot write the store") as conn:
            yield conn

    @contextmanager
    def _transaction(self, doing: str, *, transaction: bool = True) -> Iterator[_sql.Connection]:
        psycopg = self._psycopg
        from psycopg_pool import PoolTimeout

        try:
            with self._pool.connection() as raw:
                if transaction:
                    with raw.transaction():
                        yield _sql.Connection(raw)
                else:
                    yield _sql.Connection(raw)
        except PoolTimeout as exc:
            raise StoreError(
                f"{doing}: no connection free ({exc})", path=self.url, busy=True
            ) from exc
        except psycopg.OperationalError as exc:
            raise StoreError(f"{doing}: {_reason(exc)}", path=self.url, busy=True) from exc
        except psycopg.Error as exc:
            raise StoreError(f"{doing}: {_reason(exc)}", path=self.url) from exc

    @property
    def schema_version(self) -> int:
        """The highest migration applied to this database."""
        with self._read() as conn:
            row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        """Close the pool's connections."""
        self._pool.close()

    def __enter__(self) -> PostgresStore:
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
        """Write documents, events, a queue change, invoiced orders and what a credit takes off
        its invoice in one transaction, under the advisory locks of every code it touches."""
        rows = [document_rows(doc) for doc in documents]
        event_rows = [event_row(e) for e in events]
        codes = {doc.code for doc in documents} | set(invoiced.order_codes if invoiced else ())
        codes |= {code for code in (dequeue, enqueue.code if enqueue else None) if code}
        with self._write() as conn:
            if codes:
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(c)) "
                    "FROM unnest(?::text[]) AS c ORDER BY c",
                    (sorted(codes),),
                )
            if holder is not None:
                self._check_holder(conn, str(enqueue.code if enqueue else dequeue), holder)
            if expected is not None:
                for doc in documents:
                    self._check_expected(conn, doc.code, expected)
            with conn.raw.pipeline():
                self._write_rows(conn, rows, event_rows, enqueue, dequeue, documents, events)
                if invoiced is not None:
                    _sql.link_orders(conn, invoiced)
                if credits is not None:
                    conn.execute(
                        "DELETE FROM credit_allocations WHERE credit_code = ?",
                        (credits.credit_code,),
                    )
                    conn.executemany(_sql.CREDIT_INSERT, credit_rows(credits))

    @staticmethod
    def _write_rows(
        conn: _sql.Connection,
        rows: list[DocumentRows],
        event_rows: list[tuple[Any, ...]],
        enqueue: QueueEntry | None,
        dequeue: str | None,
        documents: Sequence[TaxDocument],
        events: Sequence[DocumentEvent],
    ) -> None:
        """The writes of a save, sent without waiting for each answer (a pipeline)."""
        for document, lines, breakdown in rows:
            conn.execute(_sql.DOC_UPSERT, document)
            conn.execute("DELETE FROM document_lines WHERE code = ?", (document[0],))
            conn.execute("DELETE FROM document_breakdown WHERE code = ?", (document[0],))
            conn.executemany(_sql.LINE_INSERT, lines)
            conn.executemany(_sql.BREAKDOWN_INSERT, breakdown)
        conn.executemany(_sql.EVENT_INSERT, event_rows)
        if enqueue is not None:
            conn.execute(_sql.QUEUE_UPSERT, queue_row(enqueue))
        if dequeue is not None:
            flag = next((d.flag.value for d in documents if d.code == dequeue), "")
            at = next((e.at for e in events if e.code == dequeue), None)
            conn.execute(
                "UPDATE unposted_queue SET settled_at = ?, outcome = ?, claimed_by = NULL, "
                "lease_expires_at = NULL WHERE code = ? AND settled_at IS NULL",
                ((at or dt.datetime.now(dt.UTC)).isoformat(), flag, dequeue),
            )

    @staticmethod
    def _check_expected(conn: _sql.Connection, code: str, expected: Expected) -> None:
        row = conn.execute(
            "SELECT flag, invoice_code FROM documents WHERE code = ?", (code,)
        ).fetchone()
        found = Expected(None) if row is None else Expected(FinalTaxFlag(row[0]), row[1] or None)
        if found != expected:
            raise ConcurrentChange(code, expected.describe(), found.describe())

    @staticmethod
    def _check_holder(conn: _sql.Connection, code: str, holder: str) -> None:
        row = conn.execute(
            "SELECT claimed_by, settled_at FROM unposted_queue WHERE code = ? FOR UPDATE", (code,)
        ).fetchone()
        if row is None or row[1] is not None or row[0] != holder:
            raise LeaseLost(code, holder, None if row is None else row[0])

    def credited(
        self, invoice_code: str, *, excluding: str = ""
    ) -> dict[str, tuple[Decimal, Decimal]]:
        """Invoice line -> (amount, tax) credited so far, leaving out ``excluding``."""
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
            return _ledger.read_allocation(conn, credit_code)

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
            row[0], DocumentKind(row[1]), Stage(row[2]), FinalTaxFlag(row[3]), row[4]
        )

    def get(self, code: str) -> TaxDocument | None:
        """The stored document, with lines, breakdown and request."""
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {DOCUMENT_COLUMNS} FROM documents WHERE code = ?", (code,)
            ).fetchone()
            fetched = None if row is None else _sql.parts(conn, row)
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
            sql += f" AND flag IN ({', '.join('?' for _ in flags)})" if flags else " AND false"
            params.extend(flag.value for flag in flags)
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind.value)
        with self._read() as conn:
            rows = conn.execute(sql + ' ORDER BY code COLLATE "C"', params).fetchall()
            fetched = [_sql.parts(conn, row) for row in rows]
        return [document_from_rows(*parts) for parts in fetched]

    def events(self, code: str) -> list[DocumentEvent]:
        """The document's log, oldest first."""
        with self._read_one() as conn:
            rows = conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM document_events WHERE code = ? ORDER BY id", (code,)
            ).fetchall()
        return [event_from_row(row) for row in rows]

    # -- the shared unposted queue -------------------------------------------------------------

    def queue(
        self, *, due_at: dt.datetime | None = None, needs_fix: bool | None = None
    ) -> list[QueueEntry]:
        """Open queue entries by next attempt time; ``due_at`` and ``needs_fix`` filter."""
        sql = f"SELECT {QUEUE_COLUMNS} FROM unposted_queue WHERE settled_at IS NULL"
        params: list[object] = []
        if due_at is not None:
            sql += " AND next_attempt_at <= ?"
            params.append(due_at.isoformat())
        if needs_fix is not None:
            sql += " AND retryable = ?"
            params.append(int(not needs_fix))
        with self._read_one() as conn:
            rows = conn.execute(sql + ' ORDER BY next_attempt_at, code COLLATE "C"', params)
            return [queue_entry_from_row(row) for row in rows.fetchall()]

    def queue_entry(self, code: str) -> QueueEntry | None:
        """The open queue entry of ``code``, or None."""
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
        """Lease due retryable entries (or the one ``code``) to ``holder``: rows another server
        is claiming this instant are skipped (``SKIP LOCKED``), never waited for or doubled."""
        stamp = now.isoformat()
        free = "(claimed_by IS NULL OR lease_expires_at <= ?)"
        if code is not None:
            sql = (
                "SELECT code, claimed_by FROM unposted_queue WHERE settled_at IS NULL "
                f"AND code = ? AND ({free} OR claimed_by = ?) FOR UPDATE SKIP LOCKED"
            )
            params: list[object] = [code, stamp, holder]
        else:
            sql = (
                "SELECT code, claimed_by FROM unposted_queue WHERE settled_at IS NULL "
                f"AND retryable = 1 AND next_attempt_at <= ? AND {free} "
                'ORDER BY next_attempt_at, code COLLATE "C"'
            )
            params = [stamp, stamp]
            if limit is not None:
                sql += " LIMIT ?"
                params.append(limit)
            sql += " FOR UPDATE SKIP LOCKED"
        until = (now + lease).isoformat()
        with self._write() as conn:
            found = conn.execute(sql, params).fetchall()
            conn.executemany(
                "UPDATE unposted_queue SET claimed_by = ?, lease_expires_at = ? WHERE code = ?",
                [(holder, until, c) for c, _ in found],
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
        """Delete settled queue history older than ``settled_before``; open entries stay."""
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
                'WHERE settled_at IS NOT NULL ORDER BY settled_at, code COLLATE "C"'
            ).fetchall()
        return [SettledEntry(r[0], r[1], dt.datetime.fromisoformat(r[2])) for r in rows]

    # -- reference data and the exemption database ---------------------------------------------

    def offline_rates(self) -> RateTable:
        """The offline table as stored."""
        with self._read_one() as conn:
            rows = conn.execute(
                'SELECT * FROM offline_rates ORDER BY state, zip_code COLLATE "C"'
            ).fetchall()
        return RateTable(ZipRate.from_row(row) for row in rows)

    def replace_reference(self, reference: ReferenceData) -> None:
        """Replace the refreshed tables in one transaction: a failure keeps yesterday's."""
        with self._write() as conn:
            # servers starting together seed the offline table once each, one after the other
            conn.execute("SELECT pg_advisory_xact_lock(?)", (_sql.REFERENCE_LOCK,))
            replace_reference(conn, reference)

    def active_tax_codes(self) -> frozenset[str] | None:
        """The refreshed active tax codes, or None before the first refresh."""
        with self._read_one() as conn:
            rows = conn.execute("SELECT code FROM reference_tax_codes").fetchall()
        return frozenset(row[0] for row in rows) or None

    def entity_use_codes(self) -> dict[str, str]:
        """The refreshed entity use codes and descriptions."""
        with self._read_one() as conn:
            return dict(
                conn.execute("SELECT code, description FROM reference_entity_use_codes").fetchall()
            )

    def nexus(self, company_code: str) -> frozenset[str]:
        """The refreshed nexus regions of a company."""
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
            found = exemption_rows(conn, customer_code)
        return [exemption_from_row(row) for row in found]

    def get_meta(self, key: str) -> str | None:
        """A store-level setting, or None."""
        with self._read_one() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a store-level setting."""
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def _shown(url: str) -> str:
    """The URL without any password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def _reason(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@frozen
class PostgresSettings:
    """``[store]`` of the PostgreSQL store: the database ``url`` (no password in it: the
    password comes from the environment variable ``password_env``, else libpq's own
    ``PGPASSWORD`` / ``.pgpass``), the pool's size, and how long a call waits for a connection."""

    url: str
    password_env: str = ""
    pool_min: int = 1
    pool_max: int = 10
    timeout: float = 30.0

    def __attrs_post_init__(self) -> None:
        parts = urlsplit(self.url) if isinstance(self.url, str) else None
        if parts is None or parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise _bad("url", self.url, "is not a postgresql://host/database URL")
        if parts.password is not None:
            raise _bad(
                "url", _shown(self.url), "holds a password: name an environment variable in "
                "password_env (or use PGPASSWORD / .pgpass)",
            )  # fmt: skip
        for name in ("pool_min", "pool_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _bad(name, value, "is not a whole number >= 1")
        if self.pool_min > self.pool_max:
            raise _bad("pool_min", self.pool_min, f"is more than pool_max {self.pool_max}")
        number = isinstance(self.timeout, (int, float)) and not isinstance(self.timeout, bool)
        if not number or self.timeout <= 0:
            raise _bad("timeout", self.timeout, "is not a number of seconds > 0")

    def password(self) -> str | None:
        """The password from ``password_env`` (None: libpq finds its own)."""
        if not self.password_env:
            return None
        value = os.environ.get(self.password_env)
        if not value:
            raise ConfigError(
                f"the environment variable {self.password_env} is not set",
                key="store.password_env",
                value=self.password_env,
            )
        return value


def _bad(field: str, value: Any, reason: str) -> ConfigError:
    return ConfigError(
        f"{value!r} {reason}", key=f"PostgresSettings.{field}", value=value, field=field
    )


class PostgresPlugin:
    """The ``postgres`` store kind: ``[store] url``, ``password_env``, ``pool_min``,
    ``pool_max``, ``timeout``."""

    kind = "postgres"

    def settings(self, table: Mapping[str, Any], read: TableReader) -> PostgresSettings:
        """Read the keys."""
        keys = {"url", "password_env", "pool_min", "pool_max", "timeout"}
        data = read.table(dict(table), "store", keys)
        return read.build(
            "store",
            PostgresSettings,
            url=read.required_string(data, "url", "store.url"),
            password_env=read.string(data, "password_env", "store.password_env", ""),
            pool_min=read.integer(data, "pool_min", "store.pool_min", 1),
            pool_max=read.integer(data, "pool_max", "store.pool_max", 10),
            timeout=read.seconds(data, "timeout", "store.timeout") if "timeout" in data else 30.0,
        )

    def check(self, settings: Any) -> PostgresSettings:
        """Settings must be given: there is no default database."""
        if not isinstance(settings, PostgresSettings):
            raise ConfigError(
                f"{settings!r} is not PostgresSettings", key="store_settings", value=settings
            )
        return settings

    def beside(self, settings: Any, name: str) -> str | None:
        """A server store has no folder: None."""
        return None

    def open(self, settings: Any, *, create: bool = True) -> PostgresStore:
        """Connect the pool and bring the schema up to date."""
        checked = self.check(settings)
        return PostgresStore(
            checked.url,
            password=checked.password(),
            pool_min=checked.pool_min,
            pool_max=checked.pool_max,
            timeout=checked.timeout,
            create=create,
        )


PLUGIN = PostgresPlugin()
