"""Decimal money: conversion that refuses floats, half-up rounding, and cent-exact allocation.

Every rounding in taxbridge goes through :func:`round_money`; every split of a rounded total over
lines goes through :func:`allocate`, so that the parts always add up to the total to the cent.
"""

from __future__ import annotations

import enum
import heapq
import operator
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from itertools import repeat
from typing import Any

from taxbridge.errors import InvalidFieldError

CENT = Decimal("0.01")
LIMIT = Decimal("1e13")
"""Amounts and quantities must stay below this in size. AvaTax reads them as JSON numbers of
format double (the reference schemas say so), which keep every cent only below about 9 * 10**13;
ten trillion is far above any sale and leaves that margin."""
ZERO = Decimal("0")
ZERO_CENTS = Decimal("0.00")

_HALF_UP = Context(prec=34, rounding=ROUND_HALF_UP)
"""The rounding context of money: half-up, and precision for any amount below ``LIMIT`` with
the digits of its rates (the thread's own context is left alone). Its ``quantize`` is also about
half the cost of ``Decimal.quantize`` with a keyword ``rounding``, and every line rounds several
times a stage."""
_quantize = _HALF_UP.quantize

_SORTED_UP_TO = 256
"""Up to this many parts :func:`allocate` ranks them all by one sort; above it a heap finds
just the few it moves (a jurisdiction of a 15,000-line invoice has 15,000 parts)."""


class RoundingLevel(enum.Enum):
    """Where tax is rounded to the cent (an AvaTax company setting)."""

    DOCUMENT = "document"
    """Sum each jurisdiction's unrounded tax over the document, round once, split back to lines."""
    LINE = "line"
    """Round each line's tax in each jurisdiction, then add them up."""


def to_decimal(value: Any, owner: str, field: str) -> Decimal:
    """Convert ``value`` to Decimal; refuse floats, booleans and text that is not a finite number.

    A float has already lost the cent it was meant to carry (``0.1 + 0.2``), so it is an error, not
    something to convert; ``str``, ``int`` and ``Decimal`` are exact and accepted.
    """
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise InvalidFieldError(owner, field, value, "is a bool, not a number")
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        raise InvalidFieldError(owner, field, value, "is a float; pass a Decimal or a string")
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidFieldError(owner, field, value, "is not a number") from None
    else:
        raise InvalidFieldError(
            owner,
            field,
            value,
            f"is a {type(value).__name__}; pass a Decimal or a string",
        )
    if not result.is_finite():
        raise InvalidFieldError(owner, field, value, "is not a finite number")
    if not -LIMIT < result < LIMIT:
        raise InvalidFieldError(owner, field, value, "is too large (the limit is 10**13)")
    return result


def round_money(value: Decimal, unit: Decimal = CENT) -> Decimal:
    """Round half-up to ``unit`` (the currency's minor unit): 0.005 -> 0.01, -0.005 -> -0.01."""
    return _quantize(value, unit)


def allocate(total: Decimal, raw: Sequence[Decimal], unit: Decimal = CENT) -> list[Decimal]:
    """Split a rounded ``total`` over parts whose unrounded values are ``raw``.

    Each part starts at its own half-up rounding; the cents by which those differ from ``total``
    are then moved, one unit each, to the parts whose rounding error points that way the most
    (ties go to the earlier part). The result always sums to ``total`` exactly, and no part moves
    more than one unit away from its own rounding unless ``total`` is far from ``sum(raw)``.
    """
    parts = list(map(_quantize, raw, repeat(unit)))  # round_money, inline
    residue = total - sum(parts, ZERO)
    if not residue or not parts:
        return parts
    steps = int(residue / unit)
    count = abs(steps)
    # The rounding error of each part: the parts rounded down the most take a residue upwards
    # first, those rounded up the most one downwards (ties: the earlier part, in both).
    errors = list(map(operator.sub, raw, parts))
    if len(parts) <= _SORTED_UP_TO:
        # what heapq's nlargest and nsmallest give (documented as this very sort), done in C
        order = sorted(range(len(parts)), key=errors.__getitem__, reverse=steps > 0)[:count]
    else:
        pick = heapq.nlargest if steps > 0 else heapq.nsmallest
        order = pick(min(count, len(parts)), range(len(parts)), key=errors.__getitem__)
    step = unit if steps > 0 else -unit
    for n in range(count):
        parts[order[n % len(order)]] += step
    return parts
