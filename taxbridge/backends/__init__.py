"""Tax backends: the protocol, the embedded local engine, the offline table, a recording fake."""

from taxbridge.backends.base import (
    AddressResolver,
    DocumentRegister,
    EntityUseCodeCatalog,
    NexusCatalog,
    RateDownload,
    TaxBackend,
    TaxCodeCatalog,
    VoidReason,
)
from taxbridge.backends.local import LocalEngine
from taxbridge.backends.offline import OfflineTable
from taxbridge.backends.testing import RecordingBackend

__all__ = [
    "AddressResolver",
    "DocumentRegister",
    "EntityUseCodeCatalog",
    "LocalEngine",
    "NexusCatalog",
    "OfflineTable",
    "RateDownload",
    "RecordingBackend",
    "TaxBackend",
    "TaxCodeCatalog",
    "VoidReason",
]
