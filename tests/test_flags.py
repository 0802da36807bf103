"""The final tax flag table: every legal and every illegal move."""

from __future__ import annotations

import itertools

import pytest

from taxbridge import FinalTaxFlag, InvalidTransition
from taxbridge.flags import RECALCULABLE, TRANSITIONS, check_recalculable, check_transition

F = FinalTaxFlag
LEGAL = {
    None: {F.OFFLINE, F.CALCULATED, F.POSTED, F.FAILED, F.EXCLUDED},
    F.OFFLINE: {F.OFFLINE, F.CALCULATED, F.POSTED, F.FAILED, F.EXCLUDED},
    F.CALCULATED: {F.OFFLINE, F.CALCULATED, F.POSTED, F.FAILED, F.EXCLUDED},
    F.EXCLUDED: {F.OFFLINE, F.CALCULATED, F.POSTED, F.FAILED, F.EXCLUDED},
    F.FAILED: {F.FAILED, F.REPOSTED, F.MANUAL},
    F.POSTED: set(),
    F.REPOSTED: set(),
    F.MANUAL: set(),
}
ALL_PAIRS = list(itertools.product([None, *FinalTaxFlag], FinalTaxFlag))


def test_flag_values_are_the_seed_letters() -> None:
    assert [flag.value for flag in FinalTaxFlag] == ["", "N", "Y", "U", "R", "M", "X"]


def test_the_table_is_exactly_the_documented_one() -> None:
    assert {k: set(v) for k, v in TRANSITIONS.items()} == LEGAL


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS)
def test_every_transition_is_allowed_or_refused_by_the_table(
    current: FinalTaxFlag | None, target: FinalTaxFlag
) -> None:
    if target in LEGAL[current]:
        assert check_transition(current, target, code="A-1") is target
    else:
        with pytest.raises(InvalidTransition) as caught:
            check_transition(current, target, code="A-1", action="invoice")
        assert caught.value.current is current
        assert caught.value.target is target
        assert "A-1" in str(caught.value)


@pytest.mark.parametrize("flag", list(FinalTaxFlag))
def test_recal_is_allowed_only_from_blank_or_n(flag: FinalTaxFlag) -> None:
    if flag in (F.OFFLINE, F.CALCULATED):
        check_recalculable(flag)
    else:
        with pytest.raises(InvalidTransition, match="Recal"):
            check_recalculable(flag)
    assert frozenset({F.OFFLINE, F.CALCULATED}) == RECALCULABLE


def test_settled_flags_are_final() -> None:
    assert {flag for flag in FinalTaxFlag if flag.is_final} == {F.POSTED, F.REPOSTED, F.MANUAL}
