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


def _installed(tmp_path: Path, group: str, name: str, value: str) -> Path:
    """A distribution on ``sys.path`` that registers one entry point, as ``pip install`` of a
    third party's package leaves it (its ``*.dist-info`` with ``entry_points.txt``)."""
    info = tmp_path / "site" / "acme_tax_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-tax-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {value}\n")
    return tmp_path / "site"


def test_a_third_party_engine_is_found_by_its_entry_point(monkeypatch, tmp_path) -> None:
    """No edit of the package: the engine's distribution registers it under taxbridge.engines."""
    monkeypatch.syspath_prepend(
        str(_installed(tmp_path, "taxbridge.engines", "echo", "echo_backend"))
    )
    config = _config(tmp_path, backend="echo", extra='name = "echo-engine"')
    with TaxBridge.from_settings(config) as bridge:
        posted = bridge.on_invoice(invoice("1", order()))
    assert (posted.flag, posted.backend) == (FinalTaxFlag.POSTED, "echo-engine")
    with pytest.raises(
        ConfigError, match="'nope' is not one of 'local', 'offline', 'avatax', 'echo'"
    ):
        _config(tmp_path, backend="nope")


def test_a_third_party_store_is_found_by_its_entry_point(monkeypatch, tmp_path) -> None:
    site = _installed(tmp_path, "taxbridge.stores", "sqlite-too", "taxbridge.store.sqlite:PLUGIN")
    monkeypatch.syspath_prepend(str(site))
    with TaxBridge.from_settings(_config(tmp_path, store="sqlite-too")) as bridge:
        bridge.on_invoice(invoice("1", order()))
    assert (tmp_path / "t.db").exists()


def test_an_entry_point_that_cannot_be_loaded_is_a_config_error_naming_it(
    monkeypatch, tmp_path
) -> None:
    site = _installed(tmp_path, "taxbridge.engines", "broken", "no_such_module_here")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ConfigError, match="'broken': the plugin 'no_such_module_here' cannot be"):
        _config(tmp_path, backend="broken")


def test_a_built_in_kind_cannot_be_replaced_by_an_entry_point(monkeypatch, tmp_path) -> None:
    site = _installed(tmp_path, "taxbridge.engines", "local", "echo_backend")
    monkeypatch.syspath_prepend(str(site))
    with TaxBridge.from_settings(_config(tmp_path)) as bridge:
        assert bridge.backend.name == "local"


def test_reading_the_config_imports_no_engine_and_no_store() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, taxbridge.config; print(sorted(m for m in sys.modules "
        "if m.startswith(('taxbridge.backends', 'taxbridge.store'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


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
