"""Stores: the protocol and the embedded SQLite implementation."""

from taxbridge.store.base import QueueEntry, ReferenceData, Store
from taxbridge.store.sqlite import SQLiteStore

__all__ = ["QueueEntry", "ReferenceData", "SQLiteStore", "Store"]
