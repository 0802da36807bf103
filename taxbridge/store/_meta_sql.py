"""Store-level settings (the ``meta`` table) of an SQL store, and the unfinished-copy refusal
every open makes."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager

from taxbridge.errors import StoreError
from taxbridge.store._ledger_sql import Runner
from taxbridge.store._statements import insert_new, upsert
from taxbridge.store.base import COPY_KEY


class MetaMixin:
    """``get_meta``, ``set_meta``, ``meta_once`` and :meth:`refuse_unfinished`."""

    _read_one: Callable[..., AbstractContextManager[Runner]]
    _write: Callable[[], AbstractContextManager[Runner]]
    close: Callable[[], None]

    def get_meta(self, key: str) -> str | None:
        """A store-level setting, or None."""
        with self._read_one() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a store-level setting."""
        with self._write() as conn:
            conn.execute(upsert("meta", "key, value", "?, ?"), (key, value))

    def meta_once(self, key: str, value: str) -> str:
        """Set a store-level setting unless it is set already; the value it has now."""
        with self._write() as conn:
            conn.execute(insert_new("meta", "key, value", "?, ?"), (key, value))
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0])

    def refuse_unfinished(self, where: str) -> None:
        """Close and refuse a store that is an unfinished copy (:data:`COPY_KEY`), saying how
        to finish it."""
        marker = self.get_meta(COPY_KEY)
        if not marker:
            return
        try:
            source = str(json.loads(marker).get("from") or "another store")
        except (ValueError, AttributeError):
            source = "another store"
        self.close()
        raise StoreError(
            f"an unfinished copy of {source} ('taxbridge store migrate' was interrupted): run "
            "the same migrate again to finish it, or delete this store",
            path=where,
        )
