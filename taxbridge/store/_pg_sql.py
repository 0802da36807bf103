"""The SQL of the PostgreSQL store: the translation of the SQL the stores share (written for
SQLite) and the migrations applied once under an advisory lock."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

from taxbridge.errors import StoreError
from taxbridge.store._pg_schema import MIGRATIONS, PRIMARY_KEYS

LATEST = MIGRATIONS[-1][0]
MIGRATION_LOCK = 7_172_001
"""The advisory lock under which servers starting together apply migrations once."""
_UPSERT = re.compile(r"INSERT OR REPLACE INTO (\w+) \(([^)]*)\)(.*)", re.S)
_TRANSLATED: dict[str, str] = {}


def translate(sql: str) -> str:
    """SQL written for SQLite as PostgreSQL runs it: ``%s`` placeholders, upserts on the
    table's key, no index hints."""
    found = _TRANSLATED.get(sql)
    if found is not None:
        return found
    text = sql.replace("%", "%%").replace("?", "%s")
    text = text.replace(" INDEXED BY documents_period", "").replace("d.rowid", "d.code")
    if text.startswith("INSERT OR IGNORE INTO"):
        text = (
            "INSERT INTO" + text.removeprefix("INSERT OR IGNORE INTO") + " ON CONFLICT DO NOTHING"
        )
    upsert = _UPSERT.match(text.strip())
    if upsert is not None:
        table, columns, rest = upsert.groups()
        names = [name.strip() for name in columns.split(",")]
        keys = PRIMARY_KEYS[table]
        updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names if n not in keys)
        text = f"INSERT INTO {table} ({columns}){rest} ON CONFLICT ({', '.join(keys)}) "
        text += f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    _TRANSLATED[sql] = text
    return text


class Connection:
    """A psycopg connection that runs the SQL the shared helpers write for SQLite."""

    def __init__(self, conn: Any):
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(translate(sql), tuple(params))

    def executemany(self, sql: str, rows: Any) -> None:
        rows = list(rows)
        if rows:
            with self.raw.cursor() as cursor:
                cursor.executemany(translate(sql), rows)


def migrate(conn: Connection, *, create: bool, where: str) -> None:
    """Apply missing migrations once, under an advisory lock (servers starting together wait);
    a schema newer than this code is refused before anything is written."""
    conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
    exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0]
    if exists is None and not create:
        raise StoreError(
            "no taxbridge store in this database (only taxbridge demo and the library create one)",
            path=where,
        )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations").fetchall()}
    newer = sorted(version for version in done if version > LATEST)
    if newer:
        raise StoreError(
            f"its schema version {newer[-1]} is newer than this taxbridge knows ({LATEST}); "
            "upgrade taxbridge to use it",
            path=where,
        )
    for version, sql in MIGRATIONS:
        if version in done:
            continue
        for statement in sql.split(";"):
            if statement.strip():
                conn.raw.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
            (version, dt.datetime.now(dt.UTC).isoformat()),
        )
