"""The AvaTax transaction import template (seed 001): columns A..CI declared once, the rules the
seed states, and the rows of stored invoices, credits and AR tax write-offs.

Letters the seed never names (AO, AQ..BV, BX) are blank columns, so every named column sits at
its letter. Rules are quoted from the seed in each problem's text.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal

import attrs
from attrs import field, frozen

from taxbridge.errors import InvalidFieldError
from taxbridge.files.template import (
    Column,
    FileRule,
    Kind,
    Problem,
    Row,
    RowRule,
    Template,
    letter_index,
    parse_number,
)
from taxbridge.models import Address, DocumentType, TaxDocument
from taxbridge.models import _fields as _f
from taxbridge.regions import BY_COUNTRY

MAX_LINES = 100_000
"""An import file is limited to 100,000 lines."""
MAX_DOCUMENT_LINES = 15_000
"""A single DocCode can't exceed 15,000 line items."""
PROCESS_CODES = ("0", "1", "2", "3", "4", "5", "6", "9", "10")
SST_PROCESS_CODES = ("0", "3", "4", "9", "10")
OVERRIDES = frozenset({"1", "2", "5", "6", "9", "10"})
"""Process codes that take the tax from TotalTax (AP) instead of calculating it."""
OVERWRITES = frozenset({"2", "4", "6"})
"""Process codes that may overwrite a document already at AvaTax."""
ORDER_TYPES = frozenset({"0", "2", "4", "6", "8", "11"})
"""Order document types: calculated, never saved."""
DATES = ("%Y-%m-%d", "%m/%d/%Y")
BOOLEAN_LETTERS = ("BY", "CA", "CB", "CC", "CD", "CE", "CF", "CG")

_T, _N, _I, _D, _B = Kind.TEXT, Kind.NUMBER, Kind.INTEGER, Kind.DATE, Kind.BOOLEAN


def _columns(*, export: bool) -> tuple[Column, ...]:
    taxable_note = "" if export else "is ignored on import (AvaTax fills it when exporting)"
    return (
        Column("A", "ProcessCode", _I, required=True, allowed=PROCESS_CODES),
        Column("B", "DocCode", _T, 50, required=True),
        Column("C", "DocType", _I, required=True, allowed=tuple(str(n) for n in range(12))),
        Column("D", "DocDate", _D, required=True, dates=DATES),
        Column("E", "CompanyCode", _T, 25),
        Column("F", "CustomerCode", _T, 50, required=True),
        Column("G", "EntityUseCode", _T, 25),
        Column("H", "LineNo", _T, 50, required=True),
        Column("I", "TaxCode", _T, 25),
        Column("J", "TaxDate", _D, dates=DATES),
        Column("K", "ItemCode", _T, 50),
        Column("L", "Description", _T, 255),
        Column("M", "Qty", _N),
        Column("N", "Amount", _N, required=True),
        Column("O", "Discount", _N),
        Column("P", "Ref1", _T, 50),
        Column("Q", "Ref2", _T, 50),
        Column("R", "ExemptionNo", _T, 25),
        Column("S", "RevAcct", _T, 50),
        Column("T", "DestAddress", _T, 50),
        Column("U", "DestCity", _T, 50),
        Column("V", "DestRegion", _T),
        Column("W", "DestPostCode", _T, keep_text=True),
        Column("X", "DestCountry", _T, 2),
        Column("Y", "OrigAddress", _T, 50),
        Column("Z", "OrigCity", _T, 35),
        Column("AA", "OrigRegion", _T, 2),
        Column("AB", "OrigPostCode", _T, keep_text=True),
        Column("AC", "OrigCountry", _T, 2),
        Column("AD", "LocationCode", _T, 50),
        Column("AE", "SalesPersonCode", _T, 25),
        Column("AF", "PurchaseOrderNo", _T, 50),
        Column("AG", "CurrencyCode", _T, 30),
        Column("AH", "ExchangeRate", _N),
        Column("AI", "ExchangeRateEffDate", _D, dates=DATES),
        Column("AJ", "PaymentDate", _D, dates=DATES, ignored="is reserved for future use"),
        Column("AK", "TaxIncluded", _T, allowed=("0", "1")),
        Column("AL", "DestTaxRegion", _T, 10),
        Column("AM", "OrigTaxRegion", _T, 10, ignored="is reserved for future use"),
        Column("AN", "Taxable", _N, ignored=taxable_note),
        Column("AP", "TotalTax", _N),
        Column("BW", "ReferenceCode", _T, 50),
        Column("BY", "IsSellerImporterOfRecord", _B),
        Column("BZ", "BRBuyerType", _T),
        Column("CA", "BRBuyer_IsExemptOrCannotWH_IRRF", _B),
        Column("CB", "BRBuyer_IsExemptOrCannotWH_PISRF", _B),
        Column("CC", "BRBuyer_IsExemptOrCannotWH_COFINSRF", _B),
        Column("CD", "BRBuyer_IsExemptOrCannotWH_CSLLRF", _B),
        Column("CE", "BRBuyer_IsExempt_PIS", _B),
        Column("CF", "BRBuyer_IsExempt_COFINS", _B),
        Column("CG", "BRBuyer_IsExempt_CSLL", _B),
        Column("CH", "Header_Description", _T, 5),
        Column("CI", "Email address for the buyer", _T),
    )


_AT = {letter: letter_index(letter) for letter in (
    "A", "B", "C", "D", "F", "G", "H", "I", "K", "L", "M", "N", "O", "T", "U", "V", "W", "X",
    "Y", "Z", "AA", "AB", "AC", "AD", "AP",
)}  # fmt: skip
_DEST = tuple(letter_index(x) for x in ("U", "V", "W", "X"))
_ORIG = tuple(letter_index(x) for x in ("Z", "AA", "AB", "AC"))
_SST_REQUIRED = ("I", "K", "L", "T", "U", "V", "W", "X")


_QTY = re.compile(r"\d*\.?\d{0,4}")
"""A positive quantity's shape: at most four decimals (zero is refused apart)."""


def _row_rules(template: Template, *, sst: bool) -> tuple[RowRule, ...]:
    """The row rules, on indexes worked out once (a 100,000-line file runs them per row)."""
    p = template.problem
    a, c, g, n, m, o, ap, ad, u = (_AT[x] for x in ("A", "C", "G", "N", "M", "O", "AP", "AD", "U"))
    sst_required = [(x, letter_index(x)) for x in _SST_REQUIRED]
    sides = [
        (letter_index(street), parts, region, letter_index(region), postal, letter_index(postal),
         letter_index(country))
        for street, parts, region, postal, country in (
            ("T", _DEST, "V", "W", "X"),
            ("Y", _ORIG, "AA", "AB", "AC"),
        )
    ]  # fmt: skip

    def rules(number: int, row: Row) -> list[Problem]:
        found: list[Problem] = []
        process, doc_type = row[a], row[c]
        if doc_type in ORDER_TYPES:
            why = "order documents (0, 2, 4, 6, 8, 11) aren't saved to AvaTax and don't post"
            found.append(p(number, "C", doc_type, why, warning=True))
        if sst:
            if process and process not in SST_PROCESS_CODES:
                found.append(
                    p(number, "A", process, "SST sellers use only codes 0, 3, 4, 9 and 10")
                )
            if row[g]:
                found.append(p(number, "G", row[g], "SST sellers can't use entity use codes"))
            for letter, index in sst_required:
                if not row[index]:
                    found.append(p(number, letter, "", "is required for SST sellers"))
        for street, parts, region, at_region, postal, at_postal, at_country in sides:
            if row[street] and not (
                row[parts[0]] or row[parts[1]] or row[parts[2]] or row[parts[3]]
            ):
                continue  # a LocationCode stands for the whole address
            nation = row[at_country] or "US"
            known = BY_COUNTRY.get(nation)
            if known is None:
                continue
            named = row[at_region]
            if not named:
                found.append(p(number, region, "", "is required for US and Canadian transactions"))
            elif named not in known:
                found.append(p(number, region, named, f"is not a state or province of {nation}"))
            if not row[at_postal]:
                found.append(p(number, postal, "", "is required for US and Canadian transactions"))
        amount_text, qty, discount_text = row[n], row[m], row[o]
        if (
            doc_type == "5"
            and amount_text
            and not amount_text.startswith("-")
            and (parse_number(amount_text) or 0) > 0
        ):
            found.append(
                p(number, "N", amount_text, "must be negative for a return invoice (DocType 5)")
            )
        if (
            qty
            and qty != "1"
            and parse_number(qty) is not None
            and (not _QTY.fullmatch(qty) or not qty.strip("0."))
        ):
            found.append(p(number, "M", qty, "must be a positive number with at most 4 decimals"))
        if discount_text:
            discount, amount = parse_number(discount_text), parse_number(amount_text)
            if discount and amount is not None and (discount < 0) != (amount < 0):
                why = "the sign of the discount must match the line amount"
                found.append(p(number, "O", discount_text, why))
        if row[ap] and process in ("0", "3", "4"):
            why = "TotalTax is not used for ProcessCode 0, 3 or 4"
            found.append(p(number, "AP", row[ap], why, warning=True))
        if row[ad] and row[u]:
            found.append(p(number, "U", row[u], "must be blank when LocationCode (AD) is set"))
        return found

    return (rules,)


class _Documents(FileRule):
    """DocCode unique per DocType and contiguous; lines of one DocCode in order and at most
    15,000; TotalTax a lump sum on the first line or on every line; overwriting needs
    ProcessCode 2, 4 or 6."""

    def __init__(self, template: Template, existing: frozenset[str]):
        self.template = template
        self.existing = existing
        self.seen: set[tuple[str, str]] = set()
        self.current: tuple[str, str] | None = None
        self.lines = 0
        self.last_line: tuple[tuple[int, int | str], ...] = ()
        self.totals: list[tuple[int, str]] = []
        self.process = ""

    def feed(self, number: int, row: Row) -> list[Problem]:
        p = self.template.problem
        key = (row[_AT["C"]], row[_AT["B"]])
        found: list[Problem] = []
        if key != self.current:
            found.extend(self._close())
            if key in self.seen:
                found.append(
                    p(
                        number,
                        "B",
                        key[1],
                        "appears again after another document: "
                        "document codes with the same DocType must be contiguous",
                    )
                )
            self.seen.add(key)
            self.current, self.lines, self.last_line = key, 0, ()
            self.process = row[_AT["A"]]
            if key[1] in self.existing and self.process not in OVERWRITES:
                found.append(
                    p(
                        number,
                        "A",
                        self.process,
                        f"{key[1]} is already at AvaTax: "
                        "overwriting it needs ProcessCode 2, 4 or 6",
                    )
                )
        self.lines += 1
        if self.lines == MAX_DOCUMENT_LINES + 1:
            found.append(p(number, "B", key[1], "a single DocCode can't exceed 15,000 line items"))
        order = _natural(row[_AT["H"]])
        if self.last_line and order <= self.last_line:
            found.append(
                p(
                    number,
                    "H",
                    row[_AT["H"]],
                    "lines of one DocCode must be in order (and not repeated)",
                )
            )
        self.last_line = order
        self.totals.append((number, row[_AT["AP"]]))
        return found

    def _close(self) -> list[Problem]:
        totals, self.totals = self.totals, []
        if not totals or self.process not in OVERRIDES:
            return []
        filled = [bool(value) for _, value in totals]
        if all(filled) or (filled[0] and not any(filled[1:])):
            return []
        number, value = totals[0]
        if not any(filled):
            rule = "a tax override (ProcessCode 1, 2, 5, 6, 9, 10) needs TotalTax"
        else:
            rule = (
                "TotalTax is either a lump sum on the first line with the others blank, or "
                "on every line (0, not blank, for no tax)"
            )
        return [self.template.problem(number, "AP", value, rule)]

    def finish(self, rows: int) -> list[Problem]:
        return self._close()


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """A line number's order: ``1001-10`` after ``1001-9``; digits compare as numbers, other
    text as text (the common ``<process>-<line>`` shape without a regular expression)."""
    head, dash, tail = text.partition("-")
    if dash and head.isdigit() and tail.isdigit():
        return ((0, int(head)), (1, "-"), (0, int(tail)))
    parts = text.split("-")
    if all(part.isdigit() for part in parts):
        key: list[tuple[int, int | str]] = []
        for part in parts:
            if key:
                key.append((1, "-"))
            key.append((0, int(part)))
        return tuple(key)
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part
    )


@functools.cache
def avatax_template(*, sst: bool = False, export: bool = False) -> Template:
    """The import template; ``sst`` adds the Streamlined Sales Tax rules, ``export`` reads an
    AvaTax export (Taxable filled, no warning)."""
    base = Template("AvaTax transaction import", _columns(export=export), max_rows=MAX_LINES)
    rules = _row_rules(base, sst=sst)
    return Template(
        base.name,
        base.columns,
        row_rules=rules,
        file_rules=lambda: (_Documents(base, frozenset()),),
        max_rows=MAX_LINES,
    )


def knowing(template: Template, existing: Iterable[str]) -> Template:
    """The template, also knowing which document codes AvaTax already has: a new document
    (ProcessCode other than 2, 4 or 6) with one of them is an error."""
    codes = frozenset(existing)
    base = avatax_template()
    return attrs.evolve(template, file_rules=lambda: (_Documents(base, codes),))


# -- rows from the store ------------------------------------------------------------------------


def _money(value: Decimal) -> str:
    return f"{value:f}"


def _address(row: list[str], address: Address | None, letters: tuple[str, ...]) -> None:
    if address is None:
        return
    street, city, region, postal, country = (letter_index(x) for x in letters)
    row[street] = address.line1[:50]
    row[city] = address.city
    row[region] = address.region
    row[postal] = address.postal_code
    row[country] = address.country


OVERWRITE_OF = {1: 2, 3: 4}
"""The ProcessCode that overwrites a document AvaTax has, for each code that creates one."""


def document_rows(
    document: TaxDocument, *, process_code: int = 3, company_code: str | None = None
) -> Iterator[list[str]]:
    """The rows of a stored invoice or credit: ProcessCode 3 (AvaTax calculates) by default,
    or 1 with TotalTax per line = the tax the invoice carried (keeps the ERP's figure). A
    document AvaTax has already (Y, R, M) is written to overwrite itself (4 for 3, 2 for 1), so
    that importing the file never posts it twice. Lines are written in the order the reader
    requires of one DocCode (``1001-LEVY-EWASTE`` before ``P1001-1``)."""
    request = document.request
    if request is None or document.document_type not in (
        DocumentType.SALES_INVOICE,
        DocumentType.RETURN_INVOICE,
    ):
        raise InvalidFieldError(
            "avatax import", "document", document.code, "is not a stored invoice or credit"
        )
    if process_code not in (1, 3):
        raise InvalidFieldError(
            "avatax import", "process_code", process_code, "is not 1 (tax override) or 3"
        )
    doc_type = "1" if document.document_type is DocumentType.SALES_INVOICE else "5"
    charged = {line.number: line.tax_charged for line in document.lines}
    template = avatax_template()
    if document.flag.is_final:
        process_code = OVERWRITE_OF[process_code]
    lines = zip(request.lines, request.discount_shares(), strict=True)
    for line, share in sorted(lines, key=lambda pair: _natural(pair[0].number)):
        row = [""] * template.width
        row[0] = str(process_code)
        row[_AT["B"]] = document.code
        row[_AT["C"]] = doc_type
        row[_AT["D"]] = request.date.isoformat()
        row[letter_index("E")] = company_code or request.company_code
        row[_AT["F"]] = request.customer_code
        row[_AT["G"]] = line.entity_use_code or request.entity_use_code or ""
        row[_AT["H"]] = line.number
        row[_AT["I"]] = line.tax_code
        if request.tax_date is not None:
            row[letter_index("J")] = request.tax_date.isoformat()
        row[_AT["K"]] = line.item_code
        row[_AT["L"]] = line.description[:255]
        row[_AT["M"]] = _money(abs(line.quantity) or Decimal(1))
        row[_AT["N"]] = _money(line.amount - line.discount)
        if share:
            row[_AT["O"]] = _money(-share if line.amount < 0 else share)
        row[letter_index("P")] = line.ref1
        row[letter_index("Q")] = line.ref2
        row[letter_index("R")] = line.exemption_no or request.exemption_no or ""
        _address(row, line.ship_to or request.ship_to, ("T", "U", "V", "W", "X"))
        _address(row, request.ship_from, ("Y", "Z", "AA", "AB", "AC"))
        row[letter_index("AF")] = request.purchase_order_no
        row[letter_index("AG")] = request.currency
        if process_code in (1, 2):
            row[_AT["AP"]] = _money(charged.get(line.number, Decimal("0.00")))
        row[letter_index("BW")] = request.reference_code
        yield row


@frozen
class TaxWriteOff:
    """An AR journal's tax write-off (seed 003: "will require a manual entry transaction into
    Avalara"): posted as a ProcessCode 1 return invoice carrying the tax written off."""

    code: str = field(converter=_f.required_text)
    customer_code: str = field(converter=_f.required_text)
    date: dt.date = field(converter=_f.date)
    amount: Decimal = field(converter=_f.non_negative)
    """The sale amount the write-off concerns (positive; written negative)."""
    tax: Decimal = field(converter=_f.non_negative)
    ship_to: Address = field(validator=_f.instance_of(Address))
    ship_from: Address = field(validator=_f.instance_of(Address))
    company_code: str = field(default="", converter=_f.text)
    description: str = field(default="AR tax write-off", converter=_f.text)


def write_off_rows(write_off: TaxWriteOff) -> list[str]:
    """The one row of a write-off: DocType 5, amount and TotalTax negative, ProcessCode 1."""
    row = [""] * avatax_template().width
    row[0] = "1"
    row[_AT["B"]] = write_off.code
    row[_AT["C"]] = "5"
    row[_AT["D"]] = write_off.date.isoformat()
    row[letter_index("E")] = write_off.company_code
    row[_AT["F"]] = write_off.customer_code
    row[_AT["H"]] = "1"
    row[_AT["L"]] = write_off.description
    row[_AT["M"]] = "1"
    row[_AT["N"]] = _money(-write_off.amount)
    _address(row, write_off.ship_to, ("T", "U", "V", "W", "X"))
    _address(row, write_off.ship_from, ("Y", "Z", "AA", "AB", "AC"))
    row[_AT["AP"]] = _money(-write_off.tax)
    return row
