"""A document goes to the engine it belongs to: a store remembers the books (engine,
environment, account) its documents were posted through and refuses to post, repost, void or
reconcile through others; the command line finds ./taxbridge.toml and says what it works on."""

from __future__ import annotations

from pathlib import Path

import pytest
import respx
from conftest import AVATAX_TOML, FAKE_ACCOUNT, FAKE_KEY, FAKE_URL, fake_avatax, invoice, order

from taxbridge import FinalTaxFlag as F
from taxbridge import LocalEngine, RecordingBackend, SQLiteStore, TaxBridge
from taxbridge.backends.avatax import AvaTaxBackend, AvaTaxSettings, Secret
from taxbridge.cli import main
from taxbridge.config import default_config
from taxbridge.errors import EngineMismatch
from taxbridge.store.base import BOOKS_KEY
from taxbridge.testing.fake_avatax import FakeAvaTax, serve

AVATAX_BOOKS = f"avatax avatax.fake.test account {FAKE_ACCOUNT}"


def test_the_first_posting_records_the_engines_books(store: SQLiteStore) -> None:
    bridge = TaxBridge(default_config(), LocalEngine(), store)
    bridge.on_entry(order())  # an estimate goes to nobody's books
    assert store.get_meta(BOOKS_KEY) is None
    bridge.on_invoice(invoice("1", order()))
    assert store.get_meta(BOOKS_KEY) == "local engine"


def test_a_store_posted_through_one_engine_refuses_another_until_moved_on_purpose(
    store: SQLiteStore,
) -> None:
    with fake_avatax() as engine:
        first = TaxBridge(default_config(), engine, store)
        first.on_invoice(invoice("1", order("1001")))
        engine.outage = True
        first.on_invoice(invoice("2", order("1002")))
        engine.outage = False
    assert store.get_meta(BOOKS_KEY) == AVATAX_BOOKS

    local = RecordingBackend(LocalEngine())
    wrong = TaxBridge(default_config(), local, store)
    for action, call in (
        ("posting A-3", lambda: wrong.on_invoice(invoice("3", order("1003")))),
        ("repost", wrong.repost),
        ("void A-1", lambda: wrong.void("A-1", "raised in error")),
        ("reconcile engine", lambda: wrong.reconcile_engine("2026-11")),
    ):
        with pytest.raises(EngineMismatch) as caught:
            call()
        assert caught.value.action == action
        assert AVATAX_BOOKS in str(caught.value)
        assert "'local engine'" in str(caught.value)
    assert local.requests == []  # nothing reached the other engine
    assert store.get("A-3") is None
    assert store.get("A-2").flag is F.FAILED
    assert [doc.code for doc in wrong.unposted()] == ["A-2"]  # reading still works
    assert wrong.inquiry("A-1").document.flag is F.POSTED

    assert wrong.use_engine() == (AVATAX_BOOKS, "local engine")
    assert wrong.repost().reposted == ("A-2",)
    assert store.get_meta(BOOKS_KEY) == "local engine"


def test_another_environment_or_account_is_other_books(store: SQLiteStore) -> None:
    with fake_avatax() as engine:
        TaxBridge(default_config(), engine, store).on_invoice(invoice("1", order()))
    other = FakeAvaTax(account_id="2200000000", license_key=FAKE_KEY)
    settings = AvaTaxSettings(
        base_url=FAKE_URL, account_id="2200000000", license_key=Secret(FAKE_KEY)
    )
    with (
        respx.mock(base_url=FAKE_URL, assert_all_called=False) as router,
        AvaTaxBackend(settings) as backend,
    ):
        router.route().mock(side_effect=other.handle)
        with pytest.raises(EngineMismatch, match="account 2200000000"):
            TaxBridge(default_config(), backend, store).on_invoice(invoice("2", order("1002")))
    assert other.commit_counts == {}


def test_the_command_line_uses_the_folders_config_and_says_so(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """In a folder holding an AvaTax taxbridge.toml and its store, ``repost`` posts to AvaTax
    (it fell back to the embedded local engine before), naming config, engine and store."""
    fake = FakeAvaTax(account_id=FAKE_ACCOUNT, license_key=FAKE_KEY)
    fake.companies["DEFAULT"] = 4242
    monkeypatch.setenv("TAXBRIDGE_BOOKS_TEST_KEY", FAKE_KEY)
    monkeypatch.delenv("TAXBRIDGE_CONFIG", raising=False)
    monkeypatch.delenv("TAXBRIDGE_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    with serve(fake) as url:
        (tmp_path / "taxbridge.toml").write_text(
            AVATAX_TOML.format(url=url, account=FAKE_ACCOUNT, key_env="TAXBRIDGE_BOOKS_TEST_KEY")
        )
        with TaxBridge.from_config(tmp_path / "taxbridge.toml") as bridge:
            bridge.on_invoice(invoice("1", order("1001")))
            fake.outage = True
            assert bridge.on_invoice(invoice("2", order("1002"))).flag is F.FAILED
            fake.outage = False
        capsys.readouterr()
        assert main(["repost"]) == 0
        out, err = capsys.readouterr()
        assert "reposted 1" in out
        host = url.removeprefix("http://").split(":")[0]
        assert err.splitlines() == [
            f"taxbridge: config taxbridge.toml, engine avatax {host} account {FAKE_ACCOUNT}, "
            "store taxbridge.db"
        ]
        assert main(["inquiry", "A-2"]) == 0
        assert "reposted to avatax" in capsys.readouterr().out
        assert main(["repost", "--quiet"]) == 0
        assert capsys.readouterr().err == ""
    assert fake.commit_counts["A-2"] == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["taxbridge.db", "taxbridge.toml"]


def test_a_store_named_without_its_config_is_refused_not_posted_locally(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.delenv("TAXBRIDGE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "books.db"
    with fake_avatax() as engine:
        bridge = TaxBridge(default_config(), engine, SQLiteStore(db))
        bridge.on_invoice(invoice("1", order("1001")))
        engine.outage = True
        bridge.on_invoice(invoice("2", order("1002")))
        bridge.close()
    capsys.readouterr()
    assert main(["repost", "--db", str(db)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 2  # what it works on, then the refusal
    assert f"repost refused: this store's documents were posted through '{AVATAX_BOOKS}'" in err
    with SQLiteStore(db) as store:
        assert store.get("A-2").flag is F.FAILED
