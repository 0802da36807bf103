"""Stores: the protocols, the registry of store kinds, and the embedded SQLite store.

A new store is one module with a :class:`~taxbridge.store.base.StorePlugin` named ``PLUGIN`` and
one line in :data:`STORES`; ``[store] kind = "<name>"`` then selects it.
"""

from __future__ import annotations

from taxbridge._registry import STORES
from taxbridge._registry import store_plugin as _store_plugin
from taxbridge.store.base import (
    DocumentStore,
    ExemptionStore,
    QueueEntry,
    QueueStore,
    ReferenceData,
    ReferenceStore,
    SettledEntry,
    Store,
    StorePlugin,
)
from taxbridge.store.sqlite import SQLiteSettings, SQLiteStore


def store_plugin(kind: str) -> StorePlugin:
    """The plugin of a store kind, built in (:data:`STORES`) or installed (the entry point
    group ``taxbridge.stores``); ConfigError naming ``store.kind`` otherwise."""
    found: StorePlugin = _store_plugin(kind)
    return found


__all__ = [
    "STORES",
    "DocumentStore",
    "ExemptionStore",
    "QueueEntry",
    "QueueStore",
    "ReferenceData",
    "ReferenceStore",
    "SQLiteSettings",
    "SQLiteStore",
    "SettledEntry",
    "Store",
    "StorePlugin",
    "store_plugin",
]
