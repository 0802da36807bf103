"""Database URLs in messages: where one holds a password (refused), and how one is shown
(without anything that can carry a secret)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SECRET_PARAMETERS = ("password", "options", "passfile", "sslpassword")
"""Query parameters of a database URL that carry a secret, or can (``options``)."""


def url_secret(url: str) -> str | None:
    """Where a database URL holds a password (``its user part``, ``its password parameter``,
    ...), or None: a password belongs in an environment variable, never in a URL that is
    written in files and shown in messages."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return None
    if password is not None:
        return "its user part (user:password@)"
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        name = key.strip().lower()
        if name in _SECRET_PARAMETERS and (name != "options" or "password" in value.lower()):
            return f"its {name} parameter"
    return None


def shown_url(url: str) -> str:
    """A database URL as a message may show it: its user part without a password, and no query
    parameter that carries (or can carry) a secret. An unreadable URL is not shown at all."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(a URL that cannot be read)"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    user = f"{parts.username}@" if parts.username else ""
    query = urlencode(
        [
            (key, value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
            if key.strip().lower() not in _SECRET_PARAMETERS
        ]
    )
    netloc = f"{user}{host}{f':{port}' if port else ''}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
