"""Moving the calendar for a whole test run (``pytest --calendar 2035-12-31``), so a test that
reads today's date without meaning to fails on the day it is run, not years later in CI.

The wall clock (``time.time``, ``datetime.now``, ``date.today``) moves to the day asked for and
runs on from there; the monotonic clock is left alone, so timeouts, SQLite's busy wait and the
PostgreSQL test server behave as always. Python processes the tests start follow the same
calendar through ``calendar_site/sitecustomize.py``, which reads the offset from the
environment.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import time_machine

OFFSET = "TAXBRIDGE_TEST_CALENDAR_OFFSET"
"""Seconds from the real wall clock to the moved one, for the processes a test starts."""
SITE = Path(__file__).resolve().with_name("calendar_site")


def destination(text: str) -> dt.datetime:
    """``YYYY-MM-DD`` (noon UTC that day, so no time zone turns it into another date) or an ISO
    date and time (UTC unless it names its offset)."""
    try:
        if len(text) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(12), tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--calendar: {text!r} is not YYYY-MM-DD or an ISO date and time"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def travel(to: dt.datetime) -> time_machine.travel:
    """Move this process's calendar to ``to`` (running on from there) and make every Python
    process started from now on follow it."""
    offset = (to - dt.datetime.now(dt.UTC)).total_seconds()
    traveller = time_machine.travel(to, tick=True)
    traveller.start()
    os.environ[OFFSET] = repr(offset)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(SITE), os.environ.get("PYTHONPATH", "")) if part
    )
    return traveller
