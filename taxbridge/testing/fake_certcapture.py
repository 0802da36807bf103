"""The CertCapture half of the AvaTax fake: customers, certificates, CertExpress invitations and
the exempt-reason and exposure-zone definitions, answering as the published contract says
(swagger 19.6 / OpenAPI 21.12). :meth:`FakeCertCapture.upload` stands in for a customer
completing a CertExpress invitation."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from taxbridge.regions import BY_COUNTRY, US_STATES

EXEMPT_REASONS = (
    "RESALE",
    "CHARITABLE/EXEMPT ORG",
    "FEDERAL GOV",
    "STATE GOV",
    "LOCAL GOV",
    "EDUCATIONAL ORG",
    "RELIGIOUS ORG",
    "MANUFACTURING",
    "AGRICULTURE",
    "DIRECT PAY",
)
"""The fake's ``ListCertificateExemptReasons``."""


class Refusal(Exception):
    """An AvaTax error answer from the CertCapture half (the fake renders the envelope)."""

    def __init__(self, status: int, code: str, number: int, message: str, refers_to: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code
        self.number = number
        self.message = message
        self.refers_to = refers_to


def _not_found(what: str, key: str) -> Refusal:
    return Refusal(404, "EntityNotFoundError", 4, f"{what} with id '{key}' not found.", what)


def _invalid(message: str, field: str) -> Refusal:
    return Refusal(400, "ModelStateInvalid", 70, message, field)


_REQUIRED_CUSTOMER = ("customerCode", "name", "line1", "city", "postalCode", "country", "region")


class FakeCertCapture:
    """Customers, certificates and invitations of each company id."""

    def __init__(self, company_id: Callable[[str], int]):
        self._company_id = company_id
        self.customers: dict[tuple[int, str], dict[str, Any]] = {}
        self.certificates: dict[int, dict[str, Any]] = {}
        self.holders: dict[int, tuple[int, str]] = {}
        """Certificate id -> (company id, customer code)."""
        self.invitations: list[dict[str, Any]] = []
        self.links: dict[tuple[int, str], set[str]] = {}
        pairs = sorted((c, r) for c, regions in BY_COUNTRY.items() for r in regions)
        self.zones = [
            {"id": i, "name": US_STATES.get(r, r), "region": r, "country": c}
            for i, (c, r) in enumerate(pairs, start=1)
        ]
        self._ids = itertools.count(1)

    # -- what a test does ---------------------------------------------------------------------

    def upload(
        self,
        company: str,
        customer_code: str,
        *,
        region: str,
        reason: str = "RESALE",
        signed: dt.date,
        expiry: dt.date | None,
        exemption_no: str = "",
        single_use: bool = False,
        po_numbers: Sequence[str] = (),
        valid: bool = True,
    ) -> int:
        """A customer completes an invitation: a certificate linked to the customer."""
        company_id = self._company_id(company)
        number = next(self._ids)
        zone = next(z for z in self.zones if z["region"] == region)
        self.certificates[number] = {
            "id": number,
            "companyId": company_id,
            "signedDate": signed.isoformat(),
            "expirationDate": (expiry or dt.date(9999, 12, 31)).isoformat(),
            "filename": f"{customer_code}-{number}.pdf",
            "documentExists": True,
            "valid": valid,
            "verified": valid,
            "exemptPercentage": 100.0,
            "isSingleCertificate": single_use,
            "exemptionNumber": exemption_no,
            "exemptionReason": {"id": EXEMPT_REASONS.index(reason) + 1, "name": reason},
            "status": "COMPLETE" if valid else "PENDING",
            "createdDate": dt.datetime.now(dt.UTC).isoformat(),
            "modifiedDate": dt.date.today().isoformat(),
            "pageCount": 1,
            "exposureZone": zone,
            "poNumbers": [
                {"id": number * 100 + index, "poNumber": po} for index, po in enumerate(po_numbers)
            ],
        }
        self.holders[number] = (company_id, customer_code)
        return number

    # -- routing -------------------------------------------------------------------------------

    def route(
        self, method: str, raw: str, params: Mapping[str, str], body: Any
    ) -> tuple[int, Any] | None:
        """(status, JSON answer) for a CertCapture path, None for any other path."""
        if method == "GET" and raw == "/api/v2/definitions/certificateexemptreasons":
            return 200, [{"id": i, "name": name} for i, name in enumerate(EXEMPT_REASONS, 1)]
        if method == "GET" and raw == "/api/v2/definitions/certificateexposurezones":
            return 200, list(self.zones)
        match = re.fullmatch(r"/api/v2/companies/(\d+)/(customers|certificates)(/.*)?", raw)
        if match is None:
            return None
        company_id, kind, rest = int(match.group(1)), match.group(2), match.group(3) or ""
        parts = [unquote(part) for part in rest.split("/")[1:]]
        include = str(params.get("$include", ""))
        if kind == "certificates":
            if method == "GET" and len(parts) == 1 and parts[0].isdigit():
                return 200, self._certificate(company_id, int(parts[0]), include)
            return None
        return self._customers(method, company_id, parts, body, include)

    def _customers(
        self, method: str, company_id: int, parts: list[str], body: Any, include: str
    ) -> tuple[int, Any] | None:
        if not parts and method == "POST":
            return 200, [self._create(company_id, model) for model in _list(body)]
        if not parts and method == "GET":
            rows = [c for (cid, _), c in self.customers.items() if cid == company_id]
            return 200, rows
        if len(parts) == 1 and method == "GET":
            return 200, self._customer(company_id, parts[0])
        if len(parts) == 1 and method == "PUT":
            return 200, self._update(company_id, parts[0], body)
        if len(parts) == 4 and parts[0] == "billto" and parts[2:] == ["shipto", "link"]:
            return 200, self._link(company_id, parts[1], body)
        if len(parts) == 2 and parts[1] == "certificates" and method == "GET":
            self._customer(company_id, parts[0])
            rows = [
                self._certificate(company_id, number, include)
                for number, holder in self.holders.items()
                if holder == (company_id, parts[0])
            ]
            return 200, rows
        if len(parts) == 4 and parts[1] == "certificates" and method == "GET":
            return 200, self._status(company_id, parts[0], parts[2], parts[3])
        if len(parts) == 2 and parts[1] == "certexpressinvites" and method == "POST":
            return 200, [self._invite(company_id, parts[0], model) for model in _list(body)]
        return None

    def _create(self, company_id: int, model: Mapping[str, Any]) -> dict[str, Any]:
        for name in _REQUIRED_CUSTOMER:
            if not model.get(name):
                raise _invalid(f"The {name} field is required.", name)
        code = str(model["customerCode"])
        if (company_id, code) in self.customers:
            raise Refusal(400, "DuplicateEntry", 193, f"Customer '{code}' already exists.", code)
        if model.get("isBill") and model.get("isShip"):
            raise Refusal(
                400, "CustomerCantBeBothShipToAndBillTo", 1220, "Bill-to or ship-to, not both."
            )
        stored = {**model, "id": next(self._ids), "companyId": company_id}
        self.customers[(company_id, code)] = stored
        return stored

    def _customer(self, company_id: int, code: str) -> dict[str, Any]:
        found = self.customers.get((company_id, code))
        if found is None:
            raise _not_found("Customer", code)
        return {**found, "shipTos": sorted(self.links.get((company_id, code), ()))}

    def _update(self, company_id: int, code: str, model: Any) -> dict[str, Any]:
        found = self.customers.get((company_id, code))
        if found is None:
            raise _not_found("Customer", code)
        if not isinstance(model, Mapping) or model.get("customerCode") != code:
            raise _invalid("The customerCode of the body must be the one in the path.", code)
        found.update(model)
        return found

    def _link(self, company_id: int, bill_to: str, body: Any) -> dict[str, Any]:
        owner = self._customer(company_id, bill_to)
        if not owner.get("isBill"):
            raise Refusal(400, "BillToCustomerExpected", 1221, f"'{bill_to}' is not a bill-to.")
        codes = body.get("customers") if isinstance(body, Mapping) else None
        if not isinstance(codes, list) or not codes:
            raise _invalid("The customers field is required.", "customers")
        for code in codes:
            if not self._customer(company_id, str(code)).get("isShip"):
                raise Refusal(400, "ShipToCustomerExpected", 1222, f"'{code}' is not a ship-to.")
        self.links.setdefault((company_id, bill_to), set()).update(str(c) for c in codes)
        return self._customer(company_id, bill_to)

    def _certificate(self, company_id: int, number: int, include: str) -> dict[str, Any]:
        found = self.certificates.get(number)
        if found is None or found["companyId"] != company_id:
            raise _not_found("Certificate", str(number))
        answer = dict(found)
        if "po_numbers" not in include:
            answer.pop("poNumbers", None)
        if "customers" in include:
            _, code = self.holders[number]
            answer["customers"] = [{"customerCode": code, "companyId": company_id}]
        return answer

    def _status(self, company_id: int, code: str, country: str, region: str) -> dict[str, Any]:
        self._customer(company_id, code)
        today = dt.date.today().isoformat()
        for number, holder in self.holders.items():
            certificate = self.certificates[number]
            zone = certificate["exposureZone"]
            if (
                holder == (company_id, code)
                and zone["region"] == region
                and zone["country"] == country
                and certificate["valid"]
                and certificate["signedDate"] <= today <= certificate["expirationDate"]
            ):
                return {"status": "Exempt", "certificate": certificate}
        return {"status": "Taxable"}

    def _invite(self, company_id: int, code: str, model: Mapping[str, Any]) -> dict[str, Any]:
        customer = self._customer(company_id, code)
        if not model.get("recipient"):
            raise _invalid("The recipient field is required.", "recipient")
        zone_ids = {zone["id"] for zone in self.zones}
        for zone in model.get("exposureZones") or []:
            if zone not in zone_ids:
                raise _invalid(f"The exposure zone id {zone} is not valid.", "exposureZones")
        for reason in model.get("exemptReasons") or []:
            if not isinstance(reason, int) or not 1 <= reason <= len(EXEMPT_REASONS):
                raise _invalid(f"The exempt reason id {reason} is not valid.", "exemptReasons")
        number = next(self._ids)
        invitation = {
            "id": number,
            "companyId": company_id,
            "recipient": model["recipient"],
            "customerCode": code,
            "customer": customer,
            "emailStatus": "Sent",
            "coverLettersOnly": False,
            "exposureZones": list(model.get("exposureZones") or []),
            "exemptReasons": list(model.get("exemptReasons") or []),
            "deliveryMethod": model.get("deliveryMethod", "Email"),
            "message": "",
            "date": dt.datetime.now(dt.UTC).isoformat(),
            "requestLink": f"https://app.certexpress.com/invite/{company_id}/{number}",
        }
        self.invitations.append(invitation)
        return {"status": "Ready", "invitation": invitation}


def _list(body: Any) -> list[Mapping[str, Any]]:
    if isinstance(body, Mapping):
        return [body]
    if isinstance(body, list) and all(isinstance(item, Mapping) for item in body):
        return body
    raise _invalid("The request body is not a list of models.", "body")
