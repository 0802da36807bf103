"""The local certificate service: certificates kept in the store, requests sent as e-mail with
the upload link (``[certificates] upload_url``) through the configured SMTP server. What a
customer uploads comes in through :meth:`LocalCertificates.add` (the ERP's upload page, a
support desk, or ``taxbridge certificates add``)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence

import attrs

from taxbridge.certificates.mail import Mailer, Message
from taxbridge.config import CertificateSettings
from taxbridge.errors import CertificateNotFoundError, InvalidFieldError
from taxbridge.models import Certificate, CertificateRequest, CustomerCard
from taxbridge.models.exempt import CARD_FIELDS
from taxbridge.regions import BY_COUNTRY, CANADIAN_PROVINCES, US_STATES, US_TERRITORIES
from taxbridge.store.base import Store

SERVICE = "local"
_ZONE_NAMES = {region: region for regions in BY_COUNTRY.values() for region in regions}


def _region_name(region: str) -> str:
    """A region as a letter names it: ``New York (NY)``."""
    name = {**US_STATES, **US_TERRITORIES, **CANADIAN_PROVINCES}.get(region)
    return f"{name.title()} ({region})" if name else region


class LocalCertificates:
    """Certificates in the bridge's own store; its exempt reasons are the entity use codes
    (the refreshed AV-EX1 catalogue, else ``reasons``)."""

    name = SERVICE
    kept_fields = CARD_FIELDS
    remote = False

    def __init__(
        self,
        store: Store,
        settings: CertificateSettings,
        mailer: Mailer,
        *,
        reasons: Callable[[], Mapping[str, str]],
        clock: Callable[[], dt.datetime],
    ):
        self._store = store
        self._settings = settings
        self._mailer = mailer
        self._reasons = reasons
        self._clock = clock

    def push_customer(self, card: CustomerCard, sent: CustomerCard | None) -> None:
        """Nothing to send: the store's card is the service's."""

    def link_ship_tos(self, company_code: str, bill_to: str, ship_tos: Sequence[str]) -> None:
        """The link is the ship-to card's ``bill_to``, kept with the card."""

    def certificates(self, company_code: str, customer_code: str) -> list[Certificate]:
        """The customer's certificates in the store."""
        return self._store.certificates(customer_code)

    def certificate(self, company_code: str, certificate_id: str) -> Certificate:
        """One stored certificate."""
        found = self._store.certificate(certificate_id)
        if found is None:
            raise CertificateNotFoundError("certificate", certificate_id)
        return found

    def valid_certificate(
        self, company_code: str, customer_code: str, region: str, country: str = "US"
    ) -> Certificate | None:
        """A stored certificate valid today in the region."""
        today = self._clock().date()
        for certificate in self._store.certificates(customer_code):
            if region in certificate.regions and certificate.valid_on(today):
                return certificate
        return None

    def request(
        self, company_code: str, request: CertificateRequest, cover_letter: str
    ) -> CertificateRequest:
        """E-mail the request with the upload link, from the ``[certificates]`` templates;
        :class:`MailError` when it cannot go."""
        link = self._settings.link_for(request.customer_code)
        names = self._reasons()
        values = {
            "customer": request.customer_code,
            "name": request.name or request.customer_code,
            "regions": ", ".join(_region_name(r) for r in request.regions),
            "reasons": ", ".join(f"{names.get(r, r)} ({r})" for r in request.reasons) or "any",
            "link": link or "(reply to this e-mail with the certificate attached)",
            "seller": self._settings.seller,
        }
        subject = self._settings.request_subject.format_map(values)
        body = self._settings.request_body.format_map(values)
        self._mailer.send([Message(request.recipient, subject, body)])
        return attrs.evolve(
            request,
            id=f"L-{uuid.uuid4().hex[:16]}",
            link=link,
            service=SERVICE,
            status="Sent",
            sent_at=self._clock(),
        )

    def exempt_reasons(self) -> dict[str, str]:
        """Entity use codes: the refreshed catalogue, else the engine's list."""
        return dict(self._reasons())

    def exposure_zones(self) -> dict[str, str]:
        """Every US state and territory and Canadian province."""
        return dict(_ZONE_NAMES)

    def add(self, certificate: Certificate) -> Certificate:
        """Store an uploaded certificate (a new id unless it has one); its exempt reason must
        be an entity use code."""
        reasons = self.exempt_reasons()
        if certificate.exempt_reason not in reasons:
            raise InvalidFieldError(
                "Certificate",
                "exempt_reason",
                certificate.exempt_reason,
                f"is not an exempt reason of the {SERVICE} service (one of "
                f"{', '.join(sorted(reasons))})",
            )
        stored = (
            certificate
            if certificate.id
            else attrs.evolve(certificate, id=f"L-{uuid.uuid4().hex[:16]}")
        )
        self._store.save_certificates([stored], service=SERVICE, at=self._clock())
        return stored

    def close(self) -> None:
        """Nothing to release."""
