"""The SQLite store: round trips, schema versions, and all-or-nothing writes."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from conftest import T0, invoice, line, order

from taxbridge import FinalTaxFlag, LocalEngine, RecordingBackend, SQLiteStore, TaxBridge, factory
from taxbridge.cli import main
from taxbridge.config import default_config
from taxbridge.errors import ConfigError, InvalidFieldError, StoreError
from taxbridge.models import DocumentEvent, Stage
from taxbridge.rates import shipped_rates
from taxbridge.store import ReferenceData
from taxbridge.store._sqlite_file import migrate
from taxbridge.store._sqlite_schema import MIGRATIONS


def test_a_document_round_trips_with_lines_breakdown_and_request(bridge, store) -> None:
    posted = bridge.on_invoice(invoice("1", order()))
    assert store.get("A-1") == posted
    assert store.get("A-1").request == posted.request


def test_reopening_a_file_keeps_documents_and_applies_no_migration_twice(bridge, store) -> None:
    bridge.on_invoice(invoice("1", order()))
    path = store.path
    store.close()
    with SQLiteStore(path) as reopened:
        assert reopened.schema_version == MIGRATIONS[-1][0]
        assert reopened.get("A-1") is not None
        rows = reopened._conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()
        assert rows[0] == len(MIGRATIONS)


def test_a_document_is_read_from_one_commit_while_another_process_rewrites_it(
    bridge, store
) -> None:
    entered = bridge.on_entry(order(lines=(line(1, "100.00"), line(2, "20.00"))))
    rewritten: list[str] = []
    # another process's connection
    with contextlib.closing(sqlite3.connect(store.path, isolation_level=None)) as other:

        def between_statements(sql: str) -> None:
            # the lines are read after the document row: another writer commits in between
            if "FROM document_lines" in sql and not rewritten:
                rewritten.append(sql)
                other.execute("UPDATE document_lines SET amount = '999.00' WHERE code = 'O-1001'")

        store._conn.set_trace_callback(between_statements)
        try:
            read = store.get("O-1001")
        finally:
            store._conn.set_trace_callback(None)
    assert rewritten, "the lines were never read"
    assert read == entered
    assert [row.amount for row in store.get("O-1001").lines] == [Decimal("999.00")] * 2


def test_a_failed_read_ends_its_snapshot_and_names_the_file(bridge, store) -> None:
    bridge.on_entry(order())
    with (
        pytest.raises(StoreError, match="no such table: nowhere") as caught,
        store._read() as conn,
    ):
        conn.execute("SELECT * FROM nowhere")
    assert caught.value.path == str(store.path)
    assert not store._conn.in_transaction
    assert bridge.on_pick(order()).code == "O-1001"  # the store still writes


def test_a_read_inside_a_write_sees_what_the_write_did_so_far(bridge, store) -> None:
    bridge.on_entry(order())
    with store._write() as conn:
        conn.execute("UPDATE documents SET last_log = 'mid-write' WHERE code = 'O-1001'")
        assert store.get("O-1001").last_log == "mid-write"
        assert store.head("O-1001") is not None
    assert store.get("O-1001").last_log == "mid-write"


def test_a_failed_write_leaves_nothing_half_written(bridge, store) -> None:
    doc = bridge.on_invoice(invoice("1", order()))
    changed = attrs.evolve(doc, flag=FinalTaxFlag.REPOSTED, last_log="half")
    now = T0
    # message NULL violates NOT NULL: the event insert fails after the document was written
    bad_event = DocumentEvent("A-1", now, Stage.REPOST, None, FinalTaxFlag.REPOSTED, "x", None)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="NOT NULL constraint failed") as caught:
        store.save([changed], [bad_event])
    assert caught.value.path == str(store.path)
    assert store.get("A-1") == doc
    assert len(store.events("A-1")) == 1


@pytest.mark.parametrize(
    ("damage", "field", "value"),
    [
        (lambda data: data["lines"][0].__setitem__(1, "12,99"), "TaxLine.amount", "12,99"),
        (lambda data: data["lines"][0].__setitem__(2, "-1"), "TaxLine.quantity", Decimal(-1)),
        (lambda data: data.__setitem__("date", "20.11.2026"), "TaxRequest.date", "20.11.2026"),
        (lambda data: data.__setitem__("discount", "NaN"), "TaxRequest.discount", None),
    ],
)
def test_a_stored_request_damaged_by_hand_is_refused_naming_the_field(
    bridge, store, damage, field: str, value: object
) -> None:
    bridge.on_invoice(invoice("1", order()))
    (text,) = store._conn.execute(
        "SELECT request_json FROM documents WHERE code = 'A-1'"
    ).fetchone()
    data = json.loads(text)
    damage(data)
    with store._conn:
        store._conn.execute(
            "UPDATE documents SET request_json = ? WHERE code = 'A-1'", (json.dumps(data),)
        )
    with pytest.raises(InvalidFieldError) as caught:
        store.get("A-1")
    assert f"{caught.value.owner}.{caught.value.field}" == field
    if value is not None:
        assert caught.value.value == value


def test_a_stage_that_recalculates_the_same_lines_leaves_their_rows_alone(bridge, store) -> None:
    with sqlite3.connect(store.path) as watch:
        watch.executescript(
            "CREATE TABLE rewrites (code TEXT);"
            "CREATE TRIGGER count_rewrites AFTER DELETE ON document_lines "
            "BEGIN INSERT INTO rewrites VALUES (old.code); END;"
        )
    placed = order(lines=(line(1, "100.00"), line(2, "20.00")))
    bridge.on_entry(placed)
    bridge.on_pick(placed)
    bridge.on_despatch(placed)
    rewrites = "SELECT COUNT(*) FROM rewrites WHERE code = 'O-1001'"
    assert store._conn.execute(rewrites).fetchone()[0] == 0
    short_picked = order(lines=(line(1, "100.00"), line(2, "10.00")))
    picked = bridge.on_pick(short_picked)
    assert store._conn.execute(rewrites).fetchone()[0] == 2
    assert store.get("O-1001") == picked
    assert [line.amount for line in picked.lines] == [Decimal("100.00"), Decimal("10.00")]


def test_lines_written_before_their_digest_was_kept_are_rewritten_whole(bridge, store) -> None:
    placed = order(lines=(line(1, "100.00"), line(2, "20.00")))
    entered = bridge.on_entry(placed)
    with sqlite3.connect(store.path) as raw:
        raw.execute("UPDATE documents SET lines_digest = NULL")
        raw.execute("DELETE FROM document_lines WHERE seq = 1")
    picked = bridge.on_pick(placed)
    assert picked.lines == entered.lines
    assert store.get("O-1001") == picked


def test_replacing_offline_rates_is_atomic(store) -> None:
    store.replace_reference(ReferenceData(rates=shipped_rates().only({"NY"})))
    before = store.offline_rates()

    class Boom:
        def __iter__(self):
            yield from shipped_rates().only({"CA"})
            raise RuntimeError("download broke halfway")

    with pytest.raises(RuntimeError):
        store.replace_reference(ReferenceData(rates=Boom()))  # type: ignore[arg-type]
    assert store.offline_rates().to_csv() == before.to_csv()
    assert store.offline_rates().regions == {"NY"}


def test_u_and_its_queue_entry_are_written_together(bridge, engine, store) -> None:
    engine.outage = True
    bridge.on_invoice(invoice("2", order()))
    assert store.get("A-2").flag is FinalTaxFlag.FAILED
    assert [entry.code for entry in store.queue()] == ["A-2"]


class TestFailures:
    """Every store failure is one StoreError naming the file; nothing is lost or half-written."""

    def test_a_file_that_is_not_a_store_is_refused_naming_it(self, tmp_path) -> None:
        text = tmp_path / "notes.txt"
        text.write_text("this is not a database, just some text that is long enough\n" * 20)
        with pytest.raises(StoreError, match="file is not a database") as caught:
            SQLiteStore(text)
        assert caught.value.path == str(text)
        folder = tmp_path / "a-folder"
        folder.mkdir()
        with pytest.raises(StoreError, match="cannot open the store") as caught:
            SQLiteStore(folder)
        assert str(folder) in str(caught.value)

    @pytest.mark.parametrize("path", ["", "   ", "tax\x00.db"])
    def test_an_empty_or_nul_path_is_refused(self, path: str) -> None:
        with pytest.raises(StoreError, match="empty or holds a NUL"):
            SQLiteStore(path)
        from taxbridge.store import SQLiteSettings

        with pytest.raises(ConfigError, match="SQLiteSettings.path"):
            SQLiteSettings(path)

    def test_a_missing_store_is_created_only_when_asked(self, tmp_path) -> None:
        missing = tmp_path / "missing.db"
        with pytest.raises(StoreError, match="no store here") as caught:
            SQLiteStore(missing, create=False)
        assert caught.value.path == str(missing)
        assert not missing.exists()
        SQLiteStore(missing).close()
        SQLiteStore(missing, create=False).close()

    def test_a_schema_newer_than_the_code_is_refused_and_left_alone(self, tmp_path) -> None:
        path = tmp_path / "newer.db"
        SQLiteStore(path).close()
        raw = sqlite3.connect(path)
        raw.execute("INSERT INTO schema_migrations VALUES (99, '2030-01-01')")
        raw.commit()
        raw.close()
        before = path.read_bytes()
        with pytest.raises(StoreError, match="schema version 99 is newer than this taxbridge"):
            SQLiteStore(path)
        assert path.read_bytes() == before

    def test_a_store_that_cannot_be_written_is_refused_when_opened(self, tmp_path) -> None:
        path = tmp_path / "t.db"
        SQLiteStore(path).close()
        read_only = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        with pytest.raises(StoreError, match="readonly") as caught:
            migrate(read_only, path)
        assert caught.value.path == str(path)
        read_only.close()
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the file
        with pytest.raises(StoreError, match="locked") as caught:
            SQLiteStore(path, timeout=0.05)
        assert caught.value.busy
        holder.execute("ROLLBACK")
        holder.close()

    def test_a_save_that_fails_after_the_engine_committed_says_so_and_is_adopted_later(
        self, tmp_path
    ) -> None:
        path = tmp_path / "t.db"
        engine = RecordingBackend(LocalEngine())
        with SQLiteStore(path, timeout=0.05) as store:
            bridge = TaxBridge(default_config(), engine, store)
            bridge.on_invoice(invoice("0", order("1000")))  # the store has its engine's books
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            with pytest.raises(StoreError) as caught:
                bridge.on_invoice(invoice("1", order()))
            holder.execute("ROLLBACK")
            holder.close()
            assert "A-1 is committed at local (tax 8.88) but could not be stored" in str(
                caught.value
            )
            assert "the engine's document is adopted, not posted twice" in str(caught.value)
            assert store.get("A-1") is None
            calls = engine.calls
            again = bridge.on_invoice(invoice("1", order()))
            assert (engine.calls, engine.lookups) == (calls, ["A-1"])  # looked up first
        assert again.flag is FinalTaxFlag.POSTED
        assert again.last_log.startswith("found already committed at local")
        assert engine.commit_counts["A-1"] == 1


def _queued_store(path: Path, count: int) -> list[str]:
    """``count`` invoices, every other one U with its queue entry."""
    engine = RecordingBackend(LocalEngine())
    with SQLiteStore(path) as source:
        bridge = TaxBridge(default_config(), engine, source)
        codes = []
        for n in range(count):
            engine.outage = n % 2 == 0
            codes.append(bridge.on_invoice(invoice(str(n), order(str(5000 + n)))).code)
    return codes


def test_an_interrupted_copy_is_refused_until_run_again_and_then_whole(
    tmp_path: Path, store_spec: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Killed after two batches: the target holds documents but is marked unfinished, every
    document it holds has its queue entry, no bridge opens it, and the same migrate again
    finishes it."""
    from conftest import open_store

    from taxbridge.store import copy

    source = tmp_path / "source.db"
    codes = _queued_store(source, 23)
    monkeypatch.setattr(copy, "BATCH", 5)

    def killed(done: int, total: int) -> None:
        if done >= 10:
            raise KeyboardInterrupt

    with (
        SQLiteStore(source) as from_,
        open_store(store_spec) as to,
        pytest.raises(KeyboardInterrupt),
    ):
        copy.copy_store(from_, to, source_name="source.db", progress=killed)
    with pytest.raises(StoreError, match="unfinished copy of source.db") as caught:
        open_store(store_spec)
    assert "run the same migrate again to finish it" in str(caught.value)
    half = factory.open_store(store_spec, create=False, unfinished_ok=True)
    try:
        held = half.document_codes()
        assert 0 < len(held) < len(codes)
        failed = [code for code in held if half.get(code).flag is FinalTaxFlag.FAILED]
        assert sorted(entry.code for entry in half.queue()) == sorted(failed)
    finally:
        half.close()

    assert main(["store", "migrate", "--from", str(source), "--to", store_spec]) == 0
    assert "finished the interrupted copy: copied 23 documents" in capsys.readouterr().out
    with open_store(store_spec) as copied:
        assert copied.document_codes() == sorted(codes)
        assert len(copied.queue()) == 12
        assert copied.events(codes[0])
    assert main(["store", "migrate", "--from", str(source), "--to", store_spec]) == 3
    err = capsys.readouterr().err
    assert "holds documents already and is no unfinished copy" in err
    assert (store_spec if not store_spec.startswith("postgres") else "postgresql://") in err


def test_migrate_carries_every_file_registry_so_an_own_export_stays_recognised(
    tmp_path: Path, store_spec: str
) -> None:
    """The customer files' digests too: a file exported before the move, validated after it,
    is still known as our own export."""
    from conftest import open_store

    from taxbridge.files.service import EXPORT_KINDS

    source = tmp_path / "source.db"
    _queued_store(source, 3)
    with SQLiteStore(source) as store:
        for kind in EXPORT_KINDS:
            store.record_exports(kind, {f"{kind}-key": "value"}, T0)
    factory.migrate_store(default_config(), str(source), store_spec)
    with open_store(store_spec) as copied:
        for kind in EXPORT_KINDS:
            assert copied.exports(kind) == {f"{kind}-key": "value"}, kind


class _InterruptedAfterBegin:
    """A connection on which Ctrl-C lands the instant a BEGIN returns (once), as it can when
    the signal arrives while SQLite is taking its lock."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.armed = True

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        cursor = self.conn.execute(sql, *args)
        if self.armed and sql.startswith("BEGIN"):
            self.armed = False
            raise KeyboardInterrupt
        return cursor

    def __getattr__(self, name: str) -> object:
        return getattr(self.conn, name)


@pytest.mark.parametrize("call", ["write", "read"])
def test_ctrl_c_just_after_begin_leaves_no_transaction_open(tmp_path: Path, call: str) -> None:
    """A transaction left open would refuse every later write of the connection: a stopped
    repost run could then neither record what it sent nor give back what it had claimed."""
    with SQLiteStore(tmp_path / "t.db") as store:
        real = store._conn
        store._conn = _InterruptedAfterBegin(real)  # type: ignore[assignment]
        write, read = (lambda: store.set_meta("k", "v")), (lambda: store.get_many(["A-1"]))
        action = write if call == "write" else read
        with pytest.raises(KeyboardInterrupt):
            action()
        assert not real.in_transaction
        store.set_meta("k", "after")
        assert store.get_meta("k") == "after"


_OLD_CERTIFICATE = (
    "INSERT INTO certificates (id, customer_code, service, exempt_reason, regions, signed, "
    "exemption_no, single_use, po_number, status, filename, pulled_at) VALUES "
    "(?, 'C1', 'local', 'G', 'NY', '2026-01-01', '', 1, ?, 'valid', '', '2026-01-01T00:00:00')"
)


def test_a_version_10_file_keeps_each_certificates_one_purchase_order(tmp_path: Path) -> None:
    """Version 11 keeps every PO of a certificate; the one a v10 file held is the first."""
    path = tmp_path / "v10.db"
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)"
        )
        for version, sql in MIGRATIONS[:10]:
            for statement in sql.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, 'then')", (version,))
        conn.executemany(_OLD_CERTIFICATE, [("L-1", 'PO 7, "x"'), ("L-2", "")])
    with SQLiteStore(path) as store:
        assert store.schema_version == 11
        assert [c.po_numbers for c in store.certificates("C1")] == [('PO 7, "x"',), ()]
