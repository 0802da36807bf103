"""The PostgreSQL store beyond the contract: its settings, migrations under concurrent starts,
a lost connection, the pool under repost threads, and ``taxbridge store migrate``."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest
from conftest import invoice, order
from contract.test_store_contract import document, event

from taxbridge import FinalTaxFlag as F
from taxbridge import LocalEngine, RecordingBackend, TaxBridge
from taxbridge.cli import main
from taxbridge.config import default_config, load_config
from taxbridge.errors import ConcurrentChange, ConfigError, StoreError
from taxbridge.store._codec import QUEUE_COLUMNS, WRITTEN_DOCUMENT_COLUMNS
from taxbridge.store._pg_schema import MIGRATIONS
from taxbridge.store._pg_sql import statements
from taxbridge.store.base import Expected
from taxbridge.store.postgres import LATEST, PostgresSettings, PostgresStore


def test_a_url_in_the_config_selects_the_postgres_store(tmp_path: Path) -> None:
    path = tmp_path / "taxbridge.toml"
    text = (Path(__file__).parents[1] / "taxbridge" / "data" / "taxbridge.toml").read_text()
    sqlite = '[store]\nkind = "sqlite"                     # the embedded store (the default)\n'
    sqlite += 'path = "taxbridge.db"'
    assert sqlite in text
    path.write_text(text.replace(sqlite, '[store]\nurl = "postgresql://erp@db.example/tax"\n#'))
    config = load_config(path)
    assert config.store == "postgres"
    assert config.store_settings == PostgresSettings("postgresql://erp@db.example/tax")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"url": "mysql://db/x"}, "is not a postgresql://host/database URL"),
        ({"url": "postgresql://erp:s3cret@db/x"}, "holds a password"),
        ({"url": "postgresql://erp@db/x", "pool_min": 5, "pool_max": 2}, "is more than pool_max"),
        ({"url": "postgresql://erp@db/x", "pool_max": 0}, "is not a whole number >= 1"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        PostgresSettings(**settings)  # type: ignore[arg-type]
    assert "s3cret" not in str(caught.value)


def test_the_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = PostgresSettings("postgresql://erp@db/x", password_env="TAXBRIDGE_PG_PASSWORD")
    monkeypatch.delenv("TAXBRIDGE_PG_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="TAXBRIDGE_PG_PASSWORD is not set"):
        settings.password()
    monkeypatch.setenv("TAXBRIDGE_PG_PASSWORD", "s3cret")
    assert settings.password() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_migration_statements_split_at_semicolons_outside_function_bodies() -> None:
    sql = """
        CREATE TABLE a (x TEXT);
        CREATE FUNCTION f() RETURNS VOID LANGUAGE plpgsql AS $$
        BEGIN PERFORM 1; PERFORM 2; END
        $$;
        CREATE INDEX a_x ON a (x)
    """
    found = statements(sql)
    assert [s.split()[1] for s in found] == ["TABLE", "FUNCTION", "INDEX"]
    assert "PERFORM 1; PERFORM 2; END" in found[1]
    assert found[1].endswith("$$")


def test_text_postgresql_cannot_keep_is_refused_and_nothing_is_written(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as store:
        doc = attrs.evolve(document(flag=F.CALCULATED), last_log="nul \x00 here")
        with pytest.raises(StoreError, match="NUL"):
            store.save([doc], [event(doc)])
        assert store.get("A-1") is None


def test_the_same_write_sent_again_and_again_past_the_prepare_threshold_runs_each_time(
    postgres_url: str,
) -> None:
    """A write is one statement with one JSON parameter, which psycopg prepares once it has
    run a few times on a connection: every write after that is still made."""
    with PostgresStore(postgres_url, pool_max=1) as store:
        doc = document(flag=F.CALCULATED)
        for _ in range(8):
            store.save([doc], [event(doc)])
        assert len(store.events("A-1")) == 8
        assert store.get("A-1") == doc


def test_a_server_reading_backslashes_in_quotes_gets_parameters_not_literals(
    postgres_url: str,
) -> None:
    """With ``standard_conforming_strings`` off a write's text still arrives as written (the
    values travel in one JSON parameter, never as literals), and a refusal is still made."""
    url = postgres_url + "?options=-c%20standard_conforming_strings%3Doff"
    with PostgresStore(url) as store:
        awkward = "it's \\ \\' %s ? O'Brien"
        doc = attrs.evolve(document(flag=F.CALCULATED), last_log=awkward)
        store.save([doc], [event(doc, message=awkward)], expected=Expected(None))
        assert store.get("A-1") == doc
        with pytest.raises(ConcurrentChange, match="it read no document, it is now N"):
            store.save([doc], [event(doc)], expected=Expected(None))
        assert [e.message for e in store.events("A-1")] == [awkward]


def test_the_save_function_writes_every_column_of_documents_and_queue_entries(
    postgres_url: str,
) -> None:
    """``taxbridge_save`` reads rows into the tables' row types and upserts them: every column
    a later migration adds must be in the JSON written and in the function's update."""
    PostgresStore(postgres_url).close()
    with psycopg.connect(postgres_url) as conn:
        body = conn.execute("SELECT pg_get_functiondef('taxbridge_save'::regproc)").fetchone()
        assert body is not None

        def columns(table: str) -> list[str]:
            rows = conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                (table,),
            ).fetchall()
            return [row[0] for row in rows]

        assert set(columns("documents")) == set(WRITTEN_DOCUMENT_COLUMNS.split(", "))
        assert set(columns("unposted_queue")) == {
            *QUEUE_COLUMNS.split(", "),
            "settled_at",
            "outcome",
        }
        for table in ("documents", "unposted_queue"):
            missing = [
                name
                for name in columns(table)
                if name != "code" and f"{name} = EXCLUDED.{name}" not in body[0]
            ]
            assert missing == [], f"{table} columns the save function does not update"


@contextlib.contextmanager
def _database_at(url: str, version: int) -> Iterator[psycopg.Connection[Any]]:
    """A database as a server of schema ``version`` left it (migrations up to it applied)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        for number, sql in MIGRATIONS[:version]:
            for statement in statements(sql):
                conn.execute(statement.encode())
            conn.execute("INSERT INTO schema_migrations VALUES (%s, 'then')", (number,))
        yield conn


def test_a_store_of_schema_version_4_is_upgraded_in_place_and_keeps_its_documents(
    postgres_url: str,
) -> None:
    with _database_at(postgres_url, 4) as conn:
        conn.execute(
            "INSERT INTO documents (code, kind, stage, flag, erp_company, company_code, "
            "customer_code, document_type, document_date, currency, total_amount, "
            "total_taxable, total_exempt, total_tax, backend, last_log, updated_at) VALUES "
            "('A-9', 'invoice', 'invoice', 'Y', '01', 'DEFAULT', 'C001', 'SalesInvoice', "
            "'2026-11-20', 'USD', 10, 10, 0, '0.80', 'local', 'posted', '2026-11-20T08:00:00')"
        )
    with PostgresStore(postgres_url) as store:
        assert store.schema_version == LATEST
        assert store.head("A-9") is not None
        doc = document(flag=F.CALCULATED)
        store.save([doc], [event(doc)], expected=Expected(None))
        assert store.get("A-1") == doc
    with psycopg.connect(postgres_url) as conn:
        guard = conn.execute("SELECT to_regproc('taxbridge_guard')").fetchone()
    assert guard == (None,)


def test_a_store_of_schema_version_6_keeps_each_certificates_one_purchase_order(
    postgres_url: str,
) -> None:
    with _database_at(postgres_url, 6) as conn:
        for number, po in (("L-1", 'PO 7, "x"'), ("L-2", "")):
            conn.execute(
                "INSERT INTO certificates (id, customer_code, service, exempt_reason, regions, "
                "signed, exemption_no, single_use, po_number, status, filename, pulled_at) VALUES "
                "(%s, 'C1', 'local', 'G', 'NY', '2026-01-01', '', 1, %s, 'valid', '', 'then')",
                (number, po),
            )
    with PostgresStore(postgres_url) as store:
        assert store.schema_version == LATEST == 7
        assert [c.po_numbers for c in store.certificates("C1")] == [('PO 7, "x"',), ()]


def test_the_two_schemas_have_the_same_tables_columns_and_keys(
    postgres_url: str, tmp_path: Path
) -> None:
    """Two dialects, one shape: every table, column and primary key of the SQLite file is the
    PostgreSQL database's, and every upsert's key (``_statements.PRIMARY_KEYS``) is the
    table's primary key on both."""
    import sqlite3

    from taxbridge.store._statements import PRIMARY_KEYS
    from taxbridge.store.sqlite import SQLiteStore

    SQLiteStore(tmp_path / "shape.db").close()
    PostgresStore(postgres_url).close()
    lite: dict[str, tuple[set[str], tuple[str, ...]]] = {}
    with sqlite3.connect(tmp_path / "shape.db") as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for table in tables:
            info = conn.execute(f"PRAGMA table_info({table})").fetchall()
            keys = tuple(row[1] for row in sorted(info, key=lambda row: row[5]) if row[5])
            lite[table] = ({row[1] for row in info}, keys)
    pg: dict[str, tuple[set[str], tuple[str, ...]]] = {}
    with psycopg.connect(postgres_url) as conn:
        for table, column in conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        ):
            pg.setdefault(table, (set(), ()))[0].add(column)
        for table, columns in conn.execute(
            "SELECT c.relname, array_agg(a.attname ORDER BY array_position(i.indkey, a.attnum)) "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey) "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE i.indisprimary AND n.nspname = 'public' GROUP BY c.relname"
        ):
            pg[table] = (pg[table][0], tuple(columns))
    assert sorted(lite) == sorted(pg)
    assert {t: cols for t, (cols, _) in lite.items()} == {t: cols for t, (cols, _) in pg.items()}
    assert {t: keys for t, (_, keys) in lite.items()} == {t: keys for t, (_, keys) in pg.items()}
    for table, keys in PRIMARY_KEYS.items():
        assert lite[table][1] == keys, table


def test_servers_starting_together_migrate_once(postgres_url: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            PostgresStore(postgres_url, pool_max=2).close()
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with psycopg.connect(postgres_url) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == list(range(1, LATEST + 1))


def test_a_newer_schema_and_a_missing_store_are_refused(postgres_url: str) -> None:
    with pytest.raises(StoreError, match="no taxbridge store in this database"):
        PostgresStore(postgres_url, create=False)
    PostgresStore(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'later')")
    with pytest.raises(StoreError, match="schema version 99 is newer"):
        PostgresStore(postgres_url)


def _terminate_others(url: str) -> None:
    """What a server restart or an administrator does to every other connection."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid != pg_backend_pid()"
        )


def test_pooled_connections_killed_between_calls_are_replaced_not_failed_once(
    postgres_url: str,
) -> None:
    with PostgresStore(postgres_url, pool_min=2, pool_max=2) as store:
        bridge = TaxBridge(default_config(), RecordingBackend(LocalEngine()), store)
        bridge.on_invoice(invoice("7001", order("7001")))
        _terminate_others(postgres_url)
        for number in ("7002", "7003", "7004"):  # each pooled connection was dead
            assert bridge.on_invoice(invoice(number, order(number))).flag is F.POSTED
        assert len(store.get("A-7002").lines) == 1  # type: ignore[union-attr]


def test_a_wrong_password_is_said_at_once_not_after_the_pool_times_out(
    postgres_url: str,
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        hba = admin.execute("SHOW hba_file").fetchone()[0]  # type: ignore[index]
        known = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = 'tb_password_user'")
        if known.fetchone() is None:
            admin.execute("CREATE ROLE tb_password_user LOGIN PASSWORD 'the-right-one'")
        rules = Path(hba).read_text()
        if "tb_password_user" not in rules:
            rule = "host all tb_password_user 127.0.0.1/32 scram-sha-256\n"
            Path(hba).write_text(rule + rules)
        admin.execute("SELECT pg_reload_conf()")
    url = postgres_url.replace("://taxbridge@", "://tb_password_user@")
    with pytest.raises(StoreError) as caught:
        PostgresStore(url, password="a-wrong-one", timeout=30)
    assert "password authentication failed" in str(caught.value)
    assert "pool" not in str(caught.value)
    assert "a-wrong-one" not in str(caught.value)
    assert not caught.value.busy  # trying again will not help
    psycopg.connect(url, password="the-right-one").close()  # the rule asks for a password


def test_a_repost_of_8_posting_threads_needs_one_connection_and_posts_each_document_once(
    postgres_url: str,
) -> None:
    engine = RecordingBackend(LocalEngine())
    with PostgresStore(postgres_url, pool_max=1) as store:  # the run reads and writes from one
        bridge = TaxBridge(default_config(), engine, store)
        engine.outage = True
        codes = [bridge.on_invoice(invoice(str(n), order(str(n)))).code for n in range(1, 41)]
        engine.outage = False
        summary = bridge.repost(concurrency=8)
        assert sorted(summary.reposted) == sorted(codes)
        assert all(engine.commit_counts[code] == 1 for code in codes)
        assert store.queue() == []
        assert [entry.outcome for entry in store.settled()] == ["R"] * 40


def test_store_migrate_copies_a_store_checked(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "demo.db")
    assert main(["demo", "--db", db]) == 0
    capsys.readouterr()
    assert main(["store", "migrate", "--from", f"sqlite:{db}", "--to", postgres_url]) == 0
    out = capsys.readouterr().out
    assert "copied 100 documents (N=45, R=4, U=1, X=8, Y=41, blank=1; tax 1337.45)" in out
    assert "counts and tax totals checked equal" in out
    with PostgresStore(postgres_url) as copied:
        assert [e.code for e in copied.queue()] == ["A-9049"]
        assert copied.allocation("B-5001") is not None
        assert copied.events("A-9001")
        bridge = TaxBridge(default_config(), RecordingBackend(LocalEngine()), copied)
        assert bridge.state_report("2026-11").total.tax == Decimal("666.94")
        assert bridge.journal("2026-11").total_tax == Decimal("666.94")
        assert bridge.exemptions() == []
    assert main(["store", "migrate", "--from", db, "--to", postgres_url]) == 3
    assert "holds documents already" in capsys.readouterr().err
    assert (
        main(["store", "migrate", "--from", str(tmp_path / "none.db"), "--to", postgres_url]) == 3
    )


def test_a_journal_posted_on_one_server_is_locked_on_another(postgres_url: str) -> None:
    first = PostgresStore(postgres_url)
    second = PostgresStore(postgres_url)
    try:
        config = default_config()
        import attrs

        from taxbridge.config.sections import GLAccount

        config = attrs.evolve(config, gl_accounts=(GLAccount("NY", "2310-NY", "1190"),))
        one = TaxBridge(config, RecordingBackend(LocalEngine()), first)
        two = TaxBridge(config, RecordingBackend(LocalEngine()), second)
        one.on_invoice(invoice("7101", order("7101")))
        one.generate_journal("2026-11")
        two.post_journal("2026-11", user="controller")
        from taxbridge.errors import JournalError

        with pytest.raises(JournalError, match="locked"):
            one.generate_journal("2026-11")
        assert first.journal("*:2026-11").posted_at is not None  # type: ignore[union-attr]
    finally:
        first.close()
        second.close()


def test_dates_and_times_round_trip_exactly(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as store:
        bridge = TaxBridge(
            default_config(),
            RecordingBackend(LocalEngine()),
            store,
            clock=lambda: dt.datetime(2026, 11, 20, 23, 59, 59, 123456, tzinfo=dt.UTC),
        )
        posted = bridge.on_invoice(invoice("7201", order("7201")))
        assert store.get("A-7201") == posted


def test_store_migrate_carries_exempt_customers_across(tmp_path: Path, postgres_url: str) -> None:
    from taxbridge.models import Certificate, CustomerCard, CustomerNote
    from taxbridge.store import SQLiteStore
    from taxbridge.store.copy import copy_store

    at = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
    certificate = Certificate("C1", "G", ("NY",), signed="2026-01-01", id="L-1", pdf=b"%PDF")
    card = CustomerCard("C1", "DEFAULT", "Acme", "1 Main St", "New York", "NY", "10118")
    note = CustomerNote("C1", "TXEEXP", dt.date(2026, 11, 20), "reminder sent", at)
    with SQLiteStore(tmp_path / "tb.db") as source, PostgresStore(postgres_url) as target:
        source.save_certificates([certificate], service="local", at=at)
        source.use_certificate("L-1", "O-1", at)
        source.save_customer_card(card, at, sent=True)
        source.add_customer_note(note)
        copy_store(source, target)
        assert target.certificates() == [certificate]
        assert target.certificate_uses() == {"L-1": "O-1"}
        assert target.customer_cards() == [(card, card)]
        assert target.customer_notes() == [note]


def test_a_read_of_several_statements_sees_one_snapshot(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as store:
        TaxBridge(default_config(), RecordingBackend(LocalEngine()), store).on_entry(order("7301"))
        check = "SELECT last_log FROM documents WHERE code = ?"
        with store._read() as conn:
            before = conn.execute(check, ("O-7301",)).fetchone()
            with psycopg.connect(postgres_url, autocommit=True) as other:  # another server
                other.execute("UPDATE documents SET last_log = 'changed' WHERE code = 'O-7301'")
            assert conn.execute(check, ("O-7301",)).fetchone() == before
        assert store.get("O-7301").last_log == "changed"  # type: ignore[union-attr]


def test_the_driver_and_its_pool_are_silent_until_the_host_configures_logging() -> None:
    script = (
        "import logging, taxbridge.store.postgres\n"
        "logging.getLogger('psycopg.pool').warning('error connecting in pool-1')\n"
        "logging.getLogger('psycopg').error('connection lost')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert (done.stdout, done.stderr) == ("", "")


def test_a_stopped_server_is_one_line_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "taxbridge.toml"
    companies = '[[companies]]\nerp_company = "01"\ncompany_code = "DEFAULT"\n'
    store = f'[store]\nurl = "postgresql://taxbridge@127.0.0.1:{port}/tax"\ntimeout = 20\n'
    config.write_text(f'{companies}\n[[nexus]]\nregion = "NY"\n\n{store}')
    assert main(["unposted", "--config", str(config)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "cannot connect" in err
    assert "pool" not in err
