"""Draining the unposted queue: N U documents reposted through AvaTaxBackend over a real socket.

The documents are queued once (an invoicing run during an outage: U, nothing reached the engine),
then for each concurrency a copy of that SQLite file is drained by ``bridge.repost`` against
the fake AvaTax served on 127.0.0.1 by a separate process, answering each call after a fixed
latency. Prints documents/s and the ratio to the ideal (concurrency / latency), and checks that
every document ended R and was committed exactly once at the server.

    python benchmarks/repost.py                                   # 3,000 documents, 1/4/16
    python benchmarks/repost.py --docs 40 --concurrency 1 4 --latency-ms 5   # CI smoke size
    python benchmarks/repost.py --store postgres                  # the same on PostgreSQL

Beside each drain it runs the reference the drain is measured against, on a fresh fake in the
same way: a bare loop of as many threads sending the same create-transaction bodies through one
pooled ``httpx.Client`` and nothing else (no store, no result mapping). This machine's wall clock
moves by a fifth or more between runs, so the ratio of the two, taken minutes apart, says more
than either figure alone.

With ``--store postgres`` each drain works on a fresh database of a throwaway server, filled by
``copy_store`` from the queued SQLite file.

With ``--command`` it also times what an operator runs, start-up included: the ``taxbridge
repost`` command in a fresh interpreter (a config file on the fake, the SQLite copy) against a
bare command doing the same HTTP work in a fresh interpreter (``benchmarks/_bare_post.py``: N
threads on one pooled ``httpx.Client``), each on a fresh fake, and prints their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import structlog
from _bare_post import post_all
from _machine import Steal, listening_on, tree_cpu

from taxbridge import (
    Address,
    Customer,
    FinalTaxFlag,
    Invoice,
    LocalEngine,
    Order,
    OrderLine,
    RecordingBackend,
    SQLiteStore,
    Store,
    TaxBridge,
)
from taxbridge.backends.avatax import AvaTaxBackend, AvaTaxSettings, Secret, mapping
from taxbridge.config import default_config
from taxbridge.testing.fake_avatax import FakeAvaTax, serve

KEY = "bench-key"
ACCOUNT = "1100000000"
SHIP_FROM = Address("822 Reed St", "Philadelphia", "PA", "19147")
SHIP_TO = Address("350 5th Ave", "New York", "NY", "10118")
DAY = dt.date(2026, 11, 20)


def make_invoice(number: int) -> Invoice:
    """A three-line invoice to New York."""
    order = Order(
        number=str(100_000 + number),
        company="01",
        customer=Customer(f"C{number % 97:03d}", name="Bench customer"),
        order_date=DAY,
        ship_from=SHIP_FROM,
        ship_to=SHIP_TO,
        lines=tuple(
            OrderLine(
                process_number=str(number),
                line_number=n,
                item_code=f"SKU-{n}",
                quantity=Decimal(n),
                amount=Decimal(n) * Decimal("12.99"),
            )
            for n in range(1, 4)
        ),
    )
    return Invoice(number=str(number), invoice_date=DAY, orders=(order,))


def queue_documents(db: Path, docs: int) -> None:
    """An invoicing run while the engine refuses connections: ``docs`` U documents, queued."""
    engine = RecordingBackend(LocalEngine())
    engine.outage = True
    with TaxBridge(default_config(str(db)), engine, SQLiteStore(db)) as bridge:
        for number in range(1, docs + 1):
            if bridge.on_invoice(make_invoice(number)).flag is not FinalTaxFlag.FAILED:
                raise SystemExit(f"invoice {number} was not queued")


def run_server(latency: float, pipe: Connection) -> None:
    """The fake AvaTax in its own process (its own GIL): sends its URL, then on any message
    answers with its commit counts and the CPU seconds it spent serving, and stops."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    fake = FakeAvaTax(account_id=ACCOUNT, license_key=KEY, latency=latency)
    with serve(fake) as url:
        started = time.process_time()
        pipe.send(url)
        pipe.recv()
        pipe.send((dict(fake.commit_counts), time.process_time() - started))


def copy_of(template: Path, work: Path, concurrency: int, server: str | None) -> Store:
    """A fresh store holding what ``template`` holds: a copied file, or a fresh database."""
    if server is None:
        db = work / f"drain-{concurrency}.db"
        shutil.copyfile(template, db)
        return SQLiteStore(db)
    from taxbridge.store.copy import copy_store
    from taxbridge.store.postgres import PostgresStore
    from taxbridge.testing.postgres import fresh_database

    target = PostgresStore(fresh_database(server), pool_max=max(concurrency, 2))
    with SQLiteStore(template) as source:
        copy_store(source, target)
    return target


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


@contextlib.contextmanager
def served_fake(latency: float) -> Iterator[tuple[str, Connection]]:
    """A fresh fake AvaTax in its own process: its URL and the pipe that stops it (send
    anything, then receive its commit counts and serving CPU seconds)."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    server = context.Process(target=run_server, args=(latency, theirs), daemon=True)
    server.start()
    try:
        yield ours.recv(), ours
    finally:
        server.join(timeout=10)
        if server.is_alive():
            server.kill()


def drain(
    template: Path, work: Path, concurrency: int, latency: float, server: str | None
) -> tuple[int, float, float, float, float | None]:
    """Drain a copy of ``template`` at ``concurrency``: documents reposted, seconds, and the
    CPU seconds of this process's drain, of the fake's serving (both whole runs) and of the
    PostgreSQL server during the drain (None on SQLite, or where it cannot be read)."""
    store = copy_of(template, work, concurrency, server)
    postmaster = None if server is None else listening_on(urlsplit(server).port or 5432)
    with served_fake(latency) as (url, fake):
        settings = AvaTaxSettings(
            base_url=url,
            account_id=ACCOUNT,
            license_key=Secret(KEY),
            max_connections=max(concurrency, 1),
        )
        with (
            AvaTaxBackend(settings) as backend,
            TaxBridge(default_config(), backend, store) as bridge,
        ):
            backend.ping()  # the first connection is not part of the drain
            database = None if postmaster is None else tree_cpu(postmaster)
            started, cpu = time.perf_counter(), _cpu()
            summary = bridge.repost(concurrency=concurrency)
            elapsed, cpu = time.perf_counter() - started, _cpu() - cpu
            if database is not None and postmaster is not None:
                after = tree_cpu(postmaster)
                database = None if after is None else after - database
            left = bridge.unposted()
        fake.send("counts")
        counts: dict[str, int]
        counts, served = fake.recv()
    if summary.failed or left:
        raise SystemExit(f"concurrency {concurrency}: {len(left)} documents still U")
    twice = sorted(code for code, count in counts.items() if count != 1)
    if twice or sorted(counts) != sorted(summary.reposted):
        raise SystemExit(f"concurrency {concurrency}: committed more than once: {twice[:5]}")
    return len(summary.reposted), elapsed, cpu, served, database


def _bodies(template: Path) -> list[tuple[bytes, str]]:
    """The create bodies of the queued documents, with the ``$include`` the backend sends."""
    with SQLiteStore(template) as store:
        return [
            (
                mapping.dumps(mapping.transaction_model(doc.request)),
                mapping.include_for(doc.request),
            )
            for doc in store.documents(flags=[FinalTaxFlag.FAILED])
            if doc.request is not None
        ]


def bare_loop(template: Path, concurrency: int, latency: float) -> tuple[int, float, float]:
    """The reference: ``concurrency`` threads posting the queued documents' create bodies (with
    the ``$include`` the backend sends) through one pooled ``httpx.Client`` to a fresh fake,
    nothing else: bodies sent, seconds and this process's CPU seconds."""
    bodies = _bodies(template)
    with served_fake(latency) as (url, fake):
        settings = AvaTaxSettings(base_url=url, account_id=ACCOUNT, license_key=Secret(KEY))
        headers = {
            "Authorization": settings.authorization(),
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        with httpx.Client(base_url=url, headers=headers, limits=limits) as client:
            client.get("/api/v2/utilities/ping").raise_for_status()  # first connection
            started, cpu = time.perf_counter(), _cpu()
            post_all(client, bodies, concurrency)
            elapsed, cpu = time.perf_counter() - started, _cpu() - cpu
        fake.send("counts")
        counts, _ = fake.recv()
    if len(counts) != len(bodies) or set(counts.values()) != {1}:
        raise SystemExit(f"bare loop: {len(counts)} of {len(bodies)} committed, not once each")
    return len(bodies), elapsed, cpu


COMMAND_TOML = """\
[backend]
kind = "avatax"
base_url = "{url}"
account_id = "{account}"
license_key_env = "TAXBRIDGE_BENCH_KEY"
max_connections = {concurrency}

[[companies]]
erp_company = "01"
company_code = "DEFAULT"

[[nexus]]
region = "NY"

[store]
path = "{db}"
"""


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def commands(template: Path, work: Path, concurrency: int, latency: float) -> tuple[float, ...]:
    """The ``taxbridge repost`` command and the bare command, each in a fresh interpreter on a
    fresh fake: their seconds and CPU seconds, start-up included."""
    import json
    import subprocess

    db = work / f"command-{concurrency}.db"
    shutil.copyfile(template, db)
    bodies = _bodies(template)
    bodies_file = work / "bodies.json"
    bodies_file.write_text(
        json.dumps([(body.decode(), include) for body, include in bodies]), encoding="utf-8"
    )
    env = {**os.environ, "TAXBRIDGE_BENCH_KEY": KEY}
    found: list[float] = []
    with served_fake(latency) as (url, fake):
        config = work / f"command-{concurrency}.toml"
        config.write_text(
            COMMAND_TOML.format(url=url, account=ACCOUNT, concurrency=concurrency, db=db.name)
        )
        argv = [sys.executable, "-m", "taxbridge", "repost", "--quiet", "--config", str(config)]
        argv += ["--concurrency", str(concurrency), "--format", "json"]
        started, cpu = time.perf_counter(), _children_cpu()
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
        found += [time.perf_counter() - started, _children_cpu() - cpu]
        fake.send("counts")
        counts, _ = fake.recv()
    if len(counts) != len(bodies) or set(counts.values()) != {1}:
        raise SystemExit(f"repost command: {len(counts)} of {len(bodies)} committed once")
    bare = Path(__file__).with_name("_bare_post.py")
    with served_fake(latency) as (url, fake):
        argv = [sys.executable, str(bare), str(bodies_file), url, ACCOUNT, KEY, str(concurrency)]
        started, cpu = time.perf_counter(), _children_cpu()
        subprocess.run(argv, check=True)
        found += [time.perf_counter() - started, _children_cpu() - cpu]
        fake.send("counts")
        fake.recv()
    return tuple(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=3_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--command",
        action="store_true",
        help="also time the taxbridge repost command against a bare command, start-up included",
    )
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    latency = args.latency_ms / 1000
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="taxbridge-repost-"))
        server = None
        if args.store == "postgres":
            from taxbridge.testing.postgres import temporary_server

            server = stack.enter_context(temporary_server())
        work = Path(folder)
        template = work / "queued.db"
        started = time.perf_counter()
        queue_documents(template, args.docs)
        print(
            f"queued {args.docs:,} U documents in {time.perf_counter() - started:.1f} s", flush=True
        )
        for concurrency in args.concurrency:
            steal = Steal()
            done, elapsed, cpu, served, database = drain(
                template, work, concurrency, latency, server
            )
            rate = done / elapsed
            ideal = concurrency / latency
            print(
                f"{args.store}: repost {done:,} documents, concurrency {concurrency:>2}, "
                f"{args.latency_ms:g} ms server: {elapsed:6.1f} s, {rate:6.1f} documents/s "
                f"= {rate / ideal:.0%} of ideal {ideal:.0f}/s; each committed once",
                flush=True,
            )
            server_cpu = "" if database is None else f", PostgreSQL {1000 * database / done:.2f} ms"
            print(
                f"    CPU per document: this process {1000 * cpu / done:.2f} ms, "
                f"the fake engine {1000 * served / done:.2f} ms{server_cpu}; {steal.describe()}",
                flush=True,
            )
            steal = Steal()
            sent, bare, bare_cpu = bare_loop(template, concurrency, latency)
            bare_rate = sent / bare
            print(
                f"    bare httpx loop, same bodies and server: {bare_rate:6.1f} documents/s "
                f"= {bare_rate / ideal:.0%} of ideal, {1000 * bare_cpu / sent:.2f} ms of CPU "
                f"per document ({steal.describe()}); the drain at {rate / bare_rate:.0%} of it",
                flush=True,
            )
            if args.command:
                steal = Steal()
                took, took_cpu, bare_took, bare_cpu = commands(template, work, concurrency, latency)
                print(
                    f"    commands, start-up included: taxbridge repost {took:.2f} s "
                    f"({done / took:.1f}/s = {done / took / ideal:.0%} of ideal, "
                    f"{1000 * took_cpu / done:.2f} ms CPU per document), bare command "
                    f"{bare_took:.2f} s ({1000 * bare_cpu / done:.2f} ms); the command at "
                    f"{bare_took / took:.0%} of the bare one ({steal.describe()})",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
