"""AvaTaxBackend costs: the model mapping, and calls over a real socket to the fake AvaTax.

1. Mapping: TaxRequest -> CreateTransactionModel JSON bytes, and TransactionModel JSON ->
   TaxResult, for a 100-line and a B-line document (medians).
2. Transport: N estimates through one AvaTaxBackend to FakeAvaTax served on 127.0.0.1 that
   answers after a fixed latency, from 1 and from T threads; documents/s and the ratio to the
   ideal (threads / latency), the figure the repost queue builds on.

    python benchmarks/avatax.py                                  # 100 / 15,000 lines, 400 calls
    python benchmarks/avatax.py --big-lines 300 --calls 20 --threads 4   # CI smoke size
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import threading
import time
from decimal import Decimal

import structlog

from taxbridge.backends.avatax import AvaTaxBackend, AvaTaxSettings, Secret
from taxbridge.backends.avatax.mapping import dumps, result_from_model, transaction_model
from taxbridge.backends.local import LocalEngine
from taxbridge.models import Address, DocumentStatus, DocumentType, TaxLine, TaxRequest
from taxbridge.testing.fake_avatax import FakeAvaTax, serve, transaction_body

SHIP_FROM = Address("822 Reed St", "Philadelphia", "PA", "19147")
SHIP_TO = Address("350 5th Ave", "New York", "NY", "10118")


def make_request(code: str, lines: int) -> TaxRequest:
    """A SalesOrder estimate of ``lines`` lines to New York."""
    return TaxRequest(
        code=code,
        document_type=DocumentType.SALES_ORDER,
        company_code="DEFAULT",
        customer_code="C001",
        date=dt.date(2026, 11, 20),
        ship_from=SHIP_FROM,
        ship_to=SHIP_TO,
        lines=tuple(
            TaxLine(f"1-{n}", Decimal(10 + n % 90) + Decimal("0.99"), item_code=f"SKU-{n}")
            for n in range(1, lines + 1)
        ),
    )


def median_seconds(action: object, repeat: int) -> float:
    """Median wall time of ``repeat`` runs of ``action()``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def mapping(lines: int, repeat: int) -> tuple[float, float]:
    """Seconds to build the request body, and to read the answer, of a ``lines``-line document."""
    request = make_request("B-1", lines)
    result = LocalEngine().calculate(request)
    answer = dumps(transaction_body(request, result, DocumentStatus.TEMPORARY))
    to_json = median_seconds(lambda: dumps(transaction_model(request)), repeat)
    from_json = median_seconds(
        lambda: result_from_model(
            json.loads(answer, parse_float=Decimal), backend="avatax", request=request
        ),
        repeat,
    )
    return to_json, from_json


def transport(calls: int, threads: int, latency: float) -> float:
    """Documents/s of ``calls`` estimates from ``threads`` threads against a served fake."""
    fake = FakeAvaTax(license_key="bench-key", latency=latency)
    with serve(fake) as url:
        settings = AvaTaxSettings(
            base_url=url, account_id=fake.account_id, license_key=Secret("bench-key")
        )
        with AvaTaxBackend(settings) as backend:
            backend.ping()  # open the first connection before timing
            each = calls // threads
            errors: list[BaseException] = []

            def work(worker: int) -> None:
                try:
                    for n in range(each):
                        backend.calculate(make_request(f"T{worker}-{n}", 3))
                except BaseException as exc:
                    errors.append(exc)

            pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
            started = time.perf_counter()
            for thread in pool:
                thread.start()
            for thread in pool:
                thread.join()
            elapsed = time.perf_counter() - started
            if errors:
                raise errors[0]
    return each * threads / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-lines", type=int, default=15_000)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))

    small_out, small_in = mapping(100, 21)
    big_out, big_in = mapping(args.big_lines, 3)
    print(
        f"mapping 100 lines          request {small_out * 1000:7.2f} ms   "
        f"answer {small_in * 1000:7.2f} ms"
    )
    print(
        f"mapping {args.big_lines:,} lines  request {big_out * 1000:7.1f} ms   "
        f"answer {big_in * 1000:7.1f} ms"
    )

    latency = args.latency_ms / 1000
    for threads in sorted({1, args.threads}):
        rate = transport(
            max(args.calls // 4 if threads == 1 else args.calls, threads), threads, latency
        )
        ideal = threads / latency
        print(
            f"transport {threads:>2} thread(s), {args.latency_ms:g} ms server: "
            f"{rate:7.1f} documents/s = {rate / ideal:.0%} of ideal {ideal:.0f}/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
