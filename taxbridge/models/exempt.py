"""Exempt customers' values (seeds 000, 002, 003): contacts, exemption certificates, the customer
card a certificate service keeps, certificate requests, expiry reminders and the customer-history
note (TXEEXP) each reminder leaves. Frozen attrs values, checked where they enter."""

from __future__ import annotations

import datetime as dt
import enum
import re
from typing import Any

from attrs import field, frozen

from taxbridge.errors import InvalidFieldError
from taxbridge.models import _fields as _f
from taxbridge.regions import BY_COUNTRY

_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[A-Za-z0-9-]{2,}$")
_ANY_REGION = frozenset().union(*BY_COUNTRY.values())

TAX_CONTACT_ROLE = "TAX"
"""The contact role of a customer's tax contact (TMSDS/CM-CTSS)."""
REMINDER_NOTE = "TXEEXP"
"""The customer-history note type a reminder letter leaves (TMSAR/CH-TYPD)."""
REMINDER_INCIDENT = "CH-TEEX"
"""The CRM incident template a reminder note raises (TMSCRM/CH-IF)."""


def valid_email(value: str) -> bool:
    """True for one plausible mailbox address (``name@domain.tld``)."""
    return bool(_EMAIL.match(value))


def _regions(value: Any) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value)
    return tuple(sorted({str(item).strip().upper() for item in items}))


def check_region(owner: str, name: str, region: str) -> None:
    """A region must be a US state or territory or a Canadian province."""
    if region not in _ANY_REGION:
        raise InvalidFieldError(owner, name, region, "is not a US state or Canadian province")


def _texts(value: Any) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value)
    return tuple(str(item).strip() for item in items if str(item).strip())


@frozen
class Contact:
    """A customer contact; the one with role ``TAX`` receives certificate mail (CM-CTSS)."""

    role: str = field(converter=_f.code)
    email: str = field(default="", converter=_f.text)
    name: str = field(default="", converter=_f.text)


class CertificateStatus(enum.Enum):
    """Where a certificate stands at its service."""

    VALID = "valid"
    """Complete and accepted: it exempts what it covers."""
    PENDING = "pending"
    """Received, not yet reviewed: it exempts nothing yet."""
    REVOKED = "revoked"
    """Refused or withdrawn."""


def _status(value: Any) -> CertificateStatus:
    return _f.enum_member(CertificateStatus, value)  # type: ignore[no-any-return]


@frozen
class Certificate:
    """An exemption certificate. ``exempt_reason`` (Ex Code), ``exemption_no``, ``signed``
    (Cert Signed), ``expiry`` (Cert Exp Date) and ``regions`` (Ex State) are what the ERP keeps
    (seed 002); the rest decides what it covers."""

    customer_code: str = field(converter=_f.required_text)
    exempt_reason: str = field(converter=_f.required_text)
    """The exemption reason: an entity use code (AV-EX1) or the service's reason name."""
    regions: tuple[str, ...] = field(converter=_regions)
    signed: dt.date = field(converter=_f.date)
    expiry: dt.date | None = field(default=None, converter=_f.optional_date)
    effective: dt.date | None = field(default=None, converter=_f.optional_date)
    """From when it exempts; the signed date when not given."""
    exemption_no: str = field(default="", converter=_f.text)
    single_use: bool = field(default=False, converter=_f.flag)
    po_numbers: tuple[str, ...] = field(default=(), converter=_f.texts)
    """For a single-use certificate: the purchase orders it is for (any, when none)."""
    status: CertificateStatus = field(
        default=CertificateStatus.VALID,
        converter=_status,
        validator=_f.member_of(CertificateStatus),
    )
    id: str = field(default="", converter=_f.text)
    """The service's id; the local service gives one when it stores the certificate."""
    filename: str = field(default="", converter=_f.text)
    pdf: bytes | None = field(default=None, repr=False)
    """The certificate itself (PDF), when the service holds it."""

    def __attrs_post_init__(self) -> None:
        if not self.regions:
            raise InvalidFieldError("Certificate", "regions", "", "needs at least one region")
        for region in self.regions:
            check_region("Certificate", "regions", region)
        if self.expiry is not None and self.expiry < self.starts:
            raise InvalidFieldError(
                "Certificate", "expiry", self.expiry.isoformat(), "is before the effective date"
            )
        if self.pdf is not None and not isinstance(self.pdf, bytes):
            raise InvalidFieldError("Certificate", "pdf", type(self.pdf).__name__, "is not bytes")

    @property
    def starts(self) -> dt.date:
        """The first day it exempts."""
        return self.effective or self.signed

    def for_po(self, po_number: str) -> bool:
        """Whether it may cover an order with this PO number: it names none, or names this
        one (as the order has it, spaces around it aside)."""
        return not self.po_numbers or po_number.strip() in self.po_numbers

    def valid_on(self, day: dt.date) -> bool:
        """Valid and within its dates on ``day``."""
        return (
            self.status is CertificateStatus.VALID
            and self.starts <= day
            and (self.expiry is None or day <= self.expiry)
        )

    def erp_fields(self) -> dict[str, str]:
        """What the ERP's customer record takes back (seed 002), by its field names."""
        return {
            "Ex Code": self.exempt_reason,
            "Exemption No": self.exemption_no,
            "Cert Signed": self.signed.isoformat(),
            "Cert Exp Date": self.expiry.isoformat() if self.expiry else "",
            "Ex State": " ".join(self.regions),
        }


class Coverage(enum.Enum):
    """What the certificate service says about a customer, a region and a day."""

    COVERED = "covered"
    """A valid certificate covers the region: no tax."""
    NOT_COVERED = "not_covered"
    """Certificates on file, none for this region: taxed, no pend."""
    EXPIRED = "expired"
    """The region's certificate expired (or is not valid yet): taxed, the order pends."""
    MISSING = "missing"
    """No certificate on file: taxed, the order pends."""
    USED = "used"
    """The region's only certificate is single-use and went to another order: taxed, pends."""

    @property
    def pends(self) -> bool:
        """Whether the order pends for a certificate (the ERP may then request one)."""
        return self in (Coverage.EXPIRED, Coverage.MISSING, Coverage.USED)


@frozen
class CertificateCheck:
    """The certificate status of one order: coverage, the certificate that decides it, and
    a sentence for the pend reason or the log."""

    customer_code: str
    region: str
    day: dt.date
    coverage: Coverage
    certificate: Certificate | None = None
    message: str = ""
    stale: bool = False
    """The service did not answer: decided on the certificates pulled back last time."""


@frozen
class CustomerCard:
    """A customer as a certificate service keeps it (seed 000: customer number, name, address,
    e-mail; bill-to / ship-to; ship-to zones) with the company code and active certificates."""

    customer_code: str = field(converter=_f.required_text)
    company_code: str = field(converter=_f.required_text)
    name: str = field(converter=_f.required_text)
    line1: str = field(converter=_f.required_text)
    city: str = field(converter=_f.required_text)
    region: str = field(converter=_f.code)
    postal_code: str = field(converter=_f.required_text)
    country: str = field(default="US", converter=_f.code)
    line2: str = field(default="", converter=_f.text)
    email: str = field(default="", converter=_f.text)
    bill_to: str = field(default="", converter=_f.text)
    """For a ship-to customer: its bill-to customer's number (linked at the service)."""
    exposure_zones: tuple[str, ...] = field(default=(), converter=_regions)
    """Ship-to states of the customer (Add ShipTo Zone)."""
    active_certificates: int = field(default=0)

    def as_dict(self) -> dict[str, Any]:
        """The card as plain values (what the store keeps of what was sent)."""
        return {
            "customer_code": self.customer_code,
            "company_code": self.company_code,
            "name": self.name,
            "line1": self.line1,
            "line2": self.line2,
            "city": self.city,
            "region": self.region,
            "postal_code": self.postal_code,
            "country": self.country,
            "email": self.email,
            "bill_to": self.bill_to,
            "exposure_zones": list(self.exposure_zones),
            "active_certificates": self.active_certificates,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerCard:
        """The card :meth:`as_dict` gave."""
        return cls(**{**data, "exposure_zones": tuple(data.get("exposure_zones", ()))})

    def differences(self, sent: CustomerCard | None) -> tuple[str, ...]:
        """The fields that differ from the card sent last (all of them when none was)."""
        mine = self.as_dict()
        if sent is None:
            return tuple(mine)
        theirs = sent.as_dict()
        return tuple(key for key, value in mine.items() if theirs.get(key) != value)


CARD_FIELDS = frozenset(
    {
        "customer_code",
        "company_code",
        "name",
        "line1",
        "line2",
        "city",
        "region",
        "postal_code",
        "country",
        "email",
        "bill_to",
        "exposure_zones",
        "active_certificates",
    }
)
"""Every field of a :class:`CustomerCard` (a service keeps these or fewer)."""


@frozen
class CertificateRequest:
    """A request for a certificate sent to a customer: a CertExpress invitation, or an e-mail
    with the upload link from the local service."""

    customer_code: str = field(converter=_f.required_text)
    recipient: str = field(converter=_f.required_text)
    regions: tuple[str, ...] = field(converter=_regions)
    reasons: tuple[str, ...] = field(converter=_texts)
    link: str = field(default="", converter=_f.text)
    id: str = field(default="", converter=_f.text)
    service: str = field(default="", converter=_f.text)
    sent_at: dt.datetime | None = None
    status: str = field(default="", converter=_f.text)
    name: str = field(default="", converter=_f.text, eq=False)
    """The customer's name, for the letter (not kept with the request)."""


@frozen
class Reminder:
    """A customer exemption to remind about (BNW150 reminder): expired, or expiring within the
    horizon, from the exemption database or a certificate."""

    customer_code: str
    region: str
    expiry: dt.date
    source: str
    """``exemption database`` or ``certificate``."""
    reference: str = ""
    """The exemption number or the certificate id."""

    def expired_on(self, day: dt.date) -> bool:
        """True when it had expired by ``day``."""
        return self.expiry < day


@frozen
class CustomerNote:
    """A customer-history note (TMSAR/CH-TYPD); a reminder leaves one of type TXEEXP."""

    customer_code: str
    note_type: str
    day: dt.date
    text: str
    created_at: dt.datetime


@frozen
class Incident:
    """What the ERP's CRM gets for a reminder note: an incident from template CH-TEEX."""

    template: str
    note: CustomerNote
    recipient: str
    reminders: tuple[Reminder, ...]
