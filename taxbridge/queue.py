"""The unposted queue: its retry schedule (the only maker of queue entries), the scheduled
repost run with leases, manual postings, history and purge.

Reposting one document is the posting rule's (:meth:`taxbridge.posting.Posting.repost`); this
module decides which documents, when, and by which worker.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from queue import Empty, SimpleQueue
from typing import Any, Generic, Protocol, TypeVar

import attrs
from attrs import frozen

from taxbridge.context import Effects, Outcome, StageContext
from taxbridge.errors import BackendError, InvalidFieldError, InvalidTransition, LeaseLost
from taxbridge.flags import FinalTaxFlag
from taxbridge.models import Stage, TaxDocument
from taxbridge.store.base import QueueEntry, SettledEntry

DEFAULT_LEASE = dt.timedelta(minutes=5)
"""How long a repost worker holds a claimed entry before another may take it."""


@frozen
class RetryPolicy:
    """When a failed posting is tried again, and the only maker of queue entries.

    The invoicing run's own failed attempt is due at once (the next scheduled run takes it).
    After ``n`` failed reposts the next one waits ``base * factor ** (n - 1)``, at most ``cap``,
    spread by up to ``jitter`` either way so workers do not retry in step: with the defaults
    1 min, 2, 4, 8 ... up to 1 h, each ±10 %.
    """

    base: dt.timedelta = dt.timedelta(minutes=1)
    factor: float = 2.0
    cap: dt.timedelta = dt.timedelta(hours=1)
    jitter: float = 0.1

    def delay(self, reposts: int, rng: random.Random | None = None) -> dt.timedelta:
        """The wait after ``reposts`` failed reposts (1 or more)."""
        seconds = min(
            self.base.total_seconds() * self.factor ** max(reposts - 1, 0),
            self.cap.total_seconds(),
        )
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return dt.timedelta(seconds=seconds * (1 + spread))

    def entry(
        self,
        code: str,
        error: BackendError,
        now: dt.datetime,
        *,
        previous: QueueEntry | None = None,
        in_doubt: bool = False,
    ) -> QueueEntry:
        """The queue entry of ``code`` after ``error``: its first (``previous`` None) or the
        next. It may have landed once any attempt may have (``in_doubt``, or this error was not
        certainly unsent); it needs a fix when the error is not retryable."""
        attempts = (previous.attempts if previous else 0) + 1
        return QueueEntry(
            code=code,
            attempts=attempts,
            next_attempt_at=now if attempts == 1 else now + self.delay(attempts - 1),
            last_error_code=error.error_code or type(error).__name__,
            last_error_message=str(error),
            retryable=error.retryable,
            created_at=previous.created_at if previous else now,
            updated_at=now,
            may_have_landed=in_doubt or error.sent,
        )


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
    held: int = 0
    """Due entries another run holds under a live lease after this run."""
    held_until: dt.datetime | None = None
    """When the last of those leases runs out."""
    not_taken: tuple[tuple[str, str], ...] = ()
    """Asked for by code and not taken: (code, why)."""

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain values, for JSON."""
        return {
            "reposted": list(self.reposted),
            "failed": list(self.failed),
            "needs_fix": list(self.skipped),
            "taken_over": list(self.taken_over),
            "due": list(self.due),
            "held_by_another_run": self.held,
            "held_until": self.held_until.isoformat() if self.held_until else None,
            "not_taken": dict(self.not_taken),
        }


@frozen
class UnpostedDocument:
    """A U document with its queue entry (None only if the entry was settled meanwhile)."""

    document: TaxDocument
    entry: QueueEntry | None


def worker_id() -> str:
    """A repost worker's name: host, process and a random part (unique per run)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _only_u(document: TaxDocument, target: FinalTaxFlag, action: str, done: str) -> None:
    """Refuse ``action`` unless the document is U, saying so in flag letters."""
    if document.flag is not FinalTaxFlag.FAILED:
        raise InvalidTransition(
            document.flag,
            target,
            code=document.code,
            action=action,
            reason=f"only a U document can be {done}; {document.code} is {document.flag}",
        )


AttemptT = TypeVar("AttemptT")
"""What a reposter's engine call gives back for its write (the posting rule's ``Attempt``)."""


class Reposter(Protocol[AttemptT]):
    """The posting rule's repost in the two halves a drain runs apart."""

    def attempt(self, document: TaxDocument, entry: QueueEntry, /) -> AttemptT:
        """The engine call alone, nothing stored (many threads call it at once)."""
        ...

    def settle_all(
        self, attempts: Sequence[AttemptT], holder: str, /
    ) -> list[TaxDocument | LeaseLost]:
        """Record ``attempts`` as ``holder`` in one store call: each one's document, or
        :class:`LeaseLost` when its lease was lost (that one is not written)."""
        ...


class UnpostedQueue(Generic[AttemptT]):
    """Work with unposted transactions: list, repost on schedule, mark manual, history."""

    def __init__(self, ctx: StageContext, reposter: Reposter[AttemptT]):
        self._ctx = ctx
        self._reposter = reposter

    def unposted(self, *, needs_fix: bool | None = None) -> list[UnpostedDocument]:
        """U documents in code order with their queue entries; ``needs_fix`` keeps only those
        that do (or do not) need a fix."""
        store = self._ctx.store
        found = []
        for document in store.documents(flags=[FinalTaxFlag.FAILED]):
            entry = store.queue_entry(document.code)
            if needs_fix is not None and (entry is None or entry.needs_fix is not needs_fix):
                continue
            found.append(UnpostedDocument(document, entry))
        return found

    def due(self) -> int:
        """How many entries a repost run would take now."""
        return len(self._ctx.store.queue(due_at=self._ctx.clock(), needs_fix=False))

    def settled(self) -> list[SettledEntry]:
        """Queue history: documents settled R or M, oldest first, until purged."""
        return self._ctx.store.settled()

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
        died is taken again once its lease runs out, and the posting rule looks its code up
        first. Entries that need a fix are reposted only when asked for by ``code``.
        ``progress(code, outcome)`` is called after each document.
        """
        if limit is not None and limit < 1:
            raise InvalidFieldError("repost", "limit", limit, "must be at least 1")
        if concurrency < 1:
            raise InvalidFieldError("repost", "concurrency", concurrency, "must be at least 1")
        ctx = self._ctx
        holder = worker or worker_id()
        needs_fix = tuple(e.code for e in ctx.store.queue(needs_fix=True)) if code is None else ()
        if code is not None:
            _only_u(ctx.require(code), FinalTaxFlag.REPOSTED, "repost", "reposted")
        if dry_run:
            due = (
                [code]
                if code is not None
                else [e.code for e in ctx.store.queue(due_at=ctx.clock(), needs_fix=False)]
            )
            return RepostSummary((), (), needs_fix, due=tuple(due[:limit]))
        ctx.check_books("repost")
        drain = _Drain(
            ctx,
            self._reposter,
            holder,
            lease,
            concurrency,
            limit=limit,
            code=code,
            progress=progress,
        )
        drain.run()
        now = ctx.clock()
        held = [
            entry.lease_expires_at
            for entry in ctx.store.queue(needs_fix=False)
            if entry.claimed_by not in (None, holder)
            and entry.lease_expires_at is not None
            and entry.lease_expires_at > now
        ]
        taken = drain.outcomes["taken_over"]
        return RepostSummary(
            tuple(sorted(drain.outcomes["reposted"])),
            tuple(sorted(drain.outcomes["failed"])),
            needs_fix,
            taken_over=tuple(sorted(c for c in taken if c != code)),
            held=len(held),
            held_until=max(held, default=None),
            not_taken=tuple((c, self._why_not_taken(c, now)) for c in taken if c == code),
        )

    def _why_not_taken(self, code: str, now: dt.datetime) -> str:
        """Why a repost asked for ``code`` could not claim it."""
        entry = self._ctx.store.queue_entry(code)
        if entry is None:
            return "it is U but has no queue entry: nothing can repost it until it is queued"
        if entry.claimed_by and entry.lease_expires_at and entry.lease_expires_at > now:
            return (
                f"another run ({entry.claimed_by}) holds it until "
                f"{entry.lease_expires_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
            )
        return "another run took it meanwhile"

    def purge(self, older_than: dt.timedelta) -> int:
        """Delete queue history settled more than ``older_than`` ago; U entries always stay."""
        if older_than < dt.timedelta(0):
            raise InvalidFieldError("purge", "older_than", older_than, "must not be negative")
        return self._ctx.store.purge(self._ctx.clock() - older_than)

    def mark_manual(self, code: str, reason: str, user: str) -> TaxDocument:
        """A U document was posted by hand outside the ERP: U -> M, with who and why logged."""
        ctx = self._ctx
        started = time.perf_counter()
        document = ctx.require(code)
        _only_u(document, FinalTaxFlag.MANUAL, "mark manual", "marked manual")
        if not reason.strip() or not user.strip():
            raise InvalidTransition(
                document.flag,
                FinalTaxFlag.MANUAL,
                code=code,
                action="mark manual",
                reason="say who posted it by hand and why (user and reason must not be blank)",
            )
        updated = attrs.evolve(
            document,
            flag=FinalTaxFlag.MANUAL,
            stage=Stage.MANUAL,
            last_log=f"posted manually outside the ERP by {user}: {reason}",
            updated_at=ctx.clock(),
        )
        return ctx.record(
            Stage.MANUAL,
            updated,
            document.flag,
            Outcome.MARKED_MANUAL,
            started=started,
            effects=Effects(dequeue=True, log={"user": user}, keep_current=False),
        )


class _Drain(Generic[AttemptT]):
    """One repost run. The calling thread claims entries, reads their documents and records
    what the engine answered; ``concurrency`` posting threads make the engine calls between, so
    that a request is always in flight on each and none waits for the store. Answers are
    recorded in groups, one store call for half the concurrency's answers or for what came in
    within :attr:`GATHER_SECONDS` of the first, so a busy run makes few, larger transactions.

    At most ``concurrency`` documents wait read beside those being posted, all under the
    run's lease. When anything fails (the store, a progress callback, Ctrl-C) nothing more is
    sent: the posts under way finish and are recorded while the store allows, the claimed
    documents never sent are given back to the queue (free to take at once; one taken over from
    a dead worker keeps its doubt, so it is looked up first), and the error is raised.
    """

    GATHER_SECONDS = 0.05
    """How long the first answer of a group waits for the others (a fraction of an engine
    call, so no answer waits long for the store)."""

    def __init__(
        self,
        ctx: StageContext,
        reposter: Reposter[AttemptT],
        holder: str,
        lease: dt.timedelta,
        concurrency: int,
        *,
        limit: int | None,
        code: str | None,
        progress: Callable[[str, str], None] | None,
    ):
        self._ctx = ctx
        self._reposter = reposter
        self._holder = holder
        self._lease = lease
        self._concurrency = concurrency
        self._remaining = limit
        self._code = code
        self._progress = progress
        self._batch: deque[QueueEntry] = deque()
        self._read: dict[str, TaxDocument] = {}
        """The documents of the claimed batch, read with the claim, until handed out."""
        self._exhausted = False
        self._todo: SimpleQueue[tuple[QueueEntry, TaxDocument] | None] = SimpleQueue()
        self._done: SimpleQueue[tuple[QueueEntry, AttemptT | BaseException]] = SimpleQueue()
        self._ready: list[tuple[QueueEntry, AttemptT | BaseException]] = []
        """Answers taken from ``_done`` and not yet recorded."""
        self._stopping = threading.Event()
        self._unsent: list[QueueEntry] = []
        """Entries a posting thread skipped once the run was stopping (list.append is atomic)."""
        self._taken_over: set[str] = set()
        """Codes this run took over from a worker whose lease ran out (it may have sent them)."""
        self._group = max(1, concurrency // 2)
        """How many answers are recorded together when they come in close enough."""
        self.outcomes: dict[str, list[str]] = {"reposted": [], "failed": [], "taken_over": []}

    def run(self) -> None:
        """Drain until nothing is due (or ``limit`` is reached), then stop the threads."""
        threads = [
            threading.Thread(target=self._post, name=f"taxbridge-repost-{n}")
            for n in range(self._concurrency)
        ]
        for thread in threads:
            thread.start()
        in_flight = 0
        try:
            while True:
                while in_flight < 2 * self._concurrency and (entry := self._next()) is not None:
                    self._todo.put((entry, self._document(entry.code)))
                    in_flight += 1
                if in_flight == 0:
                    break
                self._gather(min(self._group, in_flight))
                in_flight -= self._record()
        except BaseException:
            self._stopping.set()
            self._join(threads)
            self._settle_after_failure()
            self._release_unsent()
            raise
        self._join(threads)

    def _next(self) -> QueueEntry | None:
        """The next claimed entry; a batch of a few per thread is claimed (and its documents
        read, in one read) when none is left."""
        if not self._batch and not self._exhausted:
            remaining, code = self._remaining, self._code
            take = 4 * self._concurrency
            ctx = self._ctx
            claimed = ctx.store.claim(
                self._holder,
                now=ctx.clock(),
                lease=self._lease,
                limit=take if remaining is None else min(take, remaining),
                code=code,
            )
            if code is not None and not claimed:
                self.outcomes["taken_over"].append(code)
            if remaining is not None:
                self._remaining = remaining - len(claimed)
            self._exhausted = not claimed or code is not None or self._remaining == 0
            self._taken_over.update(e.code for e in claimed if e.taken_over_from is not None)
            self._batch.extend(claimed)
            self._read = ctx.store.get_many([entry.code for entry in claimed])
        return self._batch.popleft() if self._batch else None

    def _document(self, code: str) -> TaxDocument:
        """A claimed entry's document, from its batch's one read."""
        document = self._read.pop(code, None)
        return document if document is not None else self._ctx.require(code)

    def _post(self) -> None:
        """A posting thread: engine calls until told to stop; after a failure, none."""
        while (item := self._todo.get()) is not None:
            entry, document = item
            if self._stopping.is_set():
                self._unsent.append(entry)
                continue
            answer: AttemptT | BaseException
            try:
                answer = self._reposter.attempt(document, entry)
            except BaseException as exc:  # raised in the calling thread, which stops the run
                answer = exc
            self._done.put((entry, answer))

    def _gather(self, wanted: int) -> None:
        """Wait for answers to record together: ``wanted`` of them (and any others already
        in), or what came in :attr:`GATHER_SECONDS` after the first; an error ends the group.
        They wait in ``_ready``, where a run that fails meanwhile still finds them."""
        ready = self._ready
        ready.append(self._done.get())
        deadline = time.monotonic() + self.GATHER_SECONDS
        while len(ready) < wanted and not isinstance(ready[-1][1], BaseException):
            try:
                ready.append(self._done.get(timeout=max(0.0, deadline - time.monotonic())))
            except Empty:
                break
        while not self._done.empty() and not isinstance(ready[-1][1], BaseException):
            ready.append(self._done.get())  # and what else is in already

    def _record(self) -> int:
        """Record the gathered answers in one store call: how many. An error a posting thread
        met is raised once the others are recorded."""
        ready = self._ready
        codes: list[str] = []
        posted: list[AttemptT] = []
        errors: list[BaseException] = []
        for entry, answer in ready:
            if isinstance(answer, BaseException):
                errors.append(answer)
            else:
                codes.append(entry.code)
                posted.append(answer)
        recorded = self._reposter.settle_all(posted, self._holder) if posted else []
        self._ready = []
        for code, result in zip(codes, recorded, strict=True):
            outcome = (
                "taken_over"
                if isinstance(result, LeaseLost)
                else "reposted"
                if result.flag is FinalTaxFlag.REPOSTED
                else "failed"
            )
            self.outcomes[outcome].append(code)
            if self._progress is not None:
                self._progress(code, outcome)
        if errors:
            raise errors[0]
        return len(ready)

    def _join(self, threads: list[threading.Thread]) -> None:
        for _ in threads:
            self._todo.put(None)
        for thread in threads:
            thread.join()

    def _release_unsent(self) -> None:
        """Give back what this run claimed and did not record, if the store allows (else the
        leases run out), so the next run takes it at once. What was never sent keeps the doubt
        it had (one taken over from a dead worker may have landed); anything else claimed may
        have been sent, and is marked so: the next run looks it up before posting it."""
        never_sent = {entry.code for entry in (*self._unsent, *self._batch)}
        self._batch.clear()
        with contextlib.suppress(Exception):
            # what the store says this run holds: a claim the stop cut short is in it too
            left = [entry for entry in self._ctx.store.queue() if entry.claimed_by == self._holder]
            if left:
                self._ctx.store.release(
                    self._holder,
                    [entry.code for entry in left],
                    in_doubt=[
                        entry.code
                        for entry in left
                        if entry.code not in never_sent or entry.code in self._taken_over
                    ],
                )

    def _settle_after_failure(self) -> None:
        """Record the answers not yet recorded when the run failed (gathered, or come in
        since), if the store allows: what the engine committed and is not recorded is looked
        up before it is posted again. A lease lost meanwhile leaves that one to the worker
        that holds it now."""
        while not self._done.empty():
            self._ready.append(self._done.get())
        finished = [answer for _, answer in self._ready if not isinstance(answer, BaseException)]
        if finished:
            with contextlib.suppress(Exception):
                self._reposter.settle_all(finished, self._holder)
