"""A repost worker process for the cross-process tests:
``python repost_worker.py DB URL KEY [CONCURRENCY] [LEASE_SECONDS]``.

Runs ``bridge.repost`` against an AvaTax at URL until nothing is due, then prints its summary as
JSON on stdout.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

import structlog

from taxbridge import SQLiteStore, TaxBridge
from taxbridge.backends.avatax import AvaTaxBackend, AvaTaxSettings, Secret
from taxbridge.config import default_config


def main(db: str, url: str, key: str, concurrency: str = "2", lease: str = "300") -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    settings = AvaTaxSettings(base_url=url, account_id="1100000000", license_key=Secret(key))
    totals: dict[str, list[str]] = {"reposted": [], "failed": [], "taken_over": []}
    with TaxBridge(default_config(db), AvaTaxBackend(settings), SQLiteStore(db)) as bridge:
        while True:
            summary = bridge.repost(
                limit=50,
                concurrency=int(concurrency),
                lease=dt.timedelta(seconds=float(lease)),
            )
            totals["reposted"] += summary.reposted
            totals["failed"] += summary.failed
            totals["taken_over"] += summary.taken_over
            if not (summary.reposted or summary.failed or summary.taken_over):
                break
    print(json.dumps(totals))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
