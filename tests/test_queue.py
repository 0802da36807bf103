"""The unposted queue: claims with leases, backoff, needs-fix, history and purge, threads, CLI.

Every test runs on a real SQLite file; the lifecycle ones on both engines (conftest ``engine``).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
from pathlib import Path

import attrs
import pytest
from conftest import NYC, T0, Clock, invoice, order

from taxbridge import FinalTaxFlag as F
from taxbridge import LocalEngine, RecordingBackend, RetryPolicy, SQLiteStore, TaxBridge
from taxbridge.backends.base import VoidReason
from taxbridge.cli import main
from taxbridge.config import default_config
from taxbridge.errors import (
    AuthenticationFailed,
    BackendUnavailable,
    CircuitOpen,
    ConcurrentChange,
    DocumentRejected,
    InvalidFieldError,
    InvalidTransition,
    LeaseLost,
)
from taxbridge.models import Address, DocumentType
from taxbridge.store._sqlite_file import LATEST
from taxbridge.store.base import Expected

LEASE = dt.timedelta(minutes=5)
BAD = Address(
    "1 Main St", "Schenectady", "NY", "12345"
)  # a ZIP the engine has no rate for: rejected


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def bridge(engine, store, clock) -> TaxBridge:
    return TaxBridge(default_config(), engine, store, clock=clock)


def _fail(bridge: TaxBridge, engine, count: int, start: int = 1) -> list[str]:
    """``count`` invoices posted during an outage: U and queued."""
    engine.outage = True
    codes = []
    for n in range(start, start + count):
        codes.append(bridge.on_invoice(invoice(str(n), order(str(1000 + n)))).code)
    engine.outage = False
    return codes


class TestClaims:
    def test_two_workers_never_hold_the_same_entry(self, bridge, engine, store) -> None:
        codes = _fail(bridge, engine, 12)
        with SQLiteStore(store.path) as other:
            first = store.claim("a", now=T0, lease=LEASE, limit=5)
            second = other.claim("b", now=T0, lease=LEASE)
        assert len(first) == 5
        assert sorted(e.code for e in first + second) == sorted(codes)
        assert {e.claimed_by for e in first} == {"a"}
        assert {e.lease_expires_at for e in second} == {T0 + LEASE}

    def test_claims_race_from_threads_and_stay_exclusive(self, bridge, engine, store) -> None:
        codes = _fail(bridge, engine, 40)
        taken: list[str] = []
        lock = threading.Lock()

        def worker(name: str) -> None:
            with SQLiteStore(store.path) as own:
                while entries := own.claim(name, now=T0, lease=LEASE, limit=3):
                    with lock:
                        taken.extend(e.code for e in entries)

        threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(taken) == sorted(codes)

    def test_an_expired_lease_lets_another_worker_take_the_entry(
        self, bridge, engine, store
    ) -> None:
        (code,) = _fail(bridge, engine, 1)
        assert [e.code for e in store.claim("dead", now=T0, lease=LEASE)] == [code]
        assert store.claim("b", now=T0 + dt.timedelta(minutes=4), lease=LEASE) == []
        taken = store.claim("b", now=T0 + dt.timedelta(minutes=5), lease=LEASE)
        assert [e.claimed_by for e in taken] == ["b"]

    def test_a_worker_whose_lease_was_taken_over_writes_nothing(
        self, bridge, engine, store, clock
    ) -> None:
        (code,) = _fail(bridge, engine, 1)
        store.claim("slow", now=T0, lease=LEASE)
        document = bridge.inquiry(code).document  # "slow" read it (U), then stalled
        clock.advance(minutes=6)
        assert bridge.repost(worker="fast").reposted == (code,)
        with pytest.raises(LeaseLost, match="slow"):
            bridge.posting.repost(document, document.request, document.stage, holder="slow")
        assert bridge.inquiry(code).document.flag is F.REPOSTED
        assert engine.commit_counts[code] == 1

    def test_a_document_held_by_a_live_worker_is_reported_not_taken(
        self, bridge, engine, store
    ) -> None:
        (code,) = _fail(bridge, engine, 1)
        store.claim("busy", now=T0, lease=LEASE)
        summary = bridge.repost(code)
        until = (T0 + LEASE).strftime("%Y-%m-%d %H:%M:%S")
        assert summary.not_taken == ((code, f"another run (busy) holds it until {until} UTC"),)
        assert (summary.taken_over, summary.reposted) == ((), ())
        assert (summary.held, summary.held_until) == (1, T0 + LEASE)
        assert engine.commit_counts[code] == 0

    def test_a_u_document_without_a_queue_entry_is_reported_as_such(
        self, bridge, engine, store
    ) -> None:
        (code,) = _fail(bridge, engine, 1)
        with store._write() as conn:  # as a copy killed between documents and queue left it
            conn.execute("DELETE FROM unposted_queue WHERE code = ?", (code,))
        summary = bridge.repost(code)
        assert summary.not_taken == ((code, "it is U but has no queue entry: nothing can "
                                      "repost it until it is queued"),)  # fmt: skip
        assert engine.commit_counts[code] == 0


class TestTransitions:
    def test_a_failed_repost_counts_the_attempt_and_backs_off(
        self, bridge, engine, store, clock
    ) -> None:
        (code,) = _fail(bridge, engine, 1)
        engine.outage = True
        assert bridge.repost().failed == (code,)
        entry = store.queue_entry(code)
        assert entry.attempts == 2
        assert entry.claimed_by is None
        wait = entry.next_attempt_at - T0
        assert dt.timedelta(seconds=54) <= wait <= dt.timedelta(seconds=66)  # 1 min ± 10%
        assert bridge.repost() == bridge.repost()  # not due yet: nothing claimed
        assert store.queue_entry(code).attempts == 2
        engine.outage = False
        clock.advance(minutes=3)
        assert bridge.repost().reposted == (code,)
        assert store.queue_entry(code) is None
        assert store.settled() == [(code, "R", clock.now)]

    def test_the_backoff_schedule_doubles_with_jitter_up_to_the_cap(self) -> None:
        policy = RetryPolicy()
        rng = random.Random(7)
        for attempts, minutes in [(1, 1), (2, 2), (3, 4), (4, 8), (7, 60), (12, 60)]:
            wait = policy.delay(attempts, rng).total_seconds()
            assert minutes * 60 * 0.9 <= wait <= minutes * 60 * 1.1, attempts

    def test_needs_fix_waits_for_an_operator_or_a_changed_document(
        self, bridge, engine, store
    ) -> None:
        doc = bridge.on_invoice(invoice("50", order(ship_to=BAD)))
        assert store.queue_entry(doc.code).needs_fix
        summary = bridge.repost()
        assert summary.skipped == (doc.code,)
        assert summary.reposted == summary.failed == ()
        assert store.queue_entry(doc.code).attempts == 1
        assert bridge.repost(doc.code).failed == (doc.code,)  # asked for: tried, still rejected
        fixed = bridge.on_invoice(invoice("50", order(ship_to=NYC)))  # the ERP fixed the address
        assert fixed.flag is F.REPOSTED
        assert store.queue_entry(doc.code) is None

    def test_dry_run_lists_what_is_due_and_changes_nothing(self, bridge, engine, store) -> None:
        codes = _fail(bridge, engine, 3)
        summary = bridge.repost(dry_run=True, limit=2)
        assert summary.due == tuple(codes[:2])
        assert summary.reposted == ()
        assert all(store.queue_entry(c).claimed_by is None for c in codes)
        assert engine.commit_counts == {}

    def test_limit_reposts_at_most_that_many(self, bridge, engine, store) -> None:
        codes = _fail(bridge, engine, 5)
        assert len(bridge.repost(limit=2).reposted) == 2
        assert len(store.queue()) == 3
        assert bridge.repost().reposted == tuple(sorted(codes[2:]))

    def test_bad_options_are_refused(self, bridge) -> None:
        with pytest.raises(InvalidFieldError, match="limit"):
            bridge.repost(limit=0)
        with pytest.raises(InvalidFieldError, match="concurrency"):
            bridge.repost(concurrency=0)
        with pytest.raises(InvalidFieldError, match="older_than"):
            bridge.purge(dt.timedelta(days=-1))

    def test_threads_repost_every_document_exactly_once(self, bridge, engine, store) -> None:
        codes = _fail(bridge, engine, 60)
        summary = bridge.repost(concurrency=4)
        assert summary.reposted == tuple(sorted(codes))
        assert all(engine.commit_counts[c] == 1 for c in codes)
        assert [d.flag for d in store.documents(flags=[F.FAILED])] == []


class TestLookupBeforePost:
    """The lookup by code is skipped only when no earlier attempt can have reached the engine."""

    def test_a_document_whose_posting_was_never_sent_is_posted_without_a_lookup(
        self, bridge, engine, store
    ) -> None:
        (code,) = _fail(bridge, engine, 1)  # connection refused: nothing reached the engine
        assert store.queue_entry(code).may_have_landed is False
        assert bridge.repost().reposted == (code,)
        assert engine.lookups == []
        assert engine.commit_counts[code] == 1

    def test_a_posting_that_may_have_landed_is_looked_up_and_found(
        self, bridge, engine, store
    ) -> None:
        engine.lose_responses = 1  # committed at the engine, the answer lost
        doc = bridge.on_invoice(invoice("7", order("1007")))
        assert doc.flag is F.FAILED
        assert store.queue_entry(doc.code).may_have_landed is True
        assert bridge.repost().reposted == (doc.code,)
        assert engine.lookups[0] == doc.code
        assert engine.commit_counts[doc.code] == 1
        assert "found already committed" in bridge.inquiry(doc.code).document.last_log

    def test_a_posting_that_landed_and_was_voided_at_the_engine_is_recorded_voided_not_posted_again(
        self, bridge, engine, store
    ) -> None:
        engine.lose_responses = 1  # committed at the engine, the answer lost
        doc = bridge.on_invoice(invoice("8", order("1008")))
        assert doc.flag is F.FAILED
        engine.void_document(
            doc.company_code, doc.code, DocumentType.SALES_INVOICE, VoidReason.DOC_VOIDED
        )  # someone voids it at the engine before the repost runs
        assert bridge.repost().reposted == (doc.code,)
        assert engine.commit_counts[doc.code] == 1
        stored = store.get(doc.code)
        assert (stored.flag, stored.voided_at is not None) == (F.REPOSTED, True)
        assert "found voided" in stored.last_log
        assert bridge.unposted() == []
        assert list(bridge.workfile(f"{stored.document_date:%Y-%m}")) == []
        with pytest.raises(InvalidTransition, match="voided on"):
            bridge.void(doc.code, "again")

    def test_once_an_attempt_may_have_landed_every_later_repost_looks_first(
        self, bridge, engine, store, clock
    ) -> None:
        (code,) = _fail(bridge, engine, 1)
        engine.lose_responses = 1  # the first repost's answer is lost
        assert bridge.repost().failed == (code,)
        assert store.queue_entry(code).may_have_landed is True
        engine.outage = True  # a later attempt that is certainly not sent does not clear it
        clock.advance(minutes=2)
        assert bridge.repost().failed == (code,)
        assert store.queue_entry(code).may_have_landed is True
        engine.outage = False
        clock.advance(minutes=3)
        looked = len(engine.lookups)
        assert bridge.repost().reposted == (code,)
        assert engine.lookups[looked] == code
        assert engine.commit_counts[code] == 1

    def test_taking_over_an_expired_lease_makes_the_repost_look_first(
        self, bridge, engine, store, clock
    ) -> None:
        (code,) = _fail(bridge, engine, 1)  # never sent: a repost would post straight away
        store.claim("died", now=T0, lease=LEASE)  # ... but a worker took it and died
        clock.advance(minutes=6)
        assert bridge.repost().reposted == (code,)
        assert engine.lookups == [code]
        assert engine.commit_counts[code] == 1

    def test_a_code_committed_behind_the_queues_back_is_refused_and_looked_up_not_reposted(
        self, bridge, engine, store
    ) -> None:
        (code,) = _fail(bridge, engine, 1)
        engine.inner.calculate(store.get(code).request)  # someone posted it after all
        assert store.queue_entry(code).may_have_landed is False
        assert bridge.repost().reposted == (code,)
        assert engine.commit_counts[code] == 1
        assert engine.lookups == [code]
        assert "found already committed" in bridge.inquiry(code).document.last_log


class TestHistory:
    def test_settled_entries_stay_as_history_until_purged_u_never(
        self, bridge, engine, store, clock
    ) -> None:
        reposted, manual, open_ = _fail(bridge, engine, 3)
        bridge.repost(reposted)
        bridge.mark_manual(manual, "keyed into AvaTax", "jane")
        assert [(c, o) for c, o, _ in store.settled()] == [(reposted, "R"), (manual, "M")]
        clock.advance(days=91)
        store.claim("x", now=clock.now, lease=LEASE, code=open_)  # an open, claimed U entry
        assert bridge.purge(dt.timedelta(days=90)) == 2
        assert store.settled() == []
        assert store.queue_entry(open_) is not None

    def test_a_version_2_file_gains_the_queue_columns_and_keeps_its_entries(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "v2.db"
        with SQLiteStore(path) as store:
            engine = RecordingBackend(LocalEngine())
            bridge = TaxBridge(default_config(), engine, store)
            engine.outage = True
            bridge.on_invoice(invoice("1", order()))
            assert store.queue_entry("A-1").may_have_landed is False
            conn = store._conn
            conn.execute("DELETE FROM schema_migrations WHERE version IN (3, 4)")
            conn.execute("DROP INDEX unposted_queue_due")
            for column in (
                "claimed_by",
                "lease_expires_at",
                "settled_at",
                "outcome",
                "may_have_landed",
            ):
                conn.execute(f"ALTER TABLE unposted_queue DROP COLUMN {column}")
            conn.commit()
        with SQLiteStore(path) as reopened:
            assert reopened.schema_version == LATEST
            entry = reopened.queue_entry("A-1")
            assert entry is not None
            assert entry.claimed_by is None
            # nothing says where an old entry's attempts went: its repost looks the code up
            assert entry.may_have_landed is True


class TestCommandLine:
    @pytest.fixture
    def db(self, tmp_path: Path) -> Path:
        path = tmp_path / "ops.db"
        engine = RecordingBackend(LocalEngine())
        engine.outage = True
        with TaxBridge(default_config(str(path)), engine, SQLiteStore(path)) as bridge:
            for n in range(1, 4):
                bridge.on_invoice(invoice(str(n), order(str(1000 + n))))
            engine.outage = False
            bridge.on_invoice(invoice("9", order("1009", ship_to=BAD)))  # rejected: needs a fix
        return path

    def test_repost_json_dry_run_limit_and_exit_codes(self, db, capsys) -> None:
        assert main(["repost", "--db", str(db), "--dry-run", "--json"]) == 0
        dry = json.loads(capsys.readouterr().out)
        assert (dry["due"], dry["needs_fix"]) == (["A-1", "A-2", "A-3"], ["A-9"])
        assert main(["repost", "--db", str(db), "--limit", "1"]) == 0
        assert "reposted 1, still failing 0, needing a fix 1" in capsys.readouterr().out
        assert main(["repost", "--db", str(db), "--concurrency", "2", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["reposted"] == ["A-2", "A-3"]
        assert main(["repost", "--db", str(db), "--code", "A-9"]) == 1  # still rejected
        assert "still failing 1" in capsys.readouterr().out

    def test_unposted_needs_fix_and_purge(self, db, capsys) -> None:
        assert main(["unposted", "--db", str(db), "--needs-fix", "--json"]) == 0
        rows = [json.loads(row) for row in capsys.readouterr().out.splitlines()]
        assert [(r["code"], r["needs_fix"]) for r in rows] == [("A-9", True)]
        assert rows[0]["last_error_code"] == "GetTaxError"
        assert main(["repost", "--db", str(db)]) == 0
        assert main(["purge", "--db", str(db), "--older-than", "0d"]) == 0
        assert "purged 3 settled" in capsys.readouterr().out.splitlines()[-1]
        with pytest.raises(SystemExit):
            main(["purge", "--db", str(db), "--older-than", "ninety"])
        assert "is not a duration" in capsys.readouterr().err


def test_an_outage_of_30_simulated_minutes_drains_with_the_expected_attempts(engine, store) -> None:
    """The engine is down for the first 30 minutes; the job runs whenever something is due.
    Without jitter the schedule is exact: attempts at 0 (invoice), 0, 1, 3, 7, 15 fail; 31 posts."""
    clock = Clock()
    bridge = TaxBridge(default_config(), engine, store, clock=clock,
                       retry=RetryPolicy(jitter=0.0))  # fmt: skip
    recover_at = T0 + dt.timedelta(minutes=30)
    codes = _fail(bridge, engine, 20)
    runs = []
    while entries := store.queue():
        clock.now = max(clock.now, min(e.next_attempt_at for e in entries))
        engine.outage = clock.now < recover_at
        runs.append((clock.now - T0).total_seconds() / 60)
        bridge.repost()
    engine.outage = False
    assert runs == [0, 1, 3, 7, 15, 31]
    for code in codes:
        flags = [event.flag_after for event in store.events(code)]
        assert flags == [F.FAILED] * 6 + [F.REPOSTED], code
        assert engine.commit_counts[code] == 1


class TestRetrySchedule:
    """The queue's schedule is the only maker of queue entries; what it keeps comes from the
    error classes (retryable) and the error itself (sent)."""

    def test_the_first_failure_is_due_at_once_and_each_repost_waits_longer(self) -> None:
        policy = RetryPolicy(jitter=0.0)
        entry = policy.entry("A-1", BackendUnavailable("down", sent=False), T0)
        assert (entry.attempts, entry.next_attempt_at, entry.created_at) == (1, T0, T0)
        waits = []
        for minute in range(1, 9):
            now = T0 + dt.timedelta(minutes=minute)
            entry = policy.entry("A-1", BackendUnavailable("down", sent=False), now, previous=entry)
            waits.append((entry.next_attempt_at - now).total_seconds() / 60)
        assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
        assert (entry.attempts, entry.created_at) == (9, T0)

    def test_a_rejection_needs_a_fix_and_the_rest_are_retried(self) -> None:
        policy = RetryPolicy()
        assert policy.entry("A-1", DocumentRejected("bad ZIP"), T0).needs_fix
        for error in (
            BackendUnavailable("down"),
            CircuitOpen("open", sent=False),
            AuthenticationFailed("401"),
        ):
            assert not policy.entry("A-1", error, T0).needs_fix, error

    def test_may_have_landed_is_sticky_and_only_a_certainly_unsent_history_clears_it(
        self,
    ) -> None:
        policy = RetryPolicy()
        unsent = BackendUnavailable("refused", sent=False)
        first = policy.entry("A-1", unsent, T0)
        assert not first.may_have_landed
        assert policy.entry(
            "A-1", BackendUnavailable("read timeout"), T0, previous=first
        ).may_have_landed
        assert policy.entry("A-1", unsent, T0, previous=first, in_doubt=True).may_have_landed
        assert policy.entry("A-1", DocumentRejected("bad"), T0).may_have_landed

    def test_the_error_is_kept_by_name_and_message(self) -> None:
        entry = RetryPolicy().entry(
            "A-1", DocumentRejected("Zip is not valid", error_code="GetTaxError"), T0
        )
        assert (entry.last_error_code, entry.last_error_message) == (
            "GetTaxError",
            "Zip is not valid [GetTaxError]",
        )
        assert RetryPolicy().entry("A-1", BackendUnavailable("x"), T0).last_error_code == (
            "BackendUnavailable"
        )


class TestErpAndWorkers:
    """The ERP invoicing a U document again respects a repost worker's lease, and a settled
    document is never reopened."""

    def test_the_erp_leaves_a_document_a_worker_holds_to_that_worker(
        self, bridge, engine, store
    ) -> None:
        (code,) = _fail(bridge, engine, 1)
        store.claim("worker", now=T0, lease=LEASE)
        calls = engine.calls
        again = bridge.on_invoice(invoice("1", order("1001")))
        assert again.flag is F.FAILED
        assert engine.calls == calls
        assert [e.flag_after for e in store.events(code)] == [F.FAILED]
        assert store.queue_entry(code).claimed_by == "worker"

    def test_a_document_a_worker_settled_meanwhile_is_never_reopened(self, store, clock) -> None:
        local = LocalEngine()

        class Interleaved(RecordingBackend):
            """The ERP's attempt hangs; meanwhile a repost worker settles the document."""

            during = None

            def calculate(self, request):
                if self.during is not None:
                    settle, self.during = self.during, None
                    settle()
                    raise BackendUnavailable("read timed out", code=request.code)
                return super().calculate(request)

        erp_engine = Interleaved(local)
        erp = TaxBridge(default_config(), erp_engine, store, clock=clock)
        worker = TaxBridge(default_config(), RecordingBackend(local), store, clock=clock)
        erp_engine.outage = True
        assert erp.on_invoice(invoice("1", order())).flag is F.FAILED
        erp_engine.outage = False

        def worker_settles() -> None:
            clock.advance(minutes=6)  # the ERP's lease runs out while it waits
            assert worker.repost(worker="w").reposted == ("A-1",)

        erp_engine.during = worker_settles
        again = erp.on_invoice(invoice("1", order()))
        assert again.flag is F.REPOSTED
        assert [e.flag_after for e in store.events("A-1")] == [F.FAILED, F.REPOSTED]
        assert store.queue_entry("A-1") is None
        assert local.commit_counts["A-1"] == 1

    def test_a_stage_that_finds_the_document_changed_writes_nothing(self, bridge, store) -> None:
        posted = bridge.on_invoice(invoice("1", order()))
        stale = attrs.evolve(posted, flag=F.FAILED)
        with pytest.raises(ConcurrentChange, match="it read U, it is now Y"):
            store.save([stale], [], expected=Expected(F.FAILED))
        assert store.get("A-1") == posted
