"""Outgoing mail over SMTP (stdlib ``smtplib``): certificate requests and reminder letters.

STARTTLS and a login when configured; the password is read from the environment variable the
settings name, when a message goes out, and never logged. Any failure is a :class:`MailError`:
the caller records nothing as sent."""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from attrs import frozen

from taxbridge.config import SMTPSettings
from taxbridge.errors import MailError
from taxbridge.logs import get_logger

_log = get_logger("taxbridge")


@frozen
class Message:
    """One plain-text e-mail to one recipient."""

    recipient: str
    subject: str
    body: str


def header_value(text: str) -> str:
    """``text`` on one line, as a mail header must be: a CR or LF in the master data (a
    customer's name in a subject) becomes a space, and could not add a header."""
    return " ".join(text.split())


class Mailer:
    """Sends messages through the configured SMTP server, one connection per batch."""

    def __init__(
        self,
        settings: SMTPSettings,
        *,
        environ: Mapping[str, str] | None = None,
        connect: Callable[[str, int, float], smtplib.SMTP] | None = None,
    ):
        self.settings = settings
        self._environ = environ if environ is not None else os.environ
        self._connect = connect or (
            lambda host, port, timeout: smtplib.SMTP(host, port, timeout=timeout)
        )

    def send(self, messages: list[Message]) -> int:
        """Send each message; the number sent. The first failure raises :class:`MailError`
        (those before it went out)."""
        if not messages:
            return 0
        settings = self.settings
        if not settings.configured:
            raise MailError("no mail server: set [smtp] host and sender")
        password = ""
        if settings.username:
            password = self._environ.get(settings.password_env, "")
            if not password:
                raise MailError(
                    f"the SMTP password's environment variable {settings.password_env} is not set"
                )
        sent = 0
        recipient = ""
        try:
            with self._connect(settings.host, settings.port, settings.timeout) as smtp:
                if settings.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if settings.username:
                    smtp.login(settings.username, password)
                for message in messages:
                    recipient = message.recipient
                    try:
                        mail = self._email(message)
                    except (ValueError, TypeError) as exc:
                        raise MailError(
                            f"cannot be written as an e-mail: {exc}", recipient=recipient
                        ) from exc
                    smtp.send_message(mail)
                    sent += 1
                    _log.debug("taxbridge.mail.sent", recipient=recipient, subject=message.subject)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(
                f"SMTP {settings.host}:{settings.port}: {exc}", recipient=recipient
            ) from exc
        return sent

    def _email(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.settings.sender
        mail["To"] = header_value(message.recipient)
        mail["Subject"] = header_value(message.subject)
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["Message-ID"] = make_msgid(domain=self.settings.sender.rpartition("@")[2] or None)
        mail.set_content(message.body)
        return mail
