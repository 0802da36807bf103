"""What the certificate workflow costs an exempt customer's order, and a reminder run.

Order entry of N orders on the local engine and a fresh SQLite file, three ways in the same
run: a customer not flagged exempt (no certificate work: the reference), an exempt customer on
the local certificate service, and an exempt customer on AvaTax's CertCapture (the fake, in
process through respx, so the figure is the client's work, not a network's). Prints ms per
order and, for AvaTax, the certificate calls per order (the card is sent once; each entry pulls
the certificates back). Then a reminder run (dry run) over M customers with expiring
certificates.

    python benchmarks/certificates.py                      # 500 orders, 2,000 customers
    python benchmarks/certificates.py --orders 5 --customers 20    # CI smoke size
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import respx
import structlog

from taxbridge import LocalEngine, SQLiteStore, TaxBridge
from taxbridge.backends.avatax import AvaTaxBackend, AvaTaxSettings, Secret
from taxbridge.config import (
    CertificateServiceKind,
    CertificateSettings,
    ExemptionMode,
    ExemptionSettings,
    default_config,
)
from taxbridge.models import Address, Certificate, Customer, Order, OrderLine
from taxbridge.testing.fake_avatax import FakeAvaTax

DAY = dt.date(2026, 11, 20)
NYC = Address("350 5th Ave", "New York", "NY", "10118")
WAREHOUSE = Address("822 Reed St", "Philadelphia", "PA", "19147")
URL = "https://avatax.bench.test"


def _order(number: int, customer: Customer) -> Order:
    lines = tuple(
        OrderLine(f"P{number}", n, f"SKU-{n}", Decimal(1), Decimal("25.00")) for n in range(1, 4)
    )
    return Order(str(number), "01", customer, DAY, WAREHOUSE, NYC, lines)


def _config(kind: str) -> Any:
    settings: dict[str, Any] = {
        "exemptions": ExemptionSettings(mode=ExemptionMode.ENGINE),
        "certificates": CertificateSettings(service=CertificateServiceKind(kind)),
    }
    if kind == "avatax":
        settings.update(
            backend="avatax",
            backend_settings=AvaTaxSettings(
                base_url=URL, account_id="1", license_key=Secret("k"), circuit_failures=10**6
            ),
        )
    return attrs.evolve(default_config(), **settings)


def _entries(bridge: TaxBridge, customer: Customer, orders: int) -> float:
    bridge.on_entry(_order(1, customer))  # the card goes at the first order
    started = time.perf_counter()
    for number in range(2, orders + 2):
        bridge.on_entry(_order(number, customer))
    return (time.perf_counter() - started) * 1000 / orders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--customers", type=int, default=2000)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    plain = Customer("C1", "Plain Co", (NYC,))
    exempt = Customer("C2", "Exempt Co", (NYC,), email="tax@c2.example", entity_use_code="G")
    certificate = Certificate("C2", "G", ("NY",), signed="2026-01-01", expiry="2027-12-31")

    with tempfile.TemporaryDirectory() as folder:
        with SQLiteStore(Path(folder) / "plain.db") as store:
            bridge = TaxBridge(_config("local"), LocalEngine(), store)
            reference = _entries(bridge, plain, args.orders)
        with SQLiteStore(Path(folder) / "local.db") as store:
            bridge = TaxBridge(_config("local"), LocalEngine(), store)
            bridge.add_certificate(certificate)
            local = _entries(bridge, exempt, args.orders)
            assert bridge.on_entry(_order(10**6, exempt)).total_tax == 0
        fake = FakeAvaTax(account_id="1", license_key="k")
        with (
            SQLiteStore(Path(folder) / "avatax.db") as store,
            respx.mock(base_url=URL, assert_all_called=False) as router,
        ):
            router.route().mock(side_effect=fake.handle)
            backend = AvaTaxBackend(_config("avatax").backend_settings)
            bridge = TaxBridge(
                _config("avatax"), LocalEngine(), store, certificates=backend.certificate_service()
            )
            fake.certcapture.upload("DEFAULT", "C2", region="NY", signed=DAY, expiry=None)
            before = len(fake.requests)
            avatax = _entries(bridge, exempt, args.orders)
            calls = (len(fake.requests) - before) / (args.orders + 1)
            backend.close()
        print(f"orders                          {args.orders:,} (3 lines, order entry)")
        print(f"not exempt (no certificate work) {reference:6.2f} ms/order")
        print(f"exempt, local service            {local:6.2f} ms/order  (+{local - reference:.2f})")
        print(
            f"exempt, AvaTax service (fake)    {avatax:6.2f} ms/order  "
            f"(+{avatax - reference:.2f}); {calls:.2f} certificate calls/order"
        )

        with SQLiteStore(Path(folder) / "reminders.db") as store:
            bridge = TaxBridge(_config("local"), LocalEngine(), store)
            for n in range(args.customers):
                code = f"R{n:05d}"
                expiry = DAY + dt.timedelta(days=n % 60)
                bridge.add_certificate(
                    Certificate(code, "G", ("NY",), signed="2025-01-01", expiry=expiry)
                )
                card = bridge.exempt_customers.card_for(
                    Customer(code, f"Customer {n}", (NYC,), email=f"ap@{code.lower()}.example"),
                    "DEFAULT",
                )
                store.save_customer_card(card, bridge.clock(), sent=True)
            started = time.perf_counter()
            run = bridge.send_reminders(DAY, 30, dry_run=True)
            took = time.perf_counter() - started
        print(
            f"reminders (dry run)              {args.customers:,} customers: "
            f"{len(run.letters):,} letters in {took:.2f} s"
        )


if __name__ == "__main__":
    main()
