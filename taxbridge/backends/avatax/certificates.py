"""CertCapture through the AvaTax API (seed 002): customers (CreateCustomers, GetCustomer,
UpdateCustomer, LinkShipToCustomersToBillCustomer), certificates (ListCertificatesForCustomer,
ListValidCertificatesForCustomer, GetCertificate), CertExpress invitations and the definitions
of exempt reasons and exposure zones. Every call goes through the backend's HTTP layer
(retries, circuit breaker, typed errors, credentials never logged)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from taxbridge.backends.avatax.mapping import encode_code
from taxbridge.errors import CertificateNotFoundError, DocumentRejected, MalformedResponse
from taxbridge.models import Certificate, CertificateRequest, CertificateStatus, CustomerCard
from taxbridge.models.exempt import CARD_FIELDS


class AccountApi(Protocol):
    """What the certificate service needs of an AvaTax account's connection (the client, which
    shares its HTTP layer: retries, circuit breaker, typed errors)."""

    name: str

    def api(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        idempotent: bool = True,
    ) -> Any:
        """One API call: the JSON answer, or a typed error."""

    def fetch_all(
        self, path: str, model: str, params: Mapping[str, str] | None = None
    ) -> list[Mapping[str, Any]]:
        """Every row of a paged list call."""

    def company_id(self, company_code: str) -> int:
        """The AvaTax company id of a company code."""


_CUSTOMERS = "/api/v2/companies/{company}/customers"


def customer_model(
    card: CustomerCard, company_id: int, zones: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A ``CustomerModel`` of a card: customer number, name, address, e-mail, bill/ship, the
    ship-to zones by name (``zones``: region -> exposure zone name; a region AvaTax has no zone
    for goes by its code)."""
    model: dict[str, Any] = {
        "companyId": company_id,
        "customerCode": card.customer_code,
        "name": card.name,
        "line1": card.line1,
        "city": card.city,
        "postalCode": card.postal_code,
        "country": card.country,
        "region": card.region,
        "isBill": not card.bill_to,
        "isShip": bool(card.bill_to),
    }
    if card.line2:
        model["line2"] = card.line2
    if card.email:
        model["emailAddress"] = card.email
    if card.exposure_zones:
        names = zones or {}
        model["exposureZones"] = [
            {"name": names.get(region, region), "region": region} for region in card.exposure_zones
        ]
    return model


def _date(value: Any, name: str) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise MalformedResponse(f"CertificateModel.{name} {value!r} is not a date") from None


def certificate_from_model(
    data: Any, customer_code: str, zone_region: Callable[[str], str] | None = None
) -> Certificate:
    """A :class:`Certificate` of a ``CertificateModel``: Ex Code (exempt reason), Exemption No,
    Cert Signed, Cert Exp Date and Ex State (the exposure zone's region; ``zone_region`` maps a
    zone that carries only its name, as the 19.6 example does)."""
    if not isinstance(data, Mapping):
        raise MalformedResponse("the answer is not a CertificateModel")
    zone = data.get("exposureZone") or {}
    reason = data.get("exemptionReason") or data.get("validatedExemptionReason") or {}
    region = str(zone.get("region") or "").upper()
    if not region and zone.get("name") and zone_region is not None:
        region = zone_region(str(zone["name"]))
    signed = _date(data.get("signedDate"), "signedDate")
    if not region or signed is None:
        raise MalformedResponse(
            f"certificate {data.get('id')!r} has no exposure zone region or signed date"
        )
    numbers = [
        str(row["poNumber"])
        for row in data.get("poNumbers") or ()
        if isinstance(row, Mapping) and row.get("poNumber")
    ]
    if data.get("valid") is True:
        status = CertificateStatus.VALID
    elif str(data.get("status") or "").upper() in ("PENDING", "PENDING-FUTURE", "DATA ENTRY"):
        status = CertificateStatus.PENDING
    else:
        status = CertificateStatus.REVOKED
    return Certificate(
        id=str(data.get("id") or ""),
        customer_code=customer_code,
        exempt_reason=str(reason.get("name") or "UNKNOWN"),
        regions=(region,),
        signed=signed,
        expiry=_date(data.get("expirationDate"), "expirationDate"),
        exemption_no=str(data.get("exemptionNumber") or ""),
        single_use=bool(data.get("isSingleCertificate")),
        po_numbers=numbers,
        status=status,
        filename=str(data.get("filename") or ""),
    )


class AvaTaxCertificates:
    """The certificate service of an AvaTax account."""

    name = "avatax"
    kept_fields = CARD_FIELDS - {"active_certificates"}
    """CustomerModel has no field for these."""
    remote = True

    def __init__(self, backend: AccountApi):
        self._backend = backend
        self._reasons: dict[str, str] | None = None
        self._zones: dict[str, str] | None = None
        self._reason_ids: dict[str, int] = {}
        self._zone_ids: dict[str, int] = {}

    def _customers(self, company_code: str) -> str:
        return _CUSTOMERS.format(company=self._backend.company_id(company_code))

    def push_customer(self, card: CustomerCard, sent: CustomerCard | None) -> None:
        """CreateCustomers for a new card (UpdateCustomer when the service has it already);
        UpdateCustomer for a changed one."""
        company_id = self._backend.company_id(card.company_code)
        zones = self.exposure_zones() if card.exposure_zones else None
        model = customer_model(card, company_id, zones)
        base = _CUSTOMERS.format(company=company_id)
        if sent is None and self._customer(base, card.customer_code) is None:
            self._backend.api("POST", base, body=[model])
            return
        self._backend.api("PUT", f"{base}/{encode_code(card.customer_code)}", body=model)

    def _customer(self, base: str, customer_code: str) -> Any:
        try:
            return self._backend.api("GET", f"{base}/{encode_code(customer_code)}")
        except DocumentRejected as exc:
            if exc.status == 404:
                return None
            raise

    def link_ship_tos(self, company_code: str, bill_to: str, ship_tos: Sequence[str]) -> None:
        """LinkShipToCustomersToBillCustomer."""
        path = f"{self._customers(company_code)}/billto/{encode_code(bill_to)}/shipto/link"
        self._backend.api("POST", path, body={"customers": list(ship_tos)})

    def certificates(self, company_code: str, customer_code: str) -> list[Certificate]:
        """ListCertificatesForCustomer, every page; none for a customer AvaTax does not know."""
        path = f"{self._customers(company_code)}/{encode_code(customer_code)}/certificates"
        try:
            rows = self._backend.fetch_all(path, "CertificateModel", {"$include": "po_numbers"})
        except DocumentRejected as exc:
            if exc.status == 404:
                return []
            raise
        return [certificate_from_model(row, customer_code, self._zone_region) for row in rows]

    def certificate(self, company_code: str, certificate_id: str) -> Certificate:
        """GetCertificate (with the customers it is for)."""
        company_id = self._backend.company_id(company_code)
        path = f"/api/v2/companies/{company_id}/certificates/{encode_code(certificate_id)}"
        try:
            data = self._backend.api("GET", path, params={"$include": "customers,po_numbers"})
        except DocumentRejected as exc:
            if exc.status == 404:
                raise CertificateNotFoundError("certificate", certificate_id) from None
            raise
        customers = data.get("customers") if isinstance(data, Mapping) else None
        owner = ""
        if customers and isinstance(customers[0], Mapping):
            owner = str(customers[0].get("customerCode") or "")
        return certificate_from_model(data, owner or "?", self._zone_region)

    def valid_certificate(
        self, company_code: str, customer_code: str, region: str, country: str = "US"
    ) -> Certificate | None:
        """ListValidCertificatesForCustomer: the certificate exempting the region today."""
        path = (
            f"{self._customers(company_code)}/{encode_code(customer_code)}/certificates/"
            f"{encode_code(country)}/{encode_code(region)}"
        )
        try:
            data = self._backend.api("GET", path)
        except DocumentRejected as exc:
            if exc.status == 404:
                return None
            raise
        if not isinstance(data, Mapping):
            raise MalformedResponse("the answer is not an ExemptionStatusModel")
        found = data.get("certificate")
        if str(data.get("status") or "").lower() != "exempt" or not found:
            return None
        return certificate_from_model(found, customer_code, self._zone_region)

    def request(
        self, company_code: str, request: CertificateRequest, cover_letter: str
    ) -> CertificateRequest:
        """CreateCertExpressInvitation by e-mail (zones and reasons by their ids); AvaTax
        sends the message itself."""
        self._definitions()
        zones, reasons = self._zone_ids, self._reason_ids
        missing = [region for region in request.regions if region not in zones]
        if missing:
            raise DocumentRejected(
                f"AvaTax has no exposure zone for {', '.join(missing)}",
                backend=self._backend.name,
                refers_to="exposureZones",
            )
        customer = encode_code(request.customer_code)
        path = f"{self._customers(company_code)}/{customer}/certexpressinvites"
        body = [
            {
                "recipient": request.recipient,
                "coverLetterTitle": cover_letter,
                "exposureZones": [zones[region] for region in request.regions],
                "exemptReasons": [reasons[reason] for reason in request.reasons],
                "deliveryMethod": "Email",
            }
        ]
        data = self._backend.api("POST", path, body=body, idempotent=False)
        answer = data[0] if isinstance(data, list) and data else data
        if not isinstance(answer, Mapping):
            raise MalformedResponse("the answer is not a CertExpressInvitationStatusModel")
        invitation = answer.get("invitation") or {}
        return attrs.evolve(
            request,
            id=str(invitation.get("id") or ""),
            link=str(invitation.get("requestLink") or ""),
            service=self.name,
            status=str(answer.get("status") or ""),
        )

    def _definitions(self) -> None:
        """ListCertificateExemptReasons and ListCertificateExposureZones, once per service."""
        if self._reasons is None:
            rows = self._backend.fetch_all(
                "/api/v2/definitions/certificateexemptreasons", "ExemptionReasonModel"
            )
            self._reasons = {str(r["name"]): str(r["name"]) for r in rows if r.get("name")}
            self._reason_ids = {
                str(r["name"]): int(r["id"]) for r in rows if r.get("name") and r.get("id")
            }
        if self._zones is None:
            rows = self._backend.fetch_all(
                "/api/v2/definitions/certificateexposurezones", "ExposureZoneModel"
            )
            usable = [
                row
                for row in rows
                if row.get("region") and row.get("country") in ("US", "CA") and row.get("id")
            ]
            self._zones = {str(r["region"]).upper(): str(r.get("name") or "") for r in usable}
            self._zone_ids = {str(r["region"]).upper(): int(r["id"]) for r in usable}

    def _zone_region(self, name: str) -> str:
        """The region of an exposure zone known only by its name, in any case ('' when AvaTax
        has none)."""
        by_name = {zone.casefold(): region for region, zone in self.exposure_zones().items()}
        return by_name.get(name.strip().casefold(), "")

    def exempt_reasons(self) -> dict[str, str]:
        """ListCertificateExemptReasons (fetched once per service): name -> name."""
        self._definitions()
        return dict(self._reasons or {})

    def exposure_zones(self) -> dict[str, str]:
        """ListCertificateExposureZones: US and Canadian regions -> zone names."""
        self._definitions()
        return dict(self._zones or {})

    def close(self) -> None:
        """The backend owns the connection."""
