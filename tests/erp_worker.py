"""An ERP server for the cross-process tests: ``python erp_worker.py STORE URL KEY FIRST COUNT``.

Invoices COUNT one-order invoices numbered from FIRST through its own bridge against the AvaTax
at URL; every third one meets a (simulated) outage, so it is stored U and queued for the repost
workers. Prints the codes it invoiced, by flag, as JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from decimal import Decimal

import structlog
from repost_worker import open_store

from taxbridge import Address, Customer, Invoice, Order, OrderLine, RecordingBackend, TaxBridge
from taxbridge.backends.avatax import AvaTaxBackend, AvaTaxSettings, Secret
from taxbridge.config import default_config

WAREHOUSE = Address("822 Reed St", "Philadelphia", "PA", "19147")
NYC = Address("350 5th Ave", "New York", "NY", "10118")


def main(db: str, url: str, key: str, first: str, count: str) -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    settings = AvaTaxSettings(base_url=url, account_id="1100000000", license_key=Secret(key))
    engine = RecordingBackend(AvaTaxBackend(settings))
    flags: dict[str, list[str]] = {}
    with TaxBridge(default_config(), engine, open_store(db)) as bridge:
        for number in range(int(first), int(first) + int(count)):
            order = Order(
                number=str(number),
                company="01",
                customer=Customer("C001", "Acme"),
                order_date=dt.date(2026, 11, 20),
                ship_from=WAREHOUSE,
                ship_to=NYC,
                lines=(OrderLine("P1", 1, "SKU-1", Decimal(1), Decimal("100.00")),),
            )
            engine.outage = number % 3 == 0
            document = bridge.on_invoice(Invoice(str(number), dt.date(2026, 11, 20), (order,)))
            flags.setdefault(document.flag.value, []).append(document.code)
    print(json.dumps(flags))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
