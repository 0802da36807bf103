"""From ERP documents to tax requests, through the control files of :mod:`taxbridge.config`.

The mapping is pure: what it needs from the store (refreshed nexus regions, the exemption
database) comes in through :class:`Context`, so every rule can be tested on its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal

from attrs import evolve, frozen

from taxbridge.config import BridgeConfig, ExemptionMode
from taxbridge.errors import InvalidFieldError
from taxbridge.models import (
    Address,
    Claim,
    ClaimLine,
    CreditedLine,
    Customer,
    DocumentType,
    Exemption,
    Invoice,
    Order,
    OrderLine,
    Quotation,
    TaxDocument,
    TaxLine,
    TaxRequest,
)
from taxbridge.money import ZERO, allocate, round_money


@frozen
class Evidence:
    """The exemption evidence a request carries, and where it came from."""

    exemption_no: str | None = None
    entity_use_code: str | None = None
    source: str = ""
    """``customer master``, ``exemption database``, ``overseas classification`` or blank."""


@frozen
class Context:
    """What the mapping needs beyond the config: effective nexus and the exemption database."""

    nexus: Callable[[str], frozenset[str]]
    """Company code -> nexus regions (configured plus refreshed)."""
    exemptions: Callable[[str], Sequence[Exemption]] = lambda customer: ()
    """Customer code -> exemption database entries."""
    zip_states: Callable[[str], frozenset[str]] = lambda zip5: frozenset()
    """ZIP5 -> the states the local rate data places it in (empty: it does not know it)."""
    certificate: Callable[[str, str, dt.date, str, str], tuple[str, str | None] | None] = (
        lambda customer, region, day, order, po: None
    )
    """(customer, region, day, order number, PO number) -> (exemption number, entity use code)
    of the certificate covering it, for an exempt customer (None: none does)."""


def zip_mismatch(
    request: TaxRequest, zip_states: Callable[[str], frozenset[str]]
) -> tuple[str, Address, str] | None:
    """The first US address of ``request`` whose ZIP the local rate data places only in other
    states — (where, address, why) — or None (a mistyped state would otherwise be taxed as, or
    excluded as, the wrong one). Address validation decides what it means for a program."""
    addresses = [("ship_from", request.ship_from), ("ship_to", request.ship_to)]
    addresses += [
        (f"line {line.number} ship_to", line.ship_to)
        for line in request.lines
        if line.ship_to is not None
    ]
    seen: set[Address] = set()
    for where, address in addresses:
        if address.country != "US" or address in seen:
            continue
        seen.add(address)
        states = zip_states(address.zip5)
        if states and address.region not in states:
            why = (
                f"is not a ZIP of {address.region} ({where} of {request.code}): the local rate "
                f"data places it in {', '.join(sorted(states))}"
            )
            return where, address, why
    return None


def exemption_evidence(
    config: BridgeConfig,
    customer: Customer,
    region: str,
    day: dt.date,
    context: Context,
    *,
    order_number: str = "",
    po_number: str = "",
) -> Evidence:
    """The exemption a document carries.

    In local exemption mode (BNADS/AV-IF1 *NOEXM) the customer-master tax number wins; else an
    exemption database entry for the region valid on ``day``. Then, for a customer flagged
    exempt with a certificate service configured, the certificate covering the region on
    ``day`` (seed 002). Last, in local mode, an overseas-resident code by customer
    classification (TMSDS/CC-TXUS). In engine mode without a certificate service nothing is
    sent: the engine applies its certificates by customer code.
    """
    local = config.exemptions.mode is ExemptionMode.LOCAL
    if local and customer.tax_number:
        return Evidence(customer.tax_number, customer.entity_use_code, "customer master")
    if local:
        for entry in context.exemptions(customer.code):
            if entry.region == region and entry.valid_on(day):
                return Evidence(entry.exemption_no, entry.entity_use_code, "exemption database")
    if config.certificates.active and customer.is_exempt:
        found = context.certificate(customer.code, region, day, order_number, po_number)
        if found is not None:
            return Evidence(found[0], found[1], "certificate")
    if not local:
        return Evidence()
    overseas = config.exemptions.overseas.get(customer.classification)
    if customer.classification and overseas:
        return Evidence(None, overseas, "overseas classification")
    return Evidence()


def _split_freight(
    line: OrderLine, goods: Sequence[OrderLine], order_level: str
) -> list[tuple[str, Decimal]]:
    """Freight split by item level 1 (BNADS/TAX-FRTS): the freight amount pro rata to each
    level's goods, to the cent. One level (or none) keeps the line whole."""
    weights: dict[str, Decimal] = {}
    for good in goods:
        level = good.item_level1 or order_level
        weights[level] = weights.get(level, ZERO) + good.amount - good.discount
    total = sum(weights.values(), ZERO)
    if len(weights) < 2 or total <= 0:
        return [(line.item_level1 or order_level, line.amount)]
    net = line.amount
    raw = [net * weight / total for weight in weights.values()]
    return list(zip(weights, allocate(net, raw), strict=True))


def _tax_lines(
    config: BridgeConfig,
    order: Order,
    header_ship_to: Address,
    nexus: frozenset[str],
) -> list[TaxLine]:
    lines = [line for line in order.lines if line.subline == 0]  # packs: only subline zero
    order_level = order.item_level1
    split = config.freight_split
    result: list[TaxLine] = []
    for line in lines:
        ship_to = line.ship_to or order.ship_to
        tax_code = config.tax_code_for(line.tax_code, line.item_classification, line.freight)
        line_ship_to = None if ship_to is header_ship_to or ship_to == header_ship_to else ship_to
        excluded = ship_to.region not in nexus
        if line.freight and split and line.discount == 0:
            goods = [good for good in lines if not good.freight]
            parts = _split_freight(line, goods, order_level)
            if len(parts) > 1:
                # one engine line per item level 1, each its share of the freight
                result.extend(
                    evolve(
                        TaxLine.from_order_line(line, tax_code, line_ship_to, excluded, level),
                        number=f"{line.engine_number}-{level}",
                        amount=amount,
                    )
                    for level, amount in parts
                )
                continue
        ref1 = line.item_level1 or order_level
        result.append(TaxLine.from_order_line(line, tax_code, line_ship_to, excluded, ref1))
    for levy in config.levies(order.ship_to.region, order.order_date):
        result.append(
            TaxLine(
                number=f"{order.number}-{levy.item_code}",
                amount=levy.amount,
                item_code=levy.item_code,
                description=levy.description,
                tax_code=levy.tax_code,
                ship_to=None if order.ship_to == header_ship_to else order.ship_to,
                excluded=order.ship_to.region not in nexus,
            )
        )
    return result


def order_request(
    config: BridgeConfig,
    order: Order,
    context: Context,
    *,
    document_type: DocumentType = DocumentType.SALES_ORDER,
) -> TaxRequest:
    """The estimate request of an order (code ``O-<number>``), never committed."""
    company_code = config.company_code_for(order.company, order.item_level1)
    lines = _tax_lines(config, order, order.ship_to, context.nexus(company_code))
    return _request(
        config, order, order.code, document_type, company_code, order.order_date, lines, context
    )


def invoice_request(config: BridgeConfig, invoice: Invoice, context: Context) -> TaxRequest:
    """The posting request of an invoice: every order's lines under ``A-<number>``, committed."""
    first = invoice.orders[0]
    company_code = config.company_code_for(first.company, first.item_level1)
    nexus = context.nexus(company_code)
    lines: list[TaxLine] = []
    for order in invoice.orders:
        lines.extend(_tax_lines(config, order, first.ship_to, nexus))
    return _request(
        config,
        first,
        invoice.code,
        DocumentType.SALES_INVOICE,
        company_code,
        invoice.invoice_date,
        lines,
        context,
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
    context: Context,
    *,
    commit: bool = False,
) -> TaxRequest:
    evidence = exemption_evidence(
        config,
        order.customer,
        order.ship_to.region,
        date,
        context,
        order_number=order.number,
        po_number=order.purchase_order_no,
    )
    limit = config.max_detail_lines
    return TaxRequest(
        code=code,
        document_type=document_type,
        company_code=company_code,
        customer_code=order.customer.code,
        date=date,
        ship_from=order.ship_from,
        ship_to=order.ship_to,
        lines=tuple(lines),
        commit=commit,
        currency=order.currency,
        exemption_no=evidence.exemption_no,
        entity_use_code=evidence.entity_use_code,
        reference_code=order.reference,
        purchase_order_no=order.purchase_order_no,
        include_details=not limit or len(lines) < limit,
    )


def claim_request(
    config: BridgeConfig,
    claim: Claim,
    context: Context,
    *,
    original: TaxDocument | None = None,
    credited: Callable[[str], tuple[Decimal, Decimal]] = lambda line: (ZERO, ZERO),
    estimate: bool = False,
) -> tuple[TaxRequest, tuple[CreditedLine, ...]]:
    """The return request of a claim (``B-<number>``): amounts negative, posted as a
    ReturnInvoice (``estimate``: a ReturnOrder, never saved), and what it credits per line.

    Allocated (``original`` is the invoice's stored document): the invoice's date as a tax date
    override, its addresses and the exemption evidence it carried. A line naming an
    ``invoice_line`` gets that line's tax code, ship-to and evidence, and a tax override: the
    tax still uncredited on it (``credited`` gives amount and tax credited so far) pro rata to
    the amount, so crediting all that is left returns exactly what was charged.
    Not allocated: the claim's own addresses and date, and the customer's exemption evidence.
    """
    document_type = DocumentType.RETURN_ORDER if estimate else DocumentType.RETURN_INVOICE
    if original is None:
        return _unallocated_request(config, claim, context, document_type), ()
    request = original.request
    if request is None or claim.invoice_code != original.code:
        raise InvalidFieldError("Claim", "invoice_code", claim.invoice_code, "has no request")
    if claim.customer.code != original.customer_code:
        raise InvalidFieldError(
            "Claim",
            "customer.code",
            claim.customer.code,
            f"differs from the customer of {original.code} ({original.customer_code!r})",
        )
    if claim.currency != original.currency:
        raise InvalidFieldError(
            "Claim",
            "currency",
            claim.currency,
            f"differs from the currency of {original.code} ({original.currency})",
        )
    sold = {line.number: line for line in request.lines}
    charged = {line.number: line for line in original.lines}
    taken: dict[str, tuple[Decimal, Decimal]] = {}
    nexus = context.nexus(original.company_code)
    lines: list[TaxLine] = []
    credits: list[CreditedLine] = []
    for index, line in enumerate(claim.lines):
        number = str(line.line_number)
        if line.invoice_line is None:
            lines.append(_returned_line(config, line, request.ship_to.region not in nexus))
            continue
        sale, charge = sold.get(line.invoice_line), charged.get(line.invoice_line)
        if sale is None or charge is None:
            raise InvalidFieldError(
                "Claim",
                f"lines[{index}].invoice_line",
                line.invoice_line,
                f"is not a line of {original.code}",
            )
        done_amount, done_tax = taken.get(line.invoice_line) or credited(line.invoice_line)
        left_amount, left_tax = charge.amount - done_amount, charge.tax - done_tax
        if line.amount > left_amount:
            raise InvalidFieldError(
                "Claim",
                f"lines[{index}].amount",
                line.amount,
                f"is more than the {left_amount} left to credit on {original.code} line "
                f"{line.invoice_line}",
            )
        tax = (
            left_tax
            if line.amount == left_amount
            else round_money(left_tax * line.amount / left_amount)
        )
        taken[line.invoice_line] = (done_amount + line.amount, done_tax + tax)
        credits.append(CreditedLine(line.invoice_line, line.amount, tax))
        lines.append(
            TaxLine(
                number=number,
                amount=-line.amount,
                quantity=line.quantity,
                item_code=line.item_code or sale.item_code,
                description=line.description or sale.description,
                tax_code=sale.tax_code,
                freight=sale.freight,
                ship_to=sale.ship_to,
                excluded=sale.excluded,
                ref1=sale.ref1,
                exemption_no=sale.exemption_no,
                entity_use_code=sale.entity_use_code,
                tax_override=None if sale.excluded else -tax,
            )
        )
    limit = config.max_detail_lines
    return (
        TaxRequest(
            code=claim.code,
            document_type=document_type,
            company_code=original.company_code,
            customer_code=claim.customer.code,
            date=claim.claim_date,
            ship_from=request.ship_from,
            ship_to=request.ship_to,
            lines=tuple(lines),
            commit=not estimate,
            currency=claim.currency,
            exemption_no=request.exemption_no,
            entity_use_code=request.entity_use_code,
            tax_date=original.document_date,
            tax_date_reason=(
                f"credit of invoice {original.code} dated {original.document_date.isoformat()}"
            ),
            reference_code=claim.reference or original.code,
            include_details=not limit or len(lines) < limit,
        ),
        tuple(credits),
    )


def _returned_line(config: BridgeConfig, line: ClaimLine, excluded: bool) -> TaxLine:
    """A claim line the engine calculates: negative amount, tax code by the item's mapping."""
    return TaxLine(
        number=str(line.line_number),
        amount=-line.amount,
        quantity=line.quantity,
        item_code=line.item_code,
        description=line.description,
        tax_code=config.tax_code_for(line.tax_code, line.item_classification, line.freight),
        freight=line.freight,
        excluded=excluded,
    )


def _unallocated_request(
    config: BridgeConfig, claim: Claim, context: Context, document_type: DocumentType
) -> TaxRequest:
    ship_from, ship_to = claim.ship_from, claim.ship_to
    if ship_from is None or ship_to is None:  # Claim refuses this; kept for the type checker
        raise InvalidFieldError("Claim", "ship_to", ship_to, "is required")
    company_code = config.company_code_for(claim.company, claim.item_level1)
    excluded = ship_to.region not in context.nexus(company_code)
    evidence = exemption_evidence(config, claim.customer, ship_to.region, claim.claim_date, context)
    limit = config.max_detail_lines
    lines = tuple(_returned_line(config, line, excluded) for line in claim.lines)
    return TaxRequest(
        code=claim.code,
        document_type=document_type,
        company_code=company_code,
        customer_code=claim.customer.code,
        date=claim.claim_date,
        ship_from=ship_from,
        ship_to=ship_to,
        lines=lines,
        commit=document_type is DocumentType.RETURN_INVOICE,
        currency=claim.currency,
        exemption_no=evidence.exemption_no,
        entity_use_code=evidence.entity_use_code,
        reference_code=claim.reference,
        include_details=not limit or len(lines) < limit,
    )


def quotation_request(
    config: BridgeConfig, quotation: Quotation, context: Context, today: dt.date
) -> TaxRequest:
    """A customer quotation as an estimate (seed 004), field by field with every fallback.

    The seed names the document type "Sales Invoice" and also says a quotation is never saved;
    AvaTax saves every SalesInvoice, so a quote is sent as a SalesOrder, which it never saves.
    """
    settings = config.quotations
    company_code = settings.company_code or config.companies[0].company_code
    account = quotation.customer_account
    override = quotation.override_ship_to
    customer = (
        quotation.override_bill_to_account.name
        if quotation.override_bill_to_account is not None
        else account.name
        if account is not None
        else quotation.prospect_company
    )
    if not customer:
        raise InvalidFieldError(
            "Quotation",
            "customer_account",
            None,
            "is required, or override_bill_to_account, or prospect_company",
        )
    # entity use code and exemption number: both the account extension's exemption reason
    reason = account.tax_exemption_reason if account is not None else None
    vat = (
        account.tax_registration_number
        if account is not None
        else quotation.prospect_tax_registration_number or None
    )
    ship_from = _quotation_ship_from(quotation, settings.org_address)
    ship_to = override or (account.shipping_address if account else None)
    ship_to = ship_to or quotation.prospect_address
    if ship_to is None:
        raise InvalidFieldError(
            "Quotation",
            "override_ship_to",
            None,
            "is required when neither the customer account's shipping address nor a "
            "prospect address is given",
        )
    nexus = context.nexus(company_code)
    discount = quotation.total_price_discount if quotation.total_price_discount > 0 else ZERO
    lines = tuple(
        TaxLine(
            number=str(line.line_number),
            amount=line.customer_total_price,
            quantity=line.quantity,
            item_code=str(line.line_number),
            description=line.item_number or line.item_quote_description,
            tax_code=line.override_avalara_tax_code or line.avalara_tax_code,
            ship_to=None if line.ship_to in (None, ship_to) else line.ship_to,
            excluded=(line.ship_to or ship_to).region not in nexus,
            discounted=discount > 0,
        )
        for line in quotation.lines
    )
    return TaxRequest(
        code=quotation.quote_number,
        document_type=DocumentType.SALES_ORDER,
        company_code=company_code,
        customer_code=customer,
        date=today,
        ship_from=ship_from,
        ship_to=ship_to,
        lines=lines,
        currency=quotation.currency,
        exemption_no=reason,
        entity_use_code=reason,
        business_identification_no=vat,
        discount=discount,
    )


def _quotation_ship_from(quotation: Quotation, org_address: Address | None) -> Address:
    """The account's warehouse address, else the ICP of that warehouse, else the org address."""
    account = quotation.customer_account
    warehouse = account.warehouse if account is not None else None
    if warehouse is not None:
        found = warehouse.address or warehouse.icp_address
        if found is None:
            raise InvalidFieldError(
                "Warehouse",
                "icp_address",
                None,
                f"is needed: warehouse {warehouse.code!r} has no address",
            )
        return found
    if org_address is None:
        raise InvalidFieldError(
            "QuotationSettings",
            "org_address",
            None,
            "is needed to quote without a customer account warehouse ([quotations] org_address)",
        )
    return org_address
