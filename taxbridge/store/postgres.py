"""The store for several ERP servers: PostgreSQL through psycopg 3 and a connection pool, one
shared unposted queue claimed with ``FOR UPDATE SKIP LOCKED``.

Every call is one transaction on a pooled connection. Writers of a document serialise on a
transaction-scoped advisory lock per code, so a stage's "still as I read it" check holds across
servers as SQLite's database lock holds it on one. A lost connection or a pool that cannot hand
one out is a :class:`~taxbridge.errors.StoreError` marked ``busy`` (the same call may pass
later); nothing is half-written. Needs the ``postgres`` extra (``taxbridge[postgres]``).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from attrs import frozen

from taxbridge._toml import TableReader
from taxbridge.errors import ConfigError, StoreError
from taxbridge.models import TaxDocument
from taxbridge.store import _pg_sql as _sql
from taxbridge.store._codec import document_from_rows
from taxbridge.store._ledger_sql import Runner
from taxbridge.store._sql_store import SQLStore
from taxbridge.store.base import Refusal, Write
from taxbridge.store.urls import shown_url, url_secret

LATEST = _sql.LATEST
logging.getLogger("psycopg").addHandler(logging.NullHandler())
"""The driver and its pool log like the library: nothing until the host configures logging."""
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
"""A NUL character as JSON writes it (``\\u0000`` after an even run of backslashes)."""


class PostgresStore(SQLStore):
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
        unfinished_ok: bool = False,
    ):
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError as exc:
            raise StoreError(
                "the PostgreSQL store needs psycopg: pip install 'taxbridge[postgres]'",
                path=shown_url(url),
            ) from exc
        self._psycopg = psycopg
        self.url = shown_url(url)
        secret = url_secret(url)
        if secret is not None:
            raise StoreError(
                f"the URL holds a password in {secret}: give it with password= (or "
                "PGPASSWORD / .pgpass), never in the URL",
                path=self.url,
            )
        extra: dict[str, Any] = {"connect_timeout": max(1, int(timeout)), "autocommit": True}
        if password:
            extra["password"] = password
        try:  # one connection first: a wrong password or a stopped server is said at once
            psycopg.connect(url, **extra).close()
        except psycopg.Error as exc:
            reason = _reason(exc)
            raise StoreError(
                f"cannot connect: {reason}", path=self.url, busy="authentication" not in reason
            ) from exc
        try:
            self._pool = ConnectionPool(
                url, min_size=pool_min, max_size=pool_max, timeout=timeout, kwargs=extra,
                open=False, check=ConnectionPool.check_connection,
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
        if not unfinished_ok:
            self.refuse_unfinished(self.url)

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _read(self, doing: str = "cannot read the store") -> Iterator[_sql.Connection]:
        """A read of several statements, in one read-only REPEATABLE READ transaction: one
        snapshot (under READ COMMITTED each statement would see the commits before it)."""
        with self._transaction(doing) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
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

    def close(self) -> None:
        """Close the pool's connections."""
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    # -- where PostgreSQL differs --------------------------------------------------------------

    COLLATE = ' COLLATE "C"'
    CLAIM_ROWS = " FOR UPDATE SKIP LOCKED"
    PERIOD_INDEX = ""

    def _serialise(self, conn: Runner, keys: Sequence[str]) -> None:
        """Transaction-scoped advisory locks on the keys (document codes), in one statement and
        in a fixed order: writers of the same document on any server wait for one another."""
        if keys:
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(c)) FROM unnest(?::text[]) AS c ORDER BY c",
                (list(keys),),
            )

    def save_all(self, writes: Sequence[Write]) -> list[Refusal | None]:
        """Several writes in one statement, one transaction and one round trip: the server's
        ``taxbridge_save`` takes every write's advisory locks in a fixed order, checks each
        write's lease and expected state and makes the writes that pass, all from one JSON
        argument, so its statements are planned once per connection and not per write."""
        if not writes:
            return []
        payload = json.dumps([_sql.write_json(write) for write in writes], separators=(",", ":"))
        if "\\u0000" in payload and _NUL.search(payload):
            raise StoreError(
                "text holds a NUL character, which PostgreSQL cannot keep", path=self.url
            )
        with self._transaction("cannot write the store", transaction=False) as conn:
            row = conn.raw.execute(_sql.SAVE, (payload,)).fetchone()
        return [_sql.refusal(found) for found in row[0]]

    def get(self, code: str) -> TaxDocument | None:
        """The stored document, with lines, breakdown and request: one statement (one
        snapshot, one round trip), the lines and breakdown as JSON arrays."""
        with self._read_one() as conn:
            row = conn.execute(_sql.GET_DOCUMENT, (code,)).fetchone()
        if row is None:
            return None
        return _document(row)

    def get_many(self, codes: Sequence[str]) -> dict[str, TaxDocument]:
        """The stored documents of ``codes`` by code: one statement (one snapshot, one round
        trip) for all of them; a code not stored is left out."""
        wanted = list(dict.fromkeys(codes))
        if not wanted:
            return {}
        with self._read_one() as conn:
            rows = conn.execute(_sql.GET_DOCUMENTS, (wanted,)).fetchall()
        return {row[0]: _document(row) for row in rows}


def _document(row: Any) -> TaxDocument:
    """A document from a row of :data:`_sql.GET_DOCUMENT`."""
    return document_from_rows(row[:-2], _sql.json_rows(row[-2]), _sql.json_rows(row[-1]))


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
        try:
            parts = urlsplit(self.url) if isinstance(self.url, str) else None
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            shown = shown_url(self.url) if isinstance(self.url, str) else self.url
            raise _bad("url", shown, "is not a postgresql://host/database URL")
        secret = url_secret(self.url)
        if secret is not None:
            raise _bad(
                "url", shown_url(self.url), f"holds a password in {secret}: name an environment "
                "variable in password_env (or use PGPASSWORD / .pgpass), and leave it out of "
                "the URL",
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
    return ConfigError.refusing(f"PostgresSettings.{field}", value, reason, field=field)


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

    def open(
        self, settings: Any, *, create: bool = True, unfinished_ok: bool = False
    ) -> PostgresStore:
        """Connect the pool and bring the schema up to date; an unfinished copy only with
        ``unfinished_ok``."""
        checked = self.check(settings)
        return PostgresStore(
            checked.url,
            password=checked.password(),
            pool_min=checked.pool_min,
            pool_max=checked.pool_max,
            timeout=checked.timeout,
            create=create,
            unfinished_ok=unfinished_ok,
        )


PLUGIN = PostgresPlugin()
