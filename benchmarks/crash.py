"""Crash drill for the unposted queue: a repost worker killed with SIGKILL again and again.

N invoices are queued U; then a worker process draining the queue (short leases) is killed at
random moments and, via the fake engine's ``after_commit`` hook, right after the engine committed
a document and before the worker could record it. After K kills a last worker drains what is
left. Prints the kills and checks that every document ended R, committed exactly once, with none
left in the queue; exits 1 otherwise. The test suite runs the same drill with 50 kills.

    python benchmarks/crash.py                       # 1,000 documents, 200 kills
    python benchmarks/crash.py --docs 30 --kills 5   # CI smoke size
    python benchmarks/crash.py --store postgres      # the same on a throwaway PostgreSQL
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import structlog
from repost import ACCOUNT, KEY, queue_documents  # the script's folder is on sys.path

from taxbridge import FinalTaxFlag, SQLiteStore, Store, TaxBridge
from taxbridge.backends.avatax import AvaTaxBackend, AvaTaxSettings, Secret
from taxbridge.config import default_config
from taxbridge.testing.fake_avatax import FakeAvaTax, serve

LEASE_SECONDS = 0.2


def open_store(spec: str) -> Store:
    """An SQLite file, or a ``postgresql://`` database."""
    if spec.startswith("postgresql://"):
        from taxbridge.store.postgres import PostgresStore

        return PostgresStore(spec, pool_max=4)
    return SQLiteStore(spec)


def worker(db: str, url: str, concurrency: int) -> int:
    """Drain the queue until nothing is due (the process the drill kills)."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    settings = AvaTaxSettings(base_url=url, account_id=ACCOUNT, license_key=Secret(KEY))
    lease = dt.timedelta(seconds=LEASE_SECONDS)
    with TaxBridge(default_config(), AvaTaxBackend(settings), open_store(db)) as bridge:
        while True:
            summary = bridge.repost(limit=50, concurrency=concurrency, lease=lease)
            if not (summary.reposted or summary.failed or summary.taken_over):
                return 0


def drill(docs: int, kills: int, concurrency: int, seed: int, server: str | None = None) -> int:
    """Run the drill; 0 when every document was committed once and flagged R. With
    ``server`` (a PostgreSQL URL) the queue is a fresh database of it, copied from the file."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="taxbridge-crash-") as folder:
        queued = Path(folder) / "crash.db"
        queue_documents(queued, docs)
        db = str(queued)
        if server is not None:
            from taxbridge.store.copy import copy_store
            from taxbridge.testing.postgres import fresh_database

            db = fresh_database(server)
            with SQLiteStore(queued) as source, open_store(db) as target:
                copy_store(source, target)
        fake = FakeAvaTax(account_id=ACCOUNT, license_key=KEY)
        running: list[subprocess.Popen[bytes]] = []
        after_commit: list[str] = []

        def kill_between_commit_and_store(code: str) -> None:
            if running and running[-1].poll() is None and rng.random() < 0.4:
                running[-1].send_signal(signal.SIGKILL)
                after_commit.append(code)

        fake.after_commit = kill_between_commit_and_store
        killed = 0
        started = time.perf_counter()
        with serve(fake) as url:
            command = [
                sys.executable,
                __file__,
                "--worker",
                str(db),
                url,
                "--concurrency",
                str(concurrency),
            ]
            while killed < kills:
                process = subprocess.Popen(command)
                running.append(process)
                try:
                    process.wait(timeout=rng.uniform(0.3, 1.2))
                except subprocess.TimeoutExpired:
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                if process.returncode == -signal.SIGKILL:
                    killed += 1
                elif process.returncode == 0:
                    break  # drained before the kills ran out
                else:
                    print(f"worker failed with exit code {process.returncode}", file=sys.stderr)
                    return 1
            fake.after_commit = None
            time.sleep(LEASE_SECONDS * 1.5)  # the dead workers' leases run out
            final = subprocess.run(command, check=False)
        elapsed = time.perf_counter() - started
        with open_store(db) as store:
            flags = {doc.code: doc.flag for doc in store.documents()}
            left = store.queue()
        twice = sorted(code for code, count in fake.commit_counts.items() if count != 1)
        not_r = sorted(code for code, flag in flags.items() if flag is not FinalTaxFlag.REPOSTED)
        print(
            f"{'PostgreSQL' if server else 'SQLite'}: "
            f"{docs:,} documents, {killed} workers killed (SIGKILL sent {len(after_commit)} times "
            f"right after the engine committed), {elapsed:.1f} s: "
            f"{len(fake.commit_counts):,} committed, "
            f"{len(twice)} more than once, {len(not_r)} not R, {len(left)} left in the queue",
            flush=True,
        )
        ok = (
            final.returncode == 0
            and not twice
            and not not_r
            and not left
            and len(fake.commit_counts) == docs
        )
        return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1_000)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--worker", nargs=2, metavar=("DB", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker[0], args.worker[1], args.concurrency)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    if args.store == "postgres":
        from taxbridge.testing.postgres import temporary_server

        with temporary_server() as server:
            return drill(args.docs, args.kills, args.concurrency, args.seed, server)
    return drill(args.docs, args.kills, args.concurrency, args.seed)


if __name__ == "__main__":
    sys.exit(main())
