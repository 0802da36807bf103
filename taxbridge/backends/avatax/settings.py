"""How to reach AvaTax: where, as whom, and how patiently. No network code here.

Credentials are :class:`Secret` values: they never show in ``repr``, ``str`` or logs. A license
key or token may also be named by environment variable (``license_key_env``), read only when the
backend is built, so a config file need not hold it.
"""

from __future__ import annotations

import base64
import hmac
import math
import os
import socket
from collections.abc import Mapping
from typing import Any

import attrs
from attrs import field, frozen

from taxbridge._toml import TableReader
from taxbridge.errors import ConfigError

SANDBOX_URL = "https://sandbox-rest.avatax.com"
PRODUCTION_URL = "https://rest.avatax.com"
ENVIRONMENTS = {"sandbox": SANDBOX_URL, "production": PRODUCTION_URL}
"""Named environments and their base URLs (endpoints.json ``meta.servers``)."""


class Secret:
    """A credential. Its value is only given by :meth:`reveal`; every other view is masked."""

    __slots__ = ("_value",)

    def __init__(self, value: str, *, name: str = "credential"):
        self._value = _credential(value, name)

    def reveal(self) -> str:
        """The credential itself, for the Authorization header only."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(type(self))

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not pickled")


def _credential(value: object, name: str) -> str:
    """A credential stripped, refused (never shown) when empty or holding anything but
    printable ASCII: a line break would end up in an HTTP header and in error messages."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"the {name} must be a non-empty string")
    text = value.strip()
    if not all(" " < char < "\x7f" for char in text):
        raise ConfigError(
            f"the {name} holds a character that cannot go in an HTTP header (a line break, a "
            "tab, a space or a non-ASCII letter); it is not shown here"
        )
    return text


def _header_text(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not all(" " <= char < "\x7f" for char in value):
        raise ConfigError(
            "must be printable ASCII (it is sent in the X-Avalara-Client header)",
            key=f"backend.{attribute.name}",
            value=value,
        )


def _machine() -> str:
    """This host's name as a header may carry it."""
    return "".join(char for char in socket.gethostname() if " " <= char < "\x7f") or "unknown"


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value <= 0:
        raise ConfigError("must be a number > 0", key=f"backend.{attribute.name}", value=value)


def _count(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            "must be a whole number >= 1", key=f"backend.{attribute.name}", value=value
        )


def _base_url(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ConfigError(
            "must start with https:// (or http:// for a local test server)",
            key="backend.base_url",
            value=value,
        )


@frozen
class AvaTaxSettings:
    """Connection, credentials, retries and logging of :class:`AvaTaxBackend`.

    Give ``account_id`` with ``license_key`` (or ``license_key_env``) for HTTP Basic, or
    ``token`` (or ``token_env``) for a bearer token.
    """

    base_url: str = field(default=SANDBOX_URL, validator=_base_url)
    account_id: str = ""
    license_key: Secret | None = None
    license_key_env: str = ""
    """Name of the environment variable holding the license key."""
    token: Secret | None = None
    token_env: str = ""
    app_name: str = field(default="taxbridge", validator=_header_text)
    app_version: str = field(default="", validator=_header_text)
    """Sent in ``X-Avalara-Client``; blank: the installed taxbridge version."""
    machine_name: str = field(factory=_machine, validator=_header_text)
    connect_timeout: float = field(default=5.0, validator=_positive)
    read_timeout: float = field(default=15.0, validator=_positive)
    """Seconds to wait for an answer; Avalara's SDKs wait 1200 s, which stalls an invoicing run."""
    max_attempts: int = field(default=3, validator=_count)
    """Attempts per call, the first included, for failures that may pass (never for 4xx)."""
    max_retry_seconds: float = field(default=20.0, validator=_positive)
    """Stop retrying a call once this much time has gone by since its first attempt."""
    backoff_initial: float = field(default=0.5, validator=_positive)
    backoff_max: float = field(default=8.0, validator=_positive)
    max_connections: int = field(default=32, validator=_count)
    circuit_failures: int = field(default=5, validator=_count)
    """After this many calls in a row fail to reach the engine, fail fast for a while."""
    circuit_reset_seconds: float = field(default=30.0, validator=_positive)
    company_ids: Mapping[str, int] = field(factory=dict, converter=dict)
    """Company code -> AvaTax company id (the nexus call needs the id); looked up when absent."""
    log_bodies: bool = False
    """Log full request and response bodies at debug level (Authorization never included)."""

    def __attrs_post_init__(self) -> None:
        basic = bool(self.license_key or self.license_key_env)
        bearer = bool(self.token or self.token_env)
        if basic and bearer:
            raise ConfigError("give a license key or a token, not both", key="backend.token")
        if basic and not self.account_id:
            raise ConfigError("is required with a license key", key="backend.account_id")
        if not basic and not bearer:
            raise ConfigError(
                "AvaTax needs credentials: account_id with license_key or license_key_env, "
                "or token / token_env",
                key="backend.license_key",
            )

    @classmethod
    def for_environment(cls, environment: str, **kwargs: Any) -> AvaTaxSettings:
        """Settings for ``sandbox`` or ``production``."""
        if environment not in ENVIRONMENTS:
            raise ConfigError(
                f"is not one of {', '.join(sorted(ENVIRONMENTS))}",
                key="backend.environment",
                value=environment,
            )
        return cls(base_url=ENVIRONMENTS[environment], **kwargs)

    def authorization(self) -> str:
        """The ``Authorization`` header value; reads a named environment variable now."""
        if self.token or self.token_env:
            return f"Bearer {self._secret(self.token, self.token_env, 'token_env')}"
        key = self._secret(self.license_key, self.license_key_env, "license_key_env")
        pair = f"{self.account_id}:{key}".encode()
        return f"Basic {base64.b64encode(pair).decode('ascii')}"

    @staticmethod
    def _secret(secret: Secret | None, env: str, key: str) -> str:
        if secret is not None:
            return secret.reveal()
        value = os.environ.get(env, "").strip()
        if not value:
            raise ConfigError(
                f"environment variable {env!r} is not set", key=f"backend.{key}", value=env
            )
        try:
            return _credential(value, f"value of environment variable {env!r}")
        except ConfigError as exc:
            raise ConfigError(exc.reason, key=f"backend.{key}", value=env) from None

    def client_header(self, library_version: str) -> str:
        """``X-Avalara-Client``: app name; app version; library name; library version; machine."""
        app_version = self.app_version or library_version
        return f"{self.app_name}; {app_version}; taxbridge; {library_version}; {self.machine_name}"


KEYS = {
    "environment", "base_url", "account_id", "license_key", "license_key_env", "token",
    "token_env", "app_name", "app_version", "machine_name", "connect_timeout", "read_timeout",
    "max_attempts", "max_retry_seconds", "backoff_initial", "backoff_max", "max_connections",
    "circuit_failures", "circuit_reset_seconds", "company_ids", "log_bodies",
}  # fmt: skip
"""``[backend]`` keys of the AvaTax backend (AvaTaxSettings fields, plus ``environment``)."""


def settings_from_table(table: Mapping[str, Any], read: TableReader) -> AvaTaxSettings:
    """The AvaTax settings of ``[backend]``: environment or base_url, credentials, limits."""
    data = read.table(dict(table), "backend", KEYS | {"kind", "rounding"})
    values: dict[str, Any] = {}
    for key in ("account_id", "license_key_env", "token_env", "app_name", "app_version",
                "machine_name"):  # fmt: skip
        if key in data:
            values[key] = read.string(data, key, f"backend.{key}")
    for key in ("license_key", "token"):
        if key in data:
            value = read.required_string(data, key, f"backend.{key}")
            try:
                values[key] = Secret(value, name=key)
            except ConfigError as exc:
                raise ConfigError(exc.reason, source=read.source, key=f"backend.{key}") from None
    for key in ("connect_timeout", "read_timeout", "max_retry_seconds", "backoff_initial",
                "backoff_max", "circuit_reset_seconds"):  # fmt: skip
        if key in data:
            values[key] = read.seconds(data, key, f"backend.{key}")
    for key in ("max_attempts", "max_connections", "circuit_failures"):
        if key in data:
            values[key] = read.integer(data, key, f"backend.{key}", 1)
    if "log_bodies" in data:
        values["log_bodies"] = read.boolean(data, "log_bodies", "backend.log_bodies", False)
    if "company_ids" in data:
        ids = read.table(data["company_ids"], "backend.company_ids", None)
        for name, value in ids.items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise read.fail(f"backend.company_ids.{name}", value, "is not a company id > 0")
        values["company_ids"] = ids
    if "base_url" in data and "environment" in data:
        raise read.fail("backend.base_url", data["base_url"], "conflicts with environment")
    try:
        if "base_url" in data:
            return AvaTaxSettings(base_url=read.string(data, "base_url", "backend.base_url"),
                                  **values)  # fmt: skip
        environment = read.string(data, "environment", "backend.environment", "sandbox")
        return AvaTaxSettings.for_environment(environment, **values)
    except ConfigError as exc:
        raise ConfigError(exc.reason, source=read.source, key=exc.key, value=exc.value) from None
