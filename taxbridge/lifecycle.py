"""The sales-order lifecycle before invoicing: entry, pending check, pick, despatch, Recal and
the transaction inquiry. Every stage here is an estimate: N from the engine, blank from the
offline table, X outside nexus; none of them lets a backend failure escape."""

from __future__ import annotations

import time
from typing import Protocol

from attrs import frozen

from taxbridge.context import NO_EFFECTS, NO_RATE, Outcome, Route, StageContext
from taxbridge.errors import (
    BackendError,
    DocumentNotFoundError,
    DocumentRejected,
    InvalidTransition,
)
from taxbridge.exemptions import Exemptions
from taxbridge.flags import RECALCULABLE, FinalTaxFlag, check_recalculable
from taxbridge.logs import get_logger
from taxbridge.models import (
    Address,
    CertificateCheck,
    Coverage,
    DocumentEvent,
    Order,
    PendCode,
    PendReason,
    Stage,
    TaxDocument,
    TaxRequest,
)
from taxbridge.rules import Context, order_request

_log = get_logger("taxbridge")


class CertificateChecker(Protocol):
    """What order entry and the pending check need of the exempt-customer workflow
    (:class:`taxbridge.certificates.ExemptCustomers`): whether a certificate covers the order."""

    def check(self, order: Order) -> CertificateCheck | None:
        """The coverage of an exempt customer's order; None when there is nothing to check."""


@frozen
class PendingCheck:
    """The outcome of the pending check: why the order pends (if it does) and its document."""

    document: TaxDocument | None
    reasons: tuple[PendReason, ...]

    @property
    def pends(self) -> bool:
        """True when the order must be fixed before it is approved."""
        return bool(self.reasons)


@frozen
class Inquiry:
    """Transaction inquiry (BNI155B): the document, its breakdown, flag and log."""

    document: TaxDocument
    events: tuple[DocumentEvent, ...]

    @property
    def last_log(self) -> str:
        """The message of the latest log entry (the error, for a U document)."""
        return self.document.last_log

    @property
    def breakdown_note(self) -> str:
        """Why the breakdown is missing, when MAXDL left it out (BNADS/AV-IF1 *MAXDL)."""
        request = self.document.request
        if request is not None and not request.include_details:
            return (
                f"breakdown not calculated: {len(request.lines)} lines is not below "
                "the max detail lines (*MAXDL); totals only"
            )
        return ""

    @property
    def can_recalculate(self) -> bool:
        """Recal is offered where the flag table allows it (blank and N)."""
        return self.document.flag in RECALCULABLE


def order_addresses(order: Order) -> list[tuple[str, Address]]:
    """The addresses of an order that validation checks: ship-to, then distinct line ship-tos."""
    found = [(f"Order {order.number}: ship_to", order.ship_to)]
    for line in order.lines:
        if line.ship_to is not None and line.ship_to != order.ship_to:
            found.append(
                (f"Order {order.number}: line {line.engine_number}: ship_to", line.ship_to)
            )
    return found


class Lifecycle:
    """The estimate stages of one bridge."""

    def __init__(
        self,
        ctx: StageContext,
        exemptions: Exemptions,
        mapping: Context,
        certificates: CertificateChecker | None = None,
    ):
        self._ctx = ctx
        self._exemptions = exemptions
        self._mapping = mapping
        self._certificates = certificates

    def on_entry(self, order: Order, *, program: str | None = None) -> TaxDocument:
        """Order entry: the engine if online-at-entry is on (N), else the offline table. An
        exempt customer's certificate is checked first (its outcome is in the document's log)."""
        online = self._ctx.config.online_at_entry
        return self._order(Stage.ENTRY, order, online=online, program=program)[0]

    def on_pending_check(self, order: Order, *, program: str | None = None) -> PendingCheck:
        """Pending check: recalculate and say why the order must pend (TMSDS/PEND-DOC,
        PEND-DO2): tax validation (BNO155B), exemption expiry (BNW150C), an exempt customer's
        certificate missing or expired (seed 002), obsolete tax codes (BNO155BT). A document
        already posted or invoiced is checked but never changed."""
        checks = self._ctx.config.pending.order_checks
        reasons: list[PendReason] = []
        document, rejection, certificate = self._order(
            Stage.PENDING_CHECK, order, online=True, program=program
        )
        if rejection is not None and PendCode.TAX_VALIDATION in checks:
            reasons.append(PendReason(PendCode.TAX_VALIDATION, str(rejection), line=rejection.line))
        if PendCode.EXEMPTION_EXPIRY in checks:
            reasons.extend(self._exemptions.expiry(order.customer, order.ship_to.region))
        exempt = document.request is not None and document.request.exempt
        if (
            PendCode.EXEMPTION_CERTIFICATE in checks
            and certificate is not None
            and certificate.coverage.pends
            and not exempt
        ):
            reasons.append(
                PendReason(
                    PendCode.EXEMPTION_CERTIFICATE,
                    certificate.message,
                    customer=order.customer.code,
                )
            )
        if PendCode.OBSOLETE_TAX_CODE in checks and document.request is not None:
            reasons.extend(self.obsolete_codes(document.request))
        return PendingCheck(document, tuple(reasons))

    def on_pick(self, order: Order, *, program: str | None = None) -> TaxDocument:
        """Pick confirmation: recalculate (short picks change quantities)."""
        return self._order(Stage.PICK, order, online=True, program=program)[0]

    def on_despatch(self, order: Order, *, program: str | None = None) -> TaxDocument:
        """Despatch confirmation: recalculate."""
        return self._order(Stage.DESPATCH, order, online=True, program=program)[0]

    def recalculate(self, code: str) -> TaxDocument:
        """Recal: calculate a blank or N document again with the engine."""
        existing = self._ctx.require(code)
        if existing.invoice_code:
            raise InvalidTransition(
                existing.flag,
                "recalculated",
                code=code,
                action="Recal",
                reason=f"{code} is invoiced as {existing.invoice_code}; an invoiced order is "
                "history and is not recalculated",
            )
        check_recalculable(existing.flag, code=code)
        if existing.request is None:
            raise DocumentNotFoundError(code)
        return self.estimate(Stage.RECALCULATE, existing.request, existing.flag, online=True)[0]

    def inquiry(self, code: str) -> Inquiry:
        """Transaction inquiry: the document with its breakdown, flag and log."""
        return Inquiry(self._ctx.require(code), tuple(self._ctx.store.events(code)))

    def _order(
        self, stage: Stage, order: Order, *, online: bool, program: str | None
    ) -> tuple[TaxDocument, DocumentRejected | None, CertificateCheck | None]:
        ctx = self._ctx
        head = ctx.store.head(order.code)
        if head is not None and (head.invoice_code or head.flag.is_final):
            # Invoiced or posted: the check may run, but nothing about the document changes.
            started = time.perf_counter()
            request = order_request(ctx.config, order, self._mapping)
            ctx.check_addresses(order_addresses(order), program, request=request)
            rejection = self.validate(request) if stage is Stage.PENDING_CHECK else None
            existing = ctx.require(request.code)
            ctx.emit(stage, Outcome.UNCHANGED, existing, existing.flag, started)
            return existing, rejection, None
        certificate = None
        if self._certificates is not None and stage in (Stage.ENTRY, Stage.PENDING_CHECK):
            certificate = self._certificates.check(order)
        request = order_request(ctx.config, order, self._mapping)
        interfaces = ctx.config.interfaces(order.transaction_group)
        note = ctx.check_addresses(order_addresses(order), program, request=request)
        if (
            certificate is not None
            and certificate.coverage is not Coverage.COVERED
            and not request.exempt
        ):
            stale = " (service unavailable: as last pulled)" if certificate.stale else ""
            note += f"{certificate.message}{stale}; "
        if not interfaces:
            note += f"transaction group {order.transaction_group!r} is not interfaced; "
        flag_before = head.flag if head else None
        document, rejection = self.estimate(
            stage, request, flag_before, online=online and interfaces, note=note
        )
        return document, rejection, certificate

    def estimate(
        self,
        stage: Stage,
        request: TaxRequest,
        flag_before: FinalTaxFlag | None,
        *,
        online: bool,
        note: str = "",
    ) -> tuple[TaxDocument, DocumentRejected | None]:
        """Calculate an estimate by its route and record it: X, blank (offline, or the engine
        down or refusing: its refusal is returned), or N."""
        ctx = self._ctx
        started = time.perf_counter()
        rejection: DocumentRejected | None = None
        no_rate = False
        route = ctx.route(request, online=online)
        if route is not Route.ENGINE:
            result, flag, outcome, offline_note = ctx.without_engine(request, route)
            no_rate = bool(offline_note)
            message = (
                f"offline estimate{offline_note}"
                if route is Route.OFFLINE
                else "excluded: ship-to outside the nexus regions; no engine call"
            )
        else:
            try:
                result = ctx.backend.calculate(request)
                flag, outcome = FinalTaxFlag.CALCULATED, Outcome.CALCULATED
                message = f"calculated by {ctx.backend.name}: tax {result.total_tax}"
            except BackendError as exc:
                if isinstance(exc, DocumentRejected):
                    rejection = exc
                result, offline_note = ctx.offline_estimate(request)
                flag, outcome = FinalTaxFlag.OFFLINE, Outcome.DEGRADED
                kind = "rejected the document" if rejection else "unavailable"
                message = f"engine {kind} ({exc}); offline estimate{offline_note}"
        document = ctx.document(request, result, stage, flag, note + message)
        ctx.record(
            stage,
            document,
            flag_before,
            outcome,
            started=started,
            effects=NO_RATE if no_rate else NO_EFFECTS,
        )
        return document, rejection

    def validate(self, request: TaxRequest) -> DocumentRejected | None:
        """Ask the engine to calculate an estimate: its refusal, if it refuses (an outage
        validates nothing and is logged)."""
        try:
            self._ctx.backend.calculate(request)
        except DocumentRejected as exc:
            return exc
        except BackendError as exc:
            _log.warning("taxbridge.pending_check.unavailable", code=request.code, error=str(exc))
        return None

    def obsolete_codes(self, request: TaxRequest) -> list[PendReason]:
        """BNO155BT: lines whose tax code is not in the engine's active list."""
        active = self._ctx.reference.active_tax_codes()
        if active is None:
            return []
        return [
            PendReason(
                PendCode.OBSOLETE_TAX_CODE,
                f"line {line.number}: tax code {line.tax_code!r} is not in the engine's "
                "active list",
                line=line.number,
            )
            for line in request.lines
            if not line.excluded and line.tax_code not in active
        ]
