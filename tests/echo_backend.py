"""A second engine as a newcomer would add one: a module with a PLUGIN, and one registry line.

It is the local engine under another name, with one ``[backend]`` key of its own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

from taxbridge._toml import TableReader
from taxbridge.backends import LocalEngine
from taxbridge.backends.base import BuildContext
from taxbridge.errors import ConfigError


@frozen
class EchoSettings:
    name: str = "echo"


class EchoPlugin:
    kind = "echo"

    def settings(self, table: Mapping[str, Any], read: TableReader) -> EchoSettings:
        data = read.table(dict(table), "backend", {"kind", "rounding", "name"})
        return EchoSettings(read.required_string(data, "name", "backend.name"))

    def check(self, settings: Any) -> EchoSettings:
        if settings is None:
            return EchoSettings()
        if not isinstance(settings, EchoSettings):
            raise ConfigError(f"{settings!r} is not EchoSettings", key="backend_settings")
        return settings

    def build(self, settings: Any, context: BuildContext) -> LocalEngine:
        return LocalEngine(rounding=context.rounding, name=self.check(settings).name)


PLUGIN = EchoPlugin()
