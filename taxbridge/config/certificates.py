"""Exempt customers' settings: which certificate service (seed 002, CertCapture), the SMTP
server that carries certificate requests and reminder letters, and the reminder letter itself
(BNW150 "Customer Tax Exemption - Reminder"). Built in code or read from ``[certificates]``,
``[smtp]`` and ``[reminders]``."""

from __future__ import annotations

import enum
import string
from pathlib import Path
from typing import Any

import attrs
from attrs import field, frozen

from taxbridge._toml import TableReader
from taxbridge.config.sections import bad


class CertificateServiceKind(enum.Enum):
    """Who keeps exemption certificates."""

    NONE = "none"
    """No certificate workflow: exemptions come from the customer master and BNW150 only."""
    LOCAL = "local"
    """The store keeps them; requests go out as e-mail with an upload link (needs ``[smtp]``)."""
    AVATAX = "avatax"
    """AvaTax's CertCapture (the ``avatax`` backend's account): CertExpress invitations."""


def _text(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str):
        raise bad(instance, attribute.name, value, "is not a string")


def _kind(value: Any) -> Any:
    try:
        return CertificateServiceKind(value)
    except ValueError:
        return value


def _member(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, CertificateServiceKind):
        allowed = ", ".join(repr(kind.value) for kind in CertificateServiceKind)
        raise bad(instance, attribute.name, value, f"is not one of {allowed}")


def _placeholders(*allowed: str) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        _text(instance, attribute, value)
        try:
            names = {
                name
                for _, name, _, _ in string.Formatter().parse(value)
                if name is not None and name != ""
            }
        except ValueError as exc:
            raise bad(instance, attribute.name, value, f"is not a template ({exc})") from None
        unknown = sorted(names - set(allowed))
        if unknown:
            raise bad(
                instance,
                attribute.name,
                value,
                f"names {{{unknown[0]}}}; a template may name {', '.join(allowed)}",
            )

    return check


REQUEST_SUBJECT = "Tax exemption certificate needed - {name} ({customer})"
REQUEST_BODY = """Dear {name},

To go on selling to you tax exempt, we need a current tax exemption certificate for your
account {customer}:

Region(s): {regions}
Exempt reason(s): {reasons}

Please upload it, with its region, your tax ID number, the reason for the exemption, the
effective and expiry dates, and whether it is for a single purchase, here:
{link}

Thank you,
{seller}
"""
REQUEST_PLACEHOLDERS = ("customer", "name", "regions", "reasons", "link", "seller")
"""What a certificate request template may name."""


@frozen
class CertificateSettings:
    """The certificate service (seed 002). ``upload_url`` is the link a local request or a
    reminder carries (``{customer}`` is replaced by the customer number); ``cover_letter`` the
    CertExpress cover letter an AvaTax request uses; ``request_subject`` and ``request_body``
    the e-mail a local request sends (placeholders: customer, name, regions, reasons, link,
    seller), signed by ``seller``."""

    service: CertificateServiceKind = field(
        default=CertificateServiceKind.NONE, converter=_kind, validator=_member
    )
    upload_url: str = field(default="", validator=_placeholders("customer"))
    cover_letter: str = field(default="STANDARD REQUEST", validator=_text)
    seller: str = field(default="", validator=_text)
    request_subject: str = field(
        default=REQUEST_SUBJECT, validator=_placeholders(*REQUEST_PLACEHOLDERS)
    )
    request_body: str = field(default=REQUEST_BODY, validator=_placeholders(*REQUEST_PLACEHOLDERS))

    @property
    def active(self) -> bool:
        """True when exempt customers go through a certificate service."""
        return self.service is not CertificateServiceKind.NONE

    def link_for(self, customer_code: str) -> str:
        """The upload link of one customer (blank without ``upload_url``)."""
        return self.upload_url.format(customer=customer_code) if self.upload_url else ""


def _port(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise bad(instance, attribute.name, value, "is not a port number, 1 to 65535")


def _timeout(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 600:
        raise bad(instance, attribute.name, value, "is not a number of seconds, above 0 to 600")


def _flag(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise bad(instance, attribute.name, value, "is not true or false")


@frozen
class SMTPSettings:
    """The mail server (stdlib ``smtplib``): STARTTLS and a login when ``username`` is set,
    its password read from the environment variable ``password_env`` when mail goes out
    (never from the file)."""

    host: str = field(default="", validator=_text)
    port: int = field(default=587, validator=_port)
    starttls: bool = field(default=True, validator=_flag)
    username: str = field(default="", validator=_text)
    password_env: str = field(default="", validator=_text)
    sender: str = field(default="", validator=_text)
    timeout: float = field(default=30.0, validator=_timeout)

    def __attrs_post_init__(self) -> None:
        if self.username and not self.password_env:
            raise bad(
                self,
                "password_env",
                "",
                "is required with a username (the password's environment variable)",
            )

    @property
    def configured(self) -> bool:
        """True when there is a server and a sender."""
        return bool(self.host and self.sender)


DEFAULT_SUBJECT = "Tax exemption certificate {status} - {name} ({customer})"
DEFAULT_BODY = """Dear {name},

Our records show that your tax exemption for the following region(s) {status}:

{regions}

To keep buying tax exempt, please upload a current exemption certificate:
{link}

Thank you.
"""
PLACEHOLDERS = ("customer", "name", "status", "regions", "link", "expiry", "as_of")
"""What a reminder template may name."""


@frozen
class ReminderSettings:
    """The reminder letter (BNW150 reminder): ``days`` ahead (None: the pending check's
    ``expiry_warning_days``), ``again_after_days`` before a customer is reminded again of the
    same region (0: on every run, once a day), and the subject and body templates
    (``body_file`` replaces the default body; placeholders: customer, name, status, regions,
    link, expiry, as_of)."""

    days: int | None = field(default=None)
    again_after_days: int = field(default=7)
    subject: str = field(default=DEFAULT_SUBJECT, validator=_placeholders(*PLACEHOLDERS))
    body: str = field(default=DEFAULT_BODY, validator=_placeholders(*PLACEHOLDERS))

    def __attrs_post_init__(self) -> None:
        days = self.days
        if days is not None and (
            isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 3660
        ):
            raise bad(self, "days", days, "is not a whole number of days, 0 to 3660")
        again = self.again_after_days
        if isinstance(again, bool) or not isinstance(again, int) or not 0 <= again <= 3660:
            raise bad(self, "again_after_days", again, "is not a whole number of days, 0 to 3660")


def read_certificates(read: TableReader, top: dict[str, Any]) -> CertificateSettings:
    """``[certificates]``: service, upload_url, cover_letter, seller, request_subject,
    request_body_file (relative to the config file)."""
    keys = {
        "service", "upload_url", "cover_letter", "seller", "request_subject", "request_body_file",
    }  # fmt: skip
    table = read.table(top.get("certificates", {}), "certificates", keys)
    body = REQUEST_BODY
    if "request_body_file" in table:
        body = _template_file(read, table, "request_body_file", "certificates")
    return read.build(
        "certificates",
        CertificateSettings,
        service=read.choice(table, "service", "certificates.service", CertificateServiceKind),
        upload_url=read.string(table, "upload_url", "certificates.upload_url", ""),
        cover_letter=read.string(
            table, "cover_letter", "certificates.cover_letter", "STANDARD REQUEST"
        ),
        seller=read.string(table, "seller", "certificates.seller", ""),
        request_subject=read.string(
            table, "request_subject", "certificates.request_subject", REQUEST_SUBJECT
        ),
        request_body=body,
    )


def _template_file(read: TableReader, table: dict[str, Any], key: str, section: str) -> str:
    """The text of a template file a key names (relative to the config file)."""
    name = read.required_string(table, key, f"{section}.{key}")
    path = Path(name) if read.base is None else read.base / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise read.fail(f"{section}.{key}", name, f"cannot be read ({exc})") from None


def read_smtp(read: TableReader, top: dict[str, Any]) -> SMTPSettings:
    """``[smtp]``: host, port, starttls, username, password_env, sender, timeout."""
    keys = {"host", "port", "starttls", "username", "password_env", "sender", "timeout"}
    table = read.table(top.get("smtp", {}), "smtp", keys)
    return read.build(
        "smtp",
        SMTPSettings,
        host=read.string(table, "host", "smtp.host", ""),
        port=read.integer(table, "port", "smtp.port", 587, 1, 65535),
        starttls=read.boolean(table, "starttls", "smtp.starttls", True),
        username=read.string(table, "username", "smtp.username", ""),
        password_env=read.string(table, "password_env", "smtp.password_env", ""),
        sender=read.string(table, "sender", "smtp.sender", ""),
        timeout=read.seconds(table, "timeout", "smtp.timeout") if "timeout" in table else 30.0,
    )


def read_reminders(read: TableReader, top: dict[str, Any]) -> ReminderSettings:
    """``[reminders]``: days, subject, body_file (relative to the config file)."""
    keys = {"days", "again_after_days", "subject", "body_file"}
    table = read.table(top.get("reminders", {}), "reminders", keys)
    body = DEFAULT_BODY
    if "body_file" in table:
        body = _template_file(read, table, "body_file", "reminders")
    return read.build(
        "reminders",
        ReminderSettings,
        days=read.integer(table, "days", "reminders.days", 0, 0, 3660) if "days" in table else None,
        again_after_days=read.integer(
            table, "again_after_days", "reminders.again_after_days", 7, 0, 3660
        ),
        subject=read.string(table, "subject", "reminders.subject", DEFAULT_SUBJECT),
        body=body,
    )
