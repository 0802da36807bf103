"""What every stage shares: the one choice of path (excluded, offline, engine), the one way a
tax document is built, and the one write path, :meth:`StageContext.record`, which checks the
flag move, writes the document, its log entry and any queue change in one store transaction,
and logs the one structlog event of the stage (:meth:`StageContext.record_all` makes several
such writes in one store call, each all or nothing)."""

from __future__ import annotations

import datetime as dt
import enum
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

import attrs
from attrs import frozen

from taxbridge.backends.base import Capabilities, TaxBackend
from taxbridge.config import BridgeConfig
from taxbridge.errors import (
    BackendError,
    ConcurrentChange,
    DocumentNotFoundError,
    DocumentRejected,
    EngineMismatch,
    InvalidAddressError,
    InvalidFieldError,
    InvalidTransition,
)
from taxbridge.flags import FinalTaxFlag, check_transition
from taxbridge.logs import get_logger
from taxbridge.models import (
    Address,
    DocumentEvent,
    DocumentKind,
    DocumentStatus,
    DocumentType,
    LineTax,
    Stage,
    TaxDocument,
    TaxRequest,
    TaxResult,
)
from taxbridge.money import ZERO, ZERO_CENTS
from taxbridge.reference import Reference
from taxbridge.rules import zip_mismatch
from taxbridge.store.base import (
    BOOKS_KEY,
    CreditAllocation,
    Expected,
    InvoiceLink,
    QueueEntry,
    Refusal,
    Store,
    Write,
)

_log = get_logger("taxbridge")


class Route(enum.Enum):
    """Where a document's tax comes from."""

    EXCLUDED = "excluded"
    """Every line ships outside the nexus regions: zero tax, no engine call (flag X)."""
    OFFLINE = "offline"
    """The offline table: online calculation is off, the group does not interface, or the
    backend is itself an estimator (flag blank)."""
    ENGINE = "engine"
    """The engine (flag N for an estimate, Y for a posting)."""


class Outcome(enum.Enum):
    """What a stage did to a document: the last part of its log event's name."""

    CALCULATED = "calculated"
    ESTIMATED = "estimated"
    DEGRADED = "degraded"
    """The engine was down or refused: the offline table estimated instead."""
    EXCLUDED = "excluded"
    POSTED = "posted"
    FAILED = "failed"
    """The posting failed: the document is U and queued."""
    REPOSTED = "reposted"
    REPOST_FAILED = "repost_failed"
    ALREADY_POSTED = "already_posted"
    UNCHANGED = "unchanged"
    """Invoiced or posted already: checked, not changed."""
    MARKED_MANUAL = "marked_manual"
    VOIDED = "voided"
    REQUEUED = "requeued"
    """The engine reconciliation found a posted document missing at the engine."""

    @property
    def is_failure(self) -> bool:
        """Logged at warning level, and an error entry in the document's log."""
        return self in _FAILURES


_FAILURES = frozenset({Outcome.DEGRADED, Outcome.FAILED, Outcome.REPOST_FAILED})
_LANDED = frozenset({Outcome.POSTED, Outcome.REPOSTED})
"""Outcomes of a posting that reached the engine's books."""


def utcnow() -> dt.datetime:
    """The current time in UTC (the bridge's default clock)."""
    return dt.datetime.now(dt.UTC)


def running_from(start: dt.datetime) -> Callable[[], dt.datetime]:
    """A clock that reads ``start`` when made and then runs at the rate of the monotonic clock:
    a replay or a demo of one fixed day, whatever the calendar says. ``start`` must be aware."""
    if start.tzinfo is None:
        raise InvalidFieldError("running_from", "start", start, "has no time zone")
    origin = time.monotonic()

    def clock() -> dt.datetime:
        return start + dt.timedelta(seconds=time.monotonic() - origin)

    return clock


def stored_lines(lines: tuple[LineTax, ...]) -> tuple[LineTax, ...]:
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


def charged_lines(lines: tuple[LineTax, ...], before: tuple[LineTax, ...]) -> tuple[LineTax, ...]:
    """``lines`` (the engine's new figures) keeping the tax each line of ``before`` carried on
    the invoice; a line the invoice did not have carried nothing."""
    carried = {line.number: line.tax_charged for line in before}
    return tuple(
        line
        if carried.get(line.number, ZERO_CENTS) == line.tax
        else attrs.evolve(line, charged=carried.get(line.number, ZERO_CENTS))
        for line in lines
    )


@frozen
class Effects:
    """What a write does besides storing the document and its log entry: the queue change, the
    orders it invoices, the credits it allocates, the lease it needs, how it is logged, and
    which flag moves it may make. One value, so the write path's signature stays short."""

    enqueue: QueueEntry | None = None
    dequeue: bool = False
    """Settle the document's queue entry."""
    invoiced: InvoiceLink | None = None
    credits: CreditAllocation | None = None
    holder: str | None = None
    """A repost worker's name: the write is refused when its lease was lost."""
    error_event: bool = False
    """Log the entry as an error although the outcome is no failure."""
    log: Mapping[str, object] | None = None
    """Fields added to the structlog event."""
    keep_current: bool = True
    """On a concurrent change, return the document as it now stands (else raise)."""
    annotation: bool = False
    """A void: the flag is kept, and that is no flag move."""
    reconciling: bool = False
    """The engine reconciliation's moves are allowed too."""


NO_EFFECTS = Effects()
"""A write that only stores the document and its log entry."""
NO_RATE = Effects(error_event=True)
"""An estimate the offline table had no rate for: logged as an error."""


@frozen
class Pending:
    """A stage's write checked and ready (:meth:`StageContext.prepare`), with what its
    structlog event says once :meth:`StageContext.record_all` has made it."""

    stage: Stage
    document: TaxDocument
    flag_before: FinalTaxFlag | None
    outcome: Outcome
    started: float
    write: Write
    keep_current: bool
    log: Mapping[str, object] | None


class StageContext:
    """The parts of one bridge that every stage uses, and the write path they all share."""

    def __init__(
        self,
        config: BridgeConfig,
        backend: TaxBackend,
        store: Store,
        reference: Reference,
        clock: Callable[[], dt.datetime] = utcnow,
    ):
        self.config = config
        self.backend = backend
        self.store = store
        self.reference = reference
        self.clock = clock
        self.caps = Capabilities(backend)
        register = self.caps.documents
        self._books = register.books if register is not None and self.caps.posts else ""
        """This engine's books ('' for an engine that posts nothing)."""
        self._books_state: str | None = None
        """None: not read yet; "same": the store's are this engine's; "unset": none yet."""

    def check_books(self, action: str) -> None:
        """Refuse ``action`` (a posting, repost, void or reconciliation) when the store's
        documents were posted through other books than this engine's. A store with none on
        record takes this engine's with its first posting that lands (:meth:`record_all`)."""
        if self._books_state == "same" or not self._books:
            return
        stored = self.store.get_meta(BOOKS_KEY)
        if stored is None:
            self._books_state = "unset"
        elif stored != self._books:
            raise EngineMismatch(action, stored, self._books)
        else:
            self._books_state = "same"

    def _note_books(self) -> None:
        """A posting landed on a store with no books on record: they are this engine's."""
        stored = self.store.meta_once(BOOKS_KEY, self._books)
        self._books_state = "same"
        if stored != self._books:  # another engine's first posting landed at the same time
            _log.warning("taxbridge.books.mismatch", stored=stored, configured=self._books)

    def move_books(self) -> tuple[str | None, str]:
        """Record this engine's books as the store's (after a sandbox-to-production switch,
        say): what the store had, and what it has now."""
        register = self.caps.documents
        configured = register.books if register is not None else ""
        if not configured:
            raise InvalidTransition(
                None,
                "use engine",
                action="use engine",
                reason=f"the engine {self.backend.name} keeps no books to move a store to",
            )
        before = self.store.get_meta(BOOKS_KEY)
        self.store.set_meta(BOOKS_KEY, configured)
        self._books_state = "same" if configured == self._books else None
        return before, configured

    # -- the path ------------------------------------------------------------------------------

    def route(self, request: TaxRequest, *, online: bool) -> Route:
        """Excluded when no line ships into a nexus region; offline when the stage may not go
        online (or the backend is an estimator); the engine otherwise."""
        if all(line.excluded for line in request.lines):
            return Route.EXCLUDED
        if not online or self.reference.estimator_only:
            return Route.OFFLINE
        return Route.ENGINE

    def without_engine(
        self, request: TaxRequest, route: Route
    ) -> tuple[TaxResult, FinalTaxFlag, Outcome, str]:
        """What a route that calls no engine gives, for every stage: X with zero tax (excluded),
        or blank with the offline table's figure and its note (offline)."""
        if route is Route.EXCLUDED:
            return self.zero_result(request), FinalTaxFlag.EXCLUDED, Outcome.EXCLUDED, ""
        result, note = self.offline_estimate(request)
        return result, FinalTaxFlag.OFFLINE, Outcome.ESTIMATED, note

    def offline_estimate(self, request: TaxRequest) -> tuple[TaxResult, str]:
        """The offline table's figure, or zero tax with a note when it has no rate either."""
        try:
            return self.reference.offline.calculate(request), ""
        except DocumentRejected as exc:
            return self.zero_result(request), f"; no offline rate ({exc.message}), tax 0"

    def zero_result(self, request: TaxRequest) -> TaxResult:
        """Zero tax on every line: an excluded document, or one nothing could estimate."""
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

    # -- documents -----------------------------------------------------------------------------

    def document(
        self,
        request: TaxRequest,
        result: TaxResult,
        stage: Stage,
        flag: FinalTaxFlag,
        message: str,
        *,
        orders: tuple[str, ...] = (),
        erp_company: str = "",
        base: TaxDocument | None = None,
    ) -> TaxDocument:
        """The tax document a stage stores for ``request`` and its ``result``; ``base`` is the
        stored document it replaces (its orders, ERP company and invoice link carry over)."""
        if request.document_type in (DocumentType.RETURN_ORDER, DocumentType.RETURN_INVOICE):
            kind = DocumentKind.CREDIT
        else:
            kind = DocumentKind.INVOICE if request.document_type.is_saved else DocumentKind.ORDER
        lines = stored_lines(result.lines)
        charged: Decimal | None = None
        if kind is not DocumentKind.ORDER:
            charged = result.total_tax
        if base is not None:
            orders = orders or base.orders
            erp_company = erp_company or base.erp_company
            if base.charged_tax is not None:
                charged = base.charged_tax
                lines = charged_lines(lines, base.lines)
        return TaxDocument(
            code=request.code,
            kind=kind,
            stage=stage,
            flag=flag,
            erp_company=erp_company or self.config.erp_company_for(request.company_code),
            company_code=request.company_code,
            customer_code=request.customer_code,
            document_type=request.document_type,
            document_date=request.date,
            currency=request.currency,
            total_amount=result.total_amount,
            total_taxable=result.total_taxable,
            total_exempt=result.total_exempt,
            total_tax=result.total_tax,
            lines=lines,
            breakdown=result.summary,
            backend=result.backend or self.backend.name,
            last_log=message,
            updated_at=self.clock(),
            tax_date=result.tax_date,
            request=request,
            orders=orders,
            invoice_code=base.invoice_code if base else None,
            charged_tax=charged,
        )

    def require(self, code: str) -> TaxDocument:
        """The stored document, or :class:`DocumentNotFoundError`."""
        document = self.store.get(code)
        if document is None:
            raise DocumentNotFoundError(code)
        return document

    # -- the write path ------------------------------------------------------------------------

    def record(
        self,
        stage: Stage,
        document: TaxDocument,
        flag_before: FinalTaxFlag | None,
        outcome: Outcome,
        *,
        started: float,
        effects: Effects = NO_EFFECTS,
    ) -> TaxDocument:
        """Write ``document``, its log entry and its queue change in one transaction, and log
        the stage's event. The flag move is checked first: an illegal one raises and writes
        nothing. With ``effects.holder``, a repost worker that lost its lease writes nothing
        either. The log entry is an error for a failed outcome, or when ``effects.error_event``
        says so; ``effects.log`` adds fields to the structlog event.

        Inside the transaction the stored document must still be as the stage read it (flag
        ``flag_before``, no invoice link): when another process wrote it meanwhile, nothing is
        written and, with ``effects.keep_current``, the document as it now stands is returned
        (a settled document is never reopened); otherwise :class:`ConcurrentChange` is raised.
        """
        pending = self.prepare(stage, document, flag_before, outcome, started, effects)
        recorded = self.record_all([pending])[0]
        if isinstance(recorded, Exception):
            raise recorded
        return recorded

    def prepare(
        self,
        stage: Stage,
        document: TaxDocument,
        flag_before: FinalTaxFlag | None,
        outcome: Outcome,
        started: float,
        effects: Effects = NO_EFFECTS,
    ) -> Pending:
        """The write :meth:`record` makes, checked (an illegal flag move raises here) but not
        made: :meth:`record_all` makes several in one store call."""
        if not (effects.annotation and flag_before is document.flag):
            check_transition(
                flag_before,
                document.flag,
                code=document.code,
                action=stage.value,
                reconciling=effects.reconciling,
            )
        event = DocumentEvent(
            document.code,
            document.updated_at,
            stage,
            flag_before,
            document.flag,
            document.backend,
            document.last_log,
            error=effects.error_event or outcome.is_failure,
        )
        write = Write(
            (document,),
            (event,),
            enqueue=effects.enqueue,
            dequeue=document.code if effects.dequeue else None,
            invoiced=effects.invoiced,
            holder=effects.holder,
            credits=effects.credits,
            expected=Expected(flag_before),
        )
        return Pending(
            stage, document, flag_before, outcome, started, write, effects.keep_current, effects.log
        )

    def record_all(self, pending: Sequence[Pending]) -> list[TaxDocument | Refusal]:
        """Make prepared writes in one store call and log each stage's event: per write the
        document written, the current one (a concurrent change with ``keep_current``), or
        the refusal (a lost lease; a concurrent change otherwise)."""
        refusals = self.store.save_all([p.write for p in pending])
        if self._books_state == "unset" and any(p.outcome in _LANDED for p in pending):
            self._note_books()
        recorded: list[TaxDocument | Refusal] = []
        for made, refused in zip(pending, refusals, strict=True):
            if refused is None:
                self.emit(
                    made.stage,
                    made.outcome,
                    made.document,
                    made.flag_before,
                    made.started,
                    **(made.log or {}),
                )
                recorded.append(made.document)
            elif isinstance(refused, ConcurrentChange) and made.keep_current:
                current = self.require(made.document.code)
                self.emit(
                    made.stage,
                    Outcome.UNCHANGED,
                    current,
                    current.flag,
                    made.started,
                    changed=str(refused),
                )
                recorded.append(current)
            else:
                recorded.append(refused)
        return recorded

    def emit(
        self,
        stage: Stage,
        outcome: Outcome,
        document: TaxDocument,
        flag_before: FinalTaxFlag | None,
        started: float,
        **fields: object,
    ) -> None:
        """The stage's one structlog event (``taxbridge.<stage>.<outcome>``)."""
        failure = outcome.is_failure
        if not _log.enabled("warning" if failure else "info"):
            return
        log = _log.warning if failure else _log.info
        log(
            f"taxbridge.{stage.value}.{outcome.value}",
            code=document.code,
            stage=stage.value,
            flag_before=None if flag_before is None else flag_before.value,
            flag_after=document.flag.value,
            backend=self.backend.name,
            tax=str(document.total_tax),
            elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
            **fields,
        )

    # -- address validation --------------------------------------------------------------------

    def check_addresses(
        self,
        addresses: Sequence[tuple[str, Address]],
        program: str | None,
        *,
        request: TaxRequest | None = None,
    ) -> str:
        """Address validation for ``program`` (TMSCRM/AV-DFN2 bypass, AV-DFN3 hard error).

        Returns a note for the document's log: blank when valid or not checked, a warning with
        a temporary override otherwise. A hard-error program raises InvalidAddressError. A ZIP
        of ``request`` that the rate data places in another state goes the same way for a
        program; called without one (a library caller), it is refused (InvalidFieldError).
        """
        rules = self.config.address_validation
        if program is not None and program in rules.bypass_programs:
            return ""
        found = zip_mismatch(request, self.reference.zip_states) if request else None
        if found is not None:
            where, address, why = found
            if program is None:
                raise InvalidFieldError("Address", "postal_code", address.postal_code, why)
            if program in rules.hard_error_programs:
                raise InvalidAddressError(where, program, f"postal_code {why}")
            return (
                f"address warning ({program}): {where}: postal_code {why}; "
                "continued with a temporary override; "
            )
        resolver = self.caps.addresses
        if program is None or resolver is None:
            return ""
        for field, address in addresses:
            try:
                resolver.resolve_address(address)
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
