"""No credential reaches a log line, a stored text or the command line's output, however the
run fails: a credential that cannot go in a header is refused when it is read, and no error
text carries a header value."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import structlog
from conftest import FAKE_ACCOUNT, FAKE_KEY, invoice, order
from structlog.testing import capture_logs

from taxbridge import FinalTaxFlag, SQLiteStore, TaxBridge
from taxbridge.backends.avatax import AvaTaxBackend, AvaTaxSettings, Secret
from taxbridge.cli import main
from taxbridge.config import default_config, parse_config_text
from taxbridge.errors import ConfigError
from taxbridge.testing.fake_avatax import FakeAvaTax, serve

SECRET = "TOKSECRET-7f3a9c"

CONFIG = """
[store]
path = "{db}"

[backend]
kind = "avatax"
base_url = "{url}"
token_env = "TAXBRIDGE_TEST_TOKEN"

[[companies]]
erp_company = "01"
company_code = "DEFAULT"

[[nexus]]
region = "NY"
"""


def _everything_stored(path: Path) -> list[str]:
    with SQLiteStore(path, create=False) as store:
        texts = []
        for doc in store.documents():
            texts.append(doc.last_log)
            texts += [event.message for event in store.events(doc.code)]
        texts += [entry.last_error_message for entry in store.queue()]
    return texts


@pytest.mark.parametrize("token", [f"{SECRET}\nmore", f"{SECRET}\r\nX-Evil: 1", f"Bear {SECRET}"])
def test_a_credential_that_cannot_go_in_a_header_is_refused_when_read_and_never_shown(
    token: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("TAXBRIDGE_TEST_TOKEN", f"  {token} ")
    path = tmp_path / "taxbridge.toml"
    path.write_text(CONFIG.format(db=tmp_path / "t.db", url="http://127.0.0.1:9"))
    config = parse_config_text(path.read_text(), source="t.toml")
    with pytest.raises(ConfigError, match="TAXBRIDGE_TEST_TOKEN") as caught:
        TaxBridge.from_settings(config)
    assert SECRET not in str(caught.value)
    assert main(["ping", "--config", str(path)]) == 3
    assert main(["repost", "--config", str(path)]) == 3
    out = capsys.readouterr()
    assert "cannot go in an HTTP header" in out.err
    assert SECRET not in out.out + out.err
    with pytest.raises(ConfigError) as caught:
        Secret(token)
    assert SECRET not in str(caught.value)


def test_a_header_value_in_a_failing_run_reaches_no_log_no_stored_text_no_output(
    tmp_path: Path, capsys
) -> None:
    """A client brought by the user carries a header h11 refuses, quoting it: the run fails,
    and the value is nowhere."""
    db = tmp_path / "t.db"
    fake = FakeAvaTax(account_id=FAKE_ACCOUNT, license_key=FAKE_KEY)
    basic = base64.b64encode(f"{FAKE_ACCOUNT}:{FAKE_KEY}".encode()).decode()
    structlog.reset_defaults()
    with serve(fake) as url, capture_logs() as logs:
        client = httpx.Client(headers={"X-Trace": f"Bearer {SECRET}\nX-Evil: 1"})
        settings = AvaTaxSettings(
            base_url=url,
            account_id=FAKE_ACCOUNT,
            license_key=Secret(FAKE_KEY),
            log_bodies=True,
            circuit_failures=1_000_000,
        )
        backend = AvaTaxBackend(settings, client=client, sleep=lambda seconds: None)
        with TaxBridge(default_config(str(db)), backend, SQLiteStore(db)) as bridge:
            doc = bridge.on_invoice(invoice("1", order()))
            assert doc.flag is FinalTaxFlag.FAILED
            assert bridge.repost().failed == ("A-1",)
        client.close()
    assert main(["unposted", "--db", str(db)]) == 0
    assert main(["inquiry", "A-1", "--db", str(db)]) == 0
    out = capsys.readouterr()
    seen = [repr(entry) for entry in logs] + _everything_stored(db) + [out.out, out.err]
    assert any("broke the HTTP protocol" in text for text in seen)
    for text in seen:
        assert SECRET not in text, text
        assert FAKE_KEY not in text, text
        assert basic not in text, text


# -- a database password in a URL -------------------------------------------------------------

DB_SECRET = "Pg$ecret-4e1b"
"""The sentinel; its percent-encoded form must not be shown either."""

URLS_WITH_A_PASSWORD = [
    f"postgresql://taxbridge:{quote(DB_SECRET, safe='')}@127.0.0.1:5432/erp",
    f"postgresql://taxbridge@127.0.0.1:5432/erp?password={quote(DB_SECRET, safe='')}",
    f"postgresql://taxbridge@127.0.0.1/erp?sslmode=disable&PASSWORD={DB_SECRET}",
    f"postgresql://taxbridge@127.0.0.1/erp?options={quote(f'-c password={DB_SECRET}', safe='')}",
]


def _no_secret(text: str) -> None:
    assert DB_SECRET not in text
    assert quote(DB_SECRET, safe="") not in text
    assert quote(DB_SECRET) not in text


@pytest.mark.parametrize("url", URLS_WITH_A_PASSWORD)
def test_a_password_anywhere_in_a_database_url_is_refused_and_never_shown(
    url: str, tmp_path: Path, capsys
) -> None:
    from taxbridge.store.postgres import PostgresSettings

    with pytest.raises(ConfigError) as caught:
        PostgresSettings(url)
    assert "holds a password" in str(caught.value)
    _no_secret(f"{caught.value} {caught.value.value!r} {caught.value!r}")

    text = f'[store]\nurl = "{url}"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text, source="t.toml", base=tmp_path)
    _no_secret(f"{caught.value} {caught.value.value!r}")

    source = tmp_path / "from.db"
    SQLiteStore(source).close()
    for argv in (
        ["store", "migrate", "--from", str(source), "--to", url],
        ["store", "migrate", "--from", url, "--to", str(tmp_path / "to.db")],
    ):
        assert main(argv) == 3
        out, err = capsys.readouterr()
        assert "holds a password" in err
        _no_secret(out + err)


@pytest.mark.parametrize("url", URLS_WITH_A_PASSWORD)
def test_a_store_opened_in_code_with_a_password_in_its_url_is_refused_unconnected(
    url: str,
) -> None:
    pytest.importorskip("psycopg")
    from taxbridge.errors import StoreError
    from taxbridge.store.postgres import PostgresStore

    with pytest.raises(StoreError, match="holds a password") as caught:
        PostgresStore(url, timeout=1)
    _no_secret(str(caught.value))


def test_a_database_url_is_shown_without_anything_that_can_carry_a_secret() -> None:
    from taxbridge.store.urls import shown_url

    assert [shown_url(url) for url in URLS_WITH_A_PASSWORD] == [
        "postgresql://taxbridge@127.0.0.1:5432/erp",
        "postgresql://taxbridge@127.0.0.1:5432/erp",
        "postgresql://taxbridge@127.0.0.1/erp?sslmode=disable",
        "postgresql://taxbridge@127.0.0.1/erp",
    ]
    assert shown_url("postgresql://[::1]:5433/erp") == "postgresql://[::1]:5433/erp"
    assert shown_url("postgresql://u:pw@host:99999/erp") == "(a URL that cannot be read)"
