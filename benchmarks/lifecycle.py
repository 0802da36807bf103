"""Lifecycle throughput on the embedded defaults: local engine + an SQLite file.

Runs N orders of L lines through entry -> pending check -> pick -> despatch -> invoice, then one
invoice of B lines, a 100-line invoice for scale, and prints orders/s, the big invoice's time
against 150 x the 100-line time, and peak RSS.

    python benchmarks/lifecycle.py                     # 1,000 x 20 lines, 15,000-line invoice
    python benchmarks/lifecycle.py --orders 5 --lines 3 --big-lines 300   # CI smoke size

It also runs the hand-written floor of the same work (``../shared/bench/lifecycle_floor.py``,
when it is there) in the same run and prints the ratio. On a shared machine one run of either can
be slowed by a neighbour by a third or more, so the comparison takes ``--rounds`` rounds (3 by
default), each running the floor and then taxbridge's five stages in fresh processes, and sets
the best time of each against the other (the median ratio is printed beside it).

With ``--loop-only`` it runs the orders through the five stages and nothing else, for counting
instructions: ``valgrind --tool=callgrind python benchmarks/lifecycle.py --loop-only --orders
120`` minus the same at ``--orders 20`` is the cost of 100 orders, start-up cancelled out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import structlog
from _machine import Steal

from taxbridge import (
    Address,
    Customer,
    Invoice,
    LocalEngine,
    Order,
    OrderLine,
    SQLiteStore,
    TaxBridge,
)
from taxbridge.config import default_config

SHIP_FROM = Address("822 Reed St", "Philadelphia", "PA", "19147")
DESTINATIONS = (
    Address("742 Washington St", "San Francisco", "CA", "94108"),
    Address("350 5th Ave", "New York", "NY", "10118"),
    Address("600 Congress Ave", "Austin", "TX", "78701"),
    Address("400 Broad St", "Seattle", "WA", "98101"),
    Address("233 S Wacker Dr", "Chicago", "IL", "60601"),
    Address("1 Market St", "Philadelphia", "PA", "19103"),
)
CODES = ("", "", "", "CLOTH", "BOOK")


def make_order(number: int, lines: int, day: dt.date) -> Order:
    """An order of ``lines`` lines, shipped to one of six nexus cities."""
    return Order(
        number=str(number),
        company="01",
        customer=Customer(f"C{number % 97:03d}", name="Bench customer"),
        order_date=day,
        ship_from=SHIP_FROM,
        ship_to=DESTINATIONS[number % len(DESTINATIONS)],
        lines=tuple(
            OrderLine(
                process_number=str(number),
                line_number=n,
                item_code=f"SKU-{n}",
                quantity=Decimal(n % 5 + 1),
                amount=Decimal(n % 5 + 1) * Decimal("12.99"),
                item_classification=CODES[n % len(CODES)],
                freight=n == lines,
            )
            for n in range(1, lines + 1)
        ),
    )


def _median_invoice_time(bridge: TaxBridge, order: Order, prefix: str, repeats: int) -> float:
    """Median seconds to invoice ``order`` (each repeat under a new invoice number)."""
    times = []
    for repeat in range(repeats):
        invoice = Invoice(
            number=f"{prefix}{repeat}", invoice_date=order.order_date, orders=(order,)
        )
        started = time.perf_counter()
        bridge.on_invoice(invoice)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _lifecycle(bridge: TaxBridge, batch: list[Order], day: dt.date) -> float:
    """Seconds to take every order through entry, pending check, pick, despatch and invoice."""
    started = time.perf_counter()
    for order in batch:
        bridge.on_entry(order)
        bridge.on_pending_check(order)
        bridge.on_pick(order)
        bridge.on_despatch(order)
        bridge.on_invoice(Invoice(number=f"I{order.number}", invoice_date=day, orders=(order,)))
    return time.perf_counter() - started


def loop_only(orders: int, lines: int) -> float:
    """Only the lifecycle loop (for an instruction count): its seconds."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    day = dt.date(2026, 11, 20)
    with (
        tempfile.TemporaryDirectory() as folder,
        TaxBridge(
            default_config(), LocalEngine(), SQLiteStore(Path(folder) / "bench.db")
        ) as bridge,
    ):
        batch = [make_order(n, lines, day) for n in range(1, orders + 1)]
        return _lifecycle(bridge, batch, day)


def run(orders: int, lines: int, big_lines: int) -> dict[str, float]:
    """Run the benchmark; return its figures."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    day = dt.date(2026, 11, 20)
    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteStore(Path(folder) / "bench.db")
        bridge = TaxBridge(default_config(), LocalEngine(), store)
        batch = [make_order(n, lines, day) for n in range(1, orders + 1)]
        lifecycle = _lifecycle(bridge, batch, day)

        small = make_order(900_001, 100, day)
        hundred = _median_invoice_time(bridge, small, "S", repeats=21)
        big = make_order(900_002, big_lines, day)
        big_time = _median_invoice_time(bridge, big, "BIG", repeats=3)
        bridge.close()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "orders_per_s": orders / lifecycle,
        "lifecycle_s": lifecycle,
        "hundred_line_s": hundred,
        "big_s": big_time,
        "big_budget_s": 1.5 * (big_lines / 100) * hundred,
        "peak_rss_mb": peak_kib / 1024,
    }


FLOOR = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / "lifecycle_floor.py"
"""The hand-written floor of the same work (``../shared/bench``; absent in a user's clone)."""


def floor(orders: int, lines: int) -> float | None:
    """The floor's seconds for the same orders and lines, run now in its own process (None
    when the reference program is not beside the project)."""
    if not FLOOR.exists():
        return None
    done = subprocess.run(
        [sys.executable, str(FLOOR), str(orders), str(lines)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def loop_in_process(orders: int, lines: int) -> float:
    """Seconds of :func:`loop_only` run now in a fresh process, as the floor runs."""
    done = subprocess.run(
        [sys.executable, __file__, "--loop-only", "--orders", str(orders), "--lines", str(lines)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(done.stdout.split(": ")[-1].split(" s")[0])


def rounds(orders: int, lines: int, count: int) -> tuple[list[float], list[float]] | None:
    """``count`` rounds of the floor and then the five stages, each in a fresh process: the
    floor's seconds and taxbridge's (None without the floor)."""
    floors, ours = [], []
    for _ in range(count):
        floor_s = floor(orders, lines)
        if floor_s is None:
            return None
        floors.append(floor_s)
        ours.append(loop_in_process(orders, lines))
    return floors, ours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=20)
    parser.add_argument("--big-lines", type=int, default=15_000)
    parser.add_argument("--loop-only", action="store_true", help="the five stages, nothing else")
    parser.add_argument("--rounds", type=int, default=3, help="rounds against the floor")
    args = parser.parse_args(argv)
    if args.loop_only:
        seconds = loop_only(args.orders, args.lines)
        print(f"{args.orders} x {args.lines} lines through 5 stages: {seconds:.2f} s")
        return 0
    steal = Steal()
    compared = rounds(args.orders, args.lines, args.rounds)
    rounds_steal = steal.describe()
    figures = run(args.orders, args.lines, args.big_lines)
    print(f"orders                 {args.orders} x {args.lines} lines, 5 stages each")
    print(f"lifecycle              {figures['lifecycle_s']:.2f} s")
    if compared is None:
        print(f"orders/s               {figures['orders_per_s']:.0f}   (target >= 300)")
        print(f"floor                  not run: {FLOOR} is not here")
    else:
        floors, ours = compared
        print(
            f"orders/s               {figures['orders_per_s']:.0f}   (target >= 300; the floor's "
            f"best round here and now: {args.orders / min(floors):.0f})"
        )
        ratios = [f / o for f, o in zip(floors, ours, strict=True)]
        print(f"floor, same work       {' '.join(f'{f:.2f}' for f in floors)} s")
        print(f"taxbridge, 5 stages    {' '.join(f'{o:.2f}' for o in ours)} s")
        print(
            f"  -> taxbridge at {min(floors) / min(ours):.2f}x the floor, best against best "
            f"(median of the rounds' ratios {statistics.median(ratios):.2f}x); "
            f"{rounds_steal} during the rounds"
        )
    print(f"100-line invoice       {figures['hundred_line_s'] * 1000:.1f} ms")
    print(
        f"{args.big_lines}-line invoice    {figures['big_s']:.2f} s   "
        f"(budget 1.5 x {args.big_lines // 100} x 100-line = {figures['big_budget_s']:.2f} s)"
    )
    print(f"peak RSS               {figures['peak_rss_mb']:.0f} MB   (target < 300)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
