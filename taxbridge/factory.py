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
from taxbridge.store.urls import shown_url


class _LazyStore:
    """Opens the store the first time it is needed: a backend whose credential is missing
    fails before a store file is created."""

    def __init__(self, config: BridgeConfig, create: bool):
        self._config = config
        self._create = create
        self.store: Store | None = None

    def get(self) -> Store:
        if self.store is None:
            plugin = store_plugin(self._config.store)
            self.store = plugin.open(self._config.store_settings, create=self._create)
        return self.store

    def offline_rates(self) -> RateTable:
        return self.get().offline_rates()


def build_backend(config: BridgeConfig, context: BuildContext | None = None) -> TaxBackend:
    """The backend ``config`` names (an offline table from the shipped rates when no store
    is given to read its table from)."""
    context = context or BuildContext(
        rounding=config.rounding,
        provinces=config.provinces(),
        nexus_regions=config.all_nexus_regions,
    )
    return backend_plugin(config.backend).build(config.backend_settings, context)


def build(config: BridgeConfig, *, create: bool = True) -> tuple[TaxBackend, Store]:
    """The backend and the store ``config`` names, the backend first; without ``create`` the
    store must exist already."""
    lazy = _LazyStore(config, create)
    context = BuildContext(
        rounding=config.rounding,
        provinces=config.provinces(),
        nexus_regions=config.all_nexus_regions,
        stored_rates=lazy.offline_rates,
        register_path=store_plugin(config.store).beside(config.store_settings, "engine"),
    )
    try:
        backend = build_backend(config, context)
    except BaseException:
        if lazy.store is not None:
            lazy.store.close()
        raise
    try:
        return backend, lazy.get()
    except BaseException:
        backend.close()
        raise


def open_store(spec: str, *, create: bool, unfinished_ok: bool = False) -> Store:
    """The store a command line names: ``sqlite:PATH`` (or a bare path) or a
    ``postgresql://`` URL, opened through its plugin."""
    from taxbridge._toml import TableReader

    text = spec.strip()
    if text.startswith(("postgresql://", "postgres://")):
        kind, table = "postgres", {"url": text}
    else:
        kind, table = "sqlite", {"path": text.removeprefix("sqlite:")}
    plugin = store_plugin(kind)
    source = shown_url(text) if kind == "postgres" else text
    settings = plugin.settings(table, TableReader(source))
    return plugin.open(settings, create=create, unfinished_ok=unfinished_ok)
