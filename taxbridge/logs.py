"""Structured logging that stays silent until the host asks for it.

taxbridge logs one event per stage per document (``taxbridge.invoice.posted``) with the code,
stage, flag before and after, backend and elapsed milliseconds. Where they go is the host's
choice:

* a host that configured structlog gets them through its own processors (add
  :func:`redact_secrets` to them, so that no credential reaches a sink);
* otherwise they go to the standard ``logging`` module, logger ``taxbridge`` (a
  ``NullHandler`` is attached, so nothing is printed until the host configures logging), with
  the event's fields as ``extra`` on the record and credentials already redacted.

The ``taxbridge`` command configures its own output, on stderr (:func:`configure`).
"""

from __future__ import annotations

import logging
import operator
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

REDACTED = "**redacted**"
LEVELS = ("debug", "info", "warning", "error")
"""The levels the command line accepts."""
_LEVEL_NUMBERS = {name: logging.getLevelNamesMapping()[name.upper()] for name in LEVELS}
"""Each of :data:`LEVELS` as the stdlib's level number."""

_SECRET_KEY = re.compile(
    r"(password|passwd|secret|license_?key|licen[cs]e|token|authorization|api_?key|credential)",
    re.IGNORECASE,
)

logging.getLogger("taxbridge").addHandler(logging.NullHandler())


def redact_secrets(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace the value of every key that names a credential, at any depth of dicts."""
    return _redact(event_dict)


def _redact(data: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(data.items()):
        if isinstance(key, str) and _SECRET_KEY.search(key):
            data[key] = REDACTED
        elif isinstance(value, MutableMapping):
            data[key] = _redact(dict(value))
    return data


def _same(cached: tuple[object, ...], current: tuple[object, ...]) -> bool:
    """True when each part of the configuration is the very object cached."""
    return all(map(operator.is_, cached, current))


class _Logger:
    """Logs through structlog when the host configured it, else through stdlib ``logging``."""

    def __init__(self, name: str):
        self._name = name
        self._stdlib = structlog.wrap_logger(
            logging.getLogger(name),
            processors=[redact_secrets, structlog.stdlib.render_to_log_kwargs],
            wrapper_class=structlog.stdlib.BoundLogger,
        )
        self._bound: tuple[tuple[object, ...], Any] | None = None

    def _target(self) -> Any:
        if not structlog.is_configured():
            return self._stdlib
        # The host's logger, bound once per configuration: a lazy proxy binds on every call,
        # which costs more than the event itself when the level filters it out. The key holds
        # the processor list itself, so a reconfigured structlog never matches a stale entry.
        config = structlog.get_config()
        key = (
            config["processors"],
            config["wrapper_class"],
            config["logger_factory"],
            config["context_class"],
        )
        bound = self._bound
        if bound is None or not _same(bound[0], key):
            bound = self._bound = (key, structlog.get_logger(self._name).bind())
        return bound[1]

    def enabled(self, level: str) -> bool:
        """Whether an event at ``level`` (debug, info, warning, error) goes anywhere: a caller
        need not build the fields of one the host filters out. A host logger that cannot say
        is taken as listening."""
        number = _LEVEL_NUMBERS[level]
        target = self._target()
        if target is self._stdlib:
            return logging.getLogger(self._name).isEnabledFor(number)
        check = getattr(target, "is_enabled_for", None)
        return True if check is None else bool(check(number))

    def debug(self, event: str, **fields: Any) -> None:
        """Log at debug level."""
        self._target().debug(event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        """Log at info level."""
        self._target().info(event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Log at warning level."""
        self._target().warning(event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        """Log at error level."""
        self._target().error(event, **fields)


def get_logger(name: str = "taxbridge") -> Any:
    """A taxbridge logger (``taxbridge`` or a child such as ``taxbridge.avatax``)."""
    return _Logger(name)


def configure(level: str = "warning", *, json: bool = False) -> None:
    """Set up structlog for the command line: redaction, level filter, output to stderr."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
