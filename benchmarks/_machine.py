"""How much of this machine's CPU time its host took during a run (Linux's steal time), so
that a slow figure on a busy virtual machine can be told apart from slow code; and the CPU time
of a server process tree (PostgreSQL's), to see where a run's CPU went."""

from __future__ import annotations

import os
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


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # the fields after the command name


def _children() -> dict[int, list[int]]:
    """Every process's children, by parent pid."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def listening_on(port: int) -> int | None:
    """The pid of the PostgreSQL server started with ``-p port`` (its postmaster), or None."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"postgres") and str(port).encode() in argv:
            return int(entry.name)
    return None


def tree_cpu(pid: int) -> float | None:
    """CPU seconds of a process and all its children, the exited ones included (they are
    counted in the parent once reaped), or None where the system does not say."""
    fields = _stat(pid)
    if fields is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    children = _children()
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        todo.extend(children.get(child, []))
        if (stats := _stat(child)) is not None:
            total += int(stats[11]) + int(stats[12])
    return total / tick
