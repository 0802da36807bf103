"""Rounding and allocation: half-up, and parts that always add up to the total."""

from __future__ import annotations

import heapq
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taxbridge import InvalidFieldError
from taxbridge.money import allocate, round_money, to_decimal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.005", "0.01"),
        ("0.004", "0.00"),
        ("-0.005", "-0.01"),
        ("2.675", "2.68"),
        ("1.0049", "1.00"),
    ],
)
def test_round_money_is_half_up(value: str, expected: str) -> None:
    assert round_money(Decimal(value)) == Decimal(expected)


def test_allocate_moves_the_residue_to_the_largest_rounding_errors() -> None:
    # three lines of 0.0725 each: per line 0.07 x 3 = 0.21, the document 0.2175 -> 0.22
    raw = [Decimal("0.0725")] * 3
    assert allocate(Decimal("0.22"), raw) == [Decimal("0.08"), Decimal("0.07"), Decimal("0.07")]


@given(
    st.lists(
        st.decimals(min_value=-1000, max_value=1000, places=6, allow_nan=False),
        min_size=1,
        max_size=50,
    )
)
def test_allocate_always_sums_to_the_rounded_total(raw: list[Decimal]) -> None:
    total = round_money(sum(raw, Decimal(0)))
    parts = allocate(total, raw)
    assert sum(parts, Decimal(0)) == total
    assert all(abs(part - value) < Decimal("0.02") for part, value in zip(parts, raw, strict=True))


def _allocate_by_heap(total: Decimal, raw: list[Decimal]) -> list[Decimal]:
    """The rule as first written: the residue's cents go, one each, to the parts heapq ranks
    first by rounding error (ties: the earlier part)."""
    parts = [round_money(value) for value in raw]
    steps = int((total - sum(parts, Decimal(0))) / Decimal("0.01"))
    errors = [value - part for value, part in zip(raw, parts, strict=True)]
    pick = heapq.nlargest if steps > 0 else heapq.nsmallest
    order = pick(min(abs(steps), len(parts)), range(len(parts)), key=errors.__getitem__)
    for n in range(abs(steps)):
        parts[order[n % len(order)]] += Decimal("0.01") if steps > 0 else Decimal("-0.01")
    return parts


@given(
    st.lists(st.sampled_from(["0.0725", "0.005", "0.0049", "1.2351", "-0.0151"]), min_size=1),
    st.integers(min_value=-6, max_value=6),
)
def test_allocate_ranks_ties_and_several_cents_as_the_heap_rule_does(
    values: list[str], offset: int
) -> None:
    # few distinct values, so many parts tie; the total off by up to six cents either way
    raw = [Decimal(value) for value in values]
    total = round_money(sum(raw, Decimal(0))) + offset * Decimal("0.01")
    assert allocate(total, raw) == _allocate_by_heap(total, raw)


def test_allocate_of_many_parts_ranks_as_the_heap_rule_does() -> None:
    # beyond the parts ranked by one sort: 1,000 parts, five cents to move each way
    raw = [Decimal("0.0725") if n % 3 else Decimal("0.0049") for n in range(1000)]
    rounded = round_money(sum(raw, Decimal(0)))
    for total in (rounded + Decimal("0.05"), rounded - Decimal("0.05")):
        assert allocate(total, raw) == _allocate_by_heap(total, raw)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (1.5, "is a float"),
        (True, "is a bool"),
        ("abc", "is not a number"),
        ("NaN", "finite"),
        ([1], "list"),
        ("1e28", "too large"),
        ("-10000000000000", "too large"),
    ],
)
def test_to_decimal_refuses_what_is_not_an_exact_number(value: object, reason: str) -> None:
    with pytest.raises(InvalidFieldError, match=reason) as caught:
        to_decimal(value, "OrderLine", "amount")
    assert caught.value.field == "amount"
    assert caught.value.value == value


def test_to_decimal_accepts_int_str_and_decimal() -> None:
    assert to_decimal(3, "X", "y") == Decimal(3)
    assert to_decimal(" 1.10 ", "X", "y") == Decimal("1.10")
    assert to_decimal(Decimal("2"), "X", "y") == Decimal(2)
