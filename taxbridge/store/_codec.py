"""Tax requests to and from JSON, for the store (money as strings: exact, never float)."""

from __future__ import annotations

import json
from typing import Any

from taxbridge.models import Address, TaxLine, TaxRequest


def _address(address: Address | None) -> dict[str, str] | None:
    if address is None:
        return None
    return {
        "line1": address.line1,
        "line2": address.line2,
        "line3": address.line3,
        "city": address.city,
        "region": address.region,
        "postal_code": address.postal_code,
        "country": address.country,
    }


def _address_from(data: dict[str, str] | None) -> Address | None:
    return None if data is None else Address(**data)


def _line_extras(line: TaxLine) -> list[dict[str, Any]]:
    """The line fields that are rarely set, as one trailing object only when one is set."""
    extras = {
        name: value
        for name, value in (
            ("ref2", line.ref2),
            ("discounted", line.discounted),
            ("exemption_no", line.exemption_no),
            ("entity_use_code", line.entity_use_code),
            ("tax_override", None if line.tax_override is None else str(line.tax_override)),
        )
        if value
    }
    return [extras] if extras else []


def request_to_json(request: TaxRequest) -> str:
    """Serialise a request; :func:`request_from_json` gives back an equal one."""
    data: dict[str, Any] = {
        "code": request.code,
        "document_type": request.document_type.value,
        "company_code": request.company_code,
        "customer_code": request.customer_code,
        "date": request.date.isoformat(),
        "ship_from": _address(request.ship_from),
        "ship_to": _address(request.ship_to),
        "commit": request.commit,
        "currency": request.currency,
        "exemption_no": request.exemption_no,
        "entity_use_code": request.entity_use_code,
        "tax_date": request.tax_date.isoformat() if request.tax_date else None,
        "tax_date_reason": request.tax_date_reason,
        "discount": str(request.discount),
        "reference_code": request.reference_code,
        "purchase_order_no": request.purchase_order_no,
        "business_identification_no": request.business_identification_no,
        "include_details": request.include_details,
        "line_details": request.line_details,
        "lines": [
            [
                line.number,
                str(line.amount),
                str(line.quantity),
                line.item_code,
                line.description,
                str(line.discount),
                line.tax_code,
                line.freight,
                _address(line.ship_to),
                line.excluded,
                line.ref1,
                *_line_extras(line),
            ]
            for line in request.lines
        ],
    }
    return json.dumps(data, separators=(",", ":"))


def request_from_json(text: str) -> TaxRequest:
    """Parse what :func:`request_to_json` wrote."""
    data = json.loads(text)
    lines = tuple(
        TaxLine(
            number=row[0],
            amount=row[1],
            quantity=row[2],
            item_code=row[3],
            description=row[4],
            discount=row[5],
            tax_code=row[6],
            freight=row[7],
            ship_to=_address_from(row[8]),
            excluded=row[9],
            ref1=row[10],
            **(row[11] if len(row) > 11 else {}),
        )
        for row in data.pop("lines")
    )
    data["ship_from"] = _address_from(data["ship_from"])
    data["ship_to"] = _address_from(data["ship_to"])
    data.setdefault("business_identification_no", None)  # written before it existed
    return TaxRequest(lines=lines, **data)
