"""How stored things become rows and back, whatever the database: a document with its lines,
breakdown and request (as JSON), events and queue entries. Money is written as strings (exact,
never float) and dates in ISO format."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import marshal
from decimal import Decimal, InvalidOperation
from typing import Any

from taxbridge.flags import FinalTaxFlag
from taxbridge.models import (
    Address,
    DocumentEvent,
    DocumentKind,
    DocumentType,
    Exemption,
    JurisdictionTax,
    JurisdictionType,
    LineTax,
    Stage,
    TaxDocument,
    TaxLine,
    TaxRequest,
)
from taxbridge.store.base import CreditAllocation, InvoiceLink, QueueEntry

_compact_json = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
"""Compact JSON from one encoder made once (``json.dumps`` with options makes one per call);
the data is built here and never refers to itself."""


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
    return None if data is None else _stored_address(*data.items())


@functools.lru_cache(maxsize=4096)
def _stored_address(*fields: tuple[str, str]) -> Address:
    """Addresses repeat from document to document (a warehouse, a customer's ship-to): each
    distinct one is built and checked once. Address is frozen, so sharing it is safe."""
    return Address(**dict(fields))


def _line_extras(line: TaxLine) -> list[dict[str, Any]]:
    """The line fields that are rarely set, as one trailing object only when one is set."""
    if not (
        line.ref2
        or line.discounted
        or line.exemption_no
        or line.entity_use_code
        or line.tax_override is not None
    ):
        return []
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
                None if line.ship_to is None else _address(line.ship_to),
                line.excluded,
                line.ref1,
                *_line_extras(line),
            ]
            for line in request.lines
        ],
    }
    return _compact_json(data)


def _number(value: Any) -> Any:
    """A stored amount as the Decimal it was written from, so the model's converters take their
    quick path; anything unreadable as it was, for them to refuse naming the field."""
    if value.__class__ is str:
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    return value


def _day(value: Any) -> Any:
    """A stored date as a date (unreadable: as it was, for the model to refuse)."""
    if value.__class__ is str:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return value
    return value


def request_from_json(text: str) -> TaxRequest:
    """Parse what :func:`request_to_json` wrote (checked again by the models, as any input)."""
    data = json.loads(text)
    lines = tuple(
        TaxLine(
            number=row[0],
            amount=_number(row[1]),
            quantity=_number(row[2]),
            item_code=row[3],
            description=row[4],
            discount=_number(row[5]),
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
    data["date"] = _day(data.get("date"))
    if "discount" in data:
        data["discount"] = _number(data["discount"])
    data.setdefault("business_identification_no", None)  # written before it existed
    return TaxRequest(lines=lines, **data)


def flag_or_none(value: str | None) -> FinalTaxFlag | None:
    return None if value is None else FinalTaxFlag(value)


DocumentRows = tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def lines_digest(lines: list[tuple[Any, ...]], breakdown: list[tuple[Any, ...]]) -> str:
    """A digest of a document's line and breakdown rows as written (text, whole numbers and
    nulls, serialised without shared references, so equal rows give equal bytes). A write whose
    digest matches the stored one leaves those rows in place: the stages before invoicing
    mostly recalculate an order to the lines it already has."""
    return hashlib.blake2b(marshal.dumps((lines, breakdown), 2), digest_size=16).hexdigest()


def document_rows(doc: TaxDocument) -> DocumentRows:
    """The document's row (ending with :func:`lines_digest`), line rows and breakdown rows, as
    written."""
    document = (
        doc.code,
        doc.kind.value,
        doc.stage.value,
        doc.flag.value,
        doc.erp_company,
        doc.company_code,
        doc.customer_code,
        doc.document_type.value,
        doc.document_date.isoformat(),
        doc.tax_date.isoformat() if doc.tax_date else None,
        doc.currency,
        str(doc.total_amount),
        str(doc.total_taxable),
        str(doc.total_exempt),
        str(doc.total_tax),
        doc.backend,
        doc.last_log,
        doc.updated_at.isoformat(),
        request_to_json(doc.request) if doc.request is not None else None,
        json.dumps(list(doc.orders)),
        doc.invoice_code,
        None if doc.charged_tax is None else str(doc.charged_tax),
        doc.voided_at.isoformat() if doc.voided_at else None,
        doc.void_reason,
    )
    regions = line_regions(doc.request)
    lines = [
        (
            doc.code,
            seq,
            line.number,
            str(line.amount),
            str(line.taxable),
            str(line.exempt),
            str(line.tax),
            line.tax_code,
            str(line.rate),
            regions.get(line.number, ""),
            None if line.charged is None else str(line.charged),
        )
        for seq, line in enumerate(doc.lines)
    ]
    breakdown = [
        (
            doc.code,
            seq,
            j.jurisdiction_type.value,
            j.name,
            j.region,
            str(j.rate),
            str(j.taxable),
            str(j.exempt),
            str(j.tax),
        )
        for seq, j in enumerate(doc.breakdown)
    ]
    return (*document, lines_digest(lines, breakdown)), lines, breakdown


def document_from_rows(
    row: tuple[Any, ...], line_rows: list[Any], breakdown_rows: list[Any]
) -> TaxDocument:
    """A document from its row, line rows and breakdown rows, as read."""
    (
        code,
        kind,
        stage,
        flag,
        erp_company,
        company_code,
        customer_code,
        document_type,
        document_date,
        tax_date,
        currency,
        total_amount,
        total_taxable,
        total_exempt,
        total_tax,
        backend,
        last_log,
        updated_at,
        request_json,
        orders_json,
        invoice_code,
        charged_tax,
        voided_at,
        void_reason,
    ) = row
    lines = tuple(
        LineTax(
            number,
            Decimal(a),
            Decimal(t),
            Decimal(e),
            Decimal(x),
            tax_code,
            Decimal(r),
            charged=None if charged is None else Decimal(charged),
        )
        for number, a, t, e, x, tax_code, r, charged in line_rows
    )
    breakdown = tuple(
        JurisdictionTax(
            JurisdictionType(jt), name, region, Decimal(r), Decimal(t), Decimal(e), Decimal(x)
        )
        for jt, name, region, r, t, e, x in breakdown_rows
    )
    return TaxDocument(
        code=str(code),
        kind=DocumentKind(kind),
        stage=Stage(stage),
        flag=FinalTaxFlag(flag),
        erp_company=str(erp_company),
        company_code=str(company_code),
        customer_code=str(customer_code),
        document_type=DocumentType(document_type),
        document_date=dt.date.fromisoformat(str(document_date)),
        tax_date=dt.date.fromisoformat(str(tax_date)) if tax_date else None,
        currency=str(currency),
        total_amount=Decimal(str(total_amount)),
        total_taxable=Decimal(str(total_taxable)),
        total_exempt=Decimal(str(total_exempt)),
        total_tax=Decimal(str(total_tax)),
        lines=lines,
        breakdown=breakdown,
        backend=str(backend),
        last_log=str(last_log),
        updated_at=dt.datetime.fromisoformat(str(updated_at)),
        request=request_from_json(str(request_json)) if request_json else None,
        orders=tuple(json.loads(str(orders_json))),
        invoice_code=str(invoice_code) if invoice_code else None,
        charged_tax=None if charged_tax is None else Decimal(str(charged_tax)),
        voided_at=dt.datetime.fromisoformat(str(voided_at)) if voided_at else None,
        void_reason=str(void_reason or ""),
    )


def line_regions(request: TaxRequest | None) -> dict[str, str]:
    """Each request line's ship-to region (its own ship-to, else the document's)."""
    if request is None:
        return {}
    default = request.ship_to.region
    return {
        line.number: line.ship_to.region if line.ship_to is not None else default
        for line in request.lines
    }


DOCUMENT_COLUMNS = (
    "code, kind, stage, flag, erp_company, company_code, customer_code, document_type, "
    "document_date, tax_date, currency, total_amount, total_taxable, total_exempt, total_tax, "
    "backend, last_log, updated_at, request_json, orders_json, invoice_code, charged_tax, "
    "voided_at, void_reason"
)
"""The document columns, in the order of :func:`document_rows` and :func:`document_from_rows`."""

WRITTEN_DOCUMENT_COLUMNS = f"{DOCUMENT_COLUMNS}, lines_digest"
"""The columns :func:`document_rows` writes: the document's, then its lines' digest."""

LINE_COLUMNS = (
    "code, seq, number, amount, taxable, exempt, tax, tax_code, rate, region, charged_tax"
)
"""The line columns as :func:`document_rows` writes them."""

BREAKDOWN_COLUMNS = "code, seq, jurisdiction_type, name, region, rate, taxable, exempt, tax"
"""The breakdown columns as :func:`document_rows` writes them."""

LINE_READ_COLUMNS = "number, amount, taxable, exempt, tax, tax_code, rate, charged_tax"
"""The line columns :func:`document_from_rows` reads."""

EVENT_COLUMNS = "code, at, stage, flag_before, flag_after, backend, message, error"


def invoiced_log(link: InvoiceLink) -> str:
    """The log entry of an order document stamped with the invoice that invoiced it."""
    return f"invoiced as {link.invoice_code}"


def event_row(event: DocumentEvent) -> tuple[Any, ...]:
    """An event as a row in :data:`EVENT_COLUMNS` order."""
    return (
        event.code,
        event.at.isoformat(),
        event.stage.value,
        None if event.flag_before is None else event.flag_before.value,
        event.flag_after.value,
        event.backend,
        event.message,
        int(event.error),
    )


def event_from_row(row: tuple[Any, ...]) -> DocumentEvent:
    """An event from a row in :data:`EVENT_COLUMNS` order."""
    return DocumentEvent(
        code=str(row[0]),
        at=dt.datetime.fromisoformat(str(row[1])),
        stage=Stage(row[2]),
        flag_before=flag_or_none(row[3]),
        flag_after=FinalTaxFlag(row[4]),
        backend=str(row[5]),
        message=str(row[6]),
        error=bool(row[7]),
    )


QUEUE_COLUMNS = (
    "code, attempts, next_attempt_at, last_error_code, last_error_message, retryable, "
    "created_at, updated_at, claimed_by, lease_expires_at, may_have_landed"
)


def queue_row(entry: QueueEntry) -> tuple[Any, ...]:
    """A new queue entry as a row in :data:`QUEUE_COLUMNS` order (unclaimed)."""
    return (
        entry.code,
        entry.attempts,
        entry.next_attempt_at.isoformat(),
        entry.last_error_code,
        entry.last_error_message,
        int(entry.retryable),
        entry.created_at.isoformat(),
        entry.updated_at.isoformat(),
        None,
        None,
        int(entry.may_have_landed),
    )


def queue_entry_from_row(row: tuple[Any, ...], taken_over_from: str | None = None) -> QueueEntry:
    """A queue entry from a row in :data:`QUEUE_COLUMNS` order."""
    return QueueEntry(
        code=str(row[0]),
        attempts=int(str(row[1])),
        next_attempt_at=dt.datetime.fromisoformat(str(row[2])),
        last_error_code=str(row[3]),
        last_error_message=str(row[4]),
        retryable=bool(row[5]),
        created_at=dt.datetime.fromisoformat(str(row[6])),
        updated_at=dt.datetime.fromisoformat(str(row[7])),
        claimed_by=None if row[8] is None else str(row[8]),
        lease_expires_at=None if row[9] is None else dt.datetime.fromisoformat(str(row[9])),
        may_have_landed=bool(row[10]),
        taken_over_from=taken_over_from,
    )


CREDIT_COLUMNS = "credit_code, seq, invoice_code, invoice_line, amount, tax"


def credit_rows(credits: CreditAllocation) -> list[tuple[Any, ...]]:
    """What a credit takes off its invoice, a row per line in :data:`CREDIT_COLUMNS` order."""
    return [
        (
            credits.credit_code,
            seq,
            credits.invoice_code,
            line.invoice_line,
            str(line.amount),
            str(line.tax),
        )
        for seq, line in enumerate(credits.lines)
    ]


EXEMPTION_COLUMNS = "customer_code, region, effective, exemption_no, entity_use_code, expiry"


def exemption_row(exemption: Exemption) -> tuple[Any, ...]:
    """An exemption database entry as a row in :data:`EXEMPTION_COLUMNS` order."""
    return (
        exemption.customer_code,
        exemption.region,
        exemption.effective.isoformat(),
        exemption.exemption_no,
        exemption.entity_use_code,
        exemption.expiry.isoformat() if exemption.expiry else None,
    )


def exemption_from_row(row: tuple[Any, ...]) -> Exemption:
    """An exemption database entry from a row in :data:`EXEMPTION_COLUMNS` order."""
    return Exemption(
        customer_code=row[0],
        region=row[1],
        effective=dt.date.fromisoformat(row[2]),
        exemption_no=row[3],
        entity_use_code=row[4],
        expiry=dt.date.fromisoformat(row[5]) if row[5] else None,
    )


def credited_totals(rows: list[Any]) -> dict[str, tuple[Decimal, Decimal]]:
    """(invoice line, amount, tax) allocation rows summed by invoice line."""
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    for line, amount, tax in rows:
        done_amount, done_tax = totals.get(line, (Decimal(0), Decimal(0)))
        totals[line] = (done_amount + Decimal(amount), done_tax + Decimal(tax))
    return totals
