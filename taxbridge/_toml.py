"""Reading parsed TOML tables: typed values, unknown keys refused, every mistake a ConfigError
naming the file, the key path and the value. What a value *means* is checked by the config class
it builds (:meth:`TableReader.build` puts the key path on that class's errors)."""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

from taxbridge.errors import ConfigError

T = TypeVar("T")


class TableReader:
    """Reads tables of one TOML source, turning each mistake into a ConfigError with its path."""

    def __init__(self, source: str, base: Path | None = None):
        self.source = source
        self.base = base
        """The config file's folder: relative paths in it are taken from there."""

    def fail(self, key: str, value: Any, message: str) -> ConfigError:
        """The error for ``value`` at ``key``."""
        return ConfigError.refusing(key, value, message, source=self.source)

    def missing(self, key: str) -> ConfigError:
        """The error for a required key that is absent."""
        return ConfigError("is required", source=self.source, key=key)

    def build(self, path: str, make: Callable[..., T], /, **values: Any) -> T:
        """``make(**values)``, its ConfigError re-keyed from ``Class.field`` to ``path.field``."""
        try:
            return make(**values)
        except ConfigError as exc:
            key = exc.key or path
            if exc.field:
                key = f"{path}.{exc.field}" if path else exc.field
            source = exc.source or self.source
            raise ConfigError(exc.reason, source=source, key=key, value=exc.value) from None

    def table(self, data: Any, key: str, allowed: Iterable[str] | None) -> dict[str, Any]:
        """A table whose keys are all in ``allowed`` (None: any key; its reader checks them)."""
        if not isinstance(data, dict):
            raise self.fail(key, data, "is not a table")
        if allowed is None:
            return data
        known = set(allowed)
        for name in data:
            if name not in known:
                path = f"{key}.{name}" if key else name
                raise ConfigError(
                    f"unknown key (expected one of {', '.join(sorted(known))})",
                    source=self.source,
                    key=path,
                    value=data[name],
                )
        return data

    def tables(
        self, data: dict[str, Any], key: str, allowed: Iterable[str]
    ) -> list[dict[str, Any]]:
        """An array of tables (absent: none)."""
        value = data.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, value, "is not an array of tables")
        known = set(allowed)
        return [self.table(entry, f"{key}[{i}]", known) for i, entry in enumerate(value)]

    def string(self, data: dict[str, Any], key: str, path: str, default: str | None = None) -> str:
        """A string, stripped; required unless a default is given."""
        if key not in data:
            if default is None:
                raise self.missing(path)
            return default
        value = data[key]
        if not isinstance(value, str):
            raise self.fail(path, value, "is not a string")
        return value.strip()

    def required_string(self, data: dict[str, Any], key: str, path: str) -> str:
        """A string that must be present and not blank."""
        value = self.string(data, key, path)
        if not value:
            raise self.fail(path, value, "must not be empty")
        return value

    def boolean(self, data: dict[str, Any], key: str, path: str, default: bool) -> bool:
        """true or false."""
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(path, value, "is not true or false")
        return value

    def integer(
        self,
        data: dict[str, Any],
        key: str,
        path: str,
        default: int,
        minimum: int = 0,
        maximum: int = 1_000_000,
    ) -> int:
        """A whole number from ``minimum`` to ``maximum`` (a million unless told)."""
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise self.fail(path, value, f"is not a whole number from {minimum} to {maximum}")
        return value

    def decimal(
        self, data: dict[str, Any], key: str, path: str, default: str | None = None
    ) -> Decimal:
        """Money or a rate, written as a string or an integer; a TOML float is refused."""
        if key not in data:
            if default is None:
                raise self.missing(path)
            return Decimal(default)
        value = data[key]
        if isinstance(value, float):
            raise self.fail(path, value, 'is a float; write money and rates as strings ("8.00")')
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(path, value, "is not a number")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise self.fail(path, value, "is not a number") from None
        if not number.is_finite():
            raise self.fail(path, value, "is not a finite number")
        return number

    def seconds(self, data: dict[str, Any], key: str, path: str) -> float:
        """A positive number of seconds."""
        value = data[key]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value <= 0 or value > 86_400:
            raise self.fail(path, value, "is not a number of seconds, above 0 and at most 86400")
        return float(value)

    def date(self, data: dict[str, Any], key: str, path: str, *, required: bool) -> dt.date | None:
        """A TOML date or a ``YYYY-MM-DD`` string."""
        if key not in data:
            if required:
                raise self.missing(path)
            return None
        value = data[key]
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise self.fail(path, value, "is not a date (YYYY-MM-DD)") from None
        raise self.fail(path, value, "is not a date (YYYY-MM-DD)")

    def strings(self, data: dict[str, Any], key: str, path: str) -> list[str]:
        """An array of strings, each stripped (absent: empty)."""
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(path, value, "is not an array of strings")
        return [v.strip() for v in value]

    def mapping(self, data: dict[str, Any], key: str, path: str) -> dict[str, str]:
        """A table of non-empty strings (absent: empty)."""
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(path, value, "is not a table")
        result = {}
        for name, item in value.items():
            if not isinstance(item, str) or not item.strip():
                raise self.fail(f"{path}.{name}", item, "is not a non-empty string")
            result[name] = item.strip()
        return result

    def choice(self, data: dict[str, Any], key: str, path: str, kind: type[enum.Enum]) -> Any:
        """One of an enumeration's values (absent: its first)."""
        return self.one_of(data, key, path, [member.value for member in kind], kind)

    def one_of(
        self,
        data: dict[str, Any],
        key: str,
        path: str,
        allowed: list[Any],
        make: Callable[[Any], Any] = lambda value: value,
    ) -> Any:
        """One of ``allowed`` (absent: the first), passed through ``make``."""
        value = data.get(key, allowed[0])
        if value not in allowed:
            names = ", ".join(repr(name) for name in allowed)
            raise self.fail(path, value, f"is not one of {names}")
        return make(value)
