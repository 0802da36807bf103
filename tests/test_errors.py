"""The error tree: what may be tried again is a property of the classes alone."""

from __future__ import annotations

import pytest
from conftest import NYC, WAREHOUSE, line, order

from taxbridge import LocalEngine
from taxbridge.backends.avatax.errors import rejected_line
from taxbridge.errors import (
    AlreadyCommitted,
    AuthenticationFailed,
    BackendError,
    BackendUnavailable,
    CircuitOpen,
    DeadlinePassed,
    DocumentRejected,
    MalformedResponse,
)
from taxbridge.models import Address, PendCode

RETRIES = {
    # class: (the queue tries it again later, the HTTP layer tries the call again at once)
    BackendUnavailable: (True, True),
    MalformedResponse: (True, True),
    CircuitOpen: (True, False),
    DeadlinePassed: (True, False),
    AuthenticationFailed: (True, False),
    DocumentRejected: (False, False),
    AlreadyCommitted: (False, False),
    BackendError: (False, False),
}


@pytest.mark.parametrize("kind", list(RETRIES), ids=lambda kind: kind.__name__)
def test_retryable_and_transient_are_class_properties(kind: type[BackendError]) -> None:
    assert (kind.retryable, kind.transient) == RETRIES[kind]
    made = kind("x")
    assert (made.retryable, made.transient) == RETRIES[kind]


def test_an_error_may_have_landed_unless_it_says_it_was_never_sent() -> None:
    assert DocumentRejected("x").sent
    assert BackendUnavailable("read timeout").sent
    assert not BackendUnavailable("refused", sent=False).sent
    assert not CircuitOpen("open", sent=False).sent


@pytest.mark.parametrize(
    ("refers_to", "line"),
    [("Lines[1001-1].Addresses", "1001-1"), ("Lines[2]", "2"), ("Addresses", None), ("", None)],
)
def test_an_avatax_refers_to_names_the_rejected_line(refers_to: str, line: str | None) -> None:
    assert rejected_line(refers_to) == line


def test_the_pending_check_names_the_line_the_engine_rejected(bridge) -> None:
    elsewhere = Address("1 Main St", "Schenectady", "NY", "12345")  # no rate for this ZIP
    checked = bridge.on_pending_check(order(lines=(line(1), line(2, ship_to=elsewhere))))
    (reason,) = [r for r in checked.reasons if r.code is PendCode.TAX_VALIDATION]
    assert reason.line == "P1-2"


def test_the_local_engine_names_the_line_of_an_unknown_entity_use_code() -> None:
    from taxbridge.models import TaxLine, TaxRequest

    request = TaxRequest(
        "O-1", "SalesOrder", "DEFAULT", "C1", "2026-11-20", WAREHOUSE, NYC,
        (TaxLine("P1-1", "10"), TaxLine("P1-2", "10", entity_use_code="ZZ")),
    )  # fmt: skip
    with pytest.raises(DocumentRejected) as caught:
        LocalEngine().calculate(request)
    assert caught.value.line == "P1-2"
