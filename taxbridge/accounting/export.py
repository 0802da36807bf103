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
    """A titled table: headers, rows (any iterable, read once) and summary lines.

    ``totals`` names the columns a total row sums: a text table prints it under the rows, an
    Excel sheet writes it as SUM formulas; CSV and JSON carry the rows only, so a pivot or a
    program never meets a total as data. ``fields`` are values every row shares (a journal's key,
    version, status): CSV, JSON and Excel carry them as leading columns, the text table in its
    title."""

    title: str
    headers: tuple[str, ...]
    rows: Iterable[Sequence[Any]]
    notes: tuple[str, ...] = ()
    sheet: str = ""
    """The Excel sheet's name (at most 31 characters; the title goes in its first row)."""
    totals: tuple[str, ...] = ()
    total: tuple[Any, ...] = ()
    """The total row when a column's total is not its sum (a document in two states counts once);
    the text table prints it, Excel keeps SUM formulas for ``totals`` and these values for the
    rest."""
    fields: tuple[tuple[str, Any], ...] = ()

    def columns(self) -> tuple[str, ...]:
        """The headers the machine formats write: the shared fields', then the rows'."""
        return tuple(name for name, _ in self.fields) + self.headers

    def records(self) -> Iterator[tuple[Any, ...]]:
        """The rows with the shared fields in front (read once)."""
        shared = tuple(value for _, value in self.fields)
        for row in self.rows:
            yield shared + tuple(row)


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
        writer.writerow(table.columns())
        writer.writerows([_csv_cell(v) for v in row] for row in table.records())
    elif fmt is Format.JSON:
        columns = table.columns()
        for row in table.records():
            record = {h: _json_value(v) for h, v in zip(columns, row, strict=True)}
            stream.write(json.dumps(record) + "\n")
    else:
        _write_text(table, stream)


def _write_text(table: Table, out: IO[str]) -> None:
    """An aligned table, numbers to the right; rows are held (a text table is for a screen,
    not a year)."""
    raw = [list(row) for row in table.rows]
    if table.total:
        raw.append(list(table.total))
    elif table.totals and raw:
        raw.append(_total_row(table, raw))
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


def _total_row(table: Table, rows: list[list[Any]]) -> list[Any]:
    """``total`` under the first column, each totalled column's sum, the rest blank."""
    total: list[Any] = ["total"] + [None] * (len(table.headers) - 1)
    for index, header in enumerate(table.headers):
        if header in table.totals:
            total[index] = sum(row[index] or 0 for row in rows)
    return total


def write_xlsx(tables: Sequence[Table], path: Path) -> None:
    """An Excel workbook an accountant accepts, streamed (openpyxl write-only mode): a sheet per
    table with its title in the first row, bold headers frozen under it with filters, columns
    wide enough, the totals as SUM formulas in a bold total row under the data, and the notes
    on a sheet of their own (a note inside the data would break a pivot table)."""
    try:
        from openpyxl import Workbook
    except ImportError as exc:
        raise TaxBridgeError("Excel output needs openpyxl: pip install 'taxbridge[xlsx]'") from exc
    book = Workbook(write_only=True)
    notes: list[tuple[str, str]] = []
    for table in tables:
        _xlsx_sheet(book, table)
        notes.extend((table.title, note) for note in table.notes)
    if notes:
        sheet = book.create_sheet("Notes")
        sheet.append(["table", "note"])
        for title, note in notes:
            sheet.append([formula_safe(title), formula_safe(note)])
    book.save(str(path))


def _xlsx_sheet(book: Any, table: Table) -> None:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    bold = Font(bold=True)
    sheet = book.create_sheet(_sheet_name(table.sheet or table.title))
    columns = table.columns()
    for index, header in enumerate(columns, 1):
        sheet.column_dimensions[get_column_letter(index)].width = _width(header)
    sheet.freeze_panes = "A3"
    title = WriteOnlyCell(sheet, value=formula_safe(table.title))
    title.font = Font(bold=True, size=13)
    sheet.append([title])
    heads = []
    for header in columns:
        cell = WriteOnlyCell(sheet, value=header)
        cell.font = bold
        heads.append(cell)
    sheet.append(heads)
    last = 2
    for row in table.records():
        sheet.append([_xlsx_cell(sheet, value) for value in row])
        last += 1
    end = get_column_letter(len(columns))
    sheet.auto_filter.ref = f"A2:{end}{max(last, 2)}"
    if table.totals:
        given = dict(zip(table.headers, table.total, strict=False))
        total = []
        for index, header in enumerate(columns, 1):
            letter = get_column_letter(index)
            value: Any = _xlsx_value(given.get(header))
            if index == 1:
                value = "total"
            elif header in table.totals:
                value = f"=SUM({letter}3:{letter}{max(last, 3)})"
            cell = WriteOnlyCell(sheet, value=value)
            cell.font = bold
            if header in table.totals:
                cell.number_format = "#,##0.00"
            total.append(cell)
        sheet.append(total)


def _xlsx_cell(sheet: Any, value: Any) -> Any:
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=_xlsx_value(value))
    if isinstance(value, Decimal):
        cell.number_format = "#,##0.00" if value == value.quantize(_CENT) else "0.0000##"
    elif isinstance(value, dt.date):
        cell.number_format = "yyyy-mm-dd"
    return cell


_WIDE = {"name": 28, "why": 40, "result": 40, "action": 18, "finding": 18, "customer": 12}


def _width(header: str) -> float:
    """A column's width from what it holds: money and dates as wide as their figures, names and
    reasons wider, anything else its header."""
    return float(_WIDE.get(header, max(len(header) + 2, 12)))


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
    """The workfile, a row per line (streamed), with a total of its amounts."""
    money = ("amount", "not_taxed", "taxable", "tax", "tax_charged", "tax_engine")
    return Table(title, WORKFILE_HEADERS, lines, sheet="Workfile", totals=money)


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
    return Table(
        title, headers, lines, sheet="Jurisdictions", totals=("taxable", "not_taxed", "tax")
    )


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
        sheet="Journal",
        totals=("debit", "credit"),
        fields=(
            ("journal", journal.key),
            ("version", journal.version),
            ("status", journal.status.value),
            ("posted_by", journal.posted_by or None),
            ("posted_at", journal.posted_at.isoformat() if journal.posted_at else None),
        ),
    )


def state_table(report: StateReport) -> Table:
    """The sales tax report by state, with a total row."""
    rows: list[Sequence[Any]] = [
        (r.company, r.region, r.documents, r.amount, r.not_taxed, r.taxable, r.tax, r.tax_charged)
        for r in report.rows
    ]
    t = report.total
    return Table(
        f"Sales tax by state {report.period} (company {report.company})",
        ("company", "region", "documents", "amount", "not_taxed", "taxable", "tax", "tax_charged"),
        rows,
        (
            "tax: the liability (the engine's figure where it answered the posting); "
            "tax_charged: what the invoices carried; documents in the total: each once, though "
            "one may ship to several states",
        ),
        sheet="Sales tax by state",
        totals=("amount", "not_taxed", "taxable", "tax", "tax_charged"),
        total=("total", "", t.documents, t.amount, t.not_taxed, t.taxable, t.tax, t.tax_charged),
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
        sheet="Sales versus GL",
        totals=("sales_tax", "gl_tax", "difference"),
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
        sheet="Engine versus store",
    )


def render(table: Table, fmt: Format) -> str:
    """The table as text in a text format (for tests and small outputs)."""
    out = io.StringIO()
    write(table, fmt, out)
    return out.getvalue()
