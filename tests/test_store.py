"""The SQLite store: round trips, schema versions, and all-or-nothing writes."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest
from conftest import invoice, order

from taxbridge import FinalTaxFlag, SQLiteStore
from taxbridge.errors import StoreError
from taxbridge.models import DocumentEvent, Stage
from taxbridge.rates import shipped_rates
from taxbridge.store import ReferenceData
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


def test_a_failed_write_leaves_nothing_half_written(bridge, store) -> None:
    doc = bridge.on_invoice(invoice("1", order()))
    changed = attrs.evolve(doc, flag=FinalTaxFlag.REPOSTED, last_log="half")
    now = dt.datetime.now(dt.UTC)
    # message NULL violates NOT NULL: the event insert fails after the document was written
    bad_event = DocumentEvent("A-1", now, Stage.REPOST, None, FinalTaxFlag.REPOSTED, "x", None)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="NOT NULL constraint failed") as caught:
        store.save([changed], [bad_event])
    assert caught.value.path == str(store.path)
    assert store.get("A-1") == doc
    assert len(store.events("A-1")) == 1


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
