"""Reference data the stages read, and the end-of-day refresh that keeps it: the offline table,
each company's nexus regions, the active tax codes and the entity use codes (BNADS/AV-NX3,
AV-TC2, AV-EX1)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from attrs import frozen

from taxbridge.backends.base import Capabilities, TaxBackend
from taxbridge.backends.offline import OfflineTable
from taxbridge.config import CANADIAN_PROVINCES, BridgeConfig
from taxbridge.errors import BackendError
from taxbridge.logs import get_logger
from taxbridge.rates import RateTable, shipped_rates
from taxbridge.store.base import ReferenceData, ReferenceStore

_log = get_logger("taxbridge")


@frozen
class RefreshSummary:
    """What an end-of-day refresh loaded (None: the backend does not offer that list)."""

    as_of: dt.date
    tax_codes: int | None
    entity_use_codes: int | None
    nexus: dict[str, tuple[str, ...]]
    rate_regions: tuple[str, ...]
    rate_rows: int


class Reference:
    """The reference data of one bridge, read from its store and refreshed from its backend.

    ``offline`` estimates when the engine cannot be asked: the offline table of the store, or
    the backend itself when it is an estimator (declares no posting). ``clock`` dates the
    first offline table a new store gets (the engine's today when None).
    """

    def __init__(
        self,
        config: BridgeConfig,
        backend: TaxBackend,
        store: ReferenceStore,
        *,
        offline: TaxBackend | None = None,
        seed: bool = True,
        clock: Callable[[], dt.datetime] | None = None,
    ):
        self._config = config
        self._clock = clock
        self._backend = backend
        self._caps = Capabilities(backend)
        self._store = store
        self._active_codes: frozenset[str] | None = store.active_tax_codes()
        self._nexus: dict[str, frozenset[str]] = {}
        self.estimator_only = not self._caps.posts
        """The backend is itself an estimator: every result is blank and nothing is posted."""
        stored = store.offline_rates()
        self._rates = stored
        self._shipped = shipped_rates()
        self._zips: dict[str, frozenset[str]] = {}
        self.offline: TaxBackend = offline or (
            backend if self.estimator_only else self._table(stored)
        )
        if offline is None and seed and not len(stored):
            try:
                self._seed()
            except BackendError as exc:
                _log.warning("taxbridge.offline.seed_failed", error=str(exc))

    def nexus_for(self, company_code: str) -> frozenset[str]:
        """Configured nexus regions plus those the last refresh found at the engine."""
        found = self._nexus.get(company_code)
        if found is None:
            found = self._config.nexus_regions(company_code) | self._store.nexus(company_code)
            self._nexus[company_code] = found
        return found

    def zip_states(self, zip5: str) -> frozenset[str]:
        """The states the local rate data (the offline table and the shipped table) places
        ``zip5`` in; empty when it does not know the ZIP."""
        found = self._zips.get(zip5)
        if found is None:
            found = self._zips[zip5] = self._rates.states_of(zip5) | self._shipped.states_of(zip5)
        return found

    def active_tax_codes(self) -> frozenset[str] | None:
        """The active list: refreshed from the engine, else configured, else asked for."""
        if self._active_codes is None and self._config.tax_codes.active:
            self._active_codes = self._config.tax_codes.active
        catalog = self._caps.tax_codes
        if self._active_codes is None and catalog is not None:
            try:
                self._active_codes = catalog.active_tax_codes()
            except BackendError:
                return None
        return self._active_codes

    def refresh(self, day: dt.date) -> RefreshSummary:
        """End-of-day / end-of-month refresh from the backend, in one transaction.

        Pulls the active tax codes (BNADS/AV-TC2), the entity use codes (AV-EX1), each
        company's nexus (AV-NX3; added to the configured regions) and the offline rates of the
        nexus regions only, all as in force on ``day``. A failure anywhere raises and leaves
        yesterday's tables in place.
        """
        caps = self._caps
        tax_codes = caps.tax_codes.active_tax_codes() if caps.tax_codes else None
        entity_use_codes = (
            caps.entity_use_codes.entity_use_codes() if caps.entity_use_codes else None
        )
        companies = sorted({mapping.company_code for mapping in self._config.companies})
        nexus = (
            {company: caps.nexus.company_nexus(company, day) for company in companies}
            if caps.nexus
            else None
        )
        regions = set(self._config.all_nexus_regions)
        for found in (nexus or {}).values():
            regions |= found
        us_regions = {region for region in regions if region not in CANADIAN_PROVINCES}
        rates: RateTable | None
        if caps.rates is not None:
            rates = caps.rates.tax_rates_by_zip(sorted(us_regions), day)
        elif not len(self._store.offline_rates()):
            rates = shipped_rates().only(us_regions)
        else:
            rates = None
        self._store.replace_reference(
            ReferenceData(
                as_of=day,
                tax_codes=tax_codes,
                entity_use_codes=entity_use_codes,
                nexus=nexus,
                rates=rates,
            )
        )
        self._nexus.clear()
        if tax_codes is not None:
            self._active_codes = tax_codes
        if rates is not None:
            self._rates = rates
            self._zips.clear()
            if not self.estimator_only:
                self.offline = self._table(rates)
        summary = RefreshSummary(
            as_of=day,
            tax_codes=len(tax_codes) if tax_codes is not None else None,
            entity_use_codes=len(entity_use_codes) if entity_use_codes is not None else None,
            nexus={company: tuple(sorted(found)) for company, found in (nexus or {}).items()},
            rate_regions=tuple(sorted(rates.regions)) if rates is not None else (),
            rate_rows=len(rates) if rates is not None else 0,
        )
        _log.info("taxbridge.refresh.done", as_of=day.isoformat(), rows=summary.rate_rows)
        return summary

    def _seed(self) -> None:
        """A first offline table for the configured nexus regions, before any refresh."""
        regions = sorted(r for r in self._config.all_nexus_regions if r not in CANADIAN_PROVINCES)
        download = self._caps.rates
        as_of = self._clock().date() if self._clock is not None else None
        rates = (
            download.tax_rates_by_zip(regions, as_of) if download else shipped_rates().only(regions)
        )
        self._store.replace_reference(ReferenceData(rates=rates))
        self._rates = rates
        self._zips.clear()
        if not self.estimator_only:
            self.offline = self._table(rates)

    def _table(self, rates: RateTable) -> OfflineTable:
        return OfflineTable(
            rates, rounding=self._config.rounding, provinces=self._config.provinces()
        )
