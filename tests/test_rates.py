"""The shipped rate and tax-code tables, and the tax-rates-by-ZIP CSV layout."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from taxbridge import ConfigError
from taxbridge.rates import RATE_COLUMNS, RateTable, shipped_rates, shipped_tax_codes


def test_the_shipped_table_covers_at_least_six_taxing_states() -> None:
    rates = shipped_rates()
    taxing = {rate.state for rate in rates if rate.total_rate > 0}
    assert len(taxing) >= 6
    for rate in rates:
        assert rate.special_rate >= 0, rate.zip_code


def test_columns_are_the_avatax_download_columns(shared_reference: Path) -> None:
    with (shared_reference / "taxratesbyzipcode-csv-columns.csv").open() as handle:
        reference = tuple(row["column"] for row in csv.DictReader(handle))
    assert reference == RATE_COLUMNS


def test_the_table_round_trips_through_csv() -> None:
    rates = shipped_rates()
    assert RateTable.from_csv(rates.to_csv()).to_csv() == rates.to_csv()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "10001,NY,NEW YORK,NEW YORK,0.04,0.04,0,0,0.045,0.045,1.5,0.08875,Y,Y",
            "TOTAL_SALES_TAX: '1.5'",
        ),
        ("1000A,NY,NEW YORK,NEW YORK,0.04,0.04,0,0,0.045,0.045,0.08,0.08,Y,Y", "ZIP_CODE: '1000A'"),
        ("10001,NY,NEW YORK", "row 2: has 3 columns"),
    ],
)
def test_a_bad_rate_row_names_row_and_column(row: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RateTable.from_csv(",".join(RATE_COLUMNS) + "\n" + row + "\n", source="rates.csv")


def test_the_tax_code_table_has_the_codes_the_engine_needs() -> None:
    codes = shipped_tax_codes()
    assert {"P0000000", "NT", "FR020100", "PC040100"} <= codes.codes
    assert codes.get("PC040100").exempt_regions == {"MN", "NJ", "PA"}


def test_freight_and_clothing_taxability_differ_by_state(bridge) -> None:
    from conftest import CHICAGO, NYC, line, order

    freight = (line(1, "10.00", freight=True),)
    assert bridge.on_entry(order("1", ship_to=NYC, lines=freight)).total_tax > 0
    assert bridge.on_entry(order("2", ship_to=CHICAGO, lines=freight)).total_tax == 0
    philly = order("3", lines=(line(1, "50.00", item_classification="CLOTH"),))
    from taxbridge import Address

    pa = Address("1 Market St", "Philadelphia", "PA", "19103")
    assert bridge.on_entry(attrs_evolve(philly, ship_to=pa)).total_tax == 0
    assert bridge.on_entry(attrs_evolve(philly, number="4")).total_tax > 0


def attrs_evolve(obj, **changes):
    import attrs

    return attrs.evolve(obj, **changes)
