"""Finance's outputs as one shape, a :class:`Table` (headers and rows, streamed), written as an
aligned text table, CSV, JSON lines or an Excel workbook (the "excel report" of BNO010).

Excel needs openpyxl, an optional extra (``pip install 'taxbridge[xlsx]'``). Cells are written by
type: money as numbers with two decimals, dates as dates, text as text; in a CSV, text that a
spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@``) gets a leading apostrophe
(:func:`taxbridge._cells.formula_safe`), so it stays text there too.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from attrs import frozen

from taxbridge._cells import formula_safe
from taxbridge.accounting.engine import EngineReconciliation
from taxbridge.accounting.ledger import GLReconciliation, StateReport
from taxbridge.errors import InvalidFieldError, TaxBridgeError
from taxbridge.models import Journal, JurisdictionLine, WorkfileLine


class Format(enum.Enum):
    """How a table is written."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"
    XLSX = "xlsx"


@frozen
class Table:
    """A titled table: headers, rows (any iterable, read once) and summary lines."""

    title: str
    headers: tuple[str, ...]
    rows: Iterable[Sequence[Any]]
    notes: tuple[str, ...] = ()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _csv_cell(value: Any) -> str:
    """A CSV cell: numbers and dates as they are, text made formula-safe."""
    return formula_safe(value) if isinstance(value, str) else _cell(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, (Decimal, dt.date, enum.Enum)):
        return _cell(value)
    return value


def write(table: Table, fmt: Format, out: IO[str] | None = None, path: Path | None = None) -> None:
    """Write ``table`` to ``out`` (table, csv, json) or to the file ``path`` (xlsx)."""
    if fmt is Format.XLSX:
        if path is None:
            raise InvalidFieldError("export", "path", path, "is needed for an Excel workbook")
        write_xlsx([table], path)
        return
    stream = out if out is not None else io.StringIO()
    if fmt is Format.CSV:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(table.headers)
        writer.writerows([_csv_cell(v) for v in row] for row in table.rows)
    elif fmt is Format.JSON:
        for row in table.rows:
            record = {h: _json_value(v) for h, v in zip(table.headers, row, strict=True)}
            stream.write(json.dumps(record) + "\n")
    else:
        _write_text(table, stream)


def _write_text(table: Table, out: IO[str]) -> None:
    """An aligned table, numbers to the right; rows are held (a text table is for a screen,
    not a year)."""
    raw = [list(row) for row in table.rows]
    rows = [[_cell(v) for v in row] for row in raw]
    widths = [len(h) for h in table.headers]
    for row in rows:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    right = [
        any(isinstance(row[i], (Decimal, int)) for row in raw)
        and all(row[i] is None or isinstance(row[i], (Decimal, int, str)) for row in raw)
        and not any(isinstance(row[i], str) and row[i] for row in raw)
        for i in range(len(table.headers))
    ]
    if table.title:
        out.write(table.title + "\n")
    out.write("  ".join(h.ljust(w) for h, w in zip(table.headers, widths, strict=True)).rstrip())
    out.write("\n")
    for row in rows:
        cells = [
            v.rjust(w) if numeric else v.ljust(w)
            for v, w, numeric in zip(row, widths, right, strict=True)
        ]
        out.write("  ".join(cells).rstrip() + "\n")
    for note in table.notes:
        out.write(note + "\n")


def write_xlsx(tables: Sequence[Table], path: Path) -> None:
    """An Excel workbook, a sheet per table, streamed (openpyxl write-only mode)."""
    try:
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
    except ImportError as exc:
        raise TaxBridgeError("Excel output needs openpyxl: pip install 'taxbridge[xlsx]'") from exc
    book = Workbook(write_only=True)
    for table in tables:
        sheet = book.create_sheet(_sheet_name(table.title))
        sheet.append(list(table.headers))
        for row in table.rows:
            cells = []
            for value in row:
                cell = WriteOnlyCell(sheet, value=_xlsx_value(value))
                if isinstance(value, Decimal):
                    cell.number_format = (
                        "#,##0.00" if value == value.quantize(_CENT) else "0.0000##"
                    )
                elif isinstance(value, dt.date):
                    cell.number_format = "yyyy-mm-dd"
                cells.append(cell)
            sheet.append(cells)
        for note in table.notes:
            sheet.append([note])
    book.save(str(path))


_CENT = Decimal("0.01")


def _sheet_name(title: str) -> str:
    cleaned = "".join("-" if c in "[]:*?/\\" else c for c in title)
    return (cleaned or "Sheet")[:31]


def _xlsx_value(value: Any) -> Any:
    """Numbers as numbers (money keeps its cents as a float in the cell, its exact text in a
    CSV), dates as dates, anything else as text that a spreadsheet will not evaluate."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (int, float, dt.date)) and not isinstance(value, bool):
        return value
    return formula_safe(_cell(value))


# -- the tables ---------------------------------------------------------------------------------

WORKFILE_HEADERS = (
    "code",
    "kind",
    "flag",
    "company",
    "engine_company",
    "customer",
    "date",
    "region",
    "process",
    "line",
    "amount",
    "not_taxed",
    "taxable",
    "tax",
    "tax_charged",
    "tax_engine",
)


def workfile_table(lines: Iterator[WorkfileLine], title: str) -> Table:
    """The workfile, a row per line (streamed)."""
    return Table(title, WORKFILE_HEADERS, lines)


def jurisdiction_table(lines: Iterator[JurisdictionLine], title: str) -> Table:
    """The workfile's jurisdiction breakdown (streamed)."""
    headers = (
        "code",
        "company",
        "date",
        "type",
        "name",
        "region",
        "rate",
        "taxable",
        "not_taxed",
        "tax",
    )
    return Table(title, headers, lines)


def journal_table(journal: Journal) -> Table:
    """A journal's lines, with its state and totals."""
    when = (
        f"posted {journal.posted_at:%Y-%m-%d} by {journal.posted_by}" if journal.posted_at else ""
    )
    return Table(
        f"Tax journal {journal.key} v{journal.version} ({journal.status.value}) {when}".rstrip(),
        ("company", "region", "account", "debit", "credit"),
        [(j.company, j.region, j.account, j.debit, j.credit) for j in journal.lines],
        (f"debits {journal.debits}  credits {journal.credits}  tax {journal.total_tax}",),
    )


def state_table(report: StateReport) -> Table:
    """The sales tax report by state, with a total row."""
    rows: list[Sequence[Any]] = [
        (r.company, r.region, r.documents, r.amount, r.not_taxed, r.taxable, r.tax, r.tax_charged)
        for r in report.rows
    ]
    total = report.total
    rows.append(
        (
            "total",
            "",
            total.documents,
            total.amount,
            total.not_taxed,
            total.taxable,
            total.tax,
            total.tax_charged,
        )
    )
    return Table(
        f"Sales tax by state {report.period} (company {report.company})",
        ("company", "region", "documents", "amount", "not_taxed", "taxable", "tax", "tax_charged"),
        rows,
        (
            "tax: the liability (the engine's figure where it answered the posting); "
            "tax_charged: what the invoices carried",
        ),
    )


def gl_table(found: GLReconciliation) -> Table:
    """BNI010A: sales against GL tax by process number."""
    return Table(
        f"Sales versus GL tax {found.period} (company {found.company})",
        ("code", "process", "company", "sales_tax", "gl_tax", "difference", "journal", "why"),
        [
            (
                r.code,
                r.process,
                r.company,
                r.sales_tax,
                r.gl_tax,
                r.amount,
                r.journal,
                r.difference.value,
            )
            for r in found.rows
        ],
        (f"sales {found.sales_total}  GL {found.gl_total}  differences {found.differences}",),
    )


def engine_table(found: EngineReconciliation) -> Table:
    """The engine-vs-store findings and what was done about them."""
    return Table(
        f"Engine versus store {found.period} (company {found.company})",
        (
            "code",
            "engine_company",
            "finding",
            "flag",
            "engine_status",
            "tax_here",
            "tax_engine",
            "locked",
            "action",
            "result",
        ),
        [
            (
                f.code,
                f.company_code,
                f.kind.value,
                f.flag,
                f.engine_status,
                f.tax_here,
                f.tax_engine,
                "yes" if f.locked else "",
                f.action.value,
                f.result,
            )
            for f in found.findings
        ],
        (
            f"{found.stored} documents here, {found.listed} at the engine, "
            f"{len(found.findings)} findings",
        ),
    )


def render(table: Table, fmt: Format) -> str:
    """The table as text in a text format (for tests and small outputs)."""
    out = io.StringIO()
    write(table, fmt, out)
    return out.getvalue()
