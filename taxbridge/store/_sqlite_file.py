"""The SQLite file itself: opening it (it must exist unless asked to create it, be writable, and
hold a schema this code knows), bringing its schema up to date, and its failures as one
:class:`~taxbridge.errors.StoreError` naming the file."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from taxbridge.errors import StoreError
from taxbridge.store._sqlite_schema import FILLS, MIGRATIONS

DEFAULT_PATH = "taxbridge.db"
"""Store file used when neither the config nor ``TAXBRIDGE_DB`` names one."""


def default_path() -> str:
    """The store path from ``TAXBRIDGE_DB``, else :data:`DEFAULT_PATH`."""
    return os.environ.get("TAXBRIDGE_DB", DEFAULT_PATH)


LATEST = MIGRATIONS[-1][0]
"""The schema version this code writes."""


def failure(exc: BaseException, path: Path, doing: str) -> StoreError:
    """A database or file error as a StoreError: what was being done, the file, the cause.
    A busy or locked database says so."""
    reason = str(exc) or type(exc).__name__
    busy = isinstance(exc, sqlite3.OperationalError) and ("locked" in reason or "busy" in reason)
    return StoreError(f"{doing}: {reason}", path=str(path), busy=busy)


@contextmanager
def translated(path: Path, doing: str) -> Iterator[None]:
    """Turn a ``sqlite3`` or file error raised inside into a StoreError."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise failure(exc, path, doing) from exc


def connect(path: Path, timeout: float, *, create: bool) -> sqlite3.Connection:
    """A connection to ``path`` in WAL mode; StoreError when the path is not usable, the file
    is missing (and ``create`` is off), or it is not an SQLite database."""
    text = str(path)
    memory = text == ":memory:"
    if not memory and not path.exists() and not create:
        raise StoreError(
            "no store here (only taxbridge demo and the library create one)", path=text
        )
    with translated(path, "cannot open the store"):
        if not memory:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(text, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        with translated(path, "cannot open the store"):
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the migrations the file lacks, in one transaction that also proves it writable
    (a probe write, rolled back when there was nothing to migrate, so opening a store to read it
    changes nothing); a file whose schema is newer than this code is refused before anything is
    written."""
    with translated(path, "cannot open the store"):
        _migrate(conn, path)


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        newer = sorted(version for version in done if version > LATEST)
        if newer:
            raise StoreError(
                f"its schema version {newer[-1]} is newer than this taxbridge knows ({LATEST}); "
                "upgrade taxbridge to use it",
                path=str(path),
            )
        migrated = False
        for version, sql in MIGRATIONS:
            if version in done:
                continue
            migrated = True
            for statement in sql.split(";"):
                if statement.strip():
                    conn.execute(statement)
            if version in FILLS:
                FILLS[version](conn)
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (version, dt.datetime.now(dt.UTC).isoformat()),
            )
        # a store that cannot be written must fail here, before anything can be posted
        conn.execute("DELETE FROM meta WHERE key = 'opened_at'")
        conn.execute("INSERT INTO meta (key, value) VALUES ('opened_at', '')")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if migrated:
        conn.execute("DELETE FROM meta WHERE key = 'opened_at'")
        conn.execute("COMMIT")
    else:
        conn.execute("ROLLBACK")
