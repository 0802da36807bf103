"""The public entry point: one method per lifecycle stage, each returning the stored tax document.

A stage maps the ERP document to a request, chooses the path (excluded, offline, engine), calls
the backend, and writes the result, the flag change and its log entry in one store transaction.
No stage lets a backend failure escape: estimates degrade to the offline table, and a posting
that fails is stored with flag U and queued, so the ERP's invoicing run goes on.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import attrs
from attrs import frozen

from taxbridge.backends._calculate import merge_excluded
from taxbridge.backends.avatax import AvaTaxBackend
from taxbridge.backends.base import (
    AddressResolver,
    DocumentRegister,
    EntityUseCodeCatalog,
    NexusCatalog,
    RateDownload,
    TaxBackend,
    TaxCodeCatalog,
)
from taxbridge.backends.local import LocalEngine
from taxbridge.backends.offline import OfflineTable
from taxbridge.config import (
    CANADIAN_PROVINCES,
    BackendKind,
    BridgeConfig,
    ExemptionMode,
    load_config,
)
from taxbridge.errors import (
    AlreadyCommitted,
    BackendError,
    BackendUnavailable,
    DocumentNotFoundError,
    DocumentRejected,
    InvalidAddressError,
    InvalidFieldError,
    InvalidTransition,
    LeaseLost,
)
from taxbridge.flags import FinalTaxFlag, check_recalculable, check_transition
from taxbridge.logs import get_logger
from taxbridge.models import (
    Address,
    Claim,
    ClaimLine,
    CreditedLine,
    Customer,
    DocumentEvent,
    DocumentKind,
    DocumentStatus,
    DocumentType,
    Exemption,
    Invoice,
    LineTax,
    Order,
    PendCode,
    PendReason,
    Quotation,
    Stage,
    TaxDocument,
    TaxRequest,
    TaxResult,
)
from taxbridge.money import ZERO, ZERO_CENTS
from taxbridge.rates import ProvinceRate, RateTable, shipped_rates
from taxbridge.rules import (
    Context,
    claim_request,
    invoice_request,
    order_request,
    quotation_request,
)
from taxbridge.store.base import (
    CreditAllocation,
    InvoiceLink,
    QueueEntry,
    ReferenceData,
    Store,
)
from taxbridge.store.sqlite import SQLiteStore

_log = get_logger()


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
        """Recal is offered for blank and N documents only."""
        return self.document.flag in (FinalTaxFlag.OFFLINE, FinalTaxFlag.CALCULATED)


@frozen
class Quote:
    """A quotation's tax: the request sent, the result, and where the figure came from."""

    request: TaxRequest
    result: TaxResult
    source: str
    """``engine``, ``offline`` (the engine was unavailable) or ``excluded`` (no nexus)."""
    note: str = ""


@frozen
class RepostSummary:
    """What one repost run did."""

    reposted: tuple[str, ...]
    failed: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    """Entries that need a fix and were not asked for by code."""
    taken_over: tuple[str, ...] = ()
    """Entries another worker holds (or took over when this worker's lease ran out)."""
    due: tuple[str, ...] = ()
    """With ``dry_run``: what would be reposted."""

    def as_dict(self) -> dict[str, list[str]]:
        """The summary as plain lists, for JSON."""
        return {
            "reposted": list(self.reposted),
            "failed": list(self.failed),
            "needs_fix": list(self.skipped),
            "taken_over": list(self.taken_over),
            "due": list(self.due),
        }


@frozen
class RefreshSummary:
    """What an end-of-day refresh loaded (None: the backend does not offer that list)."""

    as_of: dt.date
    tax_codes: int | None
    entity_use_codes: int | None
    nexus: dict[str, tuple[str, ...]]
    rate_regions: tuple[str, ...]
    rate_rows: int


@frozen
class RetryPolicy:
    """When a failed posting is tried again: exponential backoff with jitter, capped."""

    base: dt.timedelta = dt.timedelta(minutes=1)
    factor: float = 2.0
    cap: dt.timedelta = dt.timedelta(hours=1)
    jitter: float = 0.1
    """Each delay is spread by up to this fraction either way, so workers do not retry in step."""

    def delay(self, attempts: int, rng: random.Random | None = None) -> dt.timedelta:
        """The wait after ``attempts`` failed attempts (the first failure waits ``base``)."""
        seconds = min(
            self.base.total_seconds() * self.factor ** max(attempts - 1, 0),
            self.cap.total_seconds(),
        )
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return dt.timedelta(seconds=seconds * (1 + spread))


DEFAULT_LEASE = dt.timedelta(minutes=5)
"""How long a repost worker holds a claimed entry before another may take it."""


def _worker_id() -> str:
    """A repost worker's name: host, process and a random part (unique per run)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _provinces(config: BridgeConfig) -> list[ProvinceRate]:
    return [
        ProvinceRate(rate.province, gst=rate.gst, hst=rate.hst, pst=rate.pst)
        for rate in config.canadian_rates
    ]


def _addresses(order: Order) -> list[tuple[str, Address]]:
    """The addresses of an order that validation checks: ship-to, then distinct line ship-tos."""
    found = [(f"Order {order.number}: ship_to", order.ship_to)]
    for line in order.lines:
        if line.ship_to is not None and line.ship_to != order.ship_to:
            found.append(
                (f"Order {order.number}: line {line.engine_number}: ship_to", line.ship_to)
            )
    return found


def _claim_addresses(claim: Claim) -> list[tuple[str, Address]]:
    """The addresses a claim brings (an allocated claim uses its invoice's, already checked)."""
    return [
        (name, address)
        for name, address in (("ship_from", claim.ship_from), ("ship_to", claim.ship_to))
        if address is not None and not claim.allocated
    ]


def _stored_lines(lines: tuple[LineTax, ...]) -> tuple[LineTax, ...]:
    """Lines as a document stores them: per-line jurisdiction details are left to the engine
    (the document keeps the per-jurisdiction summary), so a returned document equals its stored
    copy and a large invoice is not held five objects per line."""
    if not any(line.details for line in lines):
        return lines
    return tuple(
        LineTax(
            line.number, line.amount, line.taxable, line.exempt, line.tax, line.tax_code, line.rate
        )
        for line in lines
    )


def _may_have_landed(exc: BackendError) -> bool:
    """Whether a failed posting may still have reached the engine (and so may be committed)."""
    return not (isinstance(exc, BackendUnavailable) and not exc.sent)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TaxBridge:
    """Tax for an ERP's order lifecycle over a pluggable backend and a durable store."""

    def __init__(
        self,
        config: BridgeConfig,
        backend: TaxBackend,
        store: Store,
        *,
        offline: OfflineTable | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
        retry: RetryPolicy | None = None,
    ):
        self.config = config
        self.backend = backend
        self.store = store
        self.clock = clock
        self.retry = retry or RetryPolicy()
        self._active_codes: frozenset[str] | None = store.active_tax_codes()
        self._nexus_cache: dict[str, frozenset[str]] = {}
        self._context = Context(nexus=self._nexus_for, exemptions=self._exemptions_for)
        self.offline = offline or self._offline_table(store.offline_rates())
        # With the offline table itself as the backend, every result is blank and none is posted.
        self.offline_only = isinstance(backend, OfflineTable)
        if self.offline_only and offline is None:
            self.offline = cast(OfflineTable, backend)
        if offline is None and not len(self.offline.rates):
            try:
                self._seed_offline_rates()
            except BackendError as exc:
                _log.warning("taxbridge.offline.seed_failed", error=str(exc))

    @classmethod
    def from_config(cls, path: str | Path) -> TaxBridge:
        """Build a bridge from a TOML file: its backend and its SQLite store."""
        return cls.from_settings(load_config(path))

    @classmethod
    def from_settings(cls, config: BridgeConfig) -> TaxBridge:
        """Build a bridge, its backend and its SQLite store from a config object."""
        backend: TaxBackend
        if config.backend is BackendKind.AVATAX and config.avatax is not None:
            # first: a missing credential fails before anything is opened
            backend = AvaTaxBackend(config.avatax)
            return cls(config, backend, SQLiteStore(config.store_path))
        store = SQLiteStore(config.store_path)
        if config.backend is BackendKind.OFFLINE:
            table = store.offline_rates()
            backend = OfflineTable(
                table if len(table) else shipped_rates().only(config.all_nexus_regions),
                rounding=config.rounding,
                provinces=_provinces(config),
            )
        else:
            backend = LocalEngine(rounding=config.rounding)
        return cls(config, backend, store)

    def close(self) -> None:
        """Close the backend and the store."""
        self.backend.close()
        self.store.close()

    def __enter__(self) -> TaxBridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- stages --------------------------------------------------------------------------------

    def on_entry(self, order: Order, *, program: str | None = None) -> TaxDocument:
        """Order entry: the engine if online-at-entry is on (N), else the offline table (blank).

        With ``program`` (the ERP program calling), addresses are validated per
        TMSCRM/AV-DFN2 (bypass) and AV-DFN3 (hard error); other programs get a warning.
        """
        return self._estimate(
            Stage.ENTRY, order, online=self.config.online_at_entry, program=program
        )[0]

    def on_pending_check(self, order: Order, *, program: str | None = None) -> PendingCheck:
        """Pending check: recalculate and say why the order must pend.

        Runs the checks the pending rules switch on for orders (TMSDS/PEND-DOC, PEND-DO2): tax
        validation (BNO155B), exemption expiry (BNW150C), obsolete tax codes (BNO155BT). A
        document that is already posted or invoiced is checked but never changed.
        """
        checks = self.config.pending.order_checks
        reasons: list[PendReason] = []
        document, rejection = self._estimate(
            Stage.PENDING_CHECK, order, online=True, program=program
        )
        if rejection is not None and PendCode.TAX_VALIDATION in checks:
            line = rejection.refers_to.partition("[")[2].rstrip("]").partition("]")[0] or None
            reasons.append(PendReason(PendCode.TAX_VALIDATION, str(rejection), line=line))
        if PendCode.EXEMPTION_EXPIRY in checks:
            reasons.extend(self._exemption_expiry(order.customer, order.ship_to.region))
        if PendCode.OBSOLETE_TAX_CODE in checks and document.request is not None:
            reasons.extend(self._obsolete_codes(document.request))
        return PendingCheck(document, tuple(reasons))

    def on_pick(self, order: Order, *, program: str | None = None) -> TaxDocument:
        """Pick confirmation: recalculate (short picks change quantities)."""
        return self._estimate(Stage.PICK, order, online=True, program=program)[0]

    def on_despatch(self, order: Order, *, program: str | None = None) -> TaxDocument:
        """Despatch confirmation: recalculate."""
        return self._estimate(Stage.DESPATCH, order, online=True, program=program)[0]

    def on_invoice(self, invoice: Invoice, *, program: str | None = None) -> TaxDocument:
        """Invoicing, the final call: post ``A-<number>`` (Y), or store it U and queue it.

        Calling it again for a posted invoice returns the stored document and posts nothing.
        An invoice whose transaction group does not interface (BNADS/AV-NX1) is calculated
        offline and never posted.
        """
        request = invoice_request(self.config, invoice, self._context)
        note = self._check_addresses(
            [address for order in invoice.orders for address in _addresses(order)], program
        )
        return self._post_final(
            Stage.INVOICE,
            request,
            interfaces=all(self.config.interfaces(o.transaction_group) for o in invoice.orders),
            note=note,
            invoiced=InvoiceLink(
                request.code, tuple(order.code for order in invoice.orders), self.clock()
            ),
            orders=tuple(order.number for order in invoice.orders),
            erp_company=invoice.orders[0].company,
        )

    def _post_final(
        self,
        stage: Stage,
        request: TaxRequest,
        *,
        interfaces: bool,
        note: str = "",
        invoiced: InvoiceLink | None = None,
        orders: tuple[str, ...] = (),
        erp_company: str = "",
        credits: CreditAllocation | None = None,
        offline_first: bool = False,
    ) -> TaxDocument:
        """The final call of an invoice or a claim: post (Y), or store U and queue it; a
        posted document is returned as stored, a U one is reposted."""
        started = time.perf_counter()
        head = self.store.head(request.code)
        if head is not None and head.flag.is_final:
            existing = self._require(request.code)
            self._emit(stage, "already_posted", existing, existing.flag, started)
            return existing
        if head is not None and head.flag is FinalTaxFlag.FAILED:
            return self._repost_document(
                self._require(request.code), request, stage, credits=credits
            )

        flag_before = head.flag if head else None
        enqueue: QueueEntry | None = None
        if all(line.excluded for line in request.lines):
            result, flag, outcome = self._zero_result(request), FinalTaxFlag.EXCLUDED, "excluded"
            message = "excluded: ship-to outside the nexus regions; not posted"
        elif self.offline_only or not interfaces:
            result, offline_note = self._offline_estimate(request)
            flag, outcome = FinalTaxFlag.OFFLINE, "estimated"
            why = "offline table only" if self.offline_only else "transaction group not interfaced"
            message = f"{why}: calculated offline, not posted{offline_note}"
        else:
            first = ""
            estimate = self._offline_estimate(request) if offline_first else None
            if estimate is not None:
                first = f"offline estimate {estimate[0].total_tax}{estimate[1]}; "
            try:
                result, found = self._post(request)
                flag, outcome = FinalTaxFlag.POSTED, "posted"
                how = "found already committed at" if found else "posted to"
                message = f"{first}{how} {self.backend.name}: tax {result.total_tax}"
                if offline_first:
                    message += " (replaces the offline figure)"
            except BackendError as exc:
                result, offline_note = estimate or self._offline_estimate(request)
                flag, outcome = FinalTaxFlag.FAILED, "failed"
                message = f"posting failed: {exc}; queued for reposting{offline_note}"
                now = self.clock()
                enqueue = QueueEntry(
                    code=request.code,
                    attempts=1,
                    next_attempt_at=now,
                    last_error_code=exc.error_code or type(exc).__name__,
                    last_error_message=str(exc),
                    retryable=exc.retryable,
                    created_at=now,
                    updated_at=now,
                    may_have_landed=_may_have_landed(exc),
                )
        doc = self._document(
            request,
            result,
            stage,
            flag,
            flag_before,
            note + message,
            orders=orders,
            erp_company=erp_company,
        )
        self._save(
            doc,
            flag_before,
            enqueue=enqueue,
            invoiced=invoiced,
            error=enqueue is not None,
            credits=credits,
        )
        if enqueue is not None:
            self._emit(stage, outcome, doc, flag_before, started, error=message)
        else:
            self._emit(stage, outcome, doc, flag_before, started)
        return doc

    # -- claims --------------------------------------------------------------------------------

    def on_claim_pending(
        self, claim: Claim, *, update: bool = False, program: str | None = None
    ) -> PendingCheck:
        """Claims pending check (BNO155B): why the claim must pend before approval.

        With ``update`` (BNO155BC) the tax is also calculated and the claim's tax document
        stored (N, or blank offline), so the tax shows on the claim before it is approved.
        Runs the checks the pending rules switch on for claims (TMSAR/PEND-DOC, PEND-DO2).
        A claim already invoiced (posted or U) is checked but never changed.
        """
        checks = self.config.pending.claim_checks
        request, _ = self._claim_request(claim, estimate=True)
        interfaces = self.config.interfaces(claim.transaction_group)
        note = self._check_addresses(_claim_addresses(claim), program)
        head = self.store.head(request.code)
        settled = head is not None and (head.flag.is_final or head.flag is FinalTaxFlag.FAILED)
        rejection: DocumentRejected | None = None
        document: TaxDocument | None
        if update and not settled:
            document, rejection = self._calculate_and_store(
                Stage.CLAIM_PENDING,
                request,
                head.flag if head else None,
                interfaces,
                note=note,
            )
        else:
            document = self.store.get(request.code)
            if PendCode.TAX_VALIDATION in checks and interfaces and not self.offline_only:
                rejection = self._validate(request)
        reasons: list[PendReason] = []
        if rejection is not None and PendCode.TAX_VALIDATION in checks:
            reasons.append(PendReason(PendCode.TAX_VALIDATION, str(rejection)))
        if PendCode.EXEMPTION_EXPIRY in checks and not claim.allocated and claim.ship_to:
            reasons.extend(self._exemption_expiry(claim.customer, claim.ship_to.region))
        if PendCode.OBSOLETE_TAX_CODE in checks:
            reasons.extend(self._obsolete_codes(request))
        return PendingCheck(document, tuple(reasons))

    def claim_inquiry(self, claim: Claim) -> Inquiry:
        """Claims inquiry: calculate the claim's tax now and update its tax document (never
        posts). A claim already invoiced is shown as stored."""
        request, _ = self._claim_request(claim, estimate=True)
        head = self.store.head(request.code)
        if head is None or not (head.flag.is_final or head.flag is FinalTaxFlag.FAILED):
            self._calculate_and_store(
                Stage.CLAIM_INQUIRY,
                request,
                head.flag if head else None,
                self.config.interfaces(claim.transaction_group),
            )
        return self.inquiry(request.code)

    def on_claim_invoice(self, claim: Claim, *, program: str | None = None) -> TaxDocument:
        """Claims invoicing: post the credit as a ReturnInvoice ``B-<number>`` (Y), or store
        it U and queue it, exactly as an invoice.

        Allocated to an invoice, it is taxed at the invoice's date, addresses and exemption,
        its lines pro rata to the tax those invoice lines were charged; otherwise it is first
        calculated offline with the customer's exemptions, and the engine's figure replaces that.
        """
        request, credited = self._claim_request(claim)
        note = self._check_addresses(_claim_addresses(claim), program)
        credits = (
            CreditAllocation(claim.code, claim.invoice_code, credited)
            if claim.invoice_code is not None
            else None
        )
        return self._post_final(
            Stage.CLAIM_INVOICE,
            request,
            interfaces=self.config.interfaces(claim.transaction_group),
            note=note,
            erp_company=claim.company,
            credits=credits,
            offline_first=not claim.allocated,
        )

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

        The claim number defaults to the invoice's number; invoice it with
        :meth:`on_claim_invoice`.
        """
        original = self._require(invoice_code)
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
        credited = self.store.credited(invoice_code)
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
            claim_date=claim_date or self.clock().date(),
            lines=tuple(claim_lines),
            invoice_code=invoice_code,
            currency=original.currency,
        )

    def _claim_request(
        self, claim: Claim, *, estimate: bool = False
    ) -> tuple[TaxRequest, tuple[CreditedLine, ...]]:
        """The claim's request, worked out against its invoice as stored (and as credited by
        other claims) when it is allocated to one."""
        if claim.invoice_code is None:
            return claim_request(self.config, claim, self._context, estimate=estimate)
        original = self.store.get(claim.invoice_code)
        if original is None:
            raise DocumentNotFoundError(claim.invoice_code)
        if original.kind is not DocumentKind.INVOICE:
            raise InvalidFieldError(
                "Claim", "invoice_code", claim.invoice_code, "is not an invoice"
            )
        done = self.store.credited(claim.invoice_code, excluding=claim.code)
        return claim_request(
            self.config,
            claim,
            self._context,
            original=original,
            credited=lambda line: done.get(line, (ZERO, ZERO)),
            estimate=estimate,
        )

    def _validate(self, request: TaxRequest) -> DocumentRejected | None:
        """Ask the engine to calculate an estimate: its refusal, if it refuses (an outage
        validates nothing and is logged)."""
        try:
            self.backend.calculate(request)
        except DocumentRejected as exc:
            return exc
        except BackendError as exc:
            # An outage cannot validate the document; the check reports nothing new.
            _log.warning("taxbridge.pending_check.unavailable", code=request.code, error=str(exc))
        return None

    def _obsolete_codes(self, request: TaxRequest) -> list[PendReason]:
        """BNO155BT: lines whose tax code is not in the engine's active list."""
        active = self._active_tax_codes()
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

    # -- quotations ----------------------------------------------------------------------------

    def quote(self, quotation: Quotation) -> Quote:
        """The tax of a customer quotation (seed 004), calculated and never saved: sent as an
        estimate the engine does not keep, and nothing written to the store.

        An engine that cannot be reached gives the offline table's figure (``source`` says
        which); one that rejects the quotation raises :class:`DocumentRejected`.
        """
        started = time.perf_counter()
        request = quotation_request(self.config, quotation, self._context, self.clock().date())
        note = ""
        if all(line.excluded for line in request.lines):
            result, source = self._zero_result(request), "excluded"
            note = "excluded: ship-to outside the nexus regions; no engine call"
        elif self.offline_only:
            result, note = self._offline_estimate(request)
            source = "offline"
        else:
            try:
                result, source = self.backend.calculate(request), "engine"
            except BackendUnavailable as exc:
                result, offline_note = self._offline_estimate(request)
                source, note = "offline", f"engine unavailable ({exc}){offline_note}"
        _log.info(
            "taxbridge.quote.calculated",
            code=request.code,
            stage="quote",
            source=source,
            backend=self.backend.name,
            tax=str(result.total_tax),
            elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        return Quote(request, result, source, note)

    def recalculate(self, code: str) -> TaxDocument:
        """Recal: calculate a blank or N document again with the engine."""
        existing = self._require(code)
        check_recalculable(existing.flag, code=code)
        if existing.request is None:
            raise DocumentNotFoundError(code)
        return self._calculate_and_store(Stage.RECALCULATE, existing.request, existing.flag, True)[
            0
        ]

    def inquiry(self, code: str) -> Inquiry:
        """Transaction inquiry: the document with its breakdown, flag and log."""
        return Inquiry(self._require(code), tuple(self.store.events(code)))

    # -- unposted ------------------------------------------------------------------------------

    def unposted(self) -> list[TaxDocument]:
        """Documents with flag U, in code order."""
        return self.store.documents(flags=[FinalTaxFlag.FAILED])

    def repost(
        self,
        code: str | None = None,
        *,
        limit: int | None = None,
        concurrency: int = 1,
        dry_run: bool = False,
        worker: str | None = None,
        lease: dt.timedelta = DEFAULT_LEASE,
        progress: Callable[[str, str], None] | None = None,
    ) -> RepostSummary:
        """The scheduled job: repost due U documents (or just ``code``): U -> R, or stay U.

        Entries are claimed with a lease in the store, a batch at a time, so several processes
        or threads running this at once never take the same document; an entry whose worker
        died is taken again once its lease runs out, and the lookup-before-post rule makes that
        safe. Entries that need a fix are reposted only when asked for by ``code``.
        ``progress(code, outcome)`` is called after each document.
        """
        if limit is not None and limit < 1:
            raise InvalidFieldError("repost", "limit", limit, "must be at least 1")
        if concurrency < 1:
            raise InvalidFieldError("repost", "concurrency", concurrency, "must be at least 1")
        holder = worker or _worker_id()
        needs_fix = tuple(e.code for e in self.store.queue(needs_fix=True)) if code is None else ()
        if code is not None:
            document = self._require(code)
            if document.flag is not FinalTaxFlag.FAILED:
                raise InvalidTransition(
                    document.flag, FinalTaxFlag.REPOSTED, code=code, action="repost"
                )
        if dry_run:
            due = (
                [code]
                if code is not None
                else [e.code for e in self.store.queue(due_at=self.clock(), needs_fix=False)]
            )
            return RepostSummary((), (), needs_fix, due=tuple(due[:limit]))
        outcomes: dict[str, list[str]] = {"reposted": [], "failed": [], "taken_over": []}

        def one(entry: QueueEntry) -> None:
            document = self._require(entry.code)
            if document.request is None:
                raise DocumentNotFoundError(entry.code)
            try:
                after = self._repost_document(
                    document, document.request, Stage.REPOST, holder=holder, entry=entry
                )
                outcome = "reposted" if after.flag is FinalTaxFlag.REPOSTED else "failed"
            except LeaseLost:
                outcome = "taken_over"
            outcomes[outcome].append(entry.code)
            if progress is not None:
                progress(entry.code, outcome)

        # Each thread takes its next entry from a shared batch; the thread that finds the batch
        # empty claims the next one. A batch holds a few entries per thread, under one lease.
        batch: deque[QueueEntry] = deque()
        claiming = threading.Lock()
        remaining = limit
        exhausted = False

        def next_entry() -> QueueEntry | None:
            nonlocal remaining, exhausted
            with claiming:
                if not batch and not exhausted:
                    take = concurrency * 4 if remaining is None else min(concurrency * 4, remaining)
                    claimed = self.store.claim(
                        holder, now=self.clock(), lease=lease, limit=take, code=code
                    )
                    if code is not None and not claimed:
                        outcomes["taken_over"].append(code)
                    if remaining is not None:
                        remaining -= len(claimed)
                    exhausted = not claimed or code is not None or remaining == 0
                    batch.extend(claimed)
                return batch.popleft() if batch else None

        def drain() -> None:
            while (entry := next_entry()) is not None:
                one(entry)

        if concurrency == 1:
            drain()
        else:
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                for future in [pool.submit(drain) for _ in range(concurrency)]:
                    future.result()
        return RepostSummary(
            tuple(sorted(outcomes["reposted"])),
            tuple(sorted(outcomes["failed"])),
            needs_fix,
            taken_over=tuple(sorted(outcomes["taken_over"])),
        )

    def purge(self, older_than: dt.timedelta) -> int:
        """Delete queue history settled more than ``older_than`` ago; U entries always stay."""
        if older_than < dt.timedelta(0):
            raise InvalidFieldError("purge", "older_than", older_than, "must not be negative")
        return self.store.purge(self.clock() - older_than)

    def mark_manual(self, code: str, reason: str, user: str) -> TaxDocument:
        """A U document was posted by hand outside the ERP: U -> M, with who and why logged."""
        started = time.perf_counter()
        document = self._require(code)
        check_transition(document.flag, FinalTaxFlag.MANUAL, code=code, action="mark manual")
        if not reason.strip() or not user.strip():
            raise InvalidTransition(
                document.flag,
                FinalTaxFlag.MANUAL,
                code=code,
                action="mark manual without reason/user",
            )
        now = self.clock()
        message = f"posted manually outside the ERP by {user}: {reason}"
        updated = attrs.evolve(
            document,
            flag=FinalTaxFlag.MANUAL,
            stage=Stage.MANUAL,
            last_log=message,
            updated_at=now,
        )
        event = DocumentEvent(
            code, now, Stage.MANUAL, document.flag, FinalTaxFlag.MANUAL, document.backend, message
        )
        self.store.save([updated], [event], dequeue=code)
        self._emit(Stage.MANUAL, "marked_manual", updated, document.flag, started, user=user)
        return updated

    # -- offline table -------------------------------------------------------------------------

    def refresh(self, as_of: dt.date | None = None) -> RefreshSummary:
        """End-of-day / end-of-month refresh from the backend, in one transaction.

        Pulls the active tax codes (BNADS/AV-TC2), the entity use codes (AV-EX1), each
        company's nexus (AV-NX3; added to the configured regions) and the offline rates of the
        nexus regions only. A failure anywhere raises and leaves yesterday's tables in place.
        """
        day = as_of or self.clock().date()
        backend = self.backend
        tax_codes = backend.active_tax_codes() if isinstance(backend, TaxCodeCatalog) else None
        entity_use_codes = (
            backend.entity_use_codes() if isinstance(backend, EntityUseCodeCatalog) else None
        )
        companies = sorted({mapping.company_code for mapping in self.config.companies})
        nexus = (
            {company: backend.company_nexus(company) for company in companies}
            if isinstance(backend, NexusCatalog)
            else None
        )
        regions = set(self.config.all_nexus_regions)
        for found in (nexus or {}).values():
            regions |= found
        us_regions = {region for region in regions if region not in CANADIAN_PROVINCES}
        rates: RateTable | None
        if isinstance(backend, RateDownload):
            rates = backend.tax_rates_by_zip(sorted(us_regions), day)
        elif not len(self.offline.rates):
            rates = shipped_rates().only(us_regions)
        else:
            rates = None
        self.store.replace_reference(
            ReferenceData(
                as_of=day,
                tax_codes=tax_codes,
                entity_use_codes=entity_use_codes,
                nexus=nexus,
                rates=rates,
            )
        )
        self._nexus_cache.clear()
        if tax_codes is not None:
            self._active_codes = tax_codes
        if rates is not None and not self.offline_only:
            self.offline = self._offline_table(rates)
        summary = RefreshSummary(
            as_of=day,
            tax_codes=len(tax_codes) if tax_codes is not None else None,
            entity_use_codes=len(entity_use_codes) if entity_use_codes is not None else None,
            nexus={company: tuple(sorted(found)) for company, found in (nexus or {}).items()},
            rate_regions=tuple(sorted(rates.regions)) if rates is not None else (),
            rate_rows=len(rates) if rates is not None else 0,
        )
        _log.info("taxbridge.refresh.done", as_of=day.isoformat(), rows=summary.rate_rows)
        return summary

    def _seed_offline_rates(self) -> None:
        """A first offline table for the configured nexus regions, before any refresh."""
        regions = sorted(r for r in self.config.all_nexus_regions if r not in CANADIAN_PROVINCES)
        if isinstance(self.backend, RateDownload):
            rates = self.backend.tax_rates_by_zip(regions)
        else:
            rates = shipped_rates().only(regions)
        self.store.replace_reference(ReferenceData(rates=rates))
        if not self.offline_only:
            self.offline = self._offline_table(rates)

    # -- exemption database (BNW150) -----------------------------------------------------------

    def add_exemption(self, exemption: Exemption) -> None:
        """Add (or replace) a customer exemption for a region and period."""
        self.store.save_exemption(exemption)

    def remove_exemption(self, customer_code: str, region: str, effective: dt.date) -> bool:
        """Remove a customer exemption; False when there was none."""
        return self.store.delete_exemption(customer_code, region, effective)

    def exemptions(self, customer_code: str | None = None) -> list[Exemption]:
        """The exemption database, for one customer or all."""
        return self.store.exemptions(customer_code)

    # -- internals -----------------------------------------------------------------------------

    def _require(self, code: str) -> TaxDocument:
        document = self.store.get(code)
        if document is None:
            raise DocumentNotFoundError(code)
        return document

    def _offline_table(self, rates: RateTable) -> OfflineTable:
        return OfflineTable(rates, rounding=self.config.rounding, provinces=_provinces(self.config))

    def _nexus_for(self, company_code: str) -> frozenset[str]:
        """Configured nexus regions plus those the last refresh found at the engine."""
        found = self._nexus_cache.get(company_code)
        if found is None:
            found = self.config.nexus_regions(company_code) | self.store.nexus(company_code)
            self._nexus_cache[company_code] = found
        return found

    def _exemptions_for(self, customer_code: str) -> list[Exemption]:
        if self.config.exemptions.mode is not ExemptionMode.LOCAL:
            return []
        return self.store.exemptions(customer_code)

    def _check_addresses(
        self, addresses: Sequence[tuple[str, Address]], program: str | None
    ) -> str:
        """Address validation for ``program`` (TMSCRM/AV-DFN2 bypass, AV-DFN3 hard error).

        Returns a note for the document's log: blank when valid or not checked, a warning with
        a temporary override otherwise. A hard-error program raises InvalidAddressError.
        """
        rules = self.config.address_validation
        if (
            program is None
            or program in rules.bypass_programs
            or not isinstance(self.backend, AddressResolver)
        ):
            return ""
        for field, address in addresses:
            try:
                self.backend.resolve_address(address)
            except DocumentRejected as exc:
                if program in rules.hard_error_programs:
                    raise InvalidAddressError(field, program, exc.message) from exc
                return (
                    f"address warning ({program}): {field}: {exc.message}; "
                    "continued with a temporary override; "
                )
            except BackendError as exc:
                return f"address not validated ({program}): engine unavailable ({exc.message}); "
        return ""

    def _exemption_expiry(self, customer: Customer, region: str) -> list[PendReason]:
        """BNW150C: the customer's exemption for the ship-to region expired or expires soon."""
        if self.config.exemptions.mode is not ExemptionMode.LOCAL or customer.tax_number:
            return []
        today = self.clock().date()
        horizon = today + dt.timedelta(days=self.config.pending.expiry_warning_days)
        entries = [e for e in self.store.exemptions(customer.code) if e.region == region]
        current = [e for e in entries if e.valid_on(today)]
        if current:
            ending = [e.expiry for e in current if e.expiry is not None]
            if len(ending) == len(current) and max(ending) <= horizon:
                when = max(ending).isoformat()
                return [
                    PendReason(
                        PendCode.EXEMPTION_EXPIRY,
                        f"customer {customer.code}: exemption in {region} expires on {when}",
                        customer=customer.code,
                    )
                ]
            return []
        expired = [e.expiry for e in entries if e.expiry is not None and e.expiry < today]
        if expired:
            return [
                PendReason(
                    PendCode.EXEMPTION_EXPIRY,
                    f"customer {customer.code}: exemption in {region} "
                    f"expired on {max(expired).isoformat()}",
                    customer=customer.code,
                )
            ]
        return []

    def _active_tax_codes(self) -> frozenset[str] | None:
        """The active list: refreshed from the engine, else configured, else asked for."""
        if self._active_codes is None and self.config.tax_codes.active:
            self._active_codes = self.config.tax_codes.active
        if self._active_codes is None and isinstance(self.backend, TaxCodeCatalog):
            try:
                self._active_codes = self.backend.active_tax_codes()
            except BackendError:
                return None
        return self._active_codes

    def _estimate(
        self, stage: Stage, order: Order, *, online: bool, program: str | None
    ) -> tuple[TaxDocument, DocumentRejected | None]:
        request = order_request(self.config, order, self._context)
        interfaces = self.config.interfaces(order.transaction_group)
        note = self._check_addresses(_addresses(order), program)
        head = self.store.head(request.code)
        if head is not None and (head.invoice_code or head.flag.is_final):
            # Invoiced or posted: the check may run, but nothing about the document changes.
            started = time.perf_counter()
            rejection = None
            if stage is Stage.PENDING_CHECK:
                rejection = self._validate(request)
            existing = self._require(request.code)
            self._emit(stage, "unchanged", existing, existing.flag, started)
            return existing, rejection
        flag_before = head.flag if head else None
        if not interfaces:
            note += f"transaction group {order.transaction_group!r} is not interfaced; "
        return self._calculate_and_store(
            stage, request, flag_before, online and interfaces, note=note
        )

    def _calculate_and_store(
        self,
        stage: Stage,
        request: TaxRequest,
        flag_before: FinalTaxFlag | None,
        online: bool,
        *,
        note: str = "",
    ) -> tuple[TaxDocument, DocumentRejected | None]:
        started = time.perf_counter()
        rejection: DocumentRejected | None = None
        error = False
        if all(line.excluded for line in request.lines):
            result, flag = self._zero_result(request), FinalTaxFlag.EXCLUDED
            message, outcome = (
                "excluded: ship-to outside the nexus regions; no engine call",
                "excluded",
            )
        elif not online or self.offline_only:
            result, offline_note = self._offline_estimate(request)
            flag, message, outcome = (
                FinalTaxFlag.OFFLINE,
                f"offline estimate{offline_note}",
                "estimated",
            )
            error = bool(offline_note)
        else:
            try:
                result = self.backend.calculate(request)
                flag = FinalTaxFlag.CALCULATED
                message = f"calculated by {self.backend.name}: tax {result.total_tax}"
                outcome = "calculated"
            except BackendError as exc:
                if isinstance(exc, DocumentRejected):
                    rejection = exc
                result, offline_note = self._offline_estimate(request)
                flag, outcome, error = FinalTaxFlag.OFFLINE, "degraded", True
                kind = "rejected the document" if rejection else "unavailable"
                message = f"engine {kind} ({exc}); offline estimate{offline_note}"
        check_transition(flag_before, flag, code=request.code, action=stage.value)
        doc = self._document(request, result, stage, flag, flag_before, note + message)
        self._save(doc, flag_before, error=error)
        self._emit(stage, outcome, doc, flag_before, started)
        return doc, rejection

    def _post(self, request: TaxRequest) -> tuple[TaxResult, bool]:
        """Post once: a code the engine already committed is looked up, never posted again.

        Returns the result and whether it was found committed rather than posted now.
        """
        try:
            return self.backend.calculate(request), False
        except AlreadyCommitted:
            found = self._lookup(request)
            if found is None:
                raise
            return found, True

    def _lookup(self, request: TaxRequest) -> TaxResult | None:
        if not isinstance(self.backend, DocumentRegister):
            return None
        found = self.backend.get_document(request.company_code, request.code, request.document_type)
        if found is not None and found.status is DocumentStatus.COMMITTED:
            # An engine answers with the lines it was sent; those outside nexus come back zero.
            return merge_excluded(request, found)
        return None

    def _repost_document(
        self,
        document: TaxDocument,
        request: TaxRequest,
        stage: Stage,
        *,
        holder: str | None = None,
        entry: QueueEntry | None = None,
        credits: CreditAllocation | None = None,
    ) -> TaxDocument:
        """Ask the engine whether an earlier attempt landed; post only if it did not.

        The question is skipped only when no earlier attempt can have reached the engine; a
        post of a code the engine has committed after all is refused and looked up then.
        """
        started = time.perf_counter()
        now = self.clock()
        if entry is None:
            entry = self.store.queue_entry(document.code)
        attempts = (entry.attempts if entry else 0) + 1
        uncertain = entry is None or entry.may_have_landed
        try:
            result = self._lookup(request) if uncertain else None
            landed = result is not None
            if result is None:
                result, landed = self._post(request)
        except BackendError as exc:
            message = f"repost attempt {attempts} failed: {exc}"
            updated = attrs.evolve(
                document, stage=stage, last_log=message, updated_at=now, request=request
            )
            retry_entry = QueueEntry(
                code=document.code,
                attempts=attempts,
                next_attempt_at=now + self.retry.delay(attempts - 1),
                last_error_code=exc.error_code or type(exc).__name__,
                last_error_message=str(exc),
                retryable=exc.retryable,
                created_at=entry.created_at if entry else now,
                updated_at=now,
                may_have_landed=uncertain or _may_have_landed(exc),
            )
            event = DocumentEvent(
                document.code,
                now,
                stage,
                document.flag,
                FinalTaxFlag.FAILED,
                self.backend.name,
                message,
                error=True,
            )
            self.store.save([updated], [event], enqueue=retry_entry, holder=holder, credits=credits)
            self._emit(stage, "repost_failed", updated, document.flag, started, error=str(exc))
            return updated
        check_transition(document.flag, FinalTaxFlag.REPOSTED, code=document.code, action="repost")
        how = "found already committed at" if landed else "reposted to"
        message = f"{how} {self.backend.name}: tax {result.total_tax}"
        if result.total_tax != document.total_tax:
            message += f" (the invoice carried {document.total_tax})"
        updated = self._document(
            request, result, stage, FinalTaxFlag.REPOSTED, document.flag, message, base=document
        )
        event = DocumentEvent(
            document.code,
            now,
            stage,
            document.flag,
            FinalTaxFlag.REPOSTED,
            self.backend.name,
            message,
        )
        self.store.save([updated], [event], dequeue=document.code, holder=holder, credits=credits)
        self._emit(stage, "reposted", updated, document.flag, started)
        return updated

    def _offline_estimate(self, request: TaxRequest) -> tuple[TaxResult, str]:
        """The offline table's figure, or zero tax with a note when it has no rate either."""
        try:
            return self.offline.calculate(request), ""
        except DocumentRejected as exc:
            return self._zero_result(request), f"; no offline rate ({exc.message}), tax 0"

    def _zero_result(self, request: TaxRequest) -> TaxResult:
        lines = tuple(
            LineTax(
                line.number,
                line.amount - line.discount,
                ZERO,
                line.amount - line.discount,
                ZERO_CENTS,
                line.tax_code,
            )
            for line in request.lines
        )
        total = sum((line.amount for line in lines), ZERO)
        return TaxResult(
            code=request.code,
            document_type=request.document_type,
            status=DocumentStatus.TEMPORARY,
            date=request.date,
            total_amount=total,
            total_taxable=ZERO,
            total_exempt=total,
            total_tax=ZERO_CENTS,
            lines=lines,
            tax_date=request.tax_date or request.date,
            backend="none",
        )

    def _document(
        self,
        request: TaxRequest,
        result: TaxResult,
        stage: Stage,
        flag: FinalTaxFlag,
        flag_before: FinalTaxFlag | None,
        message: str,
        *,
        orders: tuple[str, ...] = (),
        erp_company: str = "",
        base: TaxDocument | None = None,
    ) -> TaxDocument:
        check_transition(flag_before, flag, code=request.code, action=stage.value)
        if request.document_type in (DocumentType.RETURN_ORDER, DocumentType.RETURN_INVOICE):
            kind = DocumentKind.CREDIT
        else:
            kind = DocumentKind.INVOICE if request.document_type.is_saved else DocumentKind.ORDER
        if base is not None:
            orders = orders or base.orders
            erp_company = erp_company or base.erp_company
        if not erp_company:
            erp_company = self._erp_company(request.company_code)
        return TaxDocument(
            code=request.code,
            kind=kind,
            stage=stage,
            flag=flag,
            erp_company=erp_company,
            company_code=request.company_code,
            customer_code=request.customer_code,
            document_type=request.document_type,
            document_date=request.date,
            currency=request.currency,
            total_amount=result.total_amount,
            total_taxable=result.total_taxable,
            total_exempt=result.total_exempt,
            total_tax=result.total_tax,
            lines=_stored_lines(result.lines),
            breakdown=result.summary,
            backend=result.backend or self.backend.name,
            last_log=message,
            updated_at=self.clock(),
            tax_date=result.tax_date,
            request=request,
            orders=orders,
            invoice_code=base.invoice_code if base else None,
        )

    def _erp_company(self, company_code: str) -> str:
        for mapping in self.config.companies:
            if mapping.company_code == company_code:
                return mapping.erp_company
        return ""

    def _save(
        self,
        doc: TaxDocument,
        flag_before: FinalTaxFlag | None,
        *,
        enqueue: QueueEntry | None = None,
        invoiced: InvoiceLink | None = None,
        error: bool = False,
        credits: CreditAllocation | None = None,
    ) -> None:
        event = DocumentEvent(
            doc.code,
            doc.updated_at,
            doc.stage,
            flag_before,
            doc.flag,
            doc.backend,
            doc.last_log,
            error=error,
        )
        self.store.save([doc], [event], enqueue=enqueue, invoiced=invoiced, credits=credits)

    def _emit(
        self,
        stage: Stage,
        outcome: str,
        doc: TaxDocument,
        flag_before: FinalTaxFlag | None,
        started: float,
        **fields: object,
    ) -> None:
        log = _log.warning if outcome in {"failed", "repost_failed", "degraded"} else _log.info
        log(
            f"taxbridge.{stage.value}.{outcome}",
            code=doc.code,
            stage=stage.value,
            flag_before=None if flag_before is None else flag_before.value,
            flag_after=doc.flag.value,
            backend=self.backend.name,
            tax=str(doc.total_tax),
            elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
            **fields,
        )
