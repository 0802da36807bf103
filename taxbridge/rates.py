"""Tax rates by ZIP and the tax-code table: the data both embedded backends calculate from.

The rate file has the 14 columns of the AvaTax tax-rates-by-ZIP download
(``GET /api/v2/taxratesbyzipcode/download/{date}``), so the offline table can be refreshed from
AvaTax and the local engine's shipped table can be replaced by a real download unchanged.
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Protocol

from attrs import field, frozen

from taxbridge.errors import ConfigError
from taxbridge.models import JurisdictionType
from taxbridge.money import ZERO
from taxbridge.regions import US_STATES

RATE_COLUMNS = (
    "ZIP_CODE",
    "STATE_ABBREV",
    "COUNTY_NAME",
    "CITY_NAME",
    "STATE_SALES_TAX",
    "STATE_USE_TAX",
    "COUNTY_SALES_TAX",
    "COUNTY_USE_TAX",
    "CITY_SALES_TAX",
    "CITY_USE_TAX",
    "TOTAL_SALES_TAX",
    "TOTAL_USE_TAX",
    "TAX_SHIPPING_ALONE",
    "TAX_SHIPPING_AND_HANDLING_TOGETHER",
)

STATE_NAMES: Mapping[str, str] = US_STATES
"""US states (and DC, PR) by postal abbreviation."""

Jurisdiction = tuple[str, JurisdictionType, str, str, Decimal]
"""(key, type, name, region, rate) of one taxing jurisdiction; ``key`` is unique per
jurisdiction and rate, so documents sum a jurisdiction across ZIPs by a cheap string key."""


def _set_jurisdictions(
    row: ZipRate | ProvinceRate, parts: tuple[tuple[JurisdictionType, str, Decimal], ...]
) -> None:
    """Fill a rate row's ``jurisdictions`` (non-zero parts) and their summed rate."""
    state = row.state
    found = tuple(
        (f"{kind.value}|{name}|{state}|{rate}", kind, name, state, rate)
        for kind, name, rate in parts
        if rate > 0
    )
    object.__setattr__(row, "jurisdictions", found)
    object.__setattr__(row, "jurisdiction_rate", sum((j[4] for j in found), ZERO))


@frozen
class ZipRate:
    """One row of the tax-rates-by-ZIP table."""

    zip_code: str
    state: str
    county: str
    city: str
    state_rate: Decimal
    county_rate: Decimal
    city_rate: Decimal
    total_rate: Decimal
    state_use_rate: Decimal = ZERO
    county_use_rate: Decimal = ZERO
    city_use_rate: Decimal = ZERO
    total_use_rate: Decimal = ZERO
    shipping_taxable: bool = False
    shipping_and_handling_taxable: bool = False
    jurisdictions: tuple[Jurisdiction, ...] = field(init=False, eq=False, repr=False)
    """The jurisdictions with a non-zero rate, state first; special is the total's remainder."""
    jurisdiction_rate: Decimal = field(init=False, eq=False, repr=False)
    """Sum of the jurisdictions' rates (the total rate, unless a part is negative)."""

    def __attrs_post_init__(self) -> None:
        special = self.total_rate - self.state_rate - self.county_rate - self.city_rate
        parts = (
            (
                JurisdictionType.STATE,
                STATE_NAMES.get(self.state, self.state),
                self.state_rate,
            ),
            (JurisdictionType.COUNTY, self.county, self.county_rate),
            (JurisdictionType.CITY, self.city, self.city_rate),
            (JurisdictionType.SPECIAL, f"{self.state} SPECIAL TAX", special),
        )
        _set_jurisdictions(self, parts)

    @property
    def special_rate(self) -> Decimal:
        """Special districts' rate: what the total has beyond state, county and city."""
        return self.total_rate - self.state_rate - self.county_rate - self.city_rate

    @classmethod
    def from_row(cls, row: Sequence[str]) -> ZipRate:
        """A row in the download's column order, as :meth:`as_row` writes it (already checked)."""
        return cls(
            zip_code=row[0],
            state=row[1],
            county=row[2],
            city=row[3],
            state_rate=Decimal(row[4]),
            state_use_rate=Decimal(row[5]),
            county_rate=Decimal(row[6]),
            county_use_rate=Decimal(row[7]),
            city_rate=Decimal(row[8]),
            city_use_rate=Decimal(row[9]),
            total_rate=Decimal(row[10]),
            total_use_rate=Decimal(row[11]),
            shipping_taxable=row[12] == "Y",
            shipping_and_handling_taxable=row[13] == "Y",
        )

    def as_row(self) -> tuple[str, ...]:
        """The row in the download's column order."""
        return (
            self.zip_code,
            self.state,
            self.county,
            self.city,
            str(self.state_rate),
            str(self.state_use_rate),
            str(self.county_rate),
            str(self.county_use_rate),
            str(self.city_rate),
            str(self.city_use_rate),
            str(self.total_rate),
            str(self.total_use_rate),
            "Y" if self.shipping_taxable else "N",
            "Y" if self.shipping_and_handling_taxable else "N",
        )


class RateRow(Protocol):
    """What a calculation needs of a rate row: a ZIP's or a Canadian province's."""

    @property
    def state(self) -> str:
        """The region (state or province) of the row."""
        ...

    @property
    def jurisdictions(self) -> tuple[Jurisdiction, ...]:
        """The jurisdictions with a non-zero rate."""
        ...

    @property
    def jurisdiction_rate(self) -> Decimal:
        """Sum of the jurisdictions' rates."""
        ...

    @property
    def shipping_taxable(self) -> bool:
        """Whether freight alone is taxable there."""
        ...


@frozen
class ProvinceRate:
    """A Canadian province's default rates (BNADS/AV-TC1) as a rate row: GST, HST, PST."""

    state: str
    gst: Decimal = ZERO
    hst: Decimal = ZERO
    pst: Decimal = ZERO
    shipping_taxable: bool = True
    """Freight follows the goods in Canada."""
    jurisdictions: tuple[Jurisdiction, ...] = field(init=False, eq=False, repr=False)
    jurisdiction_rate: Decimal = field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        parts = (
            (JurisdictionType.COUNTRY, "CANADA GST", self.gst),
            (JurisdictionType.STATE, f"{self.state} HST", self.hst),
            (JurisdictionType.STATE, f"{self.state} PST", self.pst),
        )
        _set_jurisdictions(self, parts)


class RateTable:
    """Rates by ZIP; a ZIP that spans several states keeps one row per state."""

    def __init__(self, rates: Iterable[ZipRate] = ()):
        self._by_zip: dict[str, list[ZipRate]] = {}
        self._by_state: dict[str, ZipRate] = {}
        for rate in rates:
            self._by_zip.setdefault(rate.zip_code, []).append(rate)
            self._by_state.setdefault(rate.state, rate)

    def __len__(self) -> int:
        return sum(len(rows) for rows in self._by_zip.values())

    def __iter__(self) -> Iterator[ZipRate]:
        for rows in self._by_zip.values():
            yield from rows

    @property
    def regions(self) -> frozenset[str]:
        """The states the table has rows for."""
        return frozenset(self._by_state)

    def find(self, zip5: str, state: str) -> ZipRate | None:
        """The row for ``zip5`` in ``state``, or None when the table has no such ZIP there."""
        for rate in self._by_zip.get(zip5, ()):
            if rate.state == state:
                return rate
        return None

    def has_zip(self, zip5: str) -> bool:
        """True when the ZIP is in the table (in any state)."""
        return zip5 in self._by_zip

    def states_of(self, zip5: str) -> frozenset[str]:
        """The states the table places ``zip5`` in (empty: the table does not know it)."""
        return frozenset(rate.state for rate in self._by_zip.get(zip5, ()))

    def state_only(self, state: str) -> ZipRate | None:
        """A row carrying only the state's own rate: the estimate for a ZIP the table lacks."""
        any_row = self._by_state.get(state)
        if any_row is None:
            return None
        return ZipRate(
            zip_code="",
            state=state,
            county="",
            city="",
            state_rate=any_row.state_rate,
            county_rate=ZERO,
            city_rate=ZERO,
            total_rate=any_row.state_rate,
            shipping_taxable=any_row.shipping_taxable,
        )

    def only(self, regions: Iterable[str]) -> RateTable:
        """A table with the rows of ``regions`` only (the offline table holds nexus regions)."""
        keep = set(regions)
        return RateTable(rate for rate in self if rate.state in keep)

    @classmethod
    def from_csv(cls, text: str, *, source: str = "rates") -> RateTable:
        """Parse the download's CSV; a bad row raises :class:`ConfigError` naming row and column."""
        return cls(_parse_rates(text, source))

    def to_csv(self) -> str:
        """Write the table in the download's CSV layout."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(RATE_COLUMNS)
        writer.writerows(rate.as_row() for rate in self)
        return out.getvalue()


def _parse_rates(text: str, source: str) -> Iterator[ZipRate]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(col.strip().upper() for col in header) != RATE_COLUMNS:
        raise ConfigError(
            f"header must be the 14 tax-rates-by-ZIP columns {', '.join(RATE_COLUMNS)}",
            source=source,
            key="row 1",
            value=header,
        )
    for number, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(RATE_COLUMNS):
            raise ConfigError(
                f"has {len(row)} columns, expected {len(RATE_COLUMNS)}",
                source=source,
                key=f"row {number}",
                value=row,
            )
        values = dict(zip(RATE_COLUMNS, (cell.strip() for cell in row), strict=True))

        def rate(column: str, values: dict[str, str] = values, number: int = number) -> Decimal:
            try:
                result = Decimal(values[column])
            except InvalidOperation:
                result = Decimal(-1)
            if not result.is_finite() or not ZERO <= result < 1:
                raise ConfigError(
                    f"{values[column]!r} is not a rate between 0 and 1",
                    source=source,
                    key=f"row {number}: {column}",
                    value=values[column],
                )
            return result

        zip_code = values["ZIP_CODE"].zfill(5)
        if not (zip_code.isdigit() and len(zip_code) == 5):
            raise ConfigError(
                f"{zip_code!r} is not a 5-digit ZIP",
                source=source,
                key=f"row {number}: ZIP_CODE",
                value=zip_code,
            )
        state = values["STATE_ABBREV"].upper()
        if len(state) != 2 or not state.isalpha():
            raise ConfigError(
                f"{state!r} is not a 2-letter state",
                source=source,
                key=f"row {number}: STATE_ABBREV",
                value=state,
            )
        yield ZipRate(
            zip_code=zip_code,
            state=state,
            county=values["COUNTY_NAME"].upper(),
            city=values["CITY_NAME"].upper(),
            state_rate=rate("STATE_SALES_TAX"),
            county_rate=rate("COUNTY_SALES_TAX"),
            city_rate=rate("CITY_SALES_TAX"),
            total_rate=rate("TOTAL_SALES_TAX"),
            state_use_rate=rate("STATE_USE_TAX"),
            county_use_rate=rate("COUNTY_USE_TAX"),
            city_use_rate=rate("CITY_USE_TAX"),
            total_use_rate=rate("TOTAL_USE_TAX"),
            shipping_taxable=values["TAX_SHIPPING_ALONE"].upper() == "Y",
            shipping_and_handling_taxable=values["TAX_SHIPPING_AND_HANDLING_TOGETHER"].upper()
            == "Y",
        )


class Taxability(enum.Enum):
    """How a tax code is taxed by the embedded engines."""

    TAXABLE = "TAXABLE"
    NON_TAXABLE = "NON_TAXABLE"
    FREIGHT = "FREIGHT"
    """Taxable where the ZIP's TAX_SHIPPING_ALONE is Y."""


@frozen
class TaxCodeRule:
    """One tax code of the embedded engine's table."""

    code: str
    description: str
    taxability: Taxability
    exempt_regions: frozenset[str] = frozenset()
    """States where the code is exempt (e.g. clothing in MN, NJ, PA)."""


class TaxCodeTable:
    """The embedded engine's tax codes, by code."""

    def __init__(self, rules: Iterable[TaxCodeRule]):
        self._rules = {rule.code: rule for rule in rules}

    def __contains__(self, code: object) -> bool:
        return code in self._rules

    def get(self, code: str) -> TaxCodeRule | None:
        """The rule for ``code``, or None when the code is unknown."""
        return self._rules.get(code)

    @property
    def codes(self) -> frozenset[str]:
        """Every code in the table."""
        return frozenset(self._rules)

    @classmethod
    def from_csv(cls, text: str, *, source: str = "tax codes") -> TaxCodeTable:
        """Parse ``tax_code,description,taxability,exempt_regions`` rows."""
        rules = []
        for number, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            try:
                taxability = Taxability(row["taxability"].strip().upper())
            except ValueError:
                raise ConfigError(
                    f"{row['taxability']!r} is not one of {', '.join(t.value for t in Taxability)}",
                    source=source,
                    key=f"row {number}: taxability",
                    value=row["taxability"],
                ) from None
            regions = frozenset(r.strip().upper() for r in row["exempt_regions"].split(";") if r)
            rules.append(
                TaxCodeRule(
                    row["tax_code"].strip(),
                    row["description"].strip(),
                    taxability,
                    regions,
                )
            )
        return cls(rules)


def _data(name: str) -> str:
    return resources.files("taxbridge").joinpath("data", name).read_text(encoding="utf-8")


def shipped_rates() -> RateTable:
    """The rate table shipped with the package (9 states with tax and Oregon without)."""
    return RateTable.from_csv(_data("taxrates_by_zip.csv"), source="taxrates_by_zip.csv")


def shipped_tax_codes() -> TaxCodeTable:
    """The tax-code table shipped with the package."""
    return TaxCodeTable.from_csv(_data("tax_codes.csv"), source="tax_codes.csv")
