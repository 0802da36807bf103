"""The stores' ledger half, in SQL both stores run (SQLite's dialect; the PostgreSQL store
translates placeholders and upserts): the workfile streamed from documents and lines in keyset
pages (a lock or connection held per page only), GL journals with their lines and shares, and
the export registry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any, Protocol

from taxbridge.errors import ConcurrentChange
from taxbridge.flags import FinalTaxFlag
from taxbridge.models import (
    CreditedLine,
    DateRange,
    DocumentKind,
    Journal,
    JournalLine,
    JournalShare,
    JournalStatus,
    JurisdictionLine,
    WorkfileLine,
)
from taxbridge.store._statements import upsert
from taxbridge.store.base import CreditAllocation, PostedHead

BATCH = 5000
"""Rows read per trip to the database while streaming. Each page walks the documents_period
index from where the last one stopped (only each document's lines are sorted), so a year costs
one pass, not one per page."""

_POSTED_FLAGS = "('Y', 'R', 'M', 'U')"
_SCOPE = (
    "d.kind IN ('invoice', 'credit') AND d.flag IN " + _POSTED_FLAGS + " AND d.voided_at IS NULL "
    "AND d.document_date BETWEEN ? AND ?"
)
_LINES = (
    "SELECT d.document_date, d.code, l.seq, d.kind, d.flag, d.erp_company, d.company_code, "
    "d.customer_code, l.region, l.number, l.amount, l.exempt, l.taxable, l.tax, l.charged_tax "
    "FROM documents d{index} JOIN document_lines l ON l.code = d.code "
    "WHERE " + _SCOPE
)
_JURISDICTIONS = (
    "SELECT d.document_date, d.code, b.seq, d.erp_company, b.jurisdiction_type, b.name, "
    "b.region, b.rate, b.taxable, b.exempt, b.tax "
    "FROM documents d{index} "
    "JOIN document_breakdown b ON b.code = d.code WHERE " + _SCOPE
)


class Runner(Protocol):
    """What the shared SQL runs on: a ``sqlite3`` connection, or the PostgreSQL store's
    translating one."""

    def execute(self, sql: str, params: Any = ..., /) -> Any:
        """Run one statement; the cursor."""
        ...

    def executemany(self, sql: str, rows: Any, /) -> Any:
        """Run one statement per row."""
        ...


Reader = Callable[[], AbstractContextManager[Runner]]


def process_of(code: str, number: str) -> str:
    """The process (order) number of an engine line ``<process>-<line>``; a claim line, which
    has no process, belongs to its claim's number."""
    head, dash, _ = number.partition("-")
    return head if dash else code.partition("-")[2] or code


def _pages(
    read: Reader, sql: str, seq: str, period: DateRange, company: str | None, index: str
) -> Iterator[Any]:
    """Rows of ``sql`` page by page, ordered by date, code and seq (its first three columns);
    ``index`` is the dialect's hint to walk ``documents_period`` (the store's PERIOD_INDEX)."""
    sql = sql.format(index=index)
    base: list[object] = [period.start.isoformat(), period.end.isoformat()]
    if company is not None:
        sql += " AND d.erp_company = ?"
        base.append(company)
    after: tuple[Any, Any, Any] | None = None
    while True:
        query, params = sql, list(base)
        if after is not None:
            query += f" AND (d.document_date, d.code, {seq}) > (?, ?, ?)"
            params.extend(after)
        query += f" ORDER BY d.document_date, d.code, {seq} LIMIT ?"
        params.append(BATCH)
        with read() as conn:
            rows = conn.execute(query, params).fetchall()
        yield from rows
        if len(rows) < BATCH:
            return
        last = rows[-1]
        after = (last[0], last[1], last[2])


def workfile(
    read: Reader, period: DateRange, company: str | None, index: str
) -> Iterator[WorkfileLine]:
    """The workfile lines of ``period`` (see :class:`~taxbridge.store.base.LedgerStore`)."""
    dates: dict[str, dt.date] = {}
    for row in _pages(read, _LINES, "l.seq", period, company, index):
        (day, code, _, kind, flag, erp, company_code, customer, region, number) = row[:10]
        amount, exempt, taxable, tax, charged = row[10:]
        stored = Decimal(tax)
        date = dates.get(day)
        if date is None:
            date = dates[day] = dt.date.fromisoformat(day)
        yield WorkfileLine(
            code,
            kind,
            flag,
            erp,
            company_code,
            customer,
            date,
            region,
            process_of(code, number),
            number,
            Decimal(amount),
            Decimal(exempt),
            Decimal(taxable),
            stored,
            stored if charged is None else Decimal(charged),
            stored if flag in ("Y", "R") else None,
        )


def jurisdictions(
    read: Reader, period: DateRange, company: str | None, index: str
) -> Iterator[JurisdictionLine]:
    """The breakdown rows of the workfile's documents."""
    for row in _pages(read, _JURISDICTIONS, "b.seq", period, company, index):
        day, code, _, erp, kind, name, region, rate, taxable, exempt, tax = row
        yield JurisdictionLine(
            code,
            erp,
            dt.date.fromisoformat(day),
            kind,
            name,
            region,
            Decimal(rate),
            Decimal(taxable),
            Decimal(exempt),
            Decimal(tax),
        )


_HEADS = (
    "SELECT d.document_date, d.code, d.code, d.kind, d.flag, d.company_code, d.erp_company, "
    "d.total_tax, d.voided_at FROM documents d{index} "
    "WHERE d.kind IN ('invoice', 'credit') "
    "AND d.flag IN " + _POSTED_FLAGS + " AND d.document_date BETWEEN ? AND ?"
)


def posted_heads(
    read: Reader, period: DateRange, company: str | None, index: str
) -> Iterator[PostedHead]:
    """Posted invoices and credits of ``period``, voided ones too."""
    for row in _pages(read, _HEADS, "d.code", period, company, index):
        day, code, _, kind, flag, company_code, erp, tax, voided = row
        yield PostedHead(
            code,
            DocumentKind(kind),
            FinalTaxFlag(flag),
            company_code,
            erp,
            dt.date.fromisoformat(day),
            Decimal(tax),
            dt.datetime.fromisoformat(voided) if voided else None,
        )


_JOURNAL_COLUMNS = (
    "key, company, start_date, end_date, status, version, generated_at, posted_at, posted_by, "
    "total_tax"
)


def _journal(row: Any, lines: tuple[JournalLine, ...], shares: tuple[JournalShare, ...]) -> Journal:
    _, company, start, end, status, version, generated, posted, by, total = row
    return Journal(
        company=company,
        period=DateRange.between(start, end),
        status=JournalStatus(status),
        version=int(version),
        generated_at=dt.datetime.fromisoformat(generated),
        lines=lines,
        shares=shares,
        total_tax=Decimal(total),
        posted_at=dt.datetime.fromisoformat(posted) if posted else None,
        posted_by=by,
    )


def read_journal(conn: Runner, key: str) -> Journal | None:
    """The journal with its lines and shares."""
    row = conn.execute(f"SELECT {_JOURNAL_COLUMNS} FROM journals WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    lines = tuple(
        JournalLine(company, region, account, Decimal(debit), Decimal(credit))
        for company, region, account, debit, credit in conn.execute(
            "SELECT company, region, account, debit, credit FROM journal_lines "
            "WHERE journal_key = ? ORDER BY seq",
            (key,),
        )
    )
    shares = tuple(
        JournalShare(code, process, company, dt.date.fromisoformat(day), Decimal(tax))
        for code, process, company, day, tax in conn.execute(
            "SELECT code, process, company, document_date, tax FROM journal_documents "
            "WHERE journal_key = ? "
            "ORDER BY code, process",
            (key,),
        )
    )
    return _journal(row, lines, shares)


def list_journals(conn: Runner, company: str | None) -> list[Journal]:
    """Journals by range, without lines or shares."""
    sql = f"SELECT {_JOURNAL_COLUMNS} FROM journals"
    params: tuple[str, ...] = ()
    if company is not None:
        sql += " WHERE company = ?"
        params = (company,)
    rows = conn.execute(sql + " ORDER BY start_date, end_date, company", params).fetchall()
    return [_journal(row, (), ()) for row in rows]


def write_journal(conn: Runner, journal: Journal, expected: Journal | None) -> None:
    """Replace the stored journal by ``journal`` if the stored one is still ``expected``."""
    key = journal.key
    row = conn.execute("SELECT status, version FROM journals WHERE key = ?", (key,)).fetchone()
    found = None if row is None else f"{row[0]} v{row[1]}"
    wanted = None if expected is None else f"{expected.status.value} v{expected.version}"
    if found != wanted:
        raise ConcurrentChange(f"journal {key}", wanted or "no journal", found or "no journal")
    conn.execute("DELETE FROM journal_lines WHERE journal_key = ?", (key,))
    conn.execute("DELETE FROM journal_documents WHERE journal_key = ?", (key,))
    conn.execute(
        upsert("journals", _JOURNAL_COLUMNS, ", ".join("?" * 10)),
        (
            key,
            journal.company,
            journal.period.start.isoformat(),
            journal.period.end.isoformat(),
            journal.status.value,
            journal.version,
            journal.generated_at.isoformat(),
            journal.posted_at.isoformat() if journal.posted_at else None,
            journal.posted_by,
            str(journal.total_tax),
        ),
    )
    conn.executemany(
        "INSERT INTO journal_lines (journal_key, seq, company, region, account, debit, credit) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (key, seq, line.company, line.region, line.account, str(line.debit), str(line.credit))
            for seq, line in enumerate(journal.lines)
        ],
    )
    conn.executemany(
        "INSERT INTO journal_documents (journal_key, code, process, company, document_date, tax) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                key,
                share.code,
                share.process,
                share.company,
                share.document_date.isoformat(),
                str(share.tax),
            )
            for share in journal.shares
        ],
    )


class LedgerMixin:
    """The ledger methods of a store (see :class:`~taxbridge.store.base.LedgerStore`), over its
    read and write context managers."""

    _read: Callable[..., AbstractContextManager[Runner]]
    _write: Callable[[], AbstractContextManager[Runner]]
    PERIOD_INDEX = " INDEXED BY documents_period"
    """How a period's documents are read through their index: SQLite is told; a dialect that
    plans it by itself says nothing."""

    def workfile(self, period: DateRange, *, company: str | None = None) -> Iterator[WorkfileLine]:
        """Posted invoice and credit lines of ``period``, streamed in batches."""
        return workfile(self._read, period, company, self.PERIOD_INDEX)

    def workfile_jurisdictions(
        self, period: DateRange, *, company: str | None = None
    ) -> Iterator[JurisdictionLine]:
        """The breakdown of the workfile's documents, streamed in batches."""
        return jurisdictions(self._read, period, company, self.PERIOD_INDEX)

    def posted_documents(
        self, period: DateRange, *, company: str | None = None
    ) -> Iterator[PostedHead]:
        """Posted invoices and credits of ``period`` (voided too), streamed in batches."""
        return posted_heads(self._read, period, company, self.PERIOD_INDEX)

    def journal(self, key: str) -> Journal | None:
        """The journal with its lines and shares, or None."""
        with self._read() as conn:
            return read_journal(conn, key)

    def journals(self, company: str | None = None) -> list[Journal]:
        """Journals by range, without lines or shares."""
        with self._read() as conn:
            return list_journals(conn, company)

    def save_journal(self, journal: Journal, *, expected: Journal | None) -> None:
        """Replace the journal, if the stored one is still ``expected``, in one transaction."""
        with self._write() as conn:
            write_journal(conn, journal, expected)


class ExportsMixin:
    """The export registry of a store (see :class:`~taxbridge.store.base.ExportStore`)."""

    _read: Callable[..., AbstractContextManager[Runner]]
    _write: Callable[[], AbstractContextManager[Runner]]

    def record_exports(self, kind: str, entries: Mapping[str, str], at: dt.datetime) -> None:
        """Remember the pairs in one transaction."""
        stamp = at.isoformat()
        with self._write() as conn:
            conn.executemany(
                upsert("file_exports", "kind, key, value, exported_at", "?, ?, ?, ?"),
                [(kind, key, value, stamp) for key, value in entries.items()],
            )

    def exports(self, kind: str) -> dict[str, str]:
        """Every key of ``kind`` with its value."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT key, value FROM file_exports WHERE kind = ?", (kind,)
            ).fetchall()
        return {str(key): str(value) for key, value in rows}


def read_allocation(conn: Runner, credit_code: str) -> CreditAllocation | None:
    """What a credit takes off its invoice's lines, or None."""
    rows = conn.execute(
        "SELECT invoice_code, invoice_line, amount, tax FROM credit_allocations "
        "WHERE credit_code = ? ORDER BY seq",
        (credit_code,),
    ).fetchall()
    if not rows:
        return None
    lines = tuple(
        CreditedLine(line, Decimal(amount), Decimal(tax)) for _, line, amount, tax in rows
    )
    return CreditAllocation(credit_code, str(rows[0][0]), lines)
