"""Shared fixtures: a real SQLite file in tmp_path, the real local engine behind a recorder."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import structlog

from taxbridge import (
    Address,
    Customer,
    Invoice,
    LocalEngine,
    Order,
    OrderLine,
    RecordingBackend,
    SQLiteStore,
    TaxBridge,
)
from taxbridge.config import default_config

DAY = dt.date(2026, 11, 20)
WAREHOUSE = Address("822 Reed St", "Philadelphia", "PA", "19147")
NYC = Address("350 5th Ave", "New York", "NY", "10118")
CHICAGO = Address("233 S Wacker Dr", "Chicago", "IL", "60601")
PORTLAND = Address("801 SW 10th Ave", "Portland", "OR", "97201")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def line(
    number: int = 1, amount: str = "100.00", quantity: str = "1", **kwargs: object
) -> OrderLine:
    """An order line of process P1."""
    return OrderLine(
        process_number=str(kwargs.pop("process", "P1")),
        line_number=number,
        item_code=str(kwargs.pop("item_code", f"SKU-{number}")),
        quantity=Decimal(quantity),
        amount=Decimal(amount),
        **kwargs,  # type: ignore[arg-type]
    )


def order(
    number: str = "1001",
    *,
    ship_to: Address = NYC,
    lines: tuple[OrderLine, ...] | None = None,
    customer: Customer | None = None,
    company: str = "01",
) -> Order:
    """An order of one $100 line to New York unless told otherwise."""
    return Order(
        number=number,
        company=company,
        customer=customer or Customer("C001", "Acme"),
        order_date=DAY,
        ship_from=WAREHOUSE,
        ship_to=ship_to,
        lines=lines or (line(),),
    )


def invoice(number: str, *orders: Order) -> Invoice:
    """An invoice of the given orders."""
    return Invoice(number=number, invoice_date=DAY, orders=orders)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "taxbridge.db") as opened:
        yield opened


@pytest.fixture
def engine() -> RecordingBackend:
    return RecordingBackend(LocalEngine())


@pytest.fixture
def bridge(engine: RecordingBackend, store: SQLiteStore) -> TaxBridge:
    return TaxBridge(default_config(), engine, store)


@pytest.fixture
def shared_reference() -> Path:
    """The shared AvaTax reference folder (TAXBRIDGE_REFERENCE overrides); skip when absent."""
    import os

    folder = Path(os.environ.get("TAXBRIDGE_REFERENCE", SHARED / "reference" / "avatax"))
    if not folder.is_dir():
        pytest.skip(
            f"AvaTax reference data not found at {folder} (a user's clone has no ../shared)"
        )
    return folder


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[None]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    yield
    structlog.reset_defaults()
