"""The SQL of the PostgreSQL store: the translation of the SQL the stores share (written for
SQLite), the migrations applied once under an advisory lock, and a write as the server-side
``taxbridge_save`` reads it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from taxbridge.errors import ConcurrentChange, LeaseLost, StoreError
from taxbridge.flags import FinalTaxFlag
from taxbridge.models import Stage
from taxbridge.store._codec import (
    BREAKDOWN_COLUMNS,
    CREDIT_COLUMNS,
    DOCUMENT_COLUMNS,
    EVENT_COLUMNS,
    LINE_COLUMNS,
    LINE_READ_COLUMNS,
    QUEUE_COLUMNS,
    WRITTEN_DOCUMENT_COLUMNS,
    credit_rows,
    document_rows,
    event_row,
    invoiced_log,
    queue_row,
)
from taxbridge.store._pg_schema import MIGRATIONS
from taxbridge.store.base import Expected, Refusal, Write

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
_TRANSLATED: dict[str, str] = {}


def translate(sql: str) -> str:
    """The shared SQL as psycopg takes it: ``%s`` placeholders (and ``%%`` for a percent sign).
    Nothing else differs: upserts are written in the form both read
    (:mod:`taxbridge.store._statements`), and the rest is a hook of the store class."""
    found = _TRANSLATED.get(sql)
    if found is None:
        found = _TRANSLATED[sql] = sql.replace("%", "%%").replace("?", "%s")
    return found


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


SAVE = "SELECT taxbridge_save(%s::jsonb)"
"""Several writes in one call (migration 5): a JSON array of :func:`write_json`, answered
with one refusal or null per write."""

_DOCUMENT_NAMES = tuple(WRITTEN_DOCUMENT_COLUMNS.split(", "))
_LINE_NAMES = tuple(LINE_COLUMNS.split(", "))
_BREAKDOWN_NAMES = tuple(BREAKDOWN_COLUMNS.split(", "))
_EVENT_NAMES = tuple(EVENT_COLUMNS.split(", "))
_QUEUE_NAMES = (*QUEUE_COLUMNS.split(", "), "settled_at", "outcome")
_CREDIT_NAMES = tuple(CREDIT_COLUMNS.split(", "))


def write_json(write: Write) -> dict[str, Any]:
    """A write as ``taxbridge_save`` reads it: rows as objects keyed by column (the server
    reads them into its tables' row types), absent parts left out."""
    found: dict[str, Any] = {"keys": list(write.keys)}  # the server locks them in order
    if write.held is not None:
        found["held"], found["holder"] = write.held
    if write.expected is not None:
        flag = write.expected.flag
        found["checked"] = list(write.checked)
        found["expected"] = {
            "present": flag is not None,
            "flag": None if flag is None else flag.value,
            "invoice": write.expected.invoice_code,
        }
    documents = []
    for doc in write.documents:
        row, lines, breakdown = document_rows(doc)
        documents.append(
            {
                "row": dict(zip(_DOCUMENT_NAMES, row, strict=True)),
                "lines": [dict(zip(_LINE_NAMES, line, strict=True)) for line in lines],
                "breakdown": [dict(zip(_BREAKDOWN_NAMES, b, strict=True)) for b in breakdown],
            }
        )
    found["documents"] = documents
    found["events"] = [dict(zip(_EVENT_NAMES, event_row(e), strict=True)) for e in write.events]
    if write.enqueue is not None:
        row = (*queue_row(write.enqueue), None, "")
        found["enqueue"] = dict(zip(_QUEUE_NAMES, row, strict=True))
    if write.dequeue is not None:
        flag_after, at = write.settlement
        found["dequeue"] = {"code": write.dequeue, "flag": flag_after, "at": at}
    if write.invoiced is not None:
        link = write.invoiced
        found["invoiced"] = {
            "invoice": link.invoice_code,
            "orders": list(link.order_codes),
            "at": link.at.isoformat(),
            "stage": Stage.INVOICE.value,
            "message": invoiced_log(link),
        }
    if write.credits is not None:
        rows = credit_rows(write.credits)
        found["credits"] = {
            "code": write.credits.credit_code,
            "rows": [dict(zip(_CREDIT_NAMES, row, strict=True)) for row in rows],
        }
    return found


def refusal(found: Mapping[str, Any] | None) -> Refusal | None:
    """The lease or state refusal ``taxbridge_save`` answered for one write (None: made)."""
    if found is None:
        return None
    detail = found["detail"]
    if found["state"] == "TB001":
        code, holder, current = detail
        return LeaseLost(code, holder, current)
    code, present, flag, invoice, want_present, want_flag, want_invoice = detail
    now = Expected(FinalTaxFlag(flag), invoice) if present else Expected(None)
    wanted = Expected(FinalTaxFlag(want_flag), want_invoice) if want_present else Expected(None)
    return ConcurrentChange(code, wanted.describe(), now.describe())
