"""From config to backend and store through the registries: a new engine or store is one
module and one registry line."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import invoice, order

from taxbridge import ConfigError, FinalTaxFlag, TaxBridge
from taxbridge.backends import BACKENDS
from taxbridge.config import parse_config_text
from taxbridge.store import STORES

CONFIG = """
[store]
kind = "{store}"
path = "t.db"

[backend]
kind = "{backend}"
{extra}

[[companies]]
erp_company = "01"
company_code = "DEFAULT"

[[nexus]]
region = "NY"
"""


def _config(tmp_path: Path, *, backend: str = "local", store: str = "sqlite", extra: str = ""):
    text = CONFIG.format(backend=backend, store=store, extra=extra)
    return parse_config_text(text, source="t.toml", base=tmp_path)


def test_a_new_engine_is_one_module_and_one_registry_line(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(BACKENDS, "echo", "echo_backend")
    config = _config(tmp_path, backend="echo", extra='name = "echo-engine"')
    with TaxBridge.from_settings(config) as bridge:
        assert bridge.backend.name == "echo-engine"
        posted = bridge.on_invoice(invoice("1", order()))
    assert (posted.flag, posted.backend) == (FinalTaxFlag.POSTED, "echo-engine")
    with pytest.raises(ConfigError, match=r"t.toml: backend.colour: unknown key"):
        _config(tmp_path, backend="echo", extra='name = "x"\ncolour = "blue"')


def test_a_new_store_is_one_module_and_one_registry_line(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(STORES, "sqlite-again", "taxbridge.store.sqlite")
    with TaxBridge.from_settings(_config(tmp_path, store="sqlite-again")) as bridge:
        bridge.on_invoice(invoice("1", order()))
    assert (tmp_path / "t.db").exists()


def test_a_missing_credential_fails_before_a_store_is_created(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("TAXBRIDGE_NO_SUCH_KEY", raising=False)
    extra = 'account_id = "1"\nlicense_key_env = "TAXBRIDGE_NO_SUCH_KEY"'
    config = _config(tmp_path, backend="avatax", extra=extra)
    with pytest.raises(ConfigError, match="TAXBRIDGE_NO_SUCH_KEY"):
        TaxBridge.from_settings(config)
    assert not (tmp_path / "t.db").exists()


def test_the_offline_kind_estimates_from_the_store_and_posts_nothing(tmp_path) -> None:
    with TaxBridge.from_settings(_config(tmp_path, backend="offline")) as bridge:
        doc = bridge.on_invoice(invoice("1", order()))
        assert (doc.flag, bridge.unposted()) == (FinalTaxFlag.OFFLINE, [])
        assert bridge.ping() is None
