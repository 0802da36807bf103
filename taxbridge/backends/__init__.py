"""Tax backends: the protocol and its capabilities, the registry of backend kinds, the embedded
local engine and the offline table.

A new engine is a module exposing a :class:`~taxbridge.backends.base.BackendPlugin` named
``PLUGIN``: in the package, a folder ``backends/<name>/`` and one line in :data:`BACKENDS`;
outside it, an entry point in the group ``taxbridge.engines``. ``[backend] kind = "<name>"``
then selects it.
"""

from __future__ import annotations

from taxbridge._registry import BACKENDS
from taxbridge._registry import backend_plugin as _backend_plugin
from taxbridge.backends.base import (
    AddressResolver,
    BackendPlugin,
    BuildContext,
    Capabilities,
    Capability,
    DocumentRegister,
    EntityUseCodeCatalog,
    NexusCatalog,
    Pingable,
    PingResult,
    RateDownload,
    TaxBackend,
    TaxCodeCatalog,
    VoidReason,
)
from taxbridge.backends.local import LocalEngine
from taxbridge.backends.offline import OfflineTable


def backend_plugin(kind: str) -> BackendPlugin:
    """The plugin of a backend kind, built in (:data:`BACKENDS`) or installed (the entry point
    group ``taxbridge.engines``); ConfigError naming ``backend.kind`` otherwise."""
    found: BackendPlugin = _backend_plugin(kind)
    return found


__all__ = [
    "BACKENDS",
    "AddressResolver",
    "BackendPlugin",
    "BuildContext",
    "Capabilities",
    "Capability",
    "DocumentRegister",
    "EntityUseCodeCatalog",
    "LocalEngine",
    "NexusCatalog",
    "OfflineTable",
    "PingResult",
    "Pingable",
    "RateDownload",
    "TaxBackend",
    "TaxCodeCatalog",
    "VoidReason",
    "backend_plugin",
]
