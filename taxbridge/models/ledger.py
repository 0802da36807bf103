"""Finance's side of the documents: a date range, the tax workfile's lines (BNO155G), GL journals
(BNO010, AV-GL) with their lines, and a document as the engine lists it. Values only, no I/O."""

from __future__ import annotations

import calendar
import datetime as dt
import enum
import re
from decimal import Decimal
from typing import NamedTuple

from attrs import frozen

from taxbridge.errors import InvalidFieldError
from taxbridge.models.tax import DocumentStatus

_PERIOD = re.compile(r"(\d{4})-(\d{2})")


@frozen
class DateRange:
    """Document dates from ``start`` to ``end``, both included: a period (a calendar month) or
    any range. Reports select documents by their document date."""

    start: dt.date
    end: dt.date

    def __attrs_post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
                raise InvalidFieldError("DateRange", name, value, "is not a date")
        if self.end < self.start:
            raise InvalidFieldError(
                "DateRange", "end", self.end.isoformat(), f"is before start {self.start}"
            )

    @classmethod
    def period(cls, text: str) -> DateRange:
        """The calendar month ``YYYY-MM``."""
        found = _PERIOD.fullmatch(text.strip()) if isinstance(text, str) else None
        if found is None or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1:
            raise InvalidFieldError("DateRange", "period", text, "is not a period YYYY-MM")
        year, month = int(found.group(1)), int(found.group(2))
        last = calendar.monthrange(year, month)[1]
        return cls(dt.date(year, month, 1), dt.date(year, month, last))

    @classmethod
    def of(cls, value: DateRange | str) -> DateRange:
        """A range as given, or the period ``YYYY-MM`` named by a string."""
        return value if isinstance(value, DateRange) else cls.period(value)

    @classmethod
    def between(cls, start: str | dt.date, end: str | dt.date) -> DateRange:
        """The range from ``start`` to ``end`` (dates or ``YYYY-MM-DD``)."""
        return cls(_date("start", start), _date("end", end))

    @property
    def key(self) -> str:
        """``2026-10`` for a whole calendar month, else ``2026-10-01..2026-10-15``."""
        last = calendar.monthrange(self.start.year, self.start.month)[1]
        whole_month = self.start.day == 1 and self.end == self.start.replace(day=last)
        if whole_month:
            return f"{self.start.year:04d}-{self.start.month:02d}"
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    def overlaps(self, other: DateRange) -> bool:
        """Whether the two ranges share a day."""
        return self.start <= other.end and other.start <= self.end

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.start <= day <= self.end

    def __str__(self) -> str:
        return self.key


def _date(name: str, value: str | dt.date) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise InvalidFieldError("DateRange", name, value, "is not a date YYYY-MM-DD") from None


class WorkfileLine(NamedTuple):
    """One posted line of an invoice or credit (BNO155G): the base of journals and reports.

    ``tax`` is the liability: the engine's figure where the engine answered the posting (Y, R),
    else what the invoice carried (U, M). ``tax_charged`` is what the invoice carried;
    ``tax_engine`` the engine's figure, None where it is not known here."""

    code: str
    kind: str
    """``invoice`` or ``credit``."""
    flag: str
    erp_company: str
    company_code: str
    customer_code: str
    document_date: dt.date
    region: str
    """The line's ship-to region."""
    process: str
    """The order (process) number the line came from; a claim's number for a claim line."""
    line: str
    """The engine line number, ``<process>-<line>``."""
    amount: Decimal
    exempt: Decimal
    """Not taxed."""
    taxable: Decimal
    tax: Decimal
    tax_charged: Decimal
    tax_engine: Decimal | None


class JurisdictionLine(NamedTuple):
    """One jurisdiction of a workfile document's breakdown (state, county, city, others)."""

    code: str
    erp_company: str
    document_date: dt.date
    jurisdiction_type: str
    name: str
    region: str
    rate: Decimal
    taxable: Decimal
    exempt: Decimal
    tax: Decimal


class JournalStatus(enum.Enum):
    """A journal is generated, may be regenerated while unposted, and is locked once posted."""

    GENERATED = "generated"
    POSTED = "posted"


@frozen
class JournalLine:
    """A debit or credit of a journal: one account of one company and region."""

    company: str
    region: str
    account: str
    debit: Decimal
    credit: Decimal


@frozen
class JournalShare:
    """The tax a journal took from one process number of one document (for BNI010A)."""

    code: str
    process: str
    company: str
    """The document's ERP company."""
    document_date: dt.date
    tax: Decimal


@frozen
class Journal:
    """The tax journal of a company (or every company, ``*``) for a date range."""

    company: str
    period: DateRange
    status: JournalStatus
    version: int
    """1 when first generated; each regeneration adds one."""
    generated_at: dt.datetime
    lines: tuple[JournalLine, ...]
    shares: tuple[JournalShare, ...]
    total_tax: Decimal
    posted_at: dt.datetime | None = None
    posted_by: str = ""

    @property
    def key(self) -> str:
        """``<company>:<period>``: one journal per company and range."""
        return journal_key(self.company, self.period)

    @property
    def debits(self) -> Decimal:
        """The sum of the debit column."""
        return sum((line.debit for line in self.lines), Decimal("0.00"))

    @property
    def credits(self) -> Decimal:
        """The sum of the credit column."""
        return sum((line.credit for line in self.lines), Decimal("0.00"))


def journal_key(company: str, period: DateRange) -> str:
    """The key of the journal of ``company`` (``*``: every company) for ``period``."""
    return f"{company}:{period.key}"


@frozen
class EngineDocument:
    """A document as the engine lists it (AvaTax ``TransactionModel`` without lines)."""

    code: str
    document_type: str
    status: DocumentStatus
    """Committed, saved (uncommitted), cancelled (void), ..."""
    date: dt.date
    customer_code: str
    total_amount: Decimal
    total_exempt: Decimal
    total_taxable: Decimal
    total_tax: Decimal
    locked: bool = False
    """Reported on a filed return: it can no longer be changed or voided."""
