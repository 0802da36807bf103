"""The repost run's pipeline: posting threads keep a request in flight while the calling thread
reads and records, never more than ``concurrency`` at the engine, and a failure stops the
sending without losing what the engine already committed.

Real parts: a SQLite file in tmp_path, the local engine behind a recorder whose calls a test
can slow down or hold the store's lock from (as another process would).
"""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from conftest import Clock, invoice, order

from taxbridge import FinalTaxFlag as F
from taxbridge import LocalEngine, RecordingBackend, SQLiteStore, TaxBridge
from taxbridge.config import default_config
from taxbridge.errors import StoreError
from taxbridge.models import TaxRequest, TaxResult
from taxbridge.queue import _Drain
from taxbridge.store.base import Refusal, Write


class Hooked(RecordingBackend):
    """The local engine behind a recorder that, once watched, runs ``before(call number)``
    ahead of each engine call and counts how many calls are under way at once."""

    def __init__(self) -> None:
        super().__init__(LocalEngine())
        self.before: Callable[[int], None] = lambda number: None
        self.started = 0
        self.order: list[str] = []
        self.busy = 0
        self.most_busy = 0
        self._lock = threading.Lock()

    def watch(self, before: Callable[[int], None]) -> None:
        """From now on: number the calls from 1 and run ``before`` ahead of each."""
        self.requests.clear()
        self.started = 0
        self.order.clear()
        self.before = before

    def calculate(self, request: TaxRequest) -> TaxResult:
        with self._lock:
            self.started += 1
            self.order.append(request.code)
            self.busy += 1
            self.most_busy = max(self.most_busy, self.busy)
            number = self.started
        try:
            self.before(number)
            with self._lock:
                return super().calculate(request)
        finally:
            with self._lock:
                self.busy -= 1


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _queued(path: Path, engine: RecordingBackend, clock: Clock, count: int) -> list[str]:
    """``count`` invoices posted during an outage: U and queued."""
    with SQLiteStore(path) as store:
        bridge = TaxBridge(default_config(), engine, store, clock=clock)
        engine.outage = True
        codes = [
            bridge.on_invoice(invoice(str(n), order(str(1000 + n)))).code
            for n in range(1, count + 1)
        ]
        engine.outage = False
    return codes


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Callable[[Path], sqlite3.Connection]]:
    """Take the store file's write lock as another process would; released at the end."""
    holders: list[sqlite3.Connection] = []

    def take(path: Path) -> sqlite3.Connection:
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")
        holders.append(holder)
        return holder

    yield take
    for holder in holders:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()


def _drain_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("taxbridge-repost-")]


def test_a_drain_keeps_concurrency_requests_in_flight_and_never_more(
    tmp_path: Path, clock: Clock
) -> None:
    engine = Hooked()
    codes = _queued(tmp_path / "t.db", engine, clock, 40)
    engine.watch(lambda n: time.sleep(0.02))
    with SQLiteStore(tmp_path / "t.db") as store:
        bridge = TaxBridge(default_config(), engine, store, clock=clock)
        summary = bridge.repost(concurrency=4)
        assert summary.reposted == tuple(sorted(codes))
        assert engine.most_busy == 4
        assert all(engine.commit_counts[code] == 1 for code in codes)
        assert store.documents(flags=[F.FAILED]) == []
    assert _drain_threads() == []


def test_posting_goes_on_while_the_store_is_locked_up_to_the_documents_read_ahead(
    tmp_path: Path, clock: Clock, locked: Callable[[Path], sqlite3.Connection]
) -> None:
    """While another process holds the store, the run's first record waits; its posting
    threads post what they hold and the documents already read, twice the concurrency, and
    then wait too. Released, the run finishes with every document posted once."""
    path = tmp_path / "t.db"
    posted_while_locked: list[int] = []

    def lock_at_first_call(number: int) -> None:
        if number == 1:
            holder = locked(path)

            def release() -> None:
                time.sleep(0.5)
                posted_while_locked.append(len(engine.requests))
                holder.execute("ROLLBACK")

            threading.Thread(target=release).start()
        time.sleep(0.05)  # the run reads ahead meanwhile: reading is not held up

    engine = Hooked()
    codes = _queued(path, engine, clock, 12)
    engine.watch(lock_at_first_call)
    with SQLiteStore(path) as store:
        summary = TaxBridge(default_config(), engine, store, clock=clock).repost(concurrency=2)
    assert posted_while_locked == [4]
    assert summary.reposted == tuple(sorted(codes))
    assert all(engine.commit_counts[code] == 1 for code in codes)


def test_a_store_failure_stops_the_sending_and_a_later_run_adopts_what_was_committed(
    tmp_path: Path, clock: Clock, locked: Callable[[Path], sqlite3.Connection]
) -> None:
    path = tmp_path / "t.db"
    holders: list[sqlite3.Connection] = []
    taken = threading.Event()

    def lock_before_any_answer(number: int) -> None:
        if number == 1:
            holders.append(locked(path))
            taken.set()
        taken.wait()  # no answer comes back before the store is locked

    engine = Hooked()
    codes = _queued(path, engine, clock, 30)
    engine.watch(lock_before_any_answer)
    with SQLiteStore(path, timeout=0.05) as store:
        bridge = TaxBridge(default_config(), engine, store, clock=clock)
        with pytest.raises(StoreError, match="is committed at local .* could not be stored"):
            bridge.repost(concurrency=3)
        assert _drain_threads() == []
        sent = len(engine.requests)
        assert 1 <= sent <= 6  # those being posted and those read ahead; then nothing
        assert store.documents(flags=[F.REPOSTED]) == []  # the store refused every write
        holders[0].execute("ROLLBACK")
        committed = {code for code in codes if engine.commit_counts[code]}
        assert len(committed) == sent
        clock.advance(minutes=6)  # the failed run's lease runs out
        summary = bridge.repost(concurrency=3)
    assert summary.reposted == tuple(sorted(codes))
    assert all(engine.commit_counts[code] == 1 for code in codes)
    assert set(engine.lookups) >= committed  # looked up, adopted, not posted again
    with SQLiteStore(path) as store:
        for code in committed:
            assert store.get(code).last_log.startswith("found already committed at local")


def test_a_failing_progress_callback_stops_the_run_and_what_was_posted_is_recorded(
    tmp_path: Path, clock: Clock
) -> None:
    engine = Hooked()
    codes = _queued(tmp_path / "t.db", engine, clock, 30)
    engine.watch(lambda n: time.sleep(0.01))

    def progress(code: str, outcome: str) -> None:
        raise KeyboardInterrupt  # the operator pressed Ctrl-C

    with SQLiteStore(tmp_path / "t.db") as store:
        bridge = TaxBridge(default_config(), engine, store, clock=clock)
        with pytest.raises(KeyboardInterrupt):
            bridge.repost(concurrency=4, progress=progress)
        assert _drain_threads() == []
        flags = {doc.code: doc.flag for doc in store.documents()}
    posted = {code for code in codes if engine.commit_counts[code]}
    assert 1 <= len(posted) <= 8
    assert {flags[code] for code in posted} == {F.REPOSTED}
    assert {flags[code] for code in set(codes) - posted} == {F.FAILED}


def test_ctrl_c_gives_the_documents_never_sent_back_to_the_queue(
    tmp_path: Path, clock: Clock
) -> None:
    """The docs said unsent documents are "simply taken again": at once, not after the
    lease, and each is still posted once."""
    engine = Hooked()
    codes = _queued(tmp_path / "t.db", engine, clock, 30)
    engine.watch(lambda n: time.sleep(0.01))

    def progress(code: str, outcome: str) -> None:
        raise KeyboardInterrupt

    with SQLiteStore(tmp_path / "t.db") as store:
        bridge = TaxBridge(default_config(), engine, store, clock=clock)
        with pytest.raises(KeyboardInterrupt):
            bridge.repost(concurrency=4, progress=progress)
        left = store.queue()
        assert left
        assert {entry.claimed_by for entry in left} == {None}
        again = bridge.repost(concurrency=4)  # the same minute: no lease to wait for
        assert sorted(again.reposted) == sorted(entry.code for entry in left)
    assert all(engine.commit_counts[code] == 1 for code in codes)


def test_an_unexpected_error_in_a_posting_thread_is_raised_by_the_run(
    tmp_path: Path, clock: Clock
) -> None:
    def broken(number: int) -> None:
        if number == 3:
            raise RuntimeError("a bug in a backend")

    engine = Hooked()
    codes = _queued(tmp_path / "t.db", engine, clock, 10)
    engine.watch(broken)
    with SQLiteStore(tmp_path / "t.db") as store:
        bridge = TaxBridge(default_config(), engine, store, clock=clock)
        with pytest.raises(RuntimeError, match="a bug in a backend"):
            bridge.repost(concurrency=1)
        assert _drain_threads() == []
        flags = {doc.code: doc.flag for doc in store.documents()}
    posted = {code for code in codes if engine.commit_counts[code]}
    assert posted >= set(engine.order[:2])
    assert engine.order[2] not in posted  # its call raised before it reached the engine
    assert len(posted) <= 4  # then at most the one being posted and the one read ahead
    assert {flags[code] for code in posted} == {F.REPOSTED}
    assert {flags[code] for code in set(codes) - posted} == {F.FAILED}


class Counting(SQLiteStore):
    """A real SQLite store that remembers how many writes each of its store calls made."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls: list[int] = []

    def save_all(self, writes: Sequence[Write]) -> list[Refusal | None]:
        self.calls.append(len(writes))
        return super().save_all(writes)


def _held_at_first_call(
    path: Path,
    locked: Callable[[Path], sqlite3.Connection],
    then: Callable[[sqlite3.Connection], None],
) -> Callable[[int], None]:
    """A hook that takes the store's lock at the first engine call (no answer comes back
    before it is taken) and, half a second later, runs ``then`` on the holding connection
    and lets go: the answers pile up meanwhile."""
    taken = threading.Event()

    def hook(number: int) -> None:
        if number == 1:
            holder = locked(path)
            taken.set()

            def release() -> None:
                time.sleep(0.5)
                then(holder)
                holder.execute("COMMIT")

            threading.Thread(target=release).start()
        taken.wait()

    return hook


def test_answers_that_came_in_together_are_recorded_in_one_store_call(
    tmp_path: Path, clock: Clock, locked: Callable[[Path], sqlite3.Connection]
) -> None:
    path = tmp_path / "t.db"
    engine = Hooked()
    codes = _queued(path, engine, clock, 24)
    engine.watch(_held_at_first_call(path, locked, lambda holder: None))
    with Counting(path) as store:
        summary = TaxBridge(default_config(), engine, store, clock=clock).repost(concurrency=3)
        assert summary.reposted == tuple(sorted(codes))
        assert sum(store.calls) == 24
        assert max(store.calls) >= 4  # what was posted while the store was held, at once
        assert len(store.calls) < 24
        assert {entry.outcome for entry in store.settled()} == {"R"}
    assert all(engine.commit_counts[code] == 1 for code in codes)


def test_a_lease_lost_within_a_group_leaves_that_document_and_records_the_others(
    tmp_path: Path, clock: Clock, locked: Callable[[Path], sqlite3.Connection]
) -> None:
    path = tmp_path / "t.db"
    engine = Hooked()
    codes = _queued(path, engine, clock, 12)
    stolen: list[str] = []

    def take_over_the_second(holder: sqlite3.Connection) -> None:
        stolen.append(engine.order[1])
        holder.execute(
            "UPDATE unposted_queue SET claimed_by = 'another worker' WHERE code = ?", stolen
        )

    engine.watch(_held_at_first_call(path, locked, take_over_the_second))
    with Counting(path) as store:
        summary = TaxBridge(default_config(), engine, store, clock=clock).repost(concurrency=3)
        assert summary.taken_over == tuple(stolen)
        assert summary.reposted == tuple(sorted(set(codes) - set(stolen)))
        assert max(store.calls) >= 2
        assert store.get(stolen[0]).flag is F.FAILED  # left to the worker holding it now
        assert store.queue_entry(stolen[0]).claimed_by == "another worker"
    assert all(engine.commit_counts[code] == 1 for code in codes)


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds, failing after ten seconds with ``what`` it waited for."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"waited ten seconds for {what}"
        time.sleep(0.005)


def _staggered(number: int) -> None:
    """Each engine call takes 40 ms, the first four started 10 ms apart: with four posting
    threads the answers keep coming one at a time, about 10 ms apart."""
    time.sleep(0.01 * number if number <= 4 else 0.04)


def test_answers_coming_one_at_a_time_are_recorded_in_groups_of_half_the_concurrency(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "t.db"
    engine = Hooked()
    codes = _queued(path, engine, clock, 24)
    engine.watch(_staggered)
    with Counting(path) as store:
        summary = TaxBridge(default_config(), engine, store, clock=clock).repost(concurrency=4)
        assert summary.reposted == tuple(sorted(codes))
        assert sum(store.calls) == 24
        assert len(store.calls) <= 16  # one store call per answer would be 24
        assert {entry.outcome for entry in store.settled()} == {"R"}
    assert all(engine.commit_counts[code] == 1 for code in codes)


def test_an_answer_is_recorded_without_waiting_for_a_slow_one(tmp_path: Path, clock: Clock) -> None:
    """The second engine call is held until the first document is recorded: the run records
    what it has after a short wait rather than waiting for a group to fill."""
    path = tmp_path / "t.db"
    engine = Hooked()
    codes = _queued(path, engine, clock, 2)
    flags: list[F] = []

    def hold_the_second(number: int) -> None:
        if number == 2:
            with SQLiteStore(path) as reader:
                _wait_for(
                    lambda: reader.get(engine.order[0]).flag is F.REPOSTED,
                    "the first answer to be recorded",
                )
                flags.append(reader.get(engine.order[1]).flag)

    engine.watch(hold_the_second)
    with Counting(path) as store:
        summary = TaxBridge(default_config(), engine, store, clock=clock).repost(concurrency=4)
        assert summary.reposted == tuple(sorted(codes))
        assert store.calls == [1, 1]
    assert flags == [F.FAILED]  # the first was recorded while the second was still U


@pytest.mark.skipif(
    not hasattr(signal, "pthread_kill"), reason="needs signal.pthread_kill to press Ctrl-C"
)
def test_ctrl_c_while_an_answer_waits_for_its_group_still_records_it(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator presses Ctrl-C while the first answer waits for a second to be recorded
    with: the run stops and records both documents the engine committed."""
    monkeypatch.setattr(_Drain, "GATHER_SECONDS", 5.0)  # the first answer waits for the second
    path = tmp_path / "t.db"
    engine = Hooked()
    codes = _queued(path, engine, clock, 2)

    def interrupt_at_the_second(number: int) -> None:
        if number == 2:
            _wait_for(lambda: engine.commit_counts[engine.order[0]] > 0, "the first engine call")
            time.sleep(0.2)  # its answer is in and waits for this one
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
            time.sleep(0.2)  # this one comes in once the run has stopped

    engine.watch(interrupt_at_the_second)
    with SQLiteStore(path) as store:
        bridge = TaxBridge(default_config(), engine, store, clock=clock)
        with pytest.raises(KeyboardInterrupt):
            bridge.repost(concurrency=4)
        assert _drain_threads() == []
        assert {doc.code: doc.flag for doc in store.documents()} == dict.fromkeys(codes, F.REPOSTED)
    assert all(engine.commit_counts[code] == 1 for code in codes)
