"""The AvaTax REST v2 backend: settings, the pure model mapping, typed errors and the client."""

from taxbridge.backends.avatax.client import AvaTaxBackend, PingResult
from taxbridge.backends.avatax.mapping import AdjustmentReason, RefundType
from taxbridge.backends.avatax.settings import (
    PRODUCTION_URL,
    SANDBOX_URL,
    AvaTaxSettings,
    Secret,
)

__all__ = [
    "PRODUCTION_URL",
    "SANDBOX_URL",
    "AdjustmentReason",
    "AvaTaxBackend",
    "AvaTaxSettings",
    "PingResult",
    "RefundType",
    "Secret",
]
