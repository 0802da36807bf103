"""Upserts both stores run as written: the standard ``INSERT … ON CONFLICT`` form, which SQLite
(3.24 and later) and PostgreSQL read alike, keyed by each table's primary key. What is still a
dialect's own (an index hint, how claimed rows lock, how text sorts) is a hook of the store
class, so the PostgreSQL connection only swaps placeholders."""

from __future__ import annotations

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "documents": ("code",),
    "unposted_queue": ("code",),
    "offline_rates": ("zip_code", "state"),
    "meta": ("key",),
    "exemptions": ("customer_code", "region", "effective"),
    "journals": ("key",),
    "file_exports": ("kind", "key"),
    "certificates": ("id",),
    "certificate_uses": ("certificate_id",),
    "customer_cards": ("customer_code",),
    "customer_notes": ("customer_code", "note_type", "day"),
    "reminded": ("customer_code", "region"),
}
"""What an upsert of each table conflicts on."""


def upsert(table: str, columns: str, values: str) -> str:
    """Insert a row, or update every column given but the key when its key is there."""
    keys = PRIMARY_KEYS[table]
    names = [name.strip() for name in columns.split(",")]
    updates = ", ".join(f"{name} = excluded.{name}" for name in names if name not in keys)
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({values}) "
        f"ON CONFLICT ({', '.join(keys)}) {action}"
    )


def insert_new(table: str, columns: str, values: str) -> str:
    """Insert a row unless its key is there already (then nothing)."""
    return f"INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT DO NOTHING"
