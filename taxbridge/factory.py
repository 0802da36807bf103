"""From a config to a backend and a store, through their registries
(:data:`taxbridge.backends.BACKENDS`, :data:`taxbridge.store.STORES`): nothing here names a
concrete engine or database."""

from __future__ import annotations

from taxbridge.backends import backend_plugin
from taxbridge.backends.base import BuildContext, TaxBackend
from taxbridge.config import BridgeConfig
from taxbridge.rates import RateTable
from taxbridge.store import store_plugin
from taxbridge.store.base import Store


class _LazyStore:
    """Opens the store the first time it is needed: a backend whose credential is missing
    fails before a store file is created."""

    def __init__(self, config: BridgeConfig):
        self._config = config
        self.store: Store | None = None

    def get(self) -> Store:
        if self.store is None:
            self.store = store_plugin(self._config.store).open(self._config.store_settings)
        return self.store

    def offline_rates(self) -> RateTable:
        return self.get().offline_rates()


def build(config: BridgeConfig) -> tuple[TaxBackend, Store]:
    """The backend and the store ``config`` names, the backend first."""
    lazy = _LazyStore(config)
    context = BuildContext(
        rounding=config.rounding,
        provinces=config.provinces(),
        nexus_regions=config.all_nexus_regions,
        stored_rates=lazy.offline_rates,
    )
    try:
        backend = backend_plugin(config.backend).build(config.backend_settings, context)
    except BaseException:
        if lazy.store is not None:
            lazy.store.close()
        raise
    try:
        return backend, lazy.get()
    except BaseException:
        backend.close()
        raise
