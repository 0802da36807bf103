"""Claims (credits and returns): pending check, inquiry, claim invoicing as a ReturnInvoice
``B-<number>``, and the credit of a stored invoice (BNO155B/BNO155BC, BNO155F)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from taxbridge.context import StageContext
from taxbridge.errors import DocumentNotFoundError, DocumentRejected, InvalidFieldError
from taxbridge.exemptions import Exemptions
from taxbridge.flags import FinalTaxFlag
from taxbridge.lifecycle import Inquiry, Lifecycle, PendingCheck
from taxbridge.models import (
    Address,
    Claim,
    ClaimLine,
    CreditedLine,
    Customer,
    DocumentKind,
    PendCode,
    PendReason,
    Stage,
    TaxDocument,
    TaxRequest,
)
from taxbridge.money import ZERO, round_money
from taxbridge.posting import Posting
from taxbridge.rules import Context, claim_request
from taxbridge.store.base import CreditAllocation


def claim_addresses(claim: Claim) -> list[tuple[str, Address]]:
    """The addresses a claim brings (an allocated claim uses its invoice's, already checked)."""
    return [
        (name, address)
        for name, address in (("ship_from", claim.ship_from), ("ship_to", claim.ship_to))
        if address is not None and not claim.allocated
    ]


class Claims:
    """The claim stages of one bridge."""

    def __init__(
        self,
        ctx: StageContext,
        lifecycle: Lifecycle,
        posting: Posting,
        exemptions: Exemptions,
        mapping: Context,
    ):
        self._ctx = ctx
        self._lifecycle = lifecycle
        self._posting = posting
        self._exemptions = exemptions
        self._mapping = mapping

    def on_claim_pending(
        self, claim: Claim, *, update: bool = False, program: str | None = None
    ) -> PendingCheck:
        """Claims pending check (BNO155B): why the claim must pend before approval.

        With ``update`` (BNO155BC) the tax is also calculated and the claim's tax document
        stored (N, or blank offline), so the tax shows on the claim before it is approved.
        Runs the checks the pending rules switch on for claims (TMSAR/PEND-DOC, PEND-DO2).
        A claim already invoiced (posted or U) is checked but never changed.
        """
        ctx = self._ctx
        checks = ctx.config.pending.claim_checks
        request, _ = self._request(claim, estimate=True)
        interfaces = ctx.config.interfaces(claim.transaction_group)
        note = ctx.check_addresses(claim_addresses(claim), program, request=request)
        head = ctx.store.head(request.code)
        settled = head is not None and (head.flag.is_final or head.flag is FinalTaxFlag.FAILED)
        rejection: DocumentRejected | None = None
        document: TaxDocument | None
        if update and not settled:
            flag_before = head.flag if head else None
            document, rejection = self._lifecycle.estimate(
                Stage.CLAIM_PENDING, request, flag_before, online=interfaces, note=note
            )
        else:
            document = ctx.store.get(request.code)
            if (
                PendCode.TAX_VALIDATION in checks
                and interfaces
                and not ctx.reference.estimator_only
            ):
                rejection = self._lifecycle.validate(request)
        reasons: list[PendReason] = []
        if rejection is not None and PendCode.TAX_VALIDATION in checks:
            reasons.append(PendReason(PendCode.TAX_VALIDATION, str(rejection)))
        if PendCode.EXEMPTION_EXPIRY in checks and not claim.allocated and claim.ship_to:
            reasons.extend(self._exemptions.expiry(claim.customer, claim.ship_to.region))
        if PendCode.OBSOLETE_TAX_CODE in checks:
            reasons.extend(self._lifecycle.obsolete_codes(request))
        return PendingCheck(document, tuple(reasons))

    def claim_inquiry(self, claim: Claim) -> Inquiry:
        """Claims inquiry: calculate the claim's tax now and update its tax document (never
        posts). A claim already invoiced is shown as stored."""
        ctx = self._ctx
        request, _ = self._request(claim, estimate=True)
        head = ctx.store.head(request.code)
        if head is None or not (head.flag.is_final or head.flag is FinalTaxFlag.FAILED):
            self._lifecycle.estimate(
                Stage.CLAIM_INQUIRY,
                request,
                head.flag if head else None,
                online=ctx.config.interfaces(claim.transaction_group),
            )
        return self._lifecycle.inquiry(request.code)

    def on_claim_invoice(self, claim: Claim, *, program: str | None = None) -> TaxDocument:
        """Claims invoicing: post the credit as a ReturnInvoice ``B-<number>`` (Y), or store
        it U and queue it, exactly as an invoice.

        Allocated to an invoice, it is taxed at the invoice's date, addresses and exemption,
        its lines pro rata to the tax those invoice lines were charged; otherwise it is first
        calculated offline with the customer's exemptions, and the engine's figure replaces that.
        """
        request, credited = self._request(claim)
        note = self._ctx.check_addresses(claim_addresses(claim), program, request=request)
        credits = (
            CreditAllocation(claim.code, claim.invoice_code, credited)
            if claim.invoice_code is not None
            else None
        )
        return self._posting.post(
            Stage.CLAIM_INVOICE,
            request,
            interfaces=self._ctx.config.interfaces(claim.transaction_group),
            note=note,
            erp_company=claim.company,
            credits=credits,
            offline_first=not claim.allocated,
            charged=self._charged_shares(claim),
        )

    def _charged_shares(self, claim: Claim) -> dict[str, Decimal]:
        """What each allocated line of the credit gives back of what its invoice line
        *charged* (negative), by the credit's line number: the share of the amount credited,
        rounded so that the credits of a line add up to exactly what it charged once its whole
        amount is credited. The engine's figure (the liability) is the credit's ``tax``."""
        if claim.invoice_code is None:
            return {}
        original = self._ctx.require(claim.invoice_code)
        sold = {line.number: line for line in original.lines}
        done = self._ctx.store.credited(claim.invoice_code, excluding=claim.code)
        shares: dict[str, Decimal] = {}
        for line in claim.lines:
            sale = sold.get(line.invoice_line or "")
            if sale is None or not sale.amount:
                continue
            before = done.get(sale.number, (ZERO, ZERO))[0]
            after = before + line.amount
            done[sale.number] = (after, ZERO)
            given = _share(sale.tax_charged, after, sale.amount)
            shares[str(line.line_number)] = -(given - _share(sale.tax_charged, before, sale.amount))
        return shares

    def credit_from_invoice(
        self,
        invoice_code: str,
        lines: Sequence[str] | None = None,
        *,
        number: str | None = None,
        claim_date: dt.date | None = None,
    ) -> Claim:
        """Credit from invoice (BNO155F): a claim allocated to a stored invoice crediting what
        is left of all its lines, or of the engine line numbers in ``lines``.

        The claim number defaults to the invoice's number and the claim date to today by the
        bridge's clock; invoice it with :meth:`on_claim_invoice`.
        """
        ctx = self._ctx
        original = ctx.require(invoice_code)
        if original.kind is not DocumentKind.INVOICE or original.request is None:
            raise InvalidFieldError(
                "credit_from_invoice", "invoice_code", invoice_code, "is not an invoice"
            )
        sold = {line.number: line for line in original.request.lines}
        wanted = list(sold) if lines is None else list(lines)
        for line_number in wanted:
            if line_number not in sold:
                raise InvalidFieldError(
                    "credit_from_invoice", "lines", line_number, f"is not a line of {invoice_code}"
                )
        credited = ctx.store.credited(invoice_code)
        claim_lines: list[ClaimLine] = []
        for line in original.lines:
            if line.number not in wanted:
                continue
            left = line.amount - credited.get(line.number, (ZERO, ZERO))[0]
            if left <= 0:
                continue
            sale = sold[line.number]
            claim_lines.append(
                ClaimLine(
                    line_number=len(claim_lines) + 1,
                    item_code=sale.item_code or sale.number,
                    quantity=sale.quantity,
                    amount=left,
                    description=sale.description,
                    freight=sale.freight,
                    invoice_line=line.number,
                )
            )
        if not claim_lines:
            raise InvalidFieldError(
                "credit_from_invoice",
                "lines",
                wanted,
                f"have nothing left to credit on {invoice_code}",
            )
        return Claim(
            number=number or invoice_code.partition("-")[2] or invoice_code,
            company=original.erp_company,
            customer=Customer(original.customer_code),
            claim_date=claim_date or ctx.clock().date(),
            lines=tuple(claim_lines),
            invoice_code=invoice_code,
            currency=original.currency,
        )

    def _request(
        self, claim: Claim, *, estimate: bool = False
    ) -> tuple[TaxRequest, tuple[CreditedLine, ...]]:
        """The claim's request, worked out against its invoice as stored (and as credited by
        other claims) when it is allocated to one."""
        ctx = self._ctx
        if claim.invoice_code is None:
            return claim_request(ctx.config, claim, self._mapping, estimate=estimate)
        original = ctx.store.get(claim.invoice_code)
        if original is None:
            raise DocumentNotFoundError(claim.invoice_code)
        if original.kind is not DocumentKind.INVOICE:
            raise InvalidFieldError(
                "Claim", "invoice_code", claim.invoice_code, "is not an invoice"
            )
        done = ctx.store.credited(claim.invoice_code, excluding=claim.code)
        return claim_request(
            ctx.config,
            claim,
            self._mapping,
            original=original,
            credited=lambda line: done.get(line, (ZERO, ZERO)),
            estimate=estimate,
        )


def _share(charged: Decimal, amount: Decimal, whole: Decimal) -> Decimal:
    """What ``amount`` of an invoice line of amount ``whole`` takes of what it ``charged``:
    all of it once the whole amount is taken, so the differences telescope to the cent."""
    return charged if amount == whole else round_money(charged * amount / whole)
