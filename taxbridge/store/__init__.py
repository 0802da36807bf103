"""Stores: the protocols, the registry of store kinds, and the embedded SQLite store.

A new store is one module with a :class:`~taxbridge.store.base.StorePlugin` named ``PLUGIN`` and
one line in :data:`STORES`; ``[store] kind = "<name>"`` then selects it.
"""

from __future__ import annotations

from taxbridge._registry import plugin
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

STORES: dict[str, str] = {
    "sqlite": "taxbridge.store.sqlite",
    "postgres": "taxbridge.store.postgres",
}
"""Store kind -> the module whose ``PLUGIN`` reads its ``[store]`` table and opens it."""


def store_plugin(kind: str) -> StorePlugin:
    """The plugin of a registered store kind; ConfigError naming ``store.kind`` otherwise."""
    found: StorePlugin = plugin(STORES, kind, "store.kind")
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
