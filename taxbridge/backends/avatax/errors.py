"""AvaTax error answers as typed exceptions: the ``{"error": {...}}`` envelope, read tolerantly.

Fields may be missing (the recorded 2024 401 has no ``target``, ``number`` or ``severity``), the
body may not be JSON at all (a proxy's HTML page); every case gives a :class:`BackendError`
subclass carrying the HTTP status, the error name and number, ``refersTo`` and the message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from taxbridge.backends._http import retry_after_seconds
from taxbridge.backends.avatax.mapping import loads
from taxbridge.errors import (
    AlreadyCommitted,
    AuthenticationFailed,
    BackendError,
    BackendUnavailable,
    DocumentRejected,
)

TRANSIENT_CODES = frozenset(
    {
        "ServerUnreachable",
        "RemoteServerError",
        "UnhandledException",
        "ServiceTimeout",
        "TimeoutRequested",
        "RequestLimitExceeded",
        "ConcurrentRequestLimitExceeded",
        "RateLimitExceededError",
        "RateLimitExceeded",
    }
)
"""Server-side and rate-limit codes: the same call may pass later, whatever the HTTP status."""

AUTH_CODES = frozenset(
    {
        "AuthenticationException",
        "AuthorizationException",
        "BasicAuthIncorrect",
        "PermissionRequired",
        "AuthenticationIncomplete",
        "InvalidAuthenticationType",
    }
)
"""Credential and permission codes: fix the settings, not the document."""

COMMITTED_CODES = frozenset({"TransactionIsCommitted"})
"""Codes saying the document is already committed (besides GetTaxError refersTo DocStatus)."""


def _envelope(response: httpx.Response) -> Mapping[str, Any] | None:
    try:
        body = loads(response.content)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, Mapping) else None
    return error if isinstance(error, Mapping) else None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


_LINE = re.compile(r"^Lines\[([^\]]+)\]")


def rejected_line(refers_to: str) -> str | None:
    """The line an error's ``refersTo`` names (``Lines[1001-1].Addresses`` -> ``1001-1``)."""
    found = _LINE.match(refers_to)
    return found.group(1) if found else None


def error_from_response(response: httpx.Response, *, backend: str, code: str = "") -> BackendError:
    """The typed exception of a non-2xx answer."""
    status = response.status_code
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    common: dict[str, Any] = {"backend": backend, "code": code, "status": status}
    error = _envelope(response)
    if error is None:
        reason = response.reason_phrase or "error"
        message = f"HTTP {status} {reason}: the answer is not an AvaTax error object"
        if status == 429 or status >= 500:
            return BackendUnavailable(
                message, retry_after=retry_after, sent=status != 429, **common
            )
        if status in (401, 403):
            return AuthenticationFailed(message, **common)
        return BackendError(f"{message} (is base_url right?)", **common)

    details = error.get("details")
    first: Mapping[str, Any] = (
        details[0]
        if isinstance(details, list) and details and isinstance(details[0], Mapping)
        else {}
    )
    envelope_code = _text(error.get("code"))
    error_code = _text(first.get("code")) or envelope_code
    number = first.get("number")
    message = _text(first.get("message")) or _text(error.get("message")) or f"HTTP {status}"
    description = _text(first.get("description"))
    if description and description != message and "-0-" not in description:
        message = f"{message} ({description})"
    common.update(
        error_code=error_code,
        refers_to=_text(first.get("refersTo")),
        number=number if isinstance(number, int) and not isinstance(number, bool) else None,
    )
    codes = {envelope_code, error_code}
    if status == 429 or status >= 500 or codes & TRANSIENT_CODES:
        return BackendUnavailable(message, retry_after=retry_after, sent=status != 429, **common)
    if status in (401, 403) or codes & AUTH_CODES:
        return AuthenticationFailed(message, **common)
    if codes & COMMITTED_CODES or (
        error_code == "GetTaxError" and common["refers_to"] == "DocStatus"
    ):
        return AlreadyCommitted(message, **common)
    return DocumentRejected(message, line=rejected_line(common["refers_to"]), **common)
