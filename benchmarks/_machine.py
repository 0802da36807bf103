"""How much of this machine's CPU time its host took during a run (Linux's steal time), so
that a slow figure on a busy virtual machine can be told apart from slow code."""

from __future__ import annotations

from pathlib import Path

STAT = Path("/proc/stat")
_STEAL = 7
"""Index of ``steal`` among the ``cpu`` line's counters (user nice system idle iowait irq
softirq steal)."""


def _counters() -> list[int] | None:
    if not STAT.exists():
        return None
    fields = STAT.read_text().split("\n", 1)[0].split()
    if fields[0] != "cpu" or len(fields) <= _STEAL + 1:
        return None
    return [int(value) for value in fields[1 : _STEAL + 2]]


class Steal:
    """Started when made: :meth:`share` is the part of all CPUs' time since then that the
    host gave to other machines (None where the system does not say)."""

    def __init__(self) -> None:
        self._start = _counters()

    def share(self) -> float | None:
        end = _counters()
        if self._start is None or end is None:
            return None
        spent = [after - before for before, after in zip(self._start, end, strict=True)]
        total = sum(spent)
        return spent[_STEAL] / total if total else 0.0

    def describe(self) -> str:
        """``host steal 12% of CPU time``, or that it is not known here."""
        share = self.share()
        return "host steal not known" if share is None else f"host steal {share:.0%} of CPU time"
