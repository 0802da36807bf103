"""From ERP documents to tax requests, through the control files of :mod:`taxbridge.config`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from taxbridge.config import BridgeConfig
from taxbridge.models import (
    Address,
    DocumentType,
    Invoice,
    Order,
    OrderLine,
    TaxLine,
    TaxRequest,
)


def _tax_lines(
    config: BridgeConfig,
    lines: Iterable[OrderLine],
    order_ship_to: Address,
    header_ship_to: Address,
    nexus: frozenset[str],
) -> list[TaxLine]:
    result = []
    for line in lines:
        if line.subline != 0:
            continue  # pack components: only the pack (subline zero) goes to the engine
        ship_to = line.ship_to or order_ship_to
        result.append(
            TaxLine.from_order_line(
                line,
                tax_code=config.tax_code_for(line.tax_code, line.item_classification, line.freight),
                ship_to=None if ship_to == header_ship_to else ship_to,
                excluded=ship_to.region not in nexus,
            )
        )
    return result


def order_request(
    config: BridgeConfig,
    order: Order,
    *,
    document_type: DocumentType = DocumentType.SALES_ORDER,
) -> TaxRequest:
    """The estimate request of an order (code ``O-<number>``), never committed."""
    company_code = config.company_code_for(order.company, order.item_level1)
    nexus = config.nexus_regions(company_code)
    lines = _tax_lines(config, order.lines, order.ship_to, order.ship_to, nexus)
    return _request(config, order, order.code, document_type, company_code, order.order_date, lines)


def invoice_request(config: BridgeConfig, invoice: Invoice) -> TaxRequest:
    """The posting request of an invoice: every order's lines under ``A-<number>``, committed."""
    first = invoice.orders[0]
    company_code = config.company_code_for(first.company, first.item_level1)
    nexus = config.nexus_regions(company_code)
    lines: list[TaxLine] = []
    for order in invoice.orders:
        lines.extend(_tax_lines(config, order.lines, order.ship_to, first.ship_to, nexus))
    return _request(
        config,
        first,
        invoice.code,
        DocumentType.SALES_INVOICE,
        company_code,
        invoice.invoice_date,
        lines,
        commit=True,
    )


def _request(
    config: BridgeConfig,
    order: Order,
    code: str,
    document_type: DocumentType,
    company_code: str,
    date: dt.date,
    lines: list[TaxLine],
    *,
    commit: bool = False,
) -> TaxRequest:
    customer = order.customer
    return TaxRequest(
        code=code,
        document_type=document_type,
        company_code=company_code,
        customer_code=customer.code,
        date=date,
        ship_from=order.ship_from,
        ship_to=order.ship_to,
        lines=tuple(lines),
        commit=commit,
        currency=order.currency,
        exemption_no=customer.tax_number,
        entity_use_code=customer.entity_use_code,
        reference_code=order.reference,
        purchase_order_no=order.purchase_order_no,
    )
