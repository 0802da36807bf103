"""Tax backends: the protocol and its capabilities, the registry of backend kinds, the embedded
local engine and the offline table.

A new engine is one folder ``backends/<name>/`` whose package exposes a
:class:`~taxbridge.backends.base.BackendPlugin` named ``PLUGIN``, and one line in
:data:`BACKENDS`; ``[backend] kind = "<name>"`` then selects it.
"""

from __future__ import annotations

from taxbridge._registry import plugin
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

BACKENDS: dict[str, str] = {
    "local": "taxbridge.backends.local",
    "offline": "taxbridge.backends.offline",
    "avatax": "taxbridge.backends.avatax",
}
"""Backend kind -> the module whose ``PLUGIN`` reads its ``[backend]`` keys and builds it."""


def backend_plugin(kind: str) -> BackendPlugin:
    """The plugin of a registered backend kind; ConfigError naming ``backend.kind`` otherwise."""
    found: BackendPlugin = plugin(BACKENDS, kind, "backend.kind")
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
