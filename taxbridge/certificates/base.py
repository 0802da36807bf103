"""The certificate service contract (seed 002: an ERP driving CertCapture): customer cards,
certificates, certificate requests and the service's catalogues of exempt reasons and exposure
zones. Two implementations: the local one over the store, and AvaTax's (CertCapture through the
AvaTax API, :mod:`taxbridge.backends.avatax.certificates`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from taxbridge.models import Certificate, CertificateRequest, CustomerCard


class CertificateService(Protocol):
    """Where exemption certificates live. Failures raise typed: ``BackendUnavailable`` when the
    service cannot be reached, ``DocumentRejected`` when it refuses the data,
    ``CertificateNotFoundError`` for an unknown id."""

    name: str
    kept_fields: frozenset[str]
    """The customer-card fields the service keeps: a change to any other is not sent."""
    remote: bool
    """Its certificates live outside the store: they are pulled back into it (False: the
    store is where they live)."""

    def push_customer(self, card: CustomerCard, sent: CustomerCard | None) -> None:
        """Create the customer card (``sent`` None) or bring it up to date."""
        ...

    def link_ship_tos(self, company_code: str, bill_to: str, ship_tos: Sequence[str]) -> None:
        """Link ship-to customers to their bill-to customer."""
        ...

    def certificates(self, company_code: str, customer_code: str) -> list[Certificate]:
        """Every certificate the service holds for the customer (empty for an unknown one)."""
        ...

    def certificate(self, company_code: str, certificate_id: str) -> Certificate:
        """One certificate by id."""
        ...

    def valid_certificate(
        self, company_code: str, customer_code: str, region: str, country: str = "US"
    ) -> Certificate | None:
        """The certificate that exempts the customer in the region today, if one does."""
        ...

    def request(
        self, company_code: str, request: CertificateRequest, cover_letter: str
    ) -> CertificateRequest:
        """Send a certificate request (an invitation with an upload link); the request as
        sent, with its id, link and status."""
        ...

    def exempt_reasons(self) -> dict[str, str]:
        """The exempt reasons a certificate may give: name -> description."""
        ...

    def exposure_zones(self) -> dict[str, str]:
        """The regions certificates may cover: region code -> the service's zone name."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class CertificateProvider(Protocol):
    """A backend whose account keeps certificates too (AvaTax's CertCapture)."""

    def certificate_service(self) -> CertificateService:
        """The certificate service on the backend's connection and credentials."""
        ...
