"""Per-jurisdiction rounding on the local engine: where line and document rounding differ."""

from __future__ import annotations

from decimal import Decimal

import pytest

from taxbridge import Address, DocumentType, LocalEngine, RoundingLevel, TaxLine, TaxRequest
from taxbridge.rates import RateTable, ZipRate

BOOKSHOP = Address("1 Main St", "Springfield", "MO", "65801")
RATES = RateTable(
    [
        ZipRate(
            zip_code="65801",
            state="MO",
            county="GREENE",
            city="SPRINGFIELD",
            state_rate=Decimal("0.065"),
            county_rate=Decimal("0.025"),
            city_rate=Decimal("0"),
            total_rate=Decimal("0.09"),
        )
    ]
)


def _request(*amounts: str) -> TaxRequest:
    return TaxRequest(
        code="A-1",
        document_type=DocumentType.SALES_ORDER,
        company_code="DEFAULT",
        customer_code="C1",
        date="2026-11-20",
        ship_from=BOOKSHOP,
        ship_to=BOOKSHOP,
        lines=tuple(TaxLine(number=str(n), amount=amount) for n, amount in enumerate(amounts, 1)),
    )


@pytest.mark.parametrize(
    ("level", "total", "line_taxes"),
    [
        # AvaTax's own example: a book, a bookmark and a reading light at 6.5% + 2.5%; at
        # document level the state's extra cent goes to the lamp (largest rounding loss).
        (RoundingLevel.LINE, "5.19", ["3.67", "0.18", "1.34"]),
        (RoundingLevel.DOCUMENT, "5.20", ["3.67", "0.18", "1.35"]),
    ],
)
def test_line_and_document_rounding_differ_by_the_documented_cent(
    level: RoundingLevel, total: str, line_taxes: list[str]
) -> None:
    result = LocalEngine(RATES, rounding=level).calculate(_request("40.80", "1.98", "14.99"))
    assert result.total_tax == Decimal(total)
    assert [line.tax for line in result.lines] == [Decimal(t) for t in line_taxes]
    assert sum(line.tax for line in result.lines) == result.total_tax
    assert sum(j.tax for j in result.summary) == result.total_tax


def test_document_rounding_rounds_each_jurisdiction_half_up_once() -> None:
    result = LocalEngine(RATES).calculate(_request("40.80", "1.98", "14.99"))
    by_type = {j.jurisdiction_type.value: j.tax for j in result.summary}
    # state 2.652 + 0.1287 + 0.97435 = 3.75505 -> 3.76; county 1.44425 -> 1.44
    assert by_type == {"STA": Decimal("3.76"), "CTY": Decimal("1.44")}


def test_identical_lines_share_the_document_cent() -> None:
    result = LocalEngine(RATES).calculate(_request("1.00", "1.00", "1.00"))
    # document: state 0.195 -> 0.20, county 0.075 -> 0.08 = 0.28; per line each 0.065 -> 0.07
    # and 0.025 -> 0.03 (half-up), so line rounding charges 0.30
    assert result.total_tax == Decimal("0.28")
    line_rounded = LocalEngine(RATES, rounding=RoundingLevel.LINE).calculate(
        _request("1.00", "1.00", "1.00")
    )
    assert line_rounded.total_tax == Decimal("0.30")
