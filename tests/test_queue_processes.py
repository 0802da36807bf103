"""The queue across processes: four repost processes at once over one SQLite file and one AvaTax
(the fake, served on 127.0.0.1, counting commits per code)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import FAKE_ACCOUNT, FAKE_KEY, invoice, order

from taxbridge import FinalTaxFlag as F
from taxbridge import LocalEngine, RecordingBackend, SQLiteStore, TaxBridge
from taxbridge.backends.avatax.fake import FakeAvaTax, serve
from taxbridge.config import default_config

WORKER = Path(__file__).with_name("repost_worker.py")


def _unposted(db: Path, count: int) -> list[str]:
    """``count`` invoices that failed to post (U, queued), written by one ERP run."""
    engine = RecordingBackend(LocalEngine())
    engine.outage = True
    with TaxBridge(default_config(str(db)), engine, SQLiteStore(db)) as bridge:
        return [
            bridge.on_invoice(invoice(str(n), order(str(100_000 + n)))).code
            for n in range(1, count + 1)
        ]


def test_four_processes_repost_1000_documents_each_committed_exactly_once(tmp_path) -> None:
    db = tmp_path / "shared.db"
    codes = _unposted(db, 1000)
    fake = FakeAvaTax(account_id=FAKE_ACCOUNT, license_key=FAKE_KEY)
    with serve(fake) as url:
        workers = [
            subprocess.Popen(
                [sys.executable, str(WORKER), str(db), url, FAKE_KEY, "2"],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        outputs = [json.loads(worker.communicate(timeout=300)[0]) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers)
    reposted = [code for out in outputs for code in out["reposted"]]
    assert sorted(reposted) == sorted(codes)  # each document reposted by exactly one worker
    assert sum(1 for out in outputs if out["reposted"]) > 1  # the work really was shared
    assert all(fake.commit_counts[code] == 1 for code in codes)
    assert sum(fake.commit_counts.values()) == 1000
    with SQLiteStore(db) as store:
        assert store.documents(flags=[F.FAILED]) == []
        assert len(store.documents(flags=[F.REPOSTED])) == 1000
        assert store.queue() == []
