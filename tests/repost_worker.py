"""A repost worker process for the cross-process tests:
``python repost_worker.py STORE URL KEY [CONCURRENCY] [LEASE_SECONDS] [UNTIL_FILE]``; STORE is an
SQLite file or a ``postgresql://`` database URL. With UNTIL_FILE it keeps polling the queue until
that file exists and nothing is due (the ERP servers are still invoicing before).

Runs ``bridge.repost`` against an AvaTax at URL until nothing is due, then prints its summary as
JSON on stdout.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path

import structlog

from taxbridge import SQLiteStore, Store, TaxBridge
from taxbridge.backends.avatax import AvaTaxBackend, AvaTaxSettings, Secret
from taxbridge.config import default_config


def open_store(spec: str) -> Store:
    """The store a spec names: a ``postgresql://`` URL or an SQLite file."""
    if spec.startswith("postgresql://"):
        from taxbridge.store.postgres import PostgresStore

        return PostgresStore(spec, pool_max=4)
    return SQLiteStore(spec)


def main(
    db: str, url: str, key: str, concurrency: str = "2", lease: str = "300", until: str = ""
) -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    settings = AvaTaxSettings(base_url=url, account_id="1100000000", license_key=Secret(key))
    totals: dict[str, list[str]] = {"reposted": [], "failed": [], "taken_over": []}
    with TaxBridge(default_config(), AvaTaxBackend(settings), open_store(db)) as bridge:
        while True:
            summary = bridge.repost(
                limit=50,
                concurrency=int(concurrency),
                lease=dt.timedelta(seconds=float(lease)),
            )
            totals["reposted"] += summary.reposted
            totals["failed"] += summary.failed
            totals["taken_over"] += summary.taken_over
            idle = not (summary.reposted or summary.failed or summary.taken_over)
            if idle and (not until or Path(until).exists()):
                break
            if idle:
                time.sleep(0.05)
    print(json.dumps(totals))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
