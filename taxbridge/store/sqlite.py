"""The embedded store: one SQLite file in WAL mode, schema versioned by a migrations table."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from attrs import frozen

from taxbridge._toml import TableReader
from taxbridge.errors import ConfigError, StoreError
from taxbridge.store._sql_store import SQLStore
from taxbridge.store._sqlite_file import DEFAULT_PATH, connect, default_path, failure


class SQLiteStore(SQLStore):
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
        unfinished_ok: bool = False,
    ):
        raw = os.fspath(path) if path is not None else default_path()
        if not str(raw).strip() or "\x00" in str(raw):
            raise StoreError("the store path is empty or holds a NUL character", path=repr(raw))
        self.path = Path(raw)
        self._conn = connect(self.path, timeout, create=create)
        self._lock = threading.RLock()
        if not unfinished_ok:
            self.refuse_unfinished(str(self.path))

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _read(self, doing: str = "cannot read the store") -> Iterator[sqlite3.Connection]:
        """A read of several statements, in one read transaction: one snapshot, so a
        document's row, lines and breakdown come from the same commit even while another
        process writes it (inside this thread's own transaction: that transaction's view)."""
        with self._read_one(doing) as conn:
            if conn.in_transaction:
                yield conn
                return
            try:
                conn.execute("BEGIN")
                yield conn
            finally:
                if conn.in_transaction:  # also when Ctrl-C lands just after BEGIN returned
                    conn.execute("ROLLBACK")  # nothing was written: this ends the snapshot

    @contextmanager
    def _read_one(self, doing: str = "cannot read the store") -> Iterator[sqlite3.Connection]:
        """A read of one statement: it is its own snapshot, no transaction around it."""
        with self._lock:
            try:
                yield self._conn
            except (sqlite3.Error, OSError) as exc:
                raise failure(exc, self.path, doing) from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                    yield self._conn
                except BaseException:
                    # also when Ctrl-C lands just after BEGIN returned: a transaction left
                    # open would refuse every later write of this connection
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except (sqlite3.Error, OSError) as exc:
                raise failure(exc, self.path, "cannot write the store") from exc

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SQLiteStore:
        return self


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
    return ConfigError.refusing(f"SQLiteSettings.{field}", value, reason, field=field)


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

    def open(
        self, settings: Any, *, create: bool = True, unfinished_ok: bool = False
    ) -> SQLiteStore:
        """Open the file (created when missing, if ``create``) and bring its schema up to date;
        an unfinished copy only with ``unfinished_ok``."""
        checked = self.check(settings)
        return SQLiteStore(
            checked.path, timeout=checked.timeout, create=create, unfinished_ok=unfinished_ok
        )


PLUGIN = SQLitePlugin()
