"""Tax backends: the protocol, the embedded local engine, the offline table, a recording fake."""

from taxbridge.backends.base import (
    DocumentRegister,
    RateDownload,
    TaxBackend,
    TaxCodeCatalog,
    VoidReason,
)
from taxbridge.backends.local import LocalEngine
from taxbridge.backends.offline import OfflineTable
from taxbridge.backends.testing import RecordingBackend

__all__ = [
    "DocumentRegister",
    "LocalEngine",
    "OfflineTable",
    "RateDownload",
    "RecordingBackend",
    "TaxBackend",
    "TaxCodeCatalog",
    "VoidReason",
]
