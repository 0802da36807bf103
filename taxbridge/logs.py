"""Structured logging: the ``taxbridge`` logger, a secret-redacting processor, and CLI set-up.

taxbridge logs one event per stage per document (``taxbridge.invoice.posted``) with the code,
stage, flag before and after, backend and elapsed milliseconds. Add :func:`redact_secrets` to
your own structlog processors so that no credential reaches a log sink, at any level.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

REDACTED = "**redacted**"
_SECRET_KEY = re.compile(
    r"(password|passwd|secret|license_?key|licen[cs]e|token|authorization|api_?key|credential)",
    re.IGNORECASE,
)


def get_logger() -> Any:
    """The ``taxbridge`` structlog logger."""
    return structlog.get_logger("taxbridge")


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
