"""The posting-once rule (taxbridge.posting), pinned on its own: deterministic code, create,
look up on any doubt, AlreadyCommitted is a question."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import invoice, order

from taxbridge import LocalEngine, OfflineTable, RecordingBackend
from taxbridge.config import default_config
from taxbridge.errors import AlreadyCommitted, BackendUnavailable
from taxbridge.models import DocumentStatus
from taxbridge.posting import in_doubt, look_up, post_once
from taxbridge.queue import RetryPolicy
from taxbridge.rates import shipped_rates
from taxbridge.rules import Context, invoice_request

T0 = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC)
CONFIG = default_config()
CONTEXT = Context(nexus=CONFIG.nexus_regions)


def _request(number: str = "1"):
    return invoice_request(CONFIG, invoice(number, order(str(1000 + int(number)))), CONTEXT)


@pytest.fixture
def engine() -> RecordingBackend:
    return RecordingBackend(LocalEngine())


def test_the_code_is_the_document_number_never_a_random_one() -> None:
    assert _request("42").code == "A-42"
    assert _request("42") == _request("42")


def test_without_doubt_a_posting_is_one_create_and_no_lookup(engine) -> None:
    posted = post_once(engine, _request())
    assert not posted.found
    assert posted.result.status is DocumentStatus.COMMITTED
    assert (engine.calls, engine.lookups, engine.commit_counts["A-1"]) == (1, [], 1)


def test_in_doubt_the_code_is_looked_up_first_and_a_committed_one_is_the_answer(engine) -> None:
    engine.inner.calculate(_request())  # an earlier attempt landed
    posted = post_once(engine, _request(), doubt=True)
    assert posted.found
    assert (engine.calls, engine.lookups, engine.commit_counts["A-1"]) == (0, ["A-1"], 1)


def test_in_doubt_and_not_there_it_is_created(engine) -> None:
    posted = post_once(engine, _request(), doubt=True)
    assert not posted.found
    assert (engine.calls, engine.lookups, engine.commit_counts["A-1"]) == (1, ["A-1"], 1)


def test_already_committed_is_answered_by_the_lookup(engine) -> None:
    engine.inner.calculate(_request())  # posted behind our back (another ERP server)
    posted = post_once(engine, _request())
    assert posted.found
    assert (
        posted.result.total_tax
        == engine.inner.get_document("DEFAULT", "A-1", posted.result.document_type).total_tax
    )
    assert (engine.calls, engine.lookups, engine.commit_counts["A-1"]) == (1, ["A-1"], 1)


def test_already_committed_without_a_document_register_is_raised() -> None:
    class Refusing(OfflineTable):
        def calculate(self, request):
            raise AlreadyCommitted("committed", code=request.code)

    with pytest.raises(AlreadyCommitted):
        post_once(Refusing(shipped_rates()), _request())
    assert look_up(Refusing(shipped_rates()), _request()) is None


def test_any_other_failure_is_raised_for_the_queue_saying_whether_it_may_have_landed(
    engine,
) -> None:
    engine.lose_responses = 1
    with pytest.raises(BackendUnavailable) as caught:
        post_once(engine, _request())
    assert caught.value.sent
    engine.outage = True
    with pytest.raises(BackendUnavailable) as caught:
        post_once(engine, _request("2"))
    assert not caught.value.sent


class TestDoubt:
    ENTRY = RetryPolicy().entry("A-1", BackendUnavailable("refused", sent=False), T0)

    def test_nothing_known_is_doubt(self) -> None:
        assert in_doubt(None)

    def test_only_a_certainly_unsent_history_is_free_of_doubt(self) -> None:
        assert not in_doubt(self.ENTRY)
        assert in_doubt(RetryPolicy().entry("A-1", BackendUnavailable("read timeout"), T0))

    def test_an_entry_taken_from_a_dead_worker_is_in_doubt(self) -> None:
        import attrs

        assert in_doubt(attrs.evolve(self.ENTRY, taken_over_from="host:123:dead"))
