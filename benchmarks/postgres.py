"""Several ERP servers on one PostgreSQL store: invoices/s of 1 and of 4 processes invoicing at
once (local engine, one-order invoices of 20 lines through all five stages), against a
throwaway server started here.

    python benchmarks/postgres.py                         # 300 orders per process
    python benchmarks/postgres.py --orders 5 --lines 2    # CI smoke size
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from multiprocessing.connection import Connection

import structlog
from lifecycle import make_order

from taxbridge import Invoice, LocalEngine, TaxBridge
from taxbridge.config import default_config
from taxbridge.store.postgres import PostgresStore
from taxbridge.testing.postgres import fresh_database, temporary_server


def erp_server(url: str, first: int, orders: int, lines: int, ready: Connection) -> None:
    """One ERP server: its own bridge and pool; waits for the start signal, then runs every
    order through entry, pending check, pick, despatch and invoice."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    import datetime as dt

    day = dt.date(2026, 11, 20)
    work = [make_order(first + n, lines, day) for n in range(orders)]
    with TaxBridge(default_config(), LocalEngine(), PostgresStore(url, pool_max=2)) as bridge:
        ready.send("ready")
        ready.recv()
        for order in work:
            bridge.on_entry(order)
            bridge.on_pending_check(order)
            bridge.on_pick(order)
            bridge.on_despatch(order)
            bridge.on_invoice(Invoice(order.number, day, (order,)))
        ready.send("done")


def run(server: str, processes: int, orders: int, lines: int) -> float:
    """Orders/s of ``processes`` ERP servers on one fresh database."""
    url = fresh_database(server)
    PostgresStore(url).close()  # the schema, before the servers start
    context = multiprocessing.get_context("spawn")
    pipes, workers = [], []
    for index in range(processes):
        ours, theirs = context.Pipe()
        worker = context.Process(
            target=erp_server, args=(url, 1_000_000 * (index + 1), orders, lines, theirs)
        )
        worker.start()
        pipes.append(ours)
        workers.append(worker)
    for pipe in pipes:
        pipe.recv()
    started = time.perf_counter()
    for pipe in pipes:
        pipe.send("go")
    for pipe in pipes:
        pipe.recv()
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise SystemExit(f"an ERP server failed ({worker.exitcode})")
    with PostgresStore(url) as store:
        invoiced = len(store.documents(kind=None))
    if invoiced != 2 * processes * orders:
        raise SystemExit(f"{invoiced} documents stored, {2 * processes * orders} expected")
    return processes * orders / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300, help="orders per process")
    parser.add_argument("--lines", type=int, default=20)
    args = parser.parse_args()
    with temporary_server() as server:
        one = run(server, 1, args.orders, args.lines)
        four = run(server, 4, args.orders, args.lines)
    print(f"1 process : {one:7.1f} orders/s through five stages ({args.lines} lines)")
    print(f"4 processes: {four:7.1f} orders/s together ({four / one:.2f}x one process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
