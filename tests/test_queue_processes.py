"""The queue across processes, on each store: four repost processes at once over one SQLite file
or one PostgreSQL database, and one AvaTax (the fake, served on 127.0.0.1, counting commits per
code); two ERP servers invoicing while they drain; workers killed right after a commit."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import AVATAX_TOML, FAKE_ACCOUNT, FAKE_KEY, invoice, open_store, order

from taxbridge import FinalTaxFlag as F
from taxbridge import LocalEngine, RecordingBackend, TaxBridge
from taxbridge.config import default_config
from taxbridge.testing.fake_avatax import FakeAvaTax, serve

WORKER = Path(__file__).with_name("repost_worker.py")


def _unposted(db: str, count: int) -> list[str]:
    """``count`` invoices that failed to post (U, queued), written by one ERP run."""
    engine = RecordingBackend(LocalEngine())
    engine.outage = True
    with TaxBridge(default_config(), engine, open_store(db)) as bridge:
        return [
            bridge.on_invoice(invoice(str(n), order(str(100_000 + n)))).code
            for n in range(1, count + 1)
        ]


def test_four_processes_repost_1000_documents_each_committed_exactly_once(store_spec: str) -> None:
    db = store_spec
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
    with open_store(db) as store:
        assert store.documents(flags=[F.FAILED]) == []
        assert len(store.documents(flags=[F.REPOSTED])) == 1000
        assert store.queue() == []


def test_sigkill_at_random_moments_loses_nothing_and_posts_nothing_twice(store_spec: str) -> None:
    """A worker is killed 50 times: at random times, and right after the engine committed a
    document whose answer it never received. Restarted, the queue drains with every document
    committed once and flagged R."""
    db = store_spec
    codes = _unposted(db, 300)
    fake = FakeAvaTax(account_id=FAKE_ACCOUNT, license_key=FAKE_KEY)
    rng = random.Random(20261121)
    running: list[subprocess.Popen[str]] = []
    killed_after_commit: list[str] = []

    def crash_between_commit_and_store(code: str) -> None:
        if running and rng.random() < 0.4:
            running[-1].send_signal(signal.SIGKILL)
            killed_after_commit.append(code)

    fake.after_commit = crash_between_commit_and_store
    kills = 0
    with serve(fake) as url:
        command = [sys.executable, str(WORKER), str(db), url, FAKE_KEY, "1", "0.2"]
        # at least 50 kills, and on until ten of them came right after a commit (a store
        # whose workers start slower is killed before its first commit more often)
        while kills < 50 or (len(killed_after_commit) < 10 and kills < 200):
            worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, text=True)
            running.append(worker)
            try:
                worker.wait(timeout=rng.uniform(0.3, 1.2))
            except subprocess.TimeoutExpired:
                worker.send_signal(signal.SIGKILL)
                worker.wait()
            if worker.returncode == -signal.SIGKILL:
                kills += 1
            elif worker.returncode == 0:
                break  # the queue is drained: nothing left to crash on
        fake.after_commit = None
        time.sleep(0.3)  # the dead workers' leases run out
        final = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert kills >= 50
    assert len(killed_after_commit) >= 10  # the interesting moment was hit, many times
    assert all(fake.commit_counts[code] == 1 for code in codes)
    assert sum(fake.commit_counts.values()) == len(codes)
    with open_store(db) as store:
        flags = {doc.code: doc.flag for doc in store.documents()}
        assert {flags[code] for code in codes} == {F.REPOSTED}
        assert store.queue() == []
        found = [
            c for c in killed_after_commit if "found already committed" in store.get(c).last_log
        ]
        assert found  # committed before the crash: recorded by a later worker's lookup


ERP = Path(__file__).with_name("erp_worker.py")


def test_two_erp_servers_invoice_while_four_repost_processes_drain_one_queue(
    store_spec: str, tmp_path: Path
) -> None:
    """Several ERP servers on one store: every document committed exactly once, all settled."""
    open_store(store_spec).close()  # the schema, made once before the servers start
    done = tmp_path / "erp-done"
    fake = FakeAvaTax(account_id=FAKE_ACCOUNT, license_key=FAKE_KEY)
    with serve(fake) as url:
        repost = [sys.executable, str(WORKER), store_spec, url, FAKE_KEY, "2", "300", str(done)]
        drains = [subprocess.Popen(repost, stdout=subprocess.PIPE, text=True) for _ in range(4)]
        erps = [
            subprocess.Popen(
                [sys.executable, str(ERP), store_spec, url, FAKE_KEY, str(first), "150"],
                stdout=subprocess.PIPE,
                text=True,
            )
            for first in (1, 10_001)
        ]
        invoiced = [json.loads(erp.communicate(timeout=300)[0]) for erp in erps]
        done.touch()
        drained = [json.loads(worker.communicate(timeout=300)[0]) for worker in drains]
    assert all(p.returncode == 0 for p in [*erps, *drains])
    codes = [code for out in invoiced for flagged in out.values() for code in flagged]
    queued = [code for out in invoiced for code in out.get("U", [])]
    assert len(codes) == 300
    assert len(queued) == 100
    reposted = [code for out in drained for code in out["reposted"]]
    assert sorted(reposted) == sorted(queued)  # each U document reposted by one worker
    assert all(fake.commit_counts[code] == 1 for code in codes)
    assert sum(fake.commit_counts.values()) == 300
    with open_store(store_spec) as store:
        assert store.queue() == []
        flags = {doc.code: doc.flag for doc in store.documents()}
        assert {flags[code] for code in queued} == {F.REPOSTED}
        assert {flags[code] for code in codes if code not in queued} == {F.POSTED}


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT to a child process")
def test_ctrl_c_during_repost_exits_130_in_one_line_and_gives_back_what_was_not_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeAvaTax(account_id=FAKE_ACCOUNT, license_key=FAKE_KEY, latency=0.05)
    fake.companies["DEFAULT"] = 4242
    monkeypatch.setenv("TAXBRIDGE_INTERRUPT_KEY", FAKE_KEY)
    monkeypatch.delenv("TAXBRIDGE_CONFIG", raising=False)
    config = tmp_path / "taxbridge.toml"
    with serve(fake) as url:
        config.write_text(
            AVATAX_TOML.format(url=url, account=FAKE_ACCOUNT, key_env="TAXBRIDGE_INTERRUPT_KEY")
        )
        with TaxBridge.from_config(config) as bridge:
            bridge.on_invoice(invoice("1", order("100001")))  # the store's books: this AvaTax
            fake.outage = True
            codes = [bridge.on_invoice(invoice(str(n), order(str(100_000 + n)))).code
                     for n in range(2, 42)]  # fmt: skip
            fake.outage = False
        command = [sys.executable, "-c", "import sys; from taxbridge.cli import main; "
                   "sys.exit(main())", "repost", "--concurrency", "2", "--quiet"]  # fmt: skip
        repost = subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while sum(fake.commit_counts.values()) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        repost.send_signal(signal.SIGINT)
        _, err = repost.communicate(timeout=60)
        assert repost.returncode == 130
        assert err.splitlines() == [
            "taxbridge repost: interrupted: what the engine answered is recorded, what was not "
            "sent is back in the queue"
        ]
        with open_store(str(tmp_path / "taxbridge.db")) as store:
            left = store.queue()
        assert 0 < len(left) < len(codes)
        assert {entry.claimed_by for entry in left} == {None}
        again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
    assert [fake.commit_counts[code] for code in codes] == [1] * len(codes)
