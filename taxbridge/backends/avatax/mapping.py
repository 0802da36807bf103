"""AvaTax REST v2 models to and from ours: pure functions, no network, tested on their own.

Requests follow ``CreateTransactionModel`` (and the adjust, void, commit, refund and resolve
models); answers are read from ``TransactionModel`` with every amount parsed as ``Decimal`` (JSON
numbers never pass through float). Field names are AvaTax's exactly; see the reference schemas.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import secrets
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from taxbridge.backends._calculate import merge_excluded
from taxbridge.backends.base import VoidReason
from taxbridge.errors import DocumentRejected, InvalidFieldError, MalformedResponse
from taxbridge.models import (
    Address,
    DocumentStatus,
    DocumentType,
    EngineDocument,
    JurisdictionTax,
    JurisdictionType,
    LineTax,
    TaxLine,
    TaxRequest,
    TaxResult,
)
from taxbridge.money import CENT, ZERO

# ---------------------------------------------------------------------------------------------
# JSON with exact decimals

_TOKEN = secrets.token_hex(6)
_MARK_OPEN = f"\x00{_TOKEN}:"
_MARK_CLOSE = f":{_TOKEN}\x00"
# how the marks read once json.dumps has escaped them, quotes included
_ENCODED_OPEN = f'"\\u0000{_TOKEN}:'
_ENCODED_CLOSE = f':{_TOKEN}\\u0000"'


def _mark(value: object) -> str:
    if isinstance(value, Decimal):
        return f"{_MARK_OPEN}{value}{_MARK_CLOSE}"
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(data: Any) -> bytes:
    """JSON with every ``Decimal`` written as the exact number it holds (never via float).

    Decimals leave ``json.dumps`` as strings between random marks that no data can contain;
    dropping the marks and their quotes leaves the bare number.
    """
    text = _encode(data)
    return text.replace(_ENCODED_OPEN, "").replace(_ENCODED_CLOSE, "").encode()


def loads(content: bytes | str) -> Any:
    """Parse JSON with every fractional number as ``Decimal``."""
    if isinstance(content, bytes | bytearray):
        content = content.decode(json.detect_encoding(content))
    return _decode(content)


# One encoder and one decoder, made once: ``json.dumps`` and ``json.loads`` with options make
# one per call. The bodies are built here and never refer to themselves.
_encode = json.JSONEncoder(default=_mark, separators=(",", ":"), check_circular=False).encode
_decode = json.JSONDecoder(parse_float=Decimal).decode


# ---------------------------------------------------------------------------------------------
# Paths and $include

_PATH_CODES = (
    ("%", "_-ava25-_"),
    ("/", "_-ava2f-_"),
    ("+", "_-ava2b-_"),
    ("?", "_-ava3f-_"),
    ("#", "_-ava23-_"),
    (" ", "%20"),
)


def encode_code(code: str) -> str:
    """A company or document code as a path segment: ``/ + ? % #`` and spaces encoded the way
    AvaTax reads them (``_-ava2f-_`` ...); ``%`` first, so the ``%20`` of a space stays."""
    for char, escape in _PATH_CODES:
        code = code.replace(char, escape)
    return code


def include_for(request: TaxRequest) -> str:
    """``$include`` for a calculation: totals-only documents (MAXDL) ask for lines without
    details; others for the summary, and per-line details only when the request wants them."""
    if not request.include_details:
        return "LinesOnly"
    return "Lines,Details,Summary" if request.line_details else "Lines,Summary"


INCLUDE_ALL = "Lines,Details,Summary"
"""``$include`` for a lookup: everything, since the caller may store it."""

# ---------------------------------------------------------------------------------------------
# Requests


def address_model(address: Address) -> dict[str, Any]:
    """``AddressLocationInfo`` of an address (empty lines left out)."""
    model: dict[str, Any] = {"line1": address.line1}
    if address.line2:
        model["line2"] = address.line2
    if address.line3:
        model["line3"] = address.line3
    model.update(
        city=address.city,
        region=address.region,
        country=address.country,
        postalCode=address.postal_code,
    )
    return model


def _line_model(line: TaxLine) -> dict[str, Any]:
    model: dict[str, Any] = {
        "number": line.number,
        "quantity": line.quantity,
        # A line's own discount is taken off its amount; the document discount is AvaTax's job.
        "amount": line.amount - line.discount,
    }
    if line.tax_code:
        model["taxCode"] = line.tax_code
    if line.item_code:
        model["itemCode"] = line.item_code
    if line.description:
        model["description"] = line.description
    if line.discounted:
        model["discounted"] = True
    if line.exemption_no:
        model["exemptionCode"] = line.exemption_no
    if line.entity_use_code:
        model["entityUseCode"] = line.entity_use_code
    if line.ref1:
        model["ref1"] = line.ref1
    if line.ref2:
        model["ref2"] = line.ref2
    if line.ship_to is not None:
        model["addresses"] = {"shipTo": address_model(line.ship_to)}
    if line.tax_override is not None:
        model["taxOverride"] = {
            "type": "TaxAmount",
            "taxAmount": line.tax_override,
            "reason": "credit pro rata to the tax charged on the invoice line",
        }
    return model


def transaction_model(request: TaxRequest) -> dict[str, Any]:
    """``CreateTransactionModel`` of a request. Lines shipped outside nexus are left out (they
    are zero tax by rule and the engine need not see them); :func:`result_from_model` puts them
    back."""
    model: dict[str, Any] = {
        "type": request.document_type.value,
        "code": request.code,
        "companyCode": request.company_code,
        "date": request.date.isoformat(),
        "customerCode": request.customer_code,
        "commit": request.commit,
        "currencyCode": request.currency,
        "addresses": {
            "shipFrom": address_model(request.ship_from),
            "shipTo": address_model(request.ship_to),
        },
        "lines": [_line_model(line) for line in request.lines if not line.excluded],
    }
    if request.discount:
        model["discount"] = request.discount
    if request.exemption_no:
        model["exemptionNo"] = request.exemption_no
    if request.entity_use_code:
        model["entityUseCode"] = request.entity_use_code
    if request.purchase_order_no:
        model["purchaseOrderNo"] = request.purchase_order_no
    if request.business_identification_no:
        model["businessIdentificationNo"] = request.business_identification_no
    if request.reference_code:
        model["referenceCode"] = request.reference_code
    if request.tax_date is not None:
        model["taxOverride"] = {
            "type": "TaxDate",
            "taxDate": request.tax_date.isoformat(),
            "reason": request.tax_date_reason or f"tax date {request.tax_date.isoformat()}",
        }
    return model


def create_or_adjust_model(request: TaxRequest) -> dict[str, Any]:
    """``CreateOrAdjustTransactionModel``: the create model wrapped."""
    return {"createTransactionModel": transaction_model(request)}


class AdjustmentReason(enum.Enum):
    """Why a committed document is adjusted (AvaTax ``AdjustmentReason``)."""

    NOT_ADJUSTED = "NotAdjusted"
    SOURCING_ISSUE = "SourcingIssue"
    RECONCILED_WITH_GENERAL_LEDGER = "ReconciledWithGeneralLedger"
    EXEMPT_CERT_APPLIED = "ExemptCertApplied"
    PRICE_ADJUSTED = "PriceAdjusted"
    PRODUCT_RETURNED = "ProductReturned"
    PRODUCT_EXCHANGED = "ProductExchanged"
    BAD_DEBT = "BadDebt"
    OTHER = "Other"
    OFFLINE = "Offline"


def adjust_model(
    request: TaxRequest, reason: AdjustmentReason, description: str = ""
) -> dict[str, Any]:
    """``AdjustTransactionModel``: AvaTax requires a description when the reason is Other."""
    if reason is AdjustmentReason.OTHER and not description.strip():
        raise InvalidFieldError("adjust", "description", description, "is required for Other")
    model: dict[str, Any] = {
        "adjustmentReason": reason.value,
        "newTransaction": transaction_model(request),
    }
    if description:
        model["adjustmentDescription"] = description
    return model


def void_model(reason: VoidReason) -> dict[str, Any]:
    """``VoidTransactionModel``: ``DocVoided`` cancels a document."""
    return {"code": reason.value}


def commit_model() -> dict[str, Any]:
    """``CommitTransactionModel``."""
    return {"commit": True}


class RefundType(enum.Enum):
    """How much of a committed sale a refund returns (AvaTax ``RefundType``)."""

    FULL = "Full"
    PARTIAL = "Partial"
    TAX_ONLY = "TaxOnly"
    PERCENTAGE = "Percentage"


def refund_model(
    refund_code: str,
    refund_date: dt.date,
    refund_type: RefundType = RefundType.FULL,
    *,
    lines: Iterable[str] = (),
    percentage: Decimal | None = None,
    reference_code: str = "",
) -> dict[str, Any]:
    """``RefundTransactionModel``: partial refunds name lines, percentage refunds a percentage."""
    line_numbers = list(lines)
    if refund_type is RefundType.PARTIAL and not line_numbers:
        raise InvalidFieldError("refund", "lines", line_numbers, "must name lines for Partial")
    if refund_type is RefundType.PERCENTAGE and (
        percentage is None or not ZERO < percentage <= 100
    ):
        raise InvalidFieldError("refund", "percentage", percentage, "must be > 0 and <= 100")
    model: dict[str, Any] = {
        "refundTransactionCode": refund_code,
        "refundDate": refund_date.isoformat(),
        "refundType": refund_type.value,
    }
    if line_numbers:
        model["refundLines"] = line_numbers
    if percentage is not None:
        model["refundPercentage"] = percentage
    if reference_code:
        model["referenceCode"] = reference_code
    return model


# ---------------------------------------------------------------------------------------------
# Answers

_JURISDICTION_TYPES = {
    "STA": JurisdictionType.STATE,
    "State": JurisdictionType.STATE,
    "CTY": JurisdictionType.COUNTY,
    "County": JurisdictionType.COUNTY,
    "CIT": JurisdictionType.CITY,
    "City": JurisdictionType.CITY,
    "STJ": JurisdictionType.SPECIAL,
    "Special": JurisdictionType.SPECIAL,
    "CNT": JurisdictionType.COUNTRY,
    "Country": JurisdictionType.COUNTRY,
}


def _decimal(value: Any) -> Decimal:
    if value is None:
        return ZERO
    if isinstance(value, bool):
        raise TypeError(f"{value!r} is not a number")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, (int, str)):
        return Decimal(value)
    raise TypeError(f"{value!r} is not a number")


def _money(value: Any) -> Decimal:
    """An amount in cents when it is a whole number of cents (``0.6`` -> ``0.60``), else exactly
    as given: never rounded."""
    number = _decimal(value)
    cents = number.quantize(CENT)
    return cents if cents == number else number


def _date(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a date")
    return dt.date.fromisoformat(value[:10])


def _jurisdiction(detail: Mapping[str, Any], *, summary: bool) -> JurisdictionTax:
    kind = _JURISDICTION_TYPES.get(str(detail.get("jurisType", "")), JurisdictionType.SPECIAL)
    if summary:
        taxable = _money(detail.get("taxable"))
        exempt = _money(detail.get("nonTaxable")) + _money(detail.get("exemption"))
    else:
        taxable = _money(detail.get("taxableAmount"))
        exempt = _money(detail.get("nonTaxableAmount")) + _money(detail.get("exemptAmount"))
    return JurisdictionTax(
        kind,
        str(detail.get("jurisName") or detail.get("taxName") or ""),
        str(detail.get("region") or ""),
        _decimal(detail.get("rate")),
        taxable,
        exempt,
        _money(detail["tax"]),
    )


def _line(data: Mapping[str, Any], keep_details: bool) -> LineTax:
    raw_details = data.get("details") or ()
    taxable = _money(data.get("taxableAmount"))
    if keep_details:
        details = tuple(_jurisdiction(d, summary=False) for d in raw_details)
        rate = sum((d.rate for d in details), ZERO) if taxable else ZERO
    else:
        # only the rates are kept: the details are not built to be dropped
        details = ()
        rate = sum((_decimal(d.get("rate")) for d in raw_details), ZERO) if taxable else ZERO
    return LineTax(
        number=str(data["lineNumber"]),
        amount=_money(data.get("lineAmount")) - _money(data.get("discountAmount")),
        taxable=taxable,
        exempt=_money(data.get("exemptAmount")),
        tax=_money(data["tax"]),
        tax_code=str(data.get("taxCode") or ""),
        rate=rate,
        details=details,
    )


def result_from_model(data: Any, *, backend: str, request: TaxRequest | None = None) -> TaxResult:
    """A ``TransactionModel`` as a :class:`TaxResult`; :class:`MalformedResponse` if it is not one.

    With the request it answers, lines left out of the request (outside nexus) are put back as
    zero-tax lines, and line details or the summary are kept only when the request asked.
    """
    code = request.code if request is not None else ""
    try:
        if not isinstance(data, Mapping):
            raise TypeError(f"expected a transaction object, got {type(data).__name__}")
        code = str(data["code"])
        keep_details = request is None or request.line_details
        lines = tuple(_line(line, keep_details) for line in data.get("lines") or ())
        wants_summary = request is None or request.include_details
        summary = (
            tuple(_jurisdiction(row, summary=True) for row in (data.get("summary") or ()))
            if wants_summary
            else ()
        )
        tax_date = data.get("taxDate")
        result = TaxResult(
            code=code,
            document_type=DocumentType(data["type"]),
            status=DocumentStatus(data["status"]),
            date=_date(data["date"]),
            total_amount=_money(data.get("totalAmount")) - _money(data.get("totalDiscount")),
            total_taxable=_money(data.get("totalTaxable")),
            total_exempt=_money(data.get("totalExempt")),
            total_tax=_money(data["totalTax"]),
            lines=lines,
            summary=summary,
            tax_date=_date(tax_date) if tax_date else None,
            backend=backend,
        )
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise MalformedResponse(
            f"the answer is not a TransactionModel: {what}", backend=backend, code=code
        ) from exc
    return merge_excluded(request, result) if request is not None else result


def engine_document(data: Any, *, backend: str) -> EngineDocument:
    """A ``TransactionModel`` of a list call (no lines) as an :class:`EngineDocument`."""
    code = ""
    try:
        code = str(data["code"])
        return EngineDocument(
            code=code,
            document_type=str(data["type"]),
            status=DocumentStatus(str(data["status"])),
            date=_date(data["date"]),
            customer_code=str(data.get("customerCode") or data.get("customerVendorCode") or ""),
            total_amount=_money(data.get("totalAmount")) - _money(data.get("totalDiscount")),
            total_exempt=_money(data.get("totalExempt")),
            total_taxable=_money(data.get("totalTaxable")),
            total_tax=_money(data.get("totalTax")),
            locked=bool(data.get("locked")),
        )
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise MalformedResponse(
            f"a listed transaction is not a TransactionModel: {what}", backend=backend, code=code
        ) from exc


def date_filter(start: dt.date, end: dt.date) -> str:
    """The ``$filter`` of a list call for documents dated from ``start`` to ``end``."""
    return f"date ge '{start.isoformat()}' and date le '{end.isoformat()}'"


def address_from_resolution(data: Any, *, backend: str) -> Address:
    """The first validated address of an ``AddressResolutionModel``.

    An address AvaTax could not code (``resolutionQuality`` NotCoded, or an error message) is
    :class:`DocumentRejected`, naming the part it refers to.
    """
    try:
        messages = [m for m in data.get("messages") or () if isinstance(m, Mapping)]
        errors = [m for m in messages if m.get("severity") in ("Error", "Exception")]
        if (
            errors
            or data.get("resolutionQuality") == "NotCoded"
            or not data.get("validatedAddresses")
        ):
            first = errors[0] if errors else (messages[0] if messages else {})
            raise DocumentRejected(
                str(first.get("summary") or "the address could not be resolved"),
                backend=backend,
                status=200,
                error_code="AddressNotResolved",
                refers_to=str(first.get("refersTo") or "Address"),
            )
        found = data["validatedAddresses"][0]
        return Address(
            line1=str(found.get("line1") or ""),
            line2=str(found.get("line2") or ""),
            line3=str(found.get("line3") or ""),
            city=str(found.get("city") or ""),
            region=str(found["region"]),
            postal_code=str(found["postalCode"]),
            country=str(found.get("country") or "US"),
        )
    except (AttributeError, KeyError, TypeError, IndexError, InvalidFieldError) as exc:
        raise MalformedResponse(
            f"the answer is not an AddressResolutionModel: {exc}", backend=backend
        ) from exc


def fetch_values(data: Any, *, backend: str, model: str) -> list[Mapping[str, Any]]:
    """The ``value`` list of a ``FetchResult``."""
    values = data.get("value") if isinstance(data, Mapping) else None
    if not isinstance(values, list) or not all(isinstance(v, Mapping) for v in values):
        raise MalformedResponse(f"the answer is not a {model}FetchResult", backend=backend)
    return values


def nexus_regions(values: Iterable[Mapping[str, Any]], today: dt.date) -> frozenset[str]:
    """Regions of the US and Canadian nexus in force ``today`` (``NexusModel`` rows)."""
    regions = set()
    for row in values:
        if row.get("country") not in ("US", "CA") or not row.get("region"):
            continue
        effective, end = row.get("effectiveDate"), row.get("endDate")
        if effective and _date(effective) > today:
            continue
        if end and _date(end) < today:
            continue
        regions.add(str(row["region"]).upper())
    return frozenset(regions)
