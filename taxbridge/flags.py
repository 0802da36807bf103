"""The final tax flag (BNADS/AV-FNL) and the one table of its legal transitions."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from taxbridge.errors import InvalidTransition


class FinalTaxFlag(enum.Enum):
    """Final tax flag of a tax document; ``.value`` is the seed's letter (blank is ``""``)."""

    OFFLINE = ""
    """Calculated with the offline tax table."""
    CALCULATED = "N"
    """Calculated by the engine, not posted."""
    POSTED = "Y"
    """Posted (committed) at the engine on invoicing."""
    FAILED = "U"
    """Posting failed (connection failure or invoice error); queued for reposting."""
    REPOSTED = "R"
    """Reposted after U through work with unposted transactions."""
    MANUAL = "M"
    """Posted manually outside the ERP; the flag was set by hand."""
    EXCLUDED = "X"
    """Excluded: the ship-to is not a nexus region (BNADS/AV-NX3)."""

    @property
    def is_final(self) -> bool:
        """True when the engine holds the posted document (Y, R, M): nothing may post it again."""
        return self in _SETTLED

    @property
    def engine_holds_stored_tax(self) -> bool:
        """True for Y and R: the stored tax is the engine's answer to the posting itself."""
        return self in (FinalTaxFlag.POSTED, FinalTaxFlag.REPOSTED)

    def __str__(self) -> str:
        return self.value or "blank"


_ESTIMATES = frozenset(
    {
        FinalTaxFlag.OFFLINE,
        FinalTaxFlag.CALCULATED,
        FinalTaxFlag.EXCLUDED,
        FinalTaxFlag.FAILED,
    }
)
_SETTLED = frozenset({FinalTaxFlag.POSTED, FinalTaxFlag.REPOSTED, FinalTaxFlag.MANUAL})

# A new document starts at None. Before posting, a document may move freely between the estimate
# flags (an address change can take it into or out of a nexus region) and be posted (Y) or fail
# (U). U is left only by reposting (R), by a manual posting (M), or by failing again (U). Y, R and
# M are settled: nothing moves them. X stays X when it is invoiced: it is never posted.
TRANSITIONS: Mapping[FinalTaxFlag | None, frozenset[FinalTaxFlag]] = {
    None: frozenset(
        {
            FinalTaxFlag.OFFLINE,
            FinalTaxFlag.CALCULATED,
            FinalTaxFlag.POSTED,
            FinalTaxFlag.FAILED,
            FinalTaxFlag.EXCLUDED,
        }
    ),
    FinalTaxFlag.OFFLINE: _ESTIMATES | {FinalTaxFlag.POSTED},
    FinalTaxFlag.CALCULATED: _ESTIMATES | {FinalTaxFlag.POSTED},
    FinalTaxFlag.EXCLUDED: _ESTIMATES | {FinalTaxFlag.POSTED},
    FinalTaxFlag.FAILED: frozenset(
        {FinalTaxFlag.FAILED, FinalTaxFlag.REPOSTED, FinalTaxFlag.MANUAL}
    ),
    FinalTaxFlag.POSTED: frozenset(),
    FinalTaxFlag.REPOSTED: frozenset(),
    FinalTaxFlag.MANUAL: frozenset(),
}

RECONCILIATION_MOVES: Mapping[FinalTaxFlag, frozenset[FinalTaxFlag]] = {
    FinalTaxFlag.POSTED: frozenset({FinalTaxFlag.FAILED}),
    FinalTaxFlag.REPOSTED: frozenset({FinalTaxFlag.FAILED}),
    FinalTaxFlag.MANUAL: frozenset({FinalTaxFlag.FAILED}),
}
"""Moves only the engine reconciliation makes, on evidence from the engine itself: a Y, R or M
document the engine does not have (its posting was lost, or the manual posting never made) goes
back to U and is queued, so that the repost posts it; the repost looks the code up first, so a
document the listing missed is adopted, never posted twice."""

RECALCULABLE: frozenset[FinalTaxFlag] = frozenset({FinalTaxFlag.OFFLINE, FinalTaxFlag.CALCULATED})
"""Recal is offered only for blank (offline) and N (calculated) documents, as in the seed."""


def check_transition(
    current: FinalTaxFlag | None,
    target: FinalTaxFlag,
    *,
    code: str = "",
    action: str = "",
    reconciling: bool = False,
) -> FinalTaxFlag:
    """Return ``target`` if ``current -> target`` is legal, else raise InvalidTransition.
    ``reconciling`` also allows the engine reconciliation's moves."""
    allowed = TRANSITIONS[current]
    if reconciling and current is not None:
        allowed = allowed | RECONCILIATION_MOVES.get(current, frozenset())
    if target not in allowed:
        now = "no document" if current is None else f"{code or 'the document'} is {current}"
        could = ", ".join(sorted(str(flag) for flag in allowed)) or "nothing: it is settled"
        reason = f"final tax flag {current or 'none'} -> {target} is not allowed ({now}; "
        reason += f"it can become {could})"
        raise InvalidTransition(current, target, code=code, action=action, reason=reason)
    return target


def check_recalculable(current: FinalTaxFlag, *, code: str = "") -> None:
    """Raise :class:`InvalidTransition` unless Recal is allowed from ``current`` (blank or N)."""
    if current not in RECALCULABLE:
        reason = f"only a blank or N document can be recalculated; {code or 'it'} is {current}"
        raise InvalidTransition(current, "recalculated", code=code, action="Recal", reason=reason)
