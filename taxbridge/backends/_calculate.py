"""The arithmetic both embedded backends share: rates by jurisdiction, then explicit rounding.

Rounding follows the two levels an AvaTax company can choose:

* ``DOCUMENT`` (our default): each jurisdiction's tax is summed over the document unrounded and
  rounded half-up once; the rounded total is then split back over the lines with
  :func:`~taxbridge.money.allocate`, so lines still add up to the document to the cent.
* ``LINE``: each line's tax in each jurisdiction is rounded half-up on its own and summed.

Document level is the default because it is the figure a state's tables give for the whole sale
and it cannot drift by a cent per line on a large invoice; a company whose engine is set to line
rounding sets ``rounding = "line"`` so that the local figures match its engine's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import attrs

from taxbridge.errors import DocumentRejected
from taxbridge.models import (
    DocumentStatus,
    JurisdictionTax,
    LineTax,
    TaxLine,
    TaxRequest,
    TaxResult,
)
from taxbridge.money import ZERO, ZERO_CENTS, RoundingLevel, allocate, round_money
from taxbridge.rates import RateRow, Taxability, TaxCodeRule

RateFor = Callable[[TaxLine], RateRow]
"""Finds the rate row for a line (its own ship-to, else the document's)."""
IsTaxable = Callable[[TaxLine, RateRow], bool]
"""Says whether a line is taxable at that rate row (tax code, freight, exemption)."""


def rule_taxes(rule: TaxCodeRule | None, rate: RateRow) -> bool:
    """Whether a line of tax code ``rule`` is taxable at ``rate`` (None: no rule, so taxable)."""
    if rule is None:
        return True
    if rule.taxability is Taxability.NON_TAXABLE or rate.state in rule.exempt_regions:
        return False
    if rule.taxability is Taxability.FREIGHT:
        return rate.shipping_taxable
    return True


def _spread(tax: Decimal, base: Decimal, rate: RateRow) -> dict[str, Decimal]:
    """A line's overridden tax over its jurisdictions by rate, to the cent (all of it to the
    first jurisdiction when the rates are zero)."""
    keys = [juris[0] for juris in rate.jurisdictions]
    if not keys:
        if not tax:
            return {}
        raise DocumentRejected(
            f"a tax override of {tax} needs a taxing jurisdiction; {rate.state} has none",
            backend="local",
        )
    weights = [base * juris[4] for juris in rate.jurisdictions]
    total = sum(weights, ZERO)
    raw = (
        [tax * weight / total for weight in weights] if total else [tax] + [ZERO] * (len(keys) - 1)
    )
    return dict(zip(keys, allocate(tax, raw), strict=True))


def calculate(
    request: TaxRequest,
    *,
    rate_for: RateFor,
    is_taxable: IsTaxable,
    rounding: RoundingLevel,
    status: DocumentStatus,
    backend: str,
) -> TaxResult:
    """Calculate ``request`` line by line and jurisdiction by jurisdiction."""
    bases: list[Decimal] = []
    taxable_flags: list[bool] = []
    rates: list[RateRow | None] = []
    raw_index: dict[str, list[int]] = {}
    raw_tax: dict[str, list[Decimal]] = {}
    fixed: dict[int, dict[str, Decimal]] = {}
    shares = request.discount_shares()
    for index, line in enumerate(request.lines):
        base = line.amount - line.discount - shares[index]
        bases.append(base)
        if line.excluded:
            taxable_flags.append(False)
            rates.append(None)
            continue
        rate = rate_for(line)
        taxable = is_taxable(line, rate)
        taxable_flags.append(taxable)
        rates.append(rate)
        if line.tax_override is not None:
            fixed[index] = _spread(line.tax_override, base, rate)
            taxable_flags[-1] = True
        elif taxable:
            for juris in rate.jurisdictions:
                key = juris[0]
                indexes = raw_index.get(key)
                if indexes is None:
                    raw_index[key] = indexes = []
                    raw_tax[key] = []
                indexes.append(index)
                raw_tax[key].append(base * juris[4])

    # tax_by_line[index][key]: the rounded tax of that line in that jurisdiction
    tax_by_line: list[dict[str, Decimal]] = [fixed.get(index, {}) for index in range(len(bases))]
    # key_tax[key]: the document's tax in that jurisdiction (the sum of its lines' taxes)
    key_tax: dict[str, Decimal] = {}
    for taxes in fixed.values():
        for key, part in taxes.items():
            key_tax[key] = key_tax.get(key, ZERO_CENTS) + part
    for key, indexes in raw_index.items():
        values = raw_tax[key]
        if rounding is RoundingLevel.DOCUMENT:
            parts = allocate(round_money(sum(values, ZERO)), values)
        else:
            parts = [round_money(value) for value in values]
        key_tax[key] = sum(parts, key_tax.get(key, ZERO_CENTS))
        for index, part in zip(indexes, parts, strict=True):
            tax_by_line[index][key] = part

    lines: list[LineTax] = []
    # by rate row (in order of first use): the row, and the taxable and exempt amounts of the
    # lines taxed there; the summary adds them up per jurisdiction at the end
    by_row: dict[int, list[Any]] = {}
    total_taxable = total_exempt = ZERO
    total_tax = ZERO_CENTS
    details_wanted = request.include_details
    line_details = details_wanted and request.line_details
    for index, line in enumerate(request.lines):
        base = bases[index]
        taxable = taxable_flags[index]
        line_taxable = base if taxable else ZERO
        line_exempt = ZERO if taxable else base
        taxes = tax_by_line[index]
        line_tax = sum(taxes.values(), ZERO_CENTS)
        details: tuple[JurisdictionTax, ...] = ()
        zip_rate = rates[index]
        if zip_rate is not None and details_wanted:
            row = by_row.get(id(zip_rate))
            if row is None:
                by_row[id(zip_rate)] = [zip_rate, line_taxable, line_exempt]
            else:
                row[1] += line_taxable
                row[2] += line_exempt
            if line_details:
                details = tuple(
                    JurisdictionTax(
                        kind, name, region, juris_rate, line_taxable, line_exempt,
                        taxes.get(key, ZERO_CENTS),
                    )
                    for key, kind, name, region, juris_rate in zip_rate.jurisdictions
                )  # fmt: skip
        line_rate = zip_rate.jurisdiction_rate if zip_rate is not None and taxable else ZERO
        lines.append(
            LineTax(
                line.number, base, line_taxable, line_exempt, line_tax, line.tax_code, line_rate,
                details,
            )
        )  # fmt: skip
        total_taxable += line_taxable
        total_exempt += line_exempt
        total_tax += line_tax

    return TaxResult(
        code=request.code,
        document_type=request.document_type,
        status=status,
        date=request.date,
        total_amount=sum(bases, ZERO),
        total_taxable=total_taxable,
        total_exempt=total_exempt,
        total_tax=total_tax,
        lines=tuple(lines),
        summary=_summary(by_row.values(), key_tax),
        tax_date=request.tax_date or request.date,
        backend=backend,
    )


def _summary(rows: Iterable[list[Any]], key_tax: dict[str, Decimal]) -> tuple[JurisdictionTax, ...]:
    """Each jurisdiction once, in order of first use: the taxable and exempt amounts of the
    lines taxed at the rate rows it belongs to, and its tax."""
    summary: dict[str, list[Any]] = {}
    for rate, taxable, exempt in rows:
        for key, kind, name, region, juris_rate in rate.jurisdictions:
            acc = summary.get(key)
            if acc is None:
                tax = key_tax.get(key, ZERO_CENTS)
                summary[key] = [kind, name, region, juris_rate, taxable, exempt, tax]
            else:
                acc[4] += taxable
                acc[5] += exempt
    return tuple(JurisdictionTax(*acc) for acc in summary.values())


def merge_excluded(request: TaxRequest, result: TaxResult) -> TaxResult:
    """The result with the request's excluded lines (not sent to the engine) put back in the
    request's order as zero-tax lines, and their amounts added to the total and the exempt."""
    excluded = [line for line in request.lines if line.excluded]
    if not excluded or len(result.lines) == len(request.lines):
        return result
    by_number = {line.number: line for line in result.lines}
    lines: list[LineTax] = []
    added = ZERO
    for line in request.lines:
        if line.excluded:
            base = line.amount - line.discount
            added += base
            lines.append(LineTax(line.number, base, ZERO, base, ZERO_CENTS, line.tax_code))
        elif (found := by_number.pop(line.number, None)) is not None:
            lines.append(found)
    lines.extend(by_number.values())
    return attrs.evolve(
        result,
        lines=tuple(lines),
        total_amount=result.total_amount + added,
        total_exempt=result.total_exempt + added,
    )
