"""A real SMTP server for the tests: aiosmtpd on loopback, keeping every message it accepts."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Inbox:
    """What the server received: (envelope recipients, parsed message) per message."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        self.received.append((list(envelope.rcpt_tos), message_from_bytes(content)))
        return "250 Message accepted for delivery"

    def to(self, recipient: str) -> list[Message]:
        """Messages addressed to ``recipient``."""
        return [message for tos, message in self.received if recipient in tos]


def free_port() -> int:
    """A loopback port nobody listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_server(login: tuple[str, str] | None = None) -> Iterator[tuple[int, Inbox]]:
    """An SMTP server on a free loopback port: (port, inbox). With ``login`` it requires
    AUTH with that user and password (over plain text: loopback only)."""
    inbox = Inbox()
    port = free_port()
    extra: dict[str, Any] = {}
    if login is not None:

        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> Any:
            ok = data is not None and (data.login.decode(), data.password.decode()) == login
            return AuthResult(success=ok)

        extra = {"auth_required": True, "auth_require_tls": False, "authenticator": authenticate}
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **extra)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()
