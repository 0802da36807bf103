"""The AvaTax REST v2 backend: settings, the pure model mapping, typed errors and the client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taxbridge._toml import TableReader
from taxbridge.backends.avatax.client import AvaTaxBackend
from taxbridge.backends.avatax.mapping import AdjustmentReason, RefundType
from taxbridge.backends.avatax.settings import (
    PRODUCTION_URL,
    SANDBOX_URL,
    AvaTaxSettings,
    Secret,
    settings_from_table,
)
from taxbridge.backends.base import BuildContext, PingResult
from taxbridge.errors import ConfigError


class AvaTaxPlugin:
    """The ``avatax`` backend kind: ``[backend]`` holds the :class:`AvaTaxSettings`."""

    kind = "avatax"

    def settings(self, table: Mapping[str, Any], read: TableReader) -> AvaTaxSettings:
        """Read the AvaTax keys (credentials from an environment variable by name)."""
        return settings_from_table(table, read)

    def check(self, settings: Any) -> AvaTaxSettings:
        """AvaTax needs settings: at least the credentials."""
        if not isinstance(settings, AvaTaxSettings):
            raise ConfigError(
                f"{settings!r} is not AvaTaxSettings (AvaTax needs credentials)",
                key="backend_settings",
                value=settings,
            )
        return settings

    def build(self, settings: Any, context: BuildContext) -> AvaTaxBackend:
        """The client; a credential named by an environment variable is read now."""
        return AvaTaxBackend(self.check(settings))


PLUGIN = AvaTaxPlugin()

__all__ = [
    "PLUGIN",
    "PRODUCTION_URL",
    "SANDBOX_URL",
    "AdjustmentReason",
    "AvaTaxBackend",
    "AvaTaxSettings",
    "PingResult",
    "RefundType",
    "Secret",
]
