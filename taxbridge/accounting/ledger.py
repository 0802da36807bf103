"""Month-end from the workfile: the GL tax journal (BNO010, AV-GL), the sales-vs-GL
reconciliation by process number (BNI010A) and the sales tax report by state.

Every figure here is the workfile's ``tax``: the liability, the engine's figure where the engine
answered the posting (Y, R), else what the invoice carried (U, M). What the invoice carried is
shown beside it in the state report; where the two differ the engine reconciliation says why.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

import attrs
from attrs import frozen

from taxbridge.config import BridgeConfig
from taxbridge.errors import AccountMissingError, InvalidFieldError, JournalError
from taxbridge.logs import get_logger
from taxbridge.models import (
    DateRange,
    Journal,
    JournalLine,
    JournalShare,
    JournalStatus,
    JurisdictionLine,
    WorkfileLine,
    journal_key,
)
from taxbridge.money import ZERO_CENTS
from taxbridge.store.base import Store

_log = get_logger("taxbridge")

ALL_COMPANIES = "*"
"""The company key of a journal or report over every ERP company."""


@frozen
class StateRow:
    """One region of the sales tax report (Avalara's transaction list columns)."""

    company: str
    region: str
    documents: int
    amount: Decimal
    not_taxed: Decimal
    taxable: Decimal
    tax: Decimal
    """The liability (the workfile's ``tax``)."""
    tax_charged: Decimal
    """What the invoices carried."""


@frozen
class StateReport:
    """The sales tax report by state of a period: a row per company and region, and totals."""

    period: DateRange
    company: str
    rows: tuple[StateRow, ...]
    documents: int
    """Distinct documents over every row: one shipped to two regions is in two rows, once
    here."""

    @property
    def total(self) -> StateRow:
        """Every row summed (company and region ``*``); documents counted once each."""
        return StateRow(
            self.company,
            ALL_COMPANIES,
            self.documents,
            sum((row.amount for row in self.rows), ZERO_CENTS),
            sum((row.not_taxed for row in self.rows), ZERO_CENTS),
            sum((row.taxable for row in self.rows), ZERO_CENTS),
            sum((row.tax for row in self.rows), ZERO_CENTS),
            sum((row.tax_charged for row in self.rows), ZERO_CENTS),
        )


class Difference(enum.Enum):
    """Why sales and GL disagree for a process number (BNI010A)."""

    NONE = ""
    NOT_IN_JOURNAL = "not in a journal"
    """Posted (or dated into the range) after its period's journal was generated."""
    NOT_IN_SALES = "in a journal, not in sales"
    """Voided, or no longer dated in the range, since the journal was generated."""
    TAX_CHANGED = "tax changed since the journal"
    """A repost or a new figure changed the tax after the journal took it."""


@frozen
class ReconciliationRow:
    """Sales tax against GL journal tax for one process number of one document."""

    code: str
    process: str
    company: str
    sales_tax: Decimal
    gl_tax: Decimal
    journal: str
    """The journal holding it (blank: none)."""
    difference: Difference

    @property
    def amount(self) -> Decimal:
        """Sales minus GL."""
        return self.sales_tax - self.gl_tax


@frozen
class GLReconciliation:
    """BNI010A over a range: the rows shown (all, or differences only) and the totals."""

    period: DateRange
    company: str
    rows: tuple[ReconciliationRow, ...]
    sales_total: Decimal
    gl_total: Decimal
    differences: int

    @property
    def balanced(self) -> bool:
        """True when no process number differs beyond the tolerance."""
        return self.differences == 0


def _company_key(company: str | None) -> str:
    if company is not None and (not isinstance(company, str) or not company.strip()):
        raise InvalidFieldError("Ledger", "company", company, "must not be blank")
    return ALL_COMPANIES if company is None else company


class Ledger:
    """The workfile and what finance builds on it, over one store and config."""

    def __init__(self, config: BridgeConfig, store: Store, clock: Callable[[], dt.datetime]):
        self._config = config
        self._store = store
        self._clock = clock

    # -- the workfile (BNO155G) ----------------------------------------------------------------

    def workfile(self, period: DateRange, company: str | None = None) -> Iterator[WorkfileLine]:
        """Posted lines (Y, R, M, U) of the invoices and credits dated in ``period``, streamed."""
        _company_key(company)
        return self._store.workfile(period, company=company)

    def jurisdictions(
        self, period: DateRange, company: str | None = None
    ) -> Iterator[JurisdictionLine]:
        """The jurisdiction breakdown (state, county, city, others) of the same documents."""
        _company_key(company)
        return self._store.workfile_jurisdictions(period, company=company)

    # -- the sales tax report by state ---------------------------------------------------------

    def state_report(self, period: DateRange, company: str | None = None) -> StateReport:
        """Amount, not taxed, taxable and tax by company and region; totals equal the
        workfile's to the cent."""
        key = _company_key(company)
        sums: dict[tuple[str, str], list[Decimal]] = {}
        codes: dict[tuple[str, str], set[str]] = {}
        for line in self.workfile(period, company):
            group = (line.erp_company, line.region)
            found = sums.get(group)
            if found is None:
                found = sums[group] = [ZERO_CENTS] * 5
                codes[group] = set()
            found[0] += line.amount
            found[1] += line.exempt
            found[2] += line.taxable
            found[3] += line.tax
            found[4] += line.tax_charged
            codes[group].add(line.code)
        rows = tuple(
            StateRow(group[0], group[1], len(codes[group]), *sums[group]) for group in sorted(sums)
        )
        return StateReport(period, key, rows, len(set().union(*codes.values())))

    # -- GL journals (BNO010) ------------------------------------------------------------------

    def journal(self, period: DateRange, company: str | None = None) -> Journal:
        """The stored journal of ``company`` (None: every company) and ``period``."""
        key = journal_key(_company_key(company), period)
        found = self._store.journal(key)
        if found is None:
            raise JournalError(key, "no journal has been generated for it")
        return found

    def journals(self, company: str | None = None) -> list[Journal]:
        """Stored journals, without their lines."""
        return self._store.journals(None if company is None else _company_key(company))

    def generate_journal(self, period: DateRange, company: str | None = None) -> Journal:
        """Generate (or, while unposted, regenerate) the tax journal of a period from the
        workfile: per company and region, the liability account credited with the tax and the
        offset account debited. Refused, with nothing stored, for a posted journal, a range
        overlapping another journal of the same scope, or a region without an account."""
        key_company = _company_key(company)
        key = journal_key(key_company, period)
        existing = self._store.journal(key)
        if existing is not None and existing.status is JournalStatus.POSTED:
            raise JournalError(key, f"posted on {existing.posted_at:%Y-%m-%d}: it is locked")
        self._check_overlap(key_company, period, key)
        lines, shares, total = self._build(self.workfile(period, company))
        journal = Journal(
            company=key_company,
            period=period,
            status=JournalStatus.GENERATED,
            version=1 if existing is None else existing.version + 1,
            generated_at=self._clock(),
            lines=lines,
            shares=shares,
            total_tax=total,
        )
        self._store.save_journal(journal, expected=existing)
        _log.info(
            "taxbridge.journal.generated",
            journal=key,
            version=journal.version,
            lines=len(lines),
            tax=str(total),
        )
        return journal

    def post_journal(self, period: DateRange, company: str | None = None, *, user: str) -> Journal:
        """Post a generated journal to the GL: it is locked from then on."""
        current = self.journal(period, company)
        if current.status is JournalStatus.POSTED:
            raise JournalError(current.key, "is posted already")
        if not isinstance(user, str) or not user.strip():
            raise InvalidFieldError("Journal", "posted_by", user, "must name who posts it")
        posted = attrs.evolve(
            current, status=JournalStatus.POSTED, posted_at=self._clock(), posted_by=user.strip()
        )
        self._store.save_journal(posted, expected=current)
        _log.info("taxbridge.journal.posted", journal=posted.key, tax=str(posted.total_tax))
        return posted

    def _check_overlap(self, company: str, period: DateRange, key: str) -> None:
        for other in self._store.journals():
            same_scope = ALL_COMPANIES in (company, other.company) or other.company == company
            if other.key != key and same_scope and other.period.overlaps(period):
                raise JournalError(
                    key, f"overlaps journal {other.key}: a document would be journalled twice"
                )

    def _build(
        self, lines: Iterable[WorkfileLine]
    ) -> tuple[tuple[JournalLine, ...], tuple[JournalShare, ...], Decimal]:
        by_region: dict[tuple[str, str], Decimal] = {}
        by_process: dict[tuple[str, str], list[Any]] = {}
        total = ZERO_CENTS
        for line in lines:
            group = (line.erp_company, line.region)
            by_region[group] = by_region.get(group, ZERO_CENTS) + line.tax
            key = (line.code, line.process)
            share = by_process.get(key)
            if share is None:
                by_process[key] = [line.erp_company, line.document_date, line.tax]
            else:
                share[2] += line.tax
            total += line.tax
        entries: list[JournalLine] = []
        for (company, region), tax in sorted(by_region.items()):
            if not tax:
                continue
            account = self._config.gl_entry(region, company)
            if account is None:
                raise AccountMissingError(company, region)
            if not account.offset_account:
                raise AccountMissingError(company, region, "offset_account")
            debit, credit = (ZERO_CENTS, tax) if tax > 0 else (-tax, ZERO_CENTS)
            entries.append(JournalLine(company, region, account.offset_account, credit, debit))
            entries.append(JournalLine(company, region, account.liability_account, debit, credit))
        shares = tuple(
            JournalShare(code, process, *by_process[(code, process)])
            for code, process in sorted(by_process)
        )
        return tuple(entries), shares, total

    # -- sales versus GL (BNI010A) -------------------------------------------------------------

    def reconcile_gl(
        self,
        period: DateRange,
        company: str | None = None,
        *,
        differences_only: bool = False,
        tolerance: Decimal = ZERO_CENTS,
    ) -> GLReconciliation:
        """Sales tax (the workfile) against GL journal tax by process number, over the
        journals of the same scope that cover any of ``period``. ``differences_only`` is the
        seed's F10 Show Diff; a difference within ``tolerance`` is not one."""
        if not isinstance(tolerance, Decimal) or tolerance < 0:
            raise InvalidFieldError("GLReconciliation", "tolerance", tolerance, "is not >= 0")
        key = _company_key(company)
        sales: dict[tuple[str, str], tuple[str, Decimal]] = {}
        for line in self.workfile(period, company):
            found = sales.get((line.code, line.process))
            before = ZERO_CENTS if found is None else found[1]
            sales[(line.code, line.process)] = (line.erp_company, before + line.tax)
        gl: dict[tuple[str, str], tuple[str, Decimal, str]] = {}
        for listed in self._store.journals():
            if not listed.period.overlaps(period):
                continue
            if ALL_COMPANIES not in (key, listed.company) and listed.company != key:
                continue
            journal = self._store.journal(listed.key)
            for share in journal.shares if journal is not None else ():
                if share.document_date not in period or key not in (ALL_COMPANIES, share.company):
                    continue
                found_gl = gl.get((share.code, share.process))
                before = ZERO_CENTS if found_gl is None else found_gl[1]
                gl[(share.code, share.process)] = (share.company, before + share.tax, listed.key)
        rows = []
        differences = 0
        for ident in sorted(set(sales) | set(gl)):
            in_sales, in_gl = sales.get(ident), gl.get(ident)
            sales_tax = in_sales[1] if in_sales else ZERO_CENTS
            gl_tax = in_gl[1] if in_gl else ZERO_CENTS
            why = Difference.NONE
            if abs(sales_tax - gl_tax) > tolerance:
                why = (
                    Difference.NOT_IN_JOURNAL
                    if in_gl is None
                    else Difference.NOT_IN_SALES
                    if in_sales is None
                    else Difference.TAX_CHANGED
                )
                differences += 1
            if differences_only and why is Difference.NONE:
                continue
            owner = in_sales[0] if in_sales else in_gl[0] if in_gl else ""
            rows.append(
                ReconciliationRow(
                    ident[0], ident[1], owner, sales_tax, gl_tax, in_gl[2] if in_gl else "", why
                )
            )
        return GLReconciliation(
            period,
            key,
            tuple(rows),
            sum((v[1] for v in sales.values()), ZERO_CENTS),
            sum((v[1] for v in gl.values()), ZERO_CENTS),
            differences,
        )
