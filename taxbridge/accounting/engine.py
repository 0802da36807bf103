"""The engine's side of the books: voiding a posted document, and the engine-vs-store
reconciliation that lists the engine's documents of a range and compares them with the store.

Each finding carries the action that is safe for it. Adopting a committed document (U -> R) and
requeuing a posted document the engine does not have (Y/R/M -> U, the one move only this
reconciliation may make) both go through the posting-once rule, so a document the listing
missed is looked up before anything is posted. Everything else is reported only.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from decimal import Decimal

import attrs
from attrs import frozen

from taxbridge.backends.base import VoidReason
from taxbridge.context import Effects, Outcome, StageContext
from taxbridge.errors import DocumentRejected, InvalidFieldError, InvalidTransition, MissingAtEngine
from taxbridge.flags import FinalTaxFlag
from taxbridge.models import (
    DateRange,
    DocumentKind,
    DocumentStatus,
    EngineDocument,
    Stage,
    TaxDocument,
)
from taxbridge.posting import Posting
from taxbridge.queue import RetryPolicy
from taxbridge.store.base import CreditAllocation, PostedHead


class FindingKind(enum.Enum):
    """What differs between the engine and the store for one document."""

    LOST_RESPONSE = "committed at the engine, U here"
    UNKNOWN_HERE = "committed at the engine, not stored here"
    MISSING_AT_ENGINE = "posted here, not at the engine"
    VOIDED_AT_ENGINE = "voided at the engine, posted here"
    VOIDED_HERE_ONLY = "voided here, still committed at the engine"
    UNCOMMITTED_AT_ENGINE = "posted here, uncommitted at the engine"
    TAX_DIFFERS = "tax differs"


class Action(enum.Enum):
    """What ``fix`` does about a finding."""

    ADOPT = "adopt the engine's document (U -> R)"
    REQUEUE = "requeue for reposting (-> U)"
    RECORD_VOID = "record the engine's void here"
    REPORT = "report only"


_ACTIONS = {
    FindingKind.LOST_RESPONSE: Action.ADOPT,
    FindingKind.MISSING_AT_ENGINE: Action.REQUEUE,
    FindingKind.VOIDED_AT_ENGINE: Action.RECORD_VOID,
}


@frozen
class Finding:
    """One document on which the engine and the store disagree."""

    kind: FindingKind
    code: str
    flag: str | None
    """The flag here (None: not stored)."""
    engine_status: str | None
    """The engine's status (None: the engine does not have it)."""
    tax_here: Decimal | None
    tax_engine: Decimal | None
    locked: bool = False
    """Reported on a filed return at the engine: it can no longer be changed there."""
    fixed: bool = False
    result: str = ""
    """What ``fix`` did (the new flag, or why nothing was done)."""
    company_code: str = ""
    """The engine company whose listing it was found in."""

    @property
    def action(self) -> Action:
        """What ``fix`` does about it."""
        return _ACTIONS.get(self.kind, Action.REPORT)


@frozen
class EngineReconciliation:
    """The engine-vs-store check of a range: how many documents each side had, and what
    differs."""

    period: DateRange
    company: str
    stored: int
    listed: int
    findings: tuple[Finding, ...]

    @property
    def clean(self) -> bool:
        """True when the engine and the store agree on every document."""
        return not self.findings


def _blind(company_code: str) -> str:
    return (
        f"not requeued: the engine listed no document at all of company {company_code} for the "
        "range (check the engine, company code and environment)"
    )


class EngineBooks:
    """Voids and the engine-vs-store reconciliation over one bridge's engine and store."""

    def __init__(self, ctx: StageContext, posting: Posting, retry: RetryPolicy):
        self._ctx = ctx
        self._posting = posting
        self._retry = retry

    # -- void ----------------------------------------------------------------------------------

    def void(self, code: str, reason: str) -> TaxDocument:
        """Void a posted invoice or credit (Y, R, M) at the engine and record it here; a
        credit's allocations are released. Its flag stays: it shows how it was posted. An
        invoice that credits still take from is refused, naming them: void them first."""
        ctx = self._ctx
        started = time.perf_counter()
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidFieldError("void", "reason", reason, "must say why it is voided")
        document = ctx.require(code)
        self._check_voidable(document, ctx.store.credits_of(code))
        ctx.check_books(f"void {code}")
        register = ctx.caps.documents
        if register is None:
            raise InvalidTransition(
                document.flag,
                "void",
                code=code,
                action="void",
                reason=f"the engine {ctx.backend.name} keeps no documents to void",
            )
        try:
            register.void_document(
                document.company_code, code, document.document_type, VoidReason.DOC_VOIDED
            )
            how = f"voided at {ctx.backend.name}"
        except DocumentRejected as exc:
            if exc.error_code != "TransactionAlreadyCancelled":
                raise
            how = f"already voided at {ctx.backend.name}"
        return self._record_void(document, f"{how}: {reason.strip()}", started)

    @staticmethod
    def _check_voidable(document: TaxDocument, credits: list[str]) -> None:
        why = ""
        if credits:
            why = (
                f"credits {', '.join(credits)} take from it: void them first, or the credits "
                "would stay as negative tax on a sale that is no longer there"
            )
        elif document.voided_at is not None:
            why = f"it was voided on {document.voided_at:%Y-%m-%d} ({document.void_reason})"
        elif document.kind is DocumentKind.ORDER:
            why = "an order is never posted; void its invoice"
        elif not document.flag.is_final:
            why = f"only a posted document (Y, R, M) can be voided; it is {document.flag}"
        if why:
            raise InvalidTransition(
                document.flag, "void", code=document.code, action="void", reason=why
            )

    def _record_void(self, document: TaxDocument, message: str, started: float) -> TaxDocument:
        ctx = self._ctx
        now = ctx.clock()
        voided = attrs.evolve(
            document,
            stage=Stage.VOID,
            voided_at=now,
            void_reason=message,
            last_log=message,
            updated_at=now,
        )
        release = (
            CreditAllocation(document.code, "", ())
            if document.kind is DocumentKind.CREDIT
            else None
        )
        return ctx.record(
            Stage.VOID,
            voided,
            document.flag,
            Outcome.VOIDED,
            started=started,
            effects=Effects(credits=release, annotation=True, keep_current=False),
        )

    # -- engine vs store -----------------------------------------------------------------------

    def reconcile(
        self,
        period: DateRange,
        company: str | None = None,
        *,
        fix: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> EngineReconciliation:
        """List the engine's documents of ``period`` (for the engine companies of one ERP
        company, or all) and compare them with the store's invoices and credits. With ``fix``,
        each finding's safe action is taken; ``progress`` is told how many engine documents
        have been read so far.

        An engine company may be shared by several ERP companies: its whole listing is compared
        with every document stored for it, and a listed document belongs to the ERP company
        that posted it (one the store does not have is reported in every company's run). A
        posted document is requeued only on the evidence of its own engine company's listing,
        and never when that listing came back empty (the wrong company code or environment is
        likelier than an engine that lost every posting)."""
        ctx = self._ctx
        listing = ctx.caps.listing
        if listing is None:
            raise InvalidTransition(
                None,
                "reconcile",
                action="reconcile engine",
                reason=f"the engine {ctx.backend.name} cannot list its documents",
            )
        codes = sorted(
            {
                m.company_code
                for m in ctx.config.companies
                if company is None or m.erp_company == company
            }
        )
        if not codes:
            raise InvalidFieldError("EngineReconciliation", "company", company, "is not mapped")
        ctx.check_books("reconcile engine")
        engine: dict[str, EngineDocument] = {}
        listed_by_company = dict.fromkeys(codes, 0)
        for company_code in codes:
            for listed in listing.list_documents(company_code, period.start, period.end):
                engine[f"{company_code}\x00{listed.code}"] = listed
                listed_by_company[company_code] += 1
                if progress is not None:
                    progress(len(engine))
        here = {
            f"{doc.company_code}\x00{doc.code}": doc
            for doc in ctx.store.posted_documents(period)
            if doc.company_code in codes
        }
        keys = [
            key
            for key in set(engine) | set(here)
            if company is None or key not in here or here[key].erp_company == company
        ]
        findings = [
            attrs.evolve(finding, company_code=key.split("\x00")[0])
            for key in sorted(keys, key=lambda k: k.split("\x00")[::-1])
            if (finding := _compare(here.get(key), engine.get(key))) is not None
        ]
        if fix:
            findings = [
                attrs.evolve(finding, result=_blind(finding.company_code))
                if finding.action is Action.REQUEUE and not listed_by_company[finding.company_code]
                else self._fix(finding)
                for finding in findings
            ]
        return EngineReconciliation(
            period,
            company or "*",
            sum(1 for key in keys if key in here),
            sum(1 for key in keys if key in engine),
            tuple(findings),
        )

    def _fix(self, finding: Finding) -> Finding:
        if finding.action is Action.REPORT:
            return finding
        ctx = self._ctx
        document = ctx.require(finding.code)
        started = time.perf_counter()
        if finding.action is Action.ADOPT:
            done = self._posting.adopt(document)
        elif finding.action is Action.RECORD_VOID:
            done = self._record_void(document, "voided at the engine (reconciliation)", started)
        else:
            done = self._requeue(document, started)
        return attrs.evolve(finding, fixed=True, result=f"{done.flag}: {done.last_log}")

    def _requeue(self, document: TaxDocument, started: float) -> TaxDocument:
        ctx = self._ctx
        now = ctx.clock()
        error = MissingAtEngine(
            f"{ctx.backend.name} has no {document.code} although it is {document.flag} here",
            backend=ctx.backend.name,
            code=document.code,
            error_code="MissingAtEngine",
        )
        message = f"reconciliation: {error.message}; back to U and queued for reposting"
        requeued = attrs.evolve(
            document,
            flag=FinalTaxFlag.FAILED,
            stage=Stage.RECONCILE,
            last_log=message,
            updated_at=now,
        )
        return ctx.record(
            Stage.RECONCILE,
            requeued,
            document.flag,
            Outcome.REQUEUED,
            started=started,
            effects=Effects(
                enqueue=self._retry.entry(document.code, error, now, in_doubt=True),
                reconciling=True,
                keep_current=False,
            ),
        )


def _compare(here: PostedHead | None, engine: EngineDocument | None) -> Finding | None:
    status = engine.status if engine is not None else None
    committed = status is DocumentStatus.COMMITTED
    kind: FindingKind | None = None
    if here is None:
        kind = FindingKind.UNKNOWN_HERE if committed else None
    elif here.voided_at is not None:
        kind = FindingKind.VOIDED_HERE_ONLY if committed else None
    elif here.flag is FinalTaxFlag.FAILED:
        kind = FindingKind.LOST_RESPONSE if committed else None
    elif engine is None:
        kind = FindingKind.MISSING_AT_ENGINE
    elif status is DocumentStatus.CANCELLED:
        kind = FindingKind.VOIDED_AT_ENGINE
    elif not committed:
        kind = FindingKind.UNCOMMITTED_AT_ENGINE
    elif engine.total_tax != here.total_tax:
        kind = FindingKind.TAX_DIFFERS
    if kind is None:
        return None
    code = here.code if here is not None else engine.code if engine is not None else ""
    return Finding(
        kind,
        code,
        here.flag.value if here is not None else None,
        status.value if status is not None else None,
        here.total_tax if here is not None else None,
        engine.total_tax if engine is not None else None,
        locked=engine.locked if engine is not None else False,
    )
