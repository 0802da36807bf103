"""One small framework for the seeds' file templates: a template is declared once as data
(column letter, exact header, type, length, required, allowed values), and a generic writer and a
streaming reader work from that declaration.

The reader maps columns by header name, checks every cell and every rule, and reports every
problem — row, column letter, header, value and the rule broken — up to ``max_errors`` shown
(all are counted). The writer neutralises text that a spreadsheet would run as a formula
(``=``, ``+``, ``-``, ``@``, tab, CR) by type: a negative amount is a number, not an attack.
CSV always; XLSX through openpyxl (``taxbridge[xlsx]``).
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from attrs import field, frozen

from taxbridge._cells import formula_safe
from taxbridge.errors import FileFormatError
from taxbridge.models._fields import CONTROL


class Kind(enum.Enum):
    """What a column holds."""

    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    DATE = "date"
    BOOLEAN = "True/False"


def letter_index(letter: str) -> int:
    """``A`` -> 0, ``Z`` -> 25, ``AA`` -> 26."""
    index = 0
    for char in letter:
        index = index * 26 + ord(char) - 64
    return index - 1


@frozen
class Column:
    """One column of a template, as the seed declares it."""

    letter: str
    header: str
    kind: Kind = Kind.TEXT
    length: int | None = None
    required: bool = False
    allowed: tuple[str, ...] = ()
    """The only values it may hold (blank aside, unless required)."""
    dates: tuple[str, ...] = ("%Y-%m-%d",)
    """strptime formats a DATE column accepts."""
    keep_text: bool = False
    """Written as text in a spreadsheet (postal codes keep their leading zeros)."""
    ignored: str = ""
    """A warning when it is filled (the engine ignores or reserves it)."""
    note: str = ""

    @property
    def index(self) -> int:
        """Its position in a file written by this template."""
        return letter_index(self.letter)


class Severity(enum.Enum):
    """An error stops the file from being imported; a warning does not."""

    ERROR = "error"
    WARNING = "warning"


@frozen
class Problem:
    """One rule broken by one cell (or row, or file)."""

    row: int
    """The file's row number (1 is the header row; 0: the file as a whole)."""
    letter: str
    header: str
    value: str
    rule: str
    severity: Severity = Severity.ERROR

    def as_dict(self) -> dict[str, Any]:
        """The problem as plain values, for JSON."""
        return {
            "row": self.row,
            "column": self.letter,
            "header": self.header,
            "value": self.value,
            "rule": self.rule,
            "severity": self.severity.value,
        }


Row = Sequence[str]
"""A data row as the template lays it out: index i holds column letter i."""
RowRule = Callable[[int, Row], Iterable[Problem]]


class FileRule:
    """A rule over the whole file (uniqueness, order, limits): fed each row, then finished."""

    def feed(self, number: int, row: Row) -> Iterable[Problem]:
        """Problems this row shows, given the rows before it."""
        return ()

    def finish(self, rows: int) -> Iterable[Problem]:
        """Problems of the file as a whole."""
        return ()


@frozen
class Template:
    """A file layout: its columns by letter, row rules and file rules."""

    name: str
    columns: tuple[Column, ...]
    width: int = field()
    """How many columns a written row has (letters the seed does not name are blank)."""
    row_rules: tuple[RowRule, ...] = ()
    file_rules: Callable[[], tuple[FileRule, ...]] = tuple
    max_rows: int | None = None
    """Data rows one file may hold (the writer splits beyond it)."""

    @width.default
    def _width(self) -> int:
        return max(column.index for column in self.columns) + 1

    def column(self, letter: str) -> Column:
        """The column at ``letter``."""
        for column in self.columns:
            if column.letter == letter:
                return column
        raise KeyError(letter)

    @property
    def headers(self) -> list[str]:
        """The header row as written: each named column's header at its letter."""
        row = [""] * self.width
        for column in self.columns:
            row[column.index] = column.header
        return row

    def problem(
        self, row: int, letter: str, value: Any, rule: str, warning: bool = False
    ) -> Problem:
        """A problem at ``letter`` of ``row``, naming the column's header."""
        header = self.column(letter).header if letter else ""
        severity = Severity.WARNING if warning else Severity.ERROR
        return Problem(row, letter, header, "" if value is None else str(value), rule, severity)


# -- cells ----------------------------------------------------------------------------------------


def parse_date(text: str, formats: Sequence[str]) -> dt.date | None:
    """The date in one of ``formats``, or None."""
    for fmt in formats:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def parse_number(text: str) -> Decimal | None:
    """A finite decimal number, or None."""
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def _cell_check(template: Template, column: Column) -> Callable[[int, str], list[Problem]]:
    """The checks of one non-blank cell of ``column``, built once per file."""
    length, kind, allowed = column.length, column.kind, column.allowed
    letter = column.letter
    formats = column.dates
    shown = " or ".join(
        f.replace("%Y", "yyyy").replace("%m", "mm").replace("%d", "dd") for f in formats
    )

    def check(number: int, value: str) -> list[Problem]:
        found = []
        control = CONTROL.search(value)
        if control is not None:
            found.append(
                template.problem(
                    number, letter, value, f"holds a control character ({control.group()!r})"
                )
            )
        if length is not None and len(value) > length:
            found.append(
                template.problem(number, letter, value, f"longer than {length} characters")
            )
        if kind is Kind.INTEGER and not value.lstrip("-").isdigit():
            found.append(template.problem(number, letter, value, "is not a whole number"))
        elif kind is Kind.NUMBER and parse_number(value) is None:
            found.append(template.problem(number, letter, value, "is not a number"))
        elif kind is Kind.DATE and parse_date(value, formats) is None:
            found.append(template.problem(number, letter, value, f"is not a date {shown}"))
        elif kind is Kind.BOOLEAN and value not in ("True", "False"):
            hint = " (write True or False, not 0 or 1)" if value in ("0", "1") else ""
            found.append(template.problem(number, letter, value, f"is not True or False{hint}"))
        if allowed and value not in allowed:
            found.append(
                template.problem(number, letter, value, f"is not one of {', '.join(allowed)}")
            )
        if column.ignored:
            found.append(template.problem(number, letter, value, column.ignored, warning=True))
        return found

    return check


def _controlled(text: str) -> bool:
    """Whether ``text`` holds a control character (``isprintable`` first: nearly never)."""
    return not text.isprintable() and CONTROL.search(text) is not None


_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_INTEGER = re.compile(r"-?\d+")


class _Screen:
    """A quick pass over a row: True when any cell may break a cell rule. Only such rows go
    through the checks that say which and why (a good file is the norm).

    The pass is one boolean expression over constant indexes, compiled once per template from
    its declaration (as attrs and dataclasses compile their ``__init__``): a 100,000-line file
    is screened in a fraction of the time a loop over the columns takes.
    """

    def __init__(self, template: Template):
        self.good_dates: set[tuple[str, tuple[str, ...]]] = set()
        names: dict[str, Any] = {
            "number": _NUMBER.fullmatch,
            "integer": _INTEGER.fullmatch,
            "bad_date": self._bad_date,
            "controlled": _controlled,
        }
        terms: list[str] = ["controlled(''.join(row))"]
        for column in template.columns:
            i, cell = column.index, f"row[{column.index}]"
            if column.required:
                terms.append(f"not {cell}")
            if column.length is not None:
                terms.append(f"len({cell}) > {column.length}")
            if column.allowed:
                names[f"allowed_{i}"] = frozenset(column.allowed)
                terms.append(f"({cell} and {cell} not in allowed_{i})")
            if column.kind is Kind.NUMBER:
                terms.append(f"({cell} and number({cell}) is None)")
            elif column.kind is Kind.INTEGER:
                terms.append(f"({cell} and integer({cell}) is None)")
            elif column.kind is Kind.BOOLEAN:
                terms.append(f"({cell} and {cell} != 'True' and {cell} != 'False')")
            elif column.kind is Kind.DATE:
                names[f"formats_{i}"] = column.dates
                terms.append(f"({cell} and bad_date({cell}, formats_{i}))")
            if column.ignored:
                terms.append(cell)
        source = "def suspect(row):\n    return bool(" + " or ".join(terms or ["False"]) + ")\n"
        exec(compile(source, f"<screen of {template.name}>", "exec"), names)
        self.suspect: Callable[[Row], bool] = names["suspect"]

    def _bad_date(self, value: str, formats: tuple[str, ...]) -> bool:
        if (value, formats) in self.good_dates:
            return False
        if parse_date(value, formats) is None:
            return True
        if len(self.good_dates) > 10_000:
            self.good_dates.clear()
        self.good_dates.add((value, formats))
        return False


# -- reading --------------------------------------------------------------------------------------


@frozen
class Report:
    """What validating a file found: rows read, errors and warnings counted, the problems shown
    (at most ``max_errors`` errors, warnings besides)."""

    template: str
    rows: int
    errors: int
    warnings: int
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return self.errors == 0


def _rows_of(path: Path, files: ExitStack) -> Iterator[list[str]]:
    """Every row of a CSV or XLSX file as text cells, streamed; the file closes with ``files``."""
    if path.suffix.lower() == ".xlsx":
        return _xlsx_rows(path)
    try:
        handle = files.enter_context(path.open(newline="", encoding="utf-8-sig"))
    except OSError as exc:
        raise FileFormatError(str(path), f"cannot be read as CSV: {exc}") from exc
    return csv.reader(handle)


def _xlsx_rows(path: Path) -> Iterator[list[str]]:
    try:
        from openpyxl import load_workbook
    except ImportError as exc:
        raise FileFormatError(
            str(path), "XLSX needs openpyxl: pip install 'taxbridge[xlsx]'"
        ) from exc
    _check_archive(path)
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise FileFormatError(str(path), f"cannot be read as XLSX: {exc}") from exc
    try:
        for values in book.worksheets[0].iter_rows(values_only=True):
            yield [_xlsx_text(value) for value in values]
    finally:
        book.close()


MAX_XLSX_UNPACKED = 512 * 1024 * 1024
"""The most an XLSX may unpack to (its XML): far above a 100,000-line import, far below what
exhausts a machine."""
MAX_XLSX_RATIO = 100
"""The most one large part of an XLSX may grow when unpacked (spreadsheet XML packs 5-20x; a
zip bomb hundreds of times)."""


def _check_archive(path: Path) -> None:
    """Refuse an XLSX that would unpack to more than :data:`MAX_XLSX_UNPACKED` or whose parts
    grow more than :data:`MAX_XLSX_RATIO` times, before any of it is unpacked."""
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise FileFormatError(str(path), f"cannot be read as XLSX: {exc}") from exc
    total = sum(part.file_size for part in parts)
    if total > MAX_XLSX_UNPACKED:
        raise FileFormatError(
            str(path), f"unpacks to {total:,} bytes, more than the {MAX_XLSX_UNPACKED:,} allowed"
        )
    for part in parts:
        if part.file_size > 1024 * 1024 and part.file_size > MAX_XLSX_RATIO * max(
            part.compress_size, 1
        ):
            raise FileFormatError(
                str(path),
                f"its part {part.filename} unpacks {part.file_size // max(part.compress_size, 1):,}"
                f" times its size ({part.file_size:,} bytes): not read, as a zip bomb would not be",
            )


def _xlsx_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _no_progress(count: int) -> None:
    """No one is watching."""


def read(
    template: Template,
    path: str | Path,
    *,
    max_errors: int | None = None,
    rows: Callable[[int, Row], None] | None = None,
    extra_rules: Sequence[FileRule] = (),
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Validate ``path`` against ``template``, streaming: columns mapped by header, every cell
    and rule checked. ``rows`` is handed each data row laid out by letter (for an import);
    ``progress`` the count of rows read, every thousand rows and at the end."""
    source = Path(path)
    with ExitStack() as files:
        try:
            return _read(
                template,
                source,
                _rows_of(source, files),
                max_errors,
                rows,
                extra_rules,
                progress or _no_progress,
            )
        except (UnicodeDecodeError, csv.Error) as exc:
            raise FileFormatError(str(source), f"cannot be read as CSV: {exc}") from exc


def _read(
    template: Template,
    source: Path,
    stream: Iterator[list[str]],
    max_errors: int | None,
    rows: Callable[[int, Row], None] | None,
    extra_rules: Sequence[FileRule],
    progress: Callable[[int], None],
) -> Report:
    try:
        header = next(stream)
    except StopIteration:
        raise FileFormatError(str(source), "is empty: no header row") from None
    problems: list[Problem] = []
    errors = warnings = 0

    def note(found: Iterable[Problem]) -> None:
        nonlocal errors, warnings
        for problem in found:
            if problem.severity is Severity.ERROR:
                errors += 1
                if max_errors is not None and errors > max_errors:
                    continue
            else:
                warnings += 1
                if max_errors is not None and warnings > max_errors:
                    continue  # counted, not listed: --max-errors bounds warnings too
            problems.append(problem)

    where = {text.strip(): index for index, text in enumerate(header) if text.strip()}
    mapping: list[tuple[int, int]] = []
    for column in template.columns:
        found = where.get(column.header)
        if found is None:
            if column.required:
                note([template.problem(1, column.letter, "", "required column is missing")])
            continue
        mapping.append((column.index, found))
    known = {column.header for column in template.columns}
    for text in where:
        if text not in known:
            note([Problem(1, "", text, text, "is not a column of this template", Severity.WARNING)])
    identity = all(target == source_index for target, source_index in mapping)
    checks = [(c.index, _cell_check(template, c)) for c in template.columns]
    required = [(c.index, c.letter) for c in template.columns if c.required]
    screen = _Screen(template)
    file_rules = [*template.file_rules(), *extra_rules]
    width = template.width
    count = 0
    limit = template.max_rows
    for number, raw in enumerate(stream, start=2):
        if not any(raw):
            continue
        count += 1
        if count % 1000 == 0:
            progress(count)
        if limit is not None and count > limit:
            break  # reported below; nothing past the limit is read
        if identity:
            row = raw + [""] * (width - len(raw)) if len(raw) < width else raw
        else:
            row = [""] * width
            for target, source_index in mapping:
                if source_index < len(raw):
                    row[target] = raw[source_index]
        if screen.suspect(row):
            for index, check in checks:
                value = row[index]
                if value:
                    broken = check(number, value)
                    if broken:
                        note(broken)
            for index, letter in required:
                if not row[index]:
                    note([template.problem(number, letter, "", "is required")])
        for rule in template.row_rules:
            note(rule(number, row))
        for file_rule in file_rules:
            note(file_rule.feed(number, row))
        if rows is not None:
            rows(number, row)
    progress(count)
    for file_rule in file_rules:
        note(file_rule.finish(count))
    if limit is not None and count > limit:
        note([Problem(0, "", "", f"{limit:,}+", f"more than {limit:,} lines in one file")])
    return Report(template.name, count, errors, warnings, tuple(problems))


# -- writing --------------------------------------------------------------------------------------


class Writer:
    """Writes rows laid out by letter to one CSV or XLSX file, neutralising formula text."""

    def __init__(self, template: Template, path: str | Path):
        self.template = template
        self.path = Path(path)
        self.rows = 0
        self._text = [c.index for c in template.columns if c.kind is Kind.TEXT]
        self._xlsx = self.path.suffix.lower() == ".xlsx"
        if self._xlsx:
            self._book, self._sheet = _open_xlsx(template, self.path)
        else:
            try:
                self._handle: io.TextIOBase = self.path.open("w", newline="", encoding="utf-8")
            except OSError as exc:
                raise FileFormatError(str(self.path), f"cannot be written: {exc}") from exc
            self._csv = csv.writer(self._handle, lineterminator="\r\n")
            self._csv.writerow(template.headers)

    def write(self, row: list[str]) -> None:
        """One data row (``width`` cells by letter)."""
        for index in self._text:
            row[index] = formula_safe(row[index])
        if self._xlsx:
            self._sheet.append(_xlsx_cells(self.template, self._sheet, row))
        else:
            self._csv.writerow(row)
        self.rows += 1

    def close(self) -> None:
        """Finish the file."""
        if self._xlsx:
            self._book.save(str(self.path))
        else:
            self._handle.close()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_xlsx(template: Template, path: Path) -> tuple[Any, Any]:
    try:
        from openpyxl import Workbook
    except ImportError as exc:
        raise FileFormatError(
            str(path), "XLSX needs openpyxl: pip install 'taxbridge[xlsx]'"
        ) from exc
    book = Workbook(write_only=True)
    sheet = book.create_sheet(template.name[:31])
    sheet.append(template.headers)
    return book, sheet


def _xlsx_cells(template: Template, sheet: Any, row: list[str]) -> list[Any]:
    from openpyxl.cell import WriteOnlyCell

    cells: list[Any] = list(row)
    for column in template.columns:
        value = row[column.index]
        if not value:
            continue
        if column.keep_text:
            cell = WriteOnlyCell(sheet, value=value)
            cell.number_format = "@"
            cells[column.index] = cell
        elif column.kind in (Kind.NUMBER, Kind.INTEGER) and parse_number(value) is not None:
            number = Decimal(value)
            cells[column.index] = int(number) if number == number.to_integral() else float(number)
    return cells
