"""Shared fixtures: a real SQLite file in tmp_path, the real local engine behind a recorder."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import avatax_contract
import calendar_travel
import pytest
import respx
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
from taxbridge.backends.avatax import AvaTaxBackend, AvaTaxSettings, Secret
from taxbridge.config import default_config
from taxbridge.models import TaxRequest, TaxResult
from taxbridge.testing.fake_avatax import FakeAvaTax

DAY = dt.date(2026, 11, 20)
WAREHOUSE = Address("822 Reed St", "Philadelphia", "PA", "19147")
NYC = Address("350 5th Ave", "New York", "NY", "10118")
CHICAGO = Address("233 S Wacker Dr", "Chicago", "IL", "60601")
PORTLAND = Address("801 SW 10th Ave", "Portland", "OR", "97201")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


T0 = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--calendar",
        metavar="DATE",
        default=os.environ.get("TAXBRIDGE_TEST_CALENDAR") or None,
        help="run with the wall clock moved to DATE (YYYY-MM-DD, or an ISO date and time); "
        "the monotonic clock is left alone (default: $TAXBRIDGE_TEST_CALENDAR, else today)",
    )


_TRAVEL = pytest.StashKey[Any]()


def pytest_configure(config: pytest.Config) -> None:
    """``--calendar``: move the calendar before any test module is imported."""
    asked = config.getoption("calendar")
    if asked:
        try:
            to = calendar_travel.destination(asked)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
        config.stash[_TRAVEL] = (to, calendar_travel.travel(to))


def pytest_unconfigure(config: pytest.Config) -> None:
    travelled = config.stash.get(_TRAVEL, None)
    if travelled is not None:
        travelled[1].stop()


def pytest_report_header(config: pytest.Config) -> str | None:
    travelled = config.stash.get(_TRAVEL, None)
    if travelled is None:
        return None
    return f"calendar moved to {travelled[0].isoformat()} (wall clock only; monotonic as is)"


class Clock:
    """A clock the test moves."""

    def __init__(self, start: dt.datetime = T0):
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += dt.timedelta(**kwargs)


def json_lines(text: str) -> list[Any]:
    """The objects of a command's JSON Lines output."""
    return [json.loads(row) for row in text.splitlines() if row.strip()]


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


AVATAX_TOML = """\
[backend]
kind = "avatax"
base_url = "{url}"
account_id = "{account}"
license_key_env = "{key_env}"
company_ids = {{ DEFAULT = 4242 }}

[[companies]]
erp_company = "01"
company_code = "DEFAULT"

[[nexus]]
region = "NY"

[store]
path = "taxbridge.db"
"""
"""A config file on an AvaTax at ``url`` (company DEFAULT = 4242, the key read from the
environment variable ``key_env``) and the store ``taxbridge.db`` beside it."""

FAKE_URL = "https://avatax.fake.test"
FAKE_ACCOUNT = "1100000000"
FAKE_KEY = "fake-license-key-9f3a"


def fake_settings(**kwargs: Any) -> AvaTaxSettings:
    """Settings for the contract-following fake (circuit breaker out of the way)."""
    kwargs.setdefault("circuit_failures", 1_000_000)
    return AvaTaxSettings(
        base_url=FAKE_URL, account_id=FAKE_ACCOUNT, license_key=Secret(FAKE_KEY), **kwargs
    )


class HttpRecording(RecordingBackend):
    """A RecordingBackend over AvaTaxBackend whose outages happen at the fake's HTTP level, so
    they go through the real transport, error mapping and retries."""

    def __init__(self, inner: AvaTaxBackend, fake: FakeAvaTax, router: respx.MockRouter):
        self.fake = fake
        self.router = router
        super().__init__(inner)

    @property  # type: ignore[override]
    def outage(self) -> bool:
        return self.fake.outage

    @outage.setter
    def outage(self, value: bool) -> None:
        self.fake.outage = value

    @property  # type: ignore[override]
    def lose_responses(self) -> int:
        return self.fake.lose_responses

    @lose_responses.setter
    def lose_responses(self, value: int) -> None:
        # "the next call loses its answer": every attempt of it, lookups included
        attempts = self.inner.settings.max_attempts  # type: ignore[attr-defined]
        self.fake.lose_responses = value * attempts

    @property
    def commit_counts(self) -> Counter[str]:
        return self.fake.commit_counts

    def _check_outage(self, code: str) -> None:
        """The fake refuses connections itself."""

    def calculate(self, request: TaxRequest) -> TaxResult:
        self.requests.append(request)
        return self.inner.calculate(request)


@contextmanager
def fake_avatax(fake: FakeAvaTax | None = None, **settings: Any) -> Iterator[HttpRecording]:
    """AvaTaxBackend against the fake, through respx at the transport."""
    fake = fake or FakeAvaTax(account_id=FAKE_ACCOUNT, license_key=FAKE_KEY)
    with respx.mock(base_url=FAKE_URL, assert_all_called=False) as router:
        router.route().mock(side_effect=fake.handle)
        backend = AvaTaxBackend(fake_settings(**settings), sleep=lambda seconds: None)
        try:
            yield HttpRecording(backend, fake, router)
        finally:
            backend.close()
    check_bodies_against_the_contract(fake)


def check_bodies_against_the_contract(fake: FakeAvaTax) -> None:
    """Every body the backend sent in the test must conform to Avalara's published schemas
    (when the reference data is there: a user's clone has none)."""
    if not avatax_contract.reference_folder().is_dir():
        return
    found = []
    for recorded in fake.requests:
        name = avatax_contract.schema_for(recorded.path)
        if name is not None and recorded.body is not None:
            found.extend(avatax_contract.problems(name, recorded.body))
    if found:
        pytest.fail("request bodies break the AvaTax contract:\n" + "\n".join(found[:20]))


@pytest.fixture(params=["local", "avatax"])
def engine(request: pytest.FixtureRequest) -> Iterator[RecordingBackend]:
    """The shared backend contract: every test using it runs on the local engine and on
    AvaTaxBackend talking HTTP to the contract-following fake."""
    if request.param == "local":
        yield RecordingBackend(LocalEngine())
        return
    with fake_avatax() as recording:
        yield recording


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


# -- PostgreSQL: a real server, started once per test session ----------------------------------

REQUIRE_POSTGRES = os.environ.get("TAXBRIDGE_REQUIRE_POSTGRES") == "1"
"""Set by CI (.ci/run): a missing PostgreSQL fails the run instead of skipping its tests."""


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a throwaway PostgreSQL server on loopback; skipped only when no server
    binary exists at all (never in CI)."""
    from taxbridge.testing.postgres import server_binaries, temporary_server

    if server_binaries() is None:
        if REQUIRE_POSTGRES:
            pytest.fail("PostgreSQL is required (TAXBRIDGE_REQUIRE_POSTGRES=1) but not installed")
        pytest.skip("no PostgreSQL server binaries (initdb, postgres) on this machine")
    with temporary_server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the session's server."""
    from taxbridge.testing.postgres import fresh_database

    return fresh_database(postgres_server)


def open_store(spec: str | Path) -> Any:
    """The store a spec names: a ``postgresql://`` URL or an SQLite file."""
    if str(spec).startswith("postgresql://"):
        from taxbridge.store.postgres import PostgresStore

        return PostgresStore(str(spec))
    return SQLiteStore(spec)


@pytest.fixture(params=["sqlite", "postgres"])
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's store lives, once on each store kind: an SQLite file or a PostgreSQL
    database URL."""
    if request.param == "sqlite":
        return str(tmp_path / "shared.db")
    return str(request.getfixturevalue("postgres_url"))
