"""Time is an input: the demo is one fixed day whatever the calendar says, and every date the
library fills in by itself comes from the bridge's clock, never from the host's calendar."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DAY, T0, Clock, invoice, order

from taxbridge import LocalEngine, SQLiteStore, TaxBridge
from taxbridge.config import example_config
from taxbridge.context import running_from
from taxbridge.demo import OPENS, run_demo
from taxbridge.errors import InvalidFieldError
from taxbridge.models import Exemption

FAR = dt.datetime(2035, 12, 31, 23, 59, 50, tzinfo=dt.UTC)
"""A calendar years past the demo's day, ten seconds before a new year."""


def _demo(folder: Path) -> str:
    """The demo's output, its store's folder and the certificate's random id taken out."""
    printed: list[str] = []
    folder.mkdir()
    assert run_demo(str(folder / "demo.db"), echo=printed.append) == 0
    text = "\n".join(printed).replace(str(folder.resolve()), "FOLDER")
    return re.sub(r"L-[0-9a-f]{16}", "L-ID", text)


def test_the_demo_prints_the_same_day_whatever_the_calendar_says(
    tmp_path: Path, time_machine
) -> None:
    time_machine.move_to(OPENS)
    on_its_day = _demo(tmp_path / "day")
    assert "sales versus GL: sales 666.94, GL 666.94, differences 0" in on_its_day
    assert "B-5001: flag Y" in on_its_day
    for calendar in (dt.datetime(2026, 12, 7, 9, tzinfo=dt.UTC), FAR):
        time_machine.move_to(calendar)
        assert _demo(tmp_path / f"{calendar:%Y%m%d}") == on_its_day, calendar


def test_the_demos_store_is_dated_by_its_day_not_the_calendar(tmp_path: Path, time_machine) -> None:
    time_machine.move_to(FAR)
    db = tmp_path / "demo.db"
    assert run_demo(str(db), echo=lambda line: None) == 0
    with SQLiteStore(db) as store:
        days = {
            event.at.date()
            for code in ("A-9001", "A-9031", "B-5001")
            for event in store.events(code)
        }
        credit = store.get("B-5001")
    assert days == {DAY}
    assert credit is not None
    assert credit.document_date == DAY


def test_running_from_reads_its_start_then_runs_on(time_machine) -> None:
    time_machine.move_to(FAR)
    clock = running_from(T0)
    first, second = clock(), clock()
    assert T0 <= first <= second < T0 + dt.timedelta(minutes=1)


def test_running_from_refuses_a_start_without_a_time_zone() -> None:
    with pytest.raises(InvalidFieldError, match="running_from.start"):
        running_from(dt.datetime(2026, 11, 21, 8))


def test_default_dates_come_from_the_bridges_clock_not_the_calendar(
    tmp_path: Path, time_machine
) -> None:
    time_machine.move_to(FAR)
    clock = Clock(T0)
    with TaxBridge(
        example_config(str(tmp_path / "tb.db")),
        LocalEngine(),
        SQLiteStore(tmp_path / "tb.db"),
        clock=clock,
    ) as bridge:
        sale = bridge.on_invoice(invoice("1001", order()))
        claim = bridge.credit_from_invoice(sale.code, number="7001")
        assert claim.claim_date == T0.date()
        assert bridge.refresh().as_of == T0.date()
        bridge.add_exemption(
            Exemption("C001", "NY", DAY, "EX-1", expiry=T0.date() + dt.timedelta(days=40))
        )
        assert bridge.exemption_reminders(days=30) == []  # the calendar's 2035 says expired
        journal = bridge.generate_journal(f"{DAY:%Y-%m}")
        assert journal.generated_at == T0


def test_a_python_process_a_test_starts_sees_the_same_calendar() -> None:
    """Under ``pytest --calendar`` the workers of the cross-process tests must agree with the
    test on the date (tests/calendar_site/sitecustomize.py); on any run they do."""
    script = "import datetime as dt; print(dt.datetime.now(dt.UTC).date())"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == dt.datetime.now(dt.UTC).date().isoformat()
