"""The offline tax table: rates by ZIP for the company's nexus regions, refreshed at end of day.

Used at order entry when online calculation is off (TMSDS/TAX-EXT2 blank) and as the degraded
path when the engine cannot be reached. Its figures are estimates: results carry the blank flag.
A ZIP the table lacks is estimated at its state's own rate; a state it lacks is refused.
Canadian ship-tos are calculated with the default rates by province (BNADS/AV-TC1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from taxbridge._toml import TableReader
from taxbridge.backends._calculate import calculate, rule_taxes
from taxbridge.backends.base import BuildContext, Capability
from taxbridge.backends.local import _no_settings
from taxbridge.errors import DocumentRejected
from taxbridge.models import DocumentStatus, TaxLine, TaxRequest, TaxResult
from taxbridge.money import RoundingLevel
from taxbridge.rates import (
    ProvinceRate,
    RateRow,
    RateTable,
    TaxCodeTable,
    shipped_rates,
    shipped_tax_codes,
)


class OfflineTable:
    """Estimates tax from the offline rate table; saves nothing and posts nothing."""

    capabilities: frozenset[Capability] = frozenset()
    """An estimator only: as the bridge's backend, every result is blank and nothing is posted."""

    def __init__(
        self,
        rates: RateTable,
        tax_codes: TaxCodeTable | None = None,
        *,
        provinces: Iterable[ProvinceRate] = (),
        rounding: RoundingLevel = RoundingLevel.DOCUMENT,
        name: str = "offline",
    ):
        self.name = name
        self.rates = rates
        self.provinces = {province.state: province for province in provinces}
        self.tax_codes = tax_codes if tax_codes is not None else shipped_tax_codes()
        self.rounding = rounding

    def calculate(self, request: TaxRequest) -> TaxResult:
        """Estimate the request's tax; an unknown tax code is estimated as generally taxable."""

        def rate_for(line: TaxLine) -> RateRow:
            address = line.ship_to or request.ship_to
            rate: RateRow | None
            if address.country == "CA":
                rate = self.provinces.get(address.region)
            else:
                rate = self.rates.find(address.zip5, address.region) or self.rates.state_only(
                    address.region
                )
            if rate is None:
                raise DocumentRejected(
                    f"the offline table has no rates for region {address.region!r}",
                    backend=self.name,
                    code=request.code,
                    error_code="NoOfflineRate",
                    refers_to="Addresses",
                )
            return rate

        def is_taxable(line: TaxLine, rate: RateRow) -> bool:
            if request.exempt or line.exempt:
                return False
            return rule_taxes(self.tax_codes.get(line.tax_code), rate)

        return calculate(
            request,
            rate_for=rate_for,
            is_taxable=is_taxable,
            rounding=self.rounding,
            status=DocumentStatus.TEMPORARY,
            backend=self.name,
        )

    def close(self) -> None:
        """Nothing to release."""


class OfflinePlugin:
    """The ``offline`` backend kind: the offline table only (a company not yet on an engine)."""

    kind = "offline"

    def settings(self, table: Mapping[str, Any], read: TableReader) -> None:
        """Refuse any key: the offline table has no settings."""
        read.table(dict(table), "backend", {"kind", "rounding"})

    def check(self, settings: Any) -> None:
        """Only None."""
        _no_settings(self.kind, settings)

    def build(self, settings: Any, context: BuildContext) -> OfflineTable:
        """The store's offline table, or the shipped rates of the nexus regions when it is
        still empty."""
        table = context.stored_rates()
        return OfflineTable(
            table if len(table) else shipped_rates().only(context.nexus_regions),
            rounding=context.rounding,
            provinces=context.provinces,
        )


PLUGIN = OfflinePlugin()
