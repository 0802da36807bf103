"""The SQL of the PostgreSQL store: the translation of the SQL the stores share (written for
SQLite) and the migrations applied once under an advisory lock."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from taxbridge.errors import ConcurrentChange, LeaseLost, StoreError
from taxbridge.flags import FinalTaxFlag
from taxbridge.store._codec import DOCUMENT_COLUMNS, LINE_READ_COLUMNS
from taxbridge.store._pg_schema import MIGRATIONS, PRIMARY_KEYS
from taxbridge.store.base import Expected

LATEST = MIGRATIONS[-1][0]
MIGRATION_LOCK = 7_172_001
"""The advisory lock under which servers starting together apply migrations once."""
_WITH_PARTS = (
    f"SELECT {DOCUMENT_COLUMNS}, "
    f"(SELECT json_agg(json_build_array({LINE_READ_COLUMNS}) ORDER BY seq)::text "
    "FROM document_lines AS l WHERE l.code = d.code), "
    "(SELECT json_agg(json_build_array("
    "jurisdiction_type, name, region, rate, taxable, exempt, tax) ORDER BY seq)::text "
    "FROM document_breakdown AS b WHERE b.code = d.code) "
    "FROM documents AS d WHERE "
)
GET_DOCUMENT = _WITH_PARTS + "code = ?"
"""A document with its lines and breakdown (as JSON arrays, in their order) in one statement."""
GET_DOCUMENTS = _WITH_PARTS + "code = ANY(?)"
"""The same for a list of codes (one array parameter)."""
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


_ROWS = re.compile(r"(INSERT INTO \w+ \([^)]*\) VALUES )(\((?:%s, )*%s\))")
_SPLIT: dict[str, tuple[str, ...]] = {}


class Batch:
    """A write's statements collected, then sent as one simple query: one round trip, one
    implicit transaction (an error in any statement, the guard's included, undoes them all).

    Values become SQL literals here, so a batch is only sent where the server reads quotes
    plainly (``standard_conforming_strings`` on, PostgreSQL's default); elsewhere the same
    statements are replayed with server-side parameters in a pipelined transaction.
    """

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.statements.append((translate(sql), tuple(params)))

    def executemany(self, sql: str, rows: Any) -> None:
        rows = [tuple(row) for row in rows]
        if not rows:
            return
        text = translate(sql)
        many = _ROWS.fullmatch(text)
        if many is None:
            self.statements.extend((text, row) for row in rows)
            return
        head, marks = many.groups()
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            flat = tuple(value for row in chunk for value in row)
            self.statements.append((head + ", ".join([marks] * len(chunk)), flat))

    def send(self, raw: Any) -> None:
        """Run the statements on ``raw`` (a psycopg connection in autocommit mode)."""
        if raw.info.parameter_status("standard_conforming_strings") == "on":
            raw.execute(_inline(self.statements), prepare=False)  # never a prepared statement
            return
        with raw.pipeline(), raw.transaction():
            for text, params in self.statements:
                raw.execute(text, params)


def _inline(statements: Sequence[tuple[str, tuple[Any, ...]]]) -> bytes:
    """The statements as one query text, each ``%s`` replaced by its value's literal."""
    out: list[str] = []
    for text, params in statements:
        parts = _SPLIT.get(text)
        if parts is None:
            parts = _SPLIT[text] = tuple(part.replace("%%", "%") for part in text.split("%s"))
        if len(parts) != len(params) + 1:
            raise StoreError(f"{len(params)} values for {len(parts) - 1} placeholders: {text}")
        out.append(parts[0])
        for value, part in zip(params, parts[1:], strict=True):
            out.append(literal(value))
            out.append(part)
        out.append(";\n")
    return "".join(out).encode()


def literal(value: Any) -> str:
    """A value as a PostgreSQL literal with standard-conforming strings (a quote doubled,
    a backslash plain): text, exact decimals as quoted text (never a float), whole numbers,
    booleans, NULL, and lists of text as arrays."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        if "\x00" in value:
            raise StoreError(f"text holds a NUL character, which PostgreSQL cannot keep: {value!r}")
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise StoreError(f"{value} is not a finite amount")
        return f"'{value}'"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, (list, tuple)):
        items = ", ".join(literal(item) for item in value)
        return f"ARRAY[{items}]" if items else "'{}'"
    raise StoreError(f"no SQL literal for a {type(value).__name__}: {value!r}")


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
        for statement in statements(sql):
            conn.raw.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
            (version, dt.datetime.now(dt.UTC).isoformat()),
        )


def statements(sql: str) -> list[str]:
    """The statements of a migration: split at semicolons outside ``$$`` function bodies."""
    found: list[str] = []
    current = ""
    for index, part in enumerate(sql.split("$$")):
        if index % 2:
            current += f"$${part}$$"
            continue
        pieces = part.split(";")
        current += pieces[0]
        for piece in pieces[1:]:
            found.append(current)
            current = piece
    found.append(current)
    return [statement.strip() for statement in found if statement.strip()]


def json_rows(text: str | None) -> list[list[Any]]:
    """Rows aggregated as a JSON array of arrays; every number (NUMERIC) read as an exact
    Decimal from the digits the server wrote."""
    if text is None:
        return []
    rows: list[list[Any]] = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    return rows


def guard_error(exc: Exception) -> Exception | None:
    """The lease or state error ``taxbridge_guard`` raised, from its JSON detail (None when
    ``exc`` is another error)."""
    state = getattr(exc, "sqlstate", None)
    if state not in ("TB001", "TB002"):
        return None
    diag = getattr(exc, "diag", None)
    detail = json.loads(getattr(diag, "message_detail", None) or "[]")
    if state == "TB001":
        code, holder, current = detail
        return LeaseLost(code, holder, current)
    code, present, flag, invoice, want_present, want_flag, want_invoice = detail
    found = Expected(FinalTaxFlag(flag), invoice) if present else Expected(None)
    wanted = Expected(FinalTaxFlag(want_flag), want_invoice) if want_present else Expected(None)
    return ConcurrentChange(code, wanted.describe(), found.describe())
