"""A library is silent until its host configures logging: taxbridge's events go to the host's
structlog set-up if it has one, else to the standard ``logging`` module (logger ``taxbridge``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DAY = """
import datetime as dt
import logging
import sys
from decimal import Decimal

from taxbridge import Address, Customer, Invoice, LocalEngine, Order, OrderLine, RecordingBackend
from taxbridge import SQLiteStore, TaxBridge
from taxbridge.config import default_config

{setup}
order = Order(
    number="1001", company="01", customer=Customer("C001"), order_date=dt.date(2026, 11, 20),
    ship_from=Address("822 Reed St", "Philadelphia", "PA", "19147"),
    ship_to=Address("350 5th Ave", "New York", "NY", "10118"),
    lines=(OrderLine("P1", 1, "SKU", quantity=1, amount=Decimal("100.00")),),
)
engine = RecordingBackend(LocalEngine())
with TaxBridge(default_config(), engine, SQLiteStore(sys.argv[1])) as bridge:
    bridge.on_entry(order)
    engine.outage = True
    bridge.on_invoice(Invoice("9001", dt.date(2026, 11, 20), (order,)))
"""


def _run(setup: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "day.py"
    script.write_text(DAY.format(setup=setup))
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path / "t.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_nothing_is_printed_when_the_host_configured_no_logging(tmp_path: Path) -> None:
    done = _run("", tmp_path)
    assert (done.stdout, done.stderr) == ("", "")


def test_the_hosts_logging_gets_each_event_with_its_fields(tmp_path: Path) -> None:
    setup = (
        "logging.basicConfig(level=logging.INFO, stream=sys.stdout, "
        "format='%(levelname)s %(name)s %(message)s %(code)s %(flag_after)s')"
    )
    lines = _run(setup, tmp_path).stdout.splitlines()
    assert lines == [
        "INFO taxbridge taxbridge.entry.calculated O-1001 N",
        "WARNING taxbridge taxbridge.invoice.failed A-9001 U",
    ]


@pytest.mark.parametrize("level", ["WARNING", "ERROR"])
def test_the_hosts_level_decides(level: str, tmp_path: Path) -> None:
    setup = f"logging.basicConfig(level=logging.{level}, stream=sys.stdout)"
    out = _run(setup, tmp_path).stdout
    assert ("taxbridge.invoice.failed" in out) is (level == "WARNING")
    assert "taxbridge.entry.calculated" not in out


@pytest.mark.parametrize(("level", "both"), [("WARNING", False), ("INFO", True)])
def test_a_host_structlog_filter_decides_and_filtered_events_are_never_built(
    level: str, both: bool, tmp_path: Path
) -> None:
    setup = (
        "import structlog\n"
        "structlog.configure(processors=[structlog.processors.JSONRenderer()], "
        f"wrapper_class=structlog.make_filtering_bound_logger(logging.{level}), "
        "logger_factory=structlog.PrintLoggerFactory(sys.stdout))"
    )
    out = _run(setup, tmp_path).stdout
    assert "taxbridge.invoice.failed" in out
    assert ("taxbridge.entry.calculated" in out) is both


def test_a_reconfigured_structlog_is_followed_at_once() -> None:
    import structlog

    from taxbridge.logs import get_logger

    log = get_logger("taxbridge.test")
    try:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
        assert not log.enabled("info")
        assert log.enabled("error")
        with structlog.testing.capture_logs() as seen:
            log.info("taxbridge.test.filtered", code="A-1")
            log.error("taxbridge.test.event", code="A-1")
        assert seen == [{"event": "taxbridge.test.event", "code": "A-1", "log_level": "error"}]
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(20))
        assert log.enabled("info")
    finally:
        structlog.reset_defaults()
