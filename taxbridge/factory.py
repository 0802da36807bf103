"""From a config to a backend and a store, through their registries
(:data:`taxbridge.backends.BACKENDS`, :data:`taxbridge.store.STORES`): nothing here names a
concrete engine or database."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from taxbridge.backends import backend_plugin
from taxbridge.backends.base import BuildContext, TaxBackend
from taxbridge.config import BridgeConfig
from taxbridge.rates import RateTable
from taxbridge.store import store_plugin
from taxbridge.store.base import Store
from taxbridge.store.urls import shown_url

if TYPE_CHECKING:
    from taxbridge.store.copy import CopySummary


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


def migrate_store(
    config: BridgeConfig,
    source: str,
    target: str,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> CopySummary:
    """Copy the store ``source`` names into the empty one ``target`` names (``taxbridge store
    migrate``): documents and their log, the open queue, the reference data of ``config``'s
    companies, exemptions, certificates, journals and every file registry; then checked equal.
    Resumable: an interrupted copy is finished by the same call."""
    from taxbridge.files.service import EXPORT_KINDS
    from taxbridge.store.copy import copy_store

    origin = open_store(source, create=False)
    try:
        destination = open_store(target, create=True, unfinished_ok=True)
        try:
            return copy_store(
                origin,
                destination,
                companies=[c.company_code for c in config.companies],
                export_kinds=EXPORT_KINDS,
                source_name=_named(source),
                target_name=_named(target),
                progress=progress,
            )
        finally:
            destination.close()
    finally:
        origin.close()


def _named(spec: str) -> str:
    """A store as messages may show it: a URL without its secrets, a path as given."""
    return shown_url(spec) if spec.strip().startswith(("postgresql:", "postgres:")) else spec
