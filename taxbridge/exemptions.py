"""Customer exemptions: the exemption database (BNW150) and its expiry check (BNW150C).

Which evidence a document carries (customer-master tax number first, then this database, then
an overseas classification) is a mapping rule: :func:`taxbridge.rules.exemption_evidence`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from taxbridge.backends.base import EntityUseCodeCatalog
from taxbridge.config import BridgeConfig, ExemptionMode
from taxbridge.errors import BackendError, InvalidFieldError
from taxbridge.logs import get_logger
from taxbridge.models import Customer, Exemption, PendCode, PendReason
from taxbridge.store.base import ReferenceStore, Store

_log = get_logger("taxbridge")


class EntityUseCodes:
    """The active entity use codes (BNADS/AV-EX1): the catalogue the end-of-day refresh
    stored, else the engine's own list (asked once), else none known."""

    def __init__(self, store: ReferenceStore, engine: EntityUseCodeCatalog | None):
        self._store = store
        self._engine = engine
        self._cached: dict[str, str] | None = None

    def __call__(self) -> dict[str, str]:
        stored = self._store.entity_use_codes()
        if stored:
            return stored
        if self._cached is None and self._engine is not None:
            try:
                self._cached = dict(self._engine.entity_use_codes())
            except BackendError as exc:
                _log.warning("taxbridge.entity_use_codes.unavailable", error=str(exc))
                return {}
        return dict(self._cached or {})

    def check(self, owner: str, code: str | None) -> None:
        """An entity use code must be in the active list (when one is known)."""
        if not code:
            return
        active = self()
        if active and code not in active:
            raise InvalidFieldError(
                owner,
                "entity_use_code",
                code,
                f"is not an active entity use code (AV-EX1: {', '.join(sorted(active))})",
            )


class Exemptions:
    """The exemption database of one bridge."""

    def __init__(
        self,
        config: BridgeConfig,
        store: Store,
        clock: Callable[[], dt.datetime],
        entity_use_codes: EntityUseCodes | None = None,
    ):
        self._config = config
        self._store = store
        self._clock = clock
        self.entity_use_codes = entity_use_codes or EntityUseCodes(store, None)

    def add(self, exemption: Exemption) -> None:
        """Add (or replace) a customer exemption for a region and period; its entity use
        code must be active (AV-EX1), else :class:`InvalidFieldError` and nothing is stored."""
        self.entity_use_codes.check("Exemption", exemption.entity_use_code)
        self._store.save_exemption(exemption)

    def remove(self, customer_code: str, region: str, effective: dt.date) -> bool:
        """Remove a customer exemption; False when there was none."""
        return self._store.delete_exemption(customer_code, region, effective)

    def entries(self, customer_code: str | None = None) -> list[Exemption]:
        """The exemption database, for one customer or all."""
        return self._store.exemptions(customer_code)

    def evidence_for(self, customer_code: str) -> list[Exemption]:
        """The entries a document of this customer may carry (none in engine mode)."""
        if self._config.exemptions.mode is not ExemptionMode.LOCAL:
            return []
        return self._store.exemptions(customer_code)

    def expiry(self, customer: Customer, region: str) -> list[PendReason]:
        """BNW150C: the customer's exemption for the ship-to region expired or expires within
        the warning days (local mode, and only without a tax number on the master)."""
        if self._config.exemptions.mode is not ExemptionMode.LOCAL or customer.tax_number:
            return []
        today = self._clock().date()
        horizon = today + dt.timedelta(days=self._config.pending.expiry_warning_days)
        entries = [e for e in self._store.exemptions(customer.code) if e.region == region]
        current = [e for e in entries if e.valid_on(today)]
        if current:
            ending = [e.expiry for e in current if e.expiry is not None]
            if len(ending) == len(current) and max(ending) <= horizon:
                when = max(ending).isoformat()
                return [
                    PendReason(
                        PendCode.EXEMPTION_EXPIRY,
                        f"customer {customer.code}: exemption in {region} expires on {when}",
                        customer=customer.code,
                    )
                ]
            return []
        expired = [e.expiry for e in entries if e.expiry is not None and e.expiry < today]
        if expired:
            return [
                PendReason(
                    PendCode.EXEMPTION_EXPIRY,
                    f"customer {customer.code}: exemption in {region} "
                    f"expired on {max(expired).isoformat()}",
                    customer=customer.code,
                )
            ]
        return []
