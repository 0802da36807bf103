"""Plugins by name: a kind (``[backend] kind = "avatax"``, ``[store] kind = "postgres"``) names
the module whose ``PLUGIN`` reads its settings and builds it, imported only when that kind is
used. Names only, so the config imports no engine and no store.

The built-in kinds are listed here. A third party adds one without editing the package: an
entry point in the group ``taxbridge.engines`` (or ``taxbridge.stores``) named for the kind,
whose object is the plugin or a module holding ``PLUGIN``::

    [project.entry-points."taxbridge.engines"]
    echo = "echo_engine"            # a module with PLUGIN, or "echo_engine:PLUGIN"

A built-in kind cannot be replaced by an entry point of the same name.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Mapping
from typing import Any

from taxbridge.errors import ConfigError

ENGINES_GROUP = "taxbridge.engines"
STORES_GROUP = "taxbridge.stores"

BACKENDS: dict[str, str] = {
    "local": "taxbridge.backends.local",
    "offline": "taxbridge.backends.offline",
    "avatax": "taxbridge.backends.avatax",
}
"""Backend kind -> the module whose ``PLUGIN`` reads its ``[backend]`` keys and builds it."""

STORES: dict[str, str] = {
    "sqlite": "taxbridge.store.sqlite",
    "postgres": "taxbridge.store.postgres",
}
"""Store kind -> the module whose ``PLUGIN`` reads its ``[store]`` keys and opens it."""


def _installed(group: str) -> dict[str, Any]:
    """The entry points of ``group`` by name (of every installed distribution)."""
    from importlib.metadata import entry_points

    return {point.name: point for point in entry_points(group=group)}


def kinds(registry: Mapping[str, str], group: str) -> list[str]:
    """Every kind a config may name: the built-in ones, then those installed."""
    return [*registry, *sorted(set(_installed(group)) - set(registry))]


def plugin(registry: Mapping[str, str], kind: str, key: str, group: str = "") -> Any:
    """The ``PLUGIN`` of ``kind``: a built-in module's, else an installed entry point's;
    ConfigError naming ``key`` and the kinds there are for any other name."""
    if kind in registry:
        return importlib.import_module(registry[kind]).PLUGIN
    point = _installed(group).get(kind) if group else None
    if point is None:
        allowed = ", ".join(repr(name) for name in (kinds(registry, group) if group else registry))
        raise ConfigError(f"{kind!r} is not one of {allowed}", key=key, value=kind)
    try:
        found = point.load()
    except Exception as exc:  # a third party's module: whatever it raises, say which one
        raise ConfigError(
            f"{kind!r}: the plugin {point.value!r} cannot be loaded: {exc}", key=key, value=kind
        ) from exc
    return found.PLUGIN if isinstance(found, types.ModuleType) else found


def backend_plugin(kind: str) -> Any:
    """The plugin of a backend kind (a :class:`~taxbridge.backends.base.BackendPlugin`)."""
    return plugin(BACKENDS, kind, "backend.kind", ENGINES_GROUP)


def store_plugin(kind: str) -> Any:
    """The plugin of a store kind (a :class:`~taxbridge.store.base.StorePlugin`)."""
    return plugin(STORES, kind, "store.kind", STORES_GROUP)
