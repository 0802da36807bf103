"""Plugins by name: a registry maps a kind (``[backend] kind = "avatax"``) to the module whose
``PLUGIN`` reads its settings and builds it, imported only when that kind is used."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from taxbridge.errors import ConfigError


def plugin(registry: Mapping[str, str], kind: str, key: str) -> Any:
    """The ``PLUGIN`` of ``kind``'s module; ConfigError naming ``key`` for an unknown kind."""
    if kind not in registry:
        allowed = ", ".join(repr(name) for name in registry)
        raise ConfigError(f"{kind!r} is not one of {allowed}", key=key, value=kind)
    return importlib.import_module(registry[kind]).PLUGIN
