"""Final posting of invoices and credits, and the rule that posts each document exactly once.

The posting-once rule, whole and only here:

1. **A deterministic code.** A document is posted under its own code (``A-<invoice number>``,
   ``B-<claim number>``), never a random one, so "is it there?" always has an answer.
2. **Create, committed.** The backend creates the document with commit. It may send the create
   again after a transient failure: a create of a code the engine has already committed is
   refused, never committed twice (backends raise :class:`AlreadyCommitted`).
3. **Look up on any doubt before posting again.** When an earlier attempt may have reached the
   engine — its answer was lost, it failed after it was sent, or the worker making it lost its
   lease — the repost first asks the engine for the code (:func:`in_doubt`); a committed
   document found there *is* the answer.
4. **AlreadyCommitted is a question.** It is answered by the same lookup: the document is
   recorded as the engine holds it.
5. **A void at the engine settles it too.** A document the lookup finds voided (cancelled)
   was posted and then voided there: the void is recorded, and the code is never created again,
   which would undo the void.

Backends only create, look up and raise; the store only reports what happened to a queue entry.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal

import attrs
from attrs import frozen

from taxbridge.backends._calculate import merge_excluded
from taxbridge.backends.base import Capabilities, TaxBackend
from taxbridge.context import Effects, Outcome, Pending, Route, StageContext
from taxbridge.errors import (
    AlreadyCommitted,
    BackendError,
    ConcurrentChange,
    DocumentNotFoundError,
    LeaseLost,
    StoreError,
)
from taxbridge.flags import FinalTaxFlag
from taxbridge.lifecycle import order_addresses
from taxbridge.models import (
    DocumentKind,
    DocumentStatus,
    Invoice,
    Stage,
    TaxDocument,
    TaxRequest,
    TaxResult,
)
from taxbridge.money import ZERO_CENTS
from taxbridge.queue import DEFAULT_LEASE, RetryPolicy, worker_id
from taxbridge.rules import Context, invoice_request
from taxbridge.store.base import CreditAllocation, InvoiceLink, QueueEntry


@frozen
class Posted:
    """What posting once gave: the engine's document, and whether it was found there already
    (an earlier attempt, or another ERP server, had committed it) rather than posted now."""

    result: TaxResult
    found: bool

    @property
    def voided(self) -> bool:
        """Found voided at the engine: recorded as a void, never posted again."""
        return self.found and self.result.status is DocumentStatus.CANCELLED


@frozen
class Attempt:
    """A repost's engine call, made before anything is stored, so that a drain posts from
    many threads and records from one: the document, what was asked, and the engine's answer
    (``Posted``) or the error, with when it was made and whether the code was in doubt."""

    document: TaxDocument
    request: TaxRequest
    stage: Stage
    entry: QueueEntry | None
    doubt: bool
    at: dt.datetime
    started: float
    """``time.perf_counter()`` when the attempt began: the stage's elapsed ms count from it."""
    answer: Posted | BackendError


def in_doubt(entry: QueueEntry | None) -> bool:
    """Whether an earlier attempt may have reached the engine: nothing is known of it, one may
    have landed, or the entry was taken from a worker whose lease ran out mid-attempt."""
    return entry is None or entry.may_have_landed or entry.taken_over_from is not None


_SETTLED_AT_ENGINE = (DocumentStatus.COMMITTED, DocumentStatus.CANCELLED)


def look_up(backend: TaxBackend, request: TaxRequest) -> TaxResult | None:
    """The engine's committed or voided (cancelled) document of ``request.code``, or None
    (also when the backend keeps no documents). Lines the request kept from the engine (outside
    nexus) are put back."""
    register = Capabilities(backend).documents
    if register is None:
        return None
    found = register.get_document(request.company_code, request.code, request.document_type)
    if found is None or found.status not in _SETTLED_AT_ENGINE:
        return None
    return merge_excluded(request, found)


def post_once(backend: TaxBackend, request: TaxRequest, *, doubt: bool = False) -> Posted:
    """Post ``request`` (a saved type with commit) so that it is committed exactly once.

    With ``doubt`` the code is looked up first. A refusal because the code is already committed
    is answered by the lookup. Any other failure is raised: the caller queues the document, and
    its error says whether the attempt may have landed (``sent``).
    """
    if doubt:
        found = look_up(backend, request)
        if found is not None:
            return Posted(found, found=True)
    try:
        return Posted(backend.calculate(request), found=False)
    except AlreadyCommitted:
        found = look_up(backend, request)
        if found is None or found.status is not DocumentStatus.COMMITTED:
            raise
        return Posted(found, found=True)


def _how(posted: Posted, done: str) -> str:
    """How the engine's document was had, for the document's log."""
    if posted.voided:
        return "found voided (the void is recorded; not posted again) at"
    return "found already committed at" if posted.found else done


def _with_charged(document: TaxDocument, charged: Mapping[str, Decimal]) -> TaxDocument:
    """A credit's lines keeping what they give back of what the invoice charged (the engine's
    figure stays their ``tax``), and its charged total from them."""
    lines = tuple(
        attrs.evolve(line, charged=charged[line.number])
        if line.number in charged and charged[line.number] != line.tax
        else line
        for line in document.lines
    )
    total = sum((line.tax_charged for line in lines), ZERO_CENTS)
    return attrs.evolve(document, lines=lines, charged_tax=total)


def _voided(document: TaxDocument, message: str) -> TaxDocument:
    """A document the engine holds voided, recorded as a void (reports leave it out)."""
    return attrs.evolve(document, voided_at=document.updated_at, void_reason=message)


@contextmanager
def _said_when_committed(committed: Sequence[TaxDocument], unsaved: set[str]) -> Iterator[None]:
    """A store failure after the engine committed documents says so: nothing is lost, and
    invoicing or reposting them again looks each code up first (``unsaved`` remembers them)
    and adopts the engine's document instead of posting it twice."""
    try:
        yield
    except StoreError as exc:
        if not committed:
            raise
        unsaved.update(document.code for document in committed)
        first, more = committed[0], len(committed) - 1
        also = f", and {more} more with it," if more else ""
        raise StoreError(
            f"{first.code} is committed at {first.backend} (tax {first.total_tax}){also} "
            f"but could not be stored: {exc}; once the store is fixed, invoice or repost again "
            "and the engine's document is adopted, not posted twice",
            path=exc.path,
            busy=exc.busy,
        ) from exc


class Posting:
    """Invoicing and the final call of a claim: post (Y), or store U and queue it; repost."""

    def __init__(
        self,
        ctx: StageContext,
        retry: RetryPolicy,
        mapping: Context,
        *,
        lease: dt.timedelta = DEFAULT_LEASE,
    ):
        self._ctx = ctx
        self._retry = retry
        self._mapping = mapping
        self._lease = lease
        self._unsaved: set[str] = set()
        """Codes the engine committed but the store could not record: looked up first."""

    def on_invoice(self, invoice: Invoice, *, program: str | None = None) -> TaxDocument:
        """Invoicing, the final call: post ``A-<number>`` (Y), or store it U and queue it.

        Calling it again for a posted invoice returns the stored document and posts nothing.
        An invoice whose transaction group does not interface (BNADS/AV-NX1) is calculated
        offline and never posted.
        """
        ctx = self._ctx
        request = invoice_request(ctx.config, invoice, self._mapping)
        note = ctx.check_addresses(
            [address for order in invoice.orders for address in order_addresses(order)],
            program,
            request=request,
        )
        return self.post(
            Stage.INVOICE,
            request,
            interfaces=all(ctx.config.interfaces(o.transaction_group) for o in invoice.orders),
            note=note,
            invoiced=InvoiceLink(
                request.code, tuple(order.code for order in invoice.orders), ctx.clock()
            ),
            orders=tuple(order.number for order in invoice.orders),
            erp_company=invoice.orders[0].company,
        )

    def post(
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
        charged: Mapping[str, Decimal] | None = None,
    ) -> TaxDocument:
        """The final call of an invoice or a claim: post (Y), or store U and queue it; a
        posted document is returned as stored, a U one is reposted. ``offline_first`` records
        the offline estimate in the log before the engine's figure replaces it; ``charged``
        is what lines of a credit give back of what their invoice charged, by line number."""
        ctx = self._ctx
        started = time.perf_counter()
        head = ctx.store.head(request.code)
        if head is not None and head.flag.is_final:
            existing = ctx.require(request.code)
            ctx.emit(stage, Outcome.ALREADY_POSTED, existing, existing.flag, started)
            return existing
        if head is not None and head.flag is FinalTaxFlag.FAILED:
            return self._repost_for_the_erp(stage, request, credits, started)

        flag_before = head.flag if head else None
        enqueue: QueueEntry | None = None
        route = ctx.route(request, online=interfaces)
        if route is not Route.ENGINE:
            result, flag, outcome, offline_note = ctx.without_engine(request, route)
            why = (
                "offline table only"
                if ctx.reference.estimator_only
                else "transaction group not interfaced"
            )
            message = (
                f"{why}: calculated offline, not posted{offline_note}"
                if route is Route.OFFLINE
                else "excluded: ship-to outside the nexus regions; not posted"
            )
        else:
            first = ""
            ctx.check_books(f"posting {request.code}")
            estimate = ctx.offline_estimate(request) if offline_first else None
            if estimate is not None:
                first = f"offline estimate {estimate[0].total_tax}{estimate[1]}; "
            try:
                posted = post_once(ctx.backend, request, doubt=request.code in self._unsaved)
                result, flag, outcome = posted.result, FinalTaxFlag.POSTED, Outcome.POSTED
                how = _how(posted, "posted to")
                message = f"{first}{how} {ctx.backend.name}: tax {result.total_tax}"
                if offline_first and not posted.voided:
                    message += " (replaces the offline figure)"
            except BackendError as exc:
                result, offline_note = estimate or ctx.offline_estimate(request)
                flag, outcome = FinalTaxFlag.FAILED, Outcome.FAILED
                message = f"posting failed: {exc}; queued for reposting{offline_note}"
                enqueue = self._retry.entry(request.code, exc, ctx.clock())
        document = ctx.document(
            request, result, stage, flag, note + message, orders=orders, erp_company=erp_company
        )
        if result.status is DocumentStatus.CANCELLED and outcome is Outcome.POSTED:
            document = _voided(document, message)
        if charged:
            document = _with_charged(document, charged)
        committed = [document] if outcome is Outcome.POSTED else []
        with _said_when_committed(committed, self._unsaved):
            recorded = ctx.record(
                stage,
                document,
                flag_before,
                outcome,
                started=started,
                effects=Effects(
                    enqueue=enqueue,
                    invoiced=invoiced,
                    credits=credits,
                    log={"error": message} if enqueue is not None else None,
                ),
            )
        self._unsaved.discard(request.code)
        return recorded

    def _repost_for_the_erp(
        self,
        stage: Stage,
        request: TaxRequest,
        credits: CreditAllocation | None,
        started: float,
        *,
        doubt: bool = False,
    ) -> TaxDocument:
        """The ERP invoices a U document again: repost it as a queue worker would, under a
        lease of its own. While a repost worker holds the entry it is left to that worker, and
        a lease lost midway writes nothing: a document settled meanwhile is never reopened."""
        ctx = self._ctx
        ctx.check_books(f"reposting {request.code}")
        holder = f"{stage.value}:{worker_id()}"
        claimed = ctx.store.claim(holder, now=ctx.clock(), lease=self._lease, code=request.code)
        if not claimed:
            current = ctx.require(request.code)
            held = ctx.store.queue_entry(request.code)
            ctx.emit(
                stage,
                Outcome.UNCHANGED,
                current,
                current.flag,
                started,
                held_by=held.claimed_by if held else None,
            )
            return current
        try:
            return self.repost(
                ctx.require(request.code),
                request,
                stage,
                holder=holder,
                entry=claimed[0],
                credits=credits,
                doubt=doubt,
            )
        except LeaseLost as exc:
            current = ctx.require(request.code)
            ctx.emit(stage, Outcome.UNCHANGED, current, current.flag, started, lease=str(exc))
            return current

    def adopt(self, document: TaxDocument) -> TaxDocument:
        """The engine holds a U document committed (its answer was lost): record it R by the
        repost path, under a lease of its own and looking the code up first, so it is adopted
        as the engine holds it and never posted again."""
        if document.request is None:
            raise DocumentNotFoundError(document.code)
        return self._repost_for_the_erp(
            Stage.RECONCILE, document.request, None, time.perf_counter(), doubt=True
        )

    def attempt(
        self,
        document: TaxDocument,
        entry: QueueEntry | None,
        *,
        request: TaxRequest | None = None,
        stage: Stage = Stage.REPOST,
        doubt: bool = False,
    ) -> Attempt:
        """A repost's engine call alone, nothing stored, safe from many threads at once: post
        ``request`` (default the stored one) by the posting rule, looking the code up first
        when in doubt; a failure is kept in the attempt for :meth:`settle`, not raised."""
        if request is None:
            if document.request is None:
                raise DocumentNotFoundError(document.code)
            request = document.request
        started = time.perf_counter()
        doubt = doubt or in_doubt(entry) or document.code in self._unsaved
        answer: Posted | BackendError
        try:
            answer = post_once(self._ctx.backend, request, doubt=doubt)
        except BackendError as exc:
            answer = exc
        return Attempt(document, request, stage, entry, doubt, self._ctx.clock(), started, answer)

    def settle(
        self,
        attempt: Attempt,
        holder: str | None = None,
        *,
        credits: CreditAllocation | None = None,
    ) -> TaxDocument:
        """Record an attempt as ``holder``: R and off the queue, or still U with the next
        queue entry the retry schedule makes. A lease lost meanwhile writes nothing and
        raises :class:`LeaseLost`."""
        recorded = self._record([self._pending(attempt, holder, credits)])[0]
        if isinstance(recorded, LeaseLost):
            raise recorded
        return recorded

    def settle_all(
        self, attempts: Sequence[Attempt], holder: str | None = None
    ) -> list[TaxDocument | LeaseLost]:
        """Record several attempts as ``holder`` in one store call, each as :meth:`settle`
        would: per attempt the document recorded, or :class:`LeaseLost` (nothing written)."""
        return self._record([self._pending(attempt, holder, None) for attempt in attempts])

    def _pending(
        self, attempt: Attempt, holder: str | None, credits: CreditAllocation | None
    ) -> Pending:
        """The write that records ``attempt``: R and off the queue, or U with its next entry."""
        ctx = self._ctx
        document, request, stage = attempt.document, attempt.request, attempt.stage
        answer = attempt.answer
        if isinstance(answer, BackendError):
            entry = attempt.entry
            attempts = (entry.attempts if entry else 0) + 1
            message = f"repost attempt {attempts} failed: {answer}"
            failed = attrs.evolve(
                document, stage=stage, last_log=message, updated_at=attempt.at, request=request
            )
            return ctx.prepare(
                stage,
                failed,
                document.flag,
                Outcome.REPOST_FAILED,
                attempt.started,
                Effects(
                    enqueue=self._retry.entry(
                        document.code, answer, attempt.at, previous=entry, in_doubt=attempt.doubt
                    ),
                    holder=holder,
                    credits=credits,
                    log={"error": str(answer)},
                ),
            )
        result = answer.result
        message = f"{_how(answer, 'reposted to')} {ctx.backend.name}: tax {result.total_tax}"
        if result.total_tax != document.total_tax:
            message += f" (the invoice carried {document.total_tax})"
        reposted = ctx.document(
            request, result, stage, FinalTaxFlag.REPOSTED, message, base=document
        )
        if answer.voided:
            reposted = _voided(reposted, message)
            if credits is None and document.kind is DocumentKind.CREDIT:
                credits = CreditAllocation(document.code, "", ())  # a void releases its lines
        return ctx.prepare(
            stage,
            reposted,
            document.flag,
            Outcome.REPOSTED,
            attempt.started,
            Effects(dequeue=True, holder=holder, credits=credits),
        )

    def _record(self, pending: Sequence[Pending]) -> list[TaxDocument | LeaseLost]:
        """Make the writes of settled attempts; the engine's committed documents a store
        failure leaves unrecorded are looked up before they are ever posted again."""
        committed = [p.document for p in pending if p.outcome is Outcome.REPOSTED]
        with _said_when_committed(committed, self._unsaved):
            recorded = self._ctx.record_all(pending)
        done: list[TaxDocument | LeaseLost] = []
        for made, result in zip(pending, recorded, strict=True):
            if isinstance(result, ConcurrentChange):
                raise result  # record_all keeps the current document instead: never here
            if not isinstance(result, LeaseLost):
                self._unsaved.discard(made.document.code)
            done.append(result)
        return done

    def repost(
        self,
        document: TaxDocument,
        request: TaxRequest,
        stage: Stage,
        *,
        holder: str | None = None,
        entry: QueueEntry | None = None,
        credits: CreditAllocation | None = None,
        doubt: bool = False,
    ) -> TaxDocument:
        """U -> R by the posting rule (looking the code up first when in doubt, or when
        ``doubt`` says so), or stay U with the next queue entry the retry schedule makes:
        :meth:`attempt` and :meth:`settle` in one go."""
        if entry is None:
            entry = self._ctx.store.queue_entry(document.code)
        attempt = self.attempt(document, entry, request=request, stage=stage, doubt=doubt)
        return self.settle(attempt, holder, credits=credits)
