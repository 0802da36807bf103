"""Month-end: the workfile, GL journals, sales-vs-GL and engine-vs-store reconciliations, the
state report and voids, on real SQLite files and on both engines."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from conftest import (
    CHICAGO,
    FAKE_ACCOUNT,
    FAKE_KEY,
    NYC,
    PORTLAND,
    WAREHOUSE,
    fake_avatax,
    line,
)

from taxbridge import FinalTaxFlag as F
from taxbridge import LocalEngine, OfflineTable, RecordingBackend, SQLiteStore, TaxBridge
from taxbridge.accounting import Action, Difference, FindingKind
from taxbridge.config import BridgeConfig, default_config
from taxbridge.config.sections import CompanyMapping, GLAccount
from taxbridge.errors import (
    AccountMissingError,
    DocumentRejected,
    InvalidFieldError,
    InvalidTransition,
    JournalError,
)
from taxbridge.models import (
    Address,
    Customer,
    DateRange,
    DocumentStatus,
    DocumentType,
    Invoice,
    JournalStatus,
    Order,
)
from taxbridge.money import ZERO_CENTS
from taxbridge.rates import RateTable, shipped_rates
from taxbridge.testing.fake_avatax import FakeAvaTax

NOVEMBER = DateRange.period("2026-11")
GL = (
    GLAccount("NY", "2310-NY", "1190"),
    GLAccount("IL", "2310-IL", "1190"),
    GLAccount("PA", "2310-PA", "1190"),
)


def config(**changes: Any) -> BridgeConfig:
    return attrs.evolve(default_config(), **{"gl_accounts": GL, **changes})


def stale_offline() -> OfflineTable:
    """An offline table whose New York City rate is out of date (8.375% instead of 8.875%):
    a U invoice carries its figure, and the repost gives the engine's."""
    text = (
        shipped_rates()
        .to_csv()
        .replace("0.045000,0.045000,0.088750,0.088750", "0.040000,0.040000,0.083750,0.083750")
    )
    return OfflineTable(RateTable.from_csv(text))


def sale(number: str, day: int, *, ship_to: Address = NYC, amount: str = "100.00") -> Invoice:
    when = dt.date(2026, 11, day)
    order = Order(
        number=number,
        company="01",
        customer=Customer(f"C{number[-2:]}", "Acme"),
        order_date=when,
        ship_from=WAREHOUSE,
        ship_to=ship_to,
        lines=(
            line(1, amount, process=number),
            line(2, "40.00", process=number),
        ),
    )
    return Invoice(number=number, invoice_date=when, orders=(order,))


@pytest.fixture
def books(engine: RecordingBackend, store: SQLiteStore) -> TaxBridge:
    return TaxBridge(
        config(),
        engine,
        store,
        offline=stale_offline(),
        clock=lambda: dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC),
    )


def month(bridge: TaxBridge, engine: RecordingBackend) -> None:
    """A month of documents: sales to NY and IL, a repost, a manual posting, claims."""
    for index in range(1, 9):
        ship_to = CHICAGO if index % 3 == 0 else NYC
        bridge.on_invoice(sale(f"50{index:02d}", index * 3, ship_to=ship_to))
    engine.outage = True
    bridge.on_invoice(sale("5020", 20))
    bridge.on_invoice(sale("5021", 21))
    engine.outage = False
    assert bridge.repost("A-5020").reposted == ("A-5020",)
    stored = bridge.store.get("A-5021")
    assert stored is not None
    assert stored.request is not None
    # the operator keys it in at the engine by hand, with the tax the invoice carried
    carried = {item.number: item.tax for item in stored.lines}
    keyed = attrs.evolve(
        stored.request,
        lines=tuple(attrs.evolve(i, tax_override=carried[i.number]) for i in stored.request.lines),
    )
    engine.inner.calculate(keyed)
    bridge.mark_manual("A-5021", "keyed in at Avalara", "ops")
    claim = bridge.credit_from_invoice("A-5001", ["5001-1"], number="7001")
    bridge.on_claim_invoice(attrs.evolve(claim, claim_date=dt.date(2026, 11, 25)))
    bridge.on_invoice(sale("5030", 26, ship_to=PORTLAND))  # outside nexus: X, not in books
    bridge.on_entry(sale("5031", 27).orders[0])  # an order, never in the books


def engine_committed_tax(bridge: TaxBridge) -> Decimal:
    listing = bridge.engine_books._ctx.caps.listing
    assert listing is not None
    return sum(
        (
            doc.total_tax
            for doc in listing.list_documents("DEFAULT", NOVEMBER.start, NOVEMBER.end)
            if doc.status is DocumentStatus.COMMITTED
        ),
        ZERO_CENTS,
    )


def test_a_month_agrees_to_the_cent_between_workfile_journal_report_and_engine(
    books: TaxBridge, engine: RecordingBackend
) -> None:
    month(books, engine)
    lines = list(books.workfile("2026-11"))
    assert {item.code for item in lines} >= {"A-5001", "A-5020", "A-5021", "B-7001"}
    assert not {item.code for item in lines} & {"A-5030", "O-5031"}
    assert {item.flag for item in lines} == {"Y", "R", "M"}
    workfile_tax = sum((item.tax for item in lines), ZERO_CENTS)

    journal = books.generate_journal("2026-11")
    report = books.state_report("2026-11")
    assert journal.total_tax == workfile_tax
    assert journal.debits == journal.credits == workfile_tax
    assert report.total.tax == workfile_tax
    assert {row.region for row in report.rows} == {"NY", "IL"}
    assert workfile_tax == engine_committed_tax(books)
    assert books.reconcile_gl("2026-11", differences_only=True).rows == ()
    assert books.reconcile_engine("2026-11").clean


def test_a_repost_keeps_what_the_invoice_carried_beside_the_engines_figure(
    books: TaxBridge, engine: RecordingBackend
) -> None:
    engine.outage = True
    failed = books.on_invoice(sale("5101", 5))
    engine.outage = False
    books.repost("A-5101")
    reposted = books.store.get("A-5101")
    assert reposted is not None
    assert reposted.flag is F.REPOSTED
    assert failed.total_tax == Decimal("11.73")  # 140.00 at the stale 8.375%
    assert reposted.tax_charged == Decimal("11.73")
    assert reposted.total_tax == reposted.engine_tax == Decimal("12.43")  # 8.875%
    by_line = {item.line: item for item in books.workfile("2026-11")}
    assert sum(i.tax_charged for i in by_line.values()) == Decimal("11.73")
    assert sum(i.tax for i in by_line.values()) == Decimal("12.43")
    assert all(i.tax_engine == i.tax for i in by_line.values())


def test_each_seeded_difference_is_found_once(books: TaxBridge, engine: RecordingBackend) -> None:
    month(books, engine)
    books.generate_journal("2026-11")
    # a late posting, dated in a period whose journal was generated
    books.on_invoice(sale("5040", 28))
    # a voided document
    books.void("A-5002", "invoice raised in error")
    # a lost response: committed at the engine, U here
    engine.lose_responses = 1
    assert books.on_invoice(sale("5041", 29)).flag is F.FAILED

    gl = books.reconcile_gl("2026-11", differences_only=True)
    found = {(row.code, row.difference) for row in gl.rows}
    assert found == {
        ("A-5040", Difference.NOT_IN_JOURNAL),
        ("A-5041", Difference.NOT_IN_JOURNAL),
        ("A-5002", Difference.NOT_IN_SALES),
    }
    assert gl.differences == 3

    check = books.reconcile_engine("2026-11")
    assert [(f.code, f.kind) for f in check.findings] == [("A-5041", FindingKind.LOST_RESPONSE)]
    fixed = books.reconcile_engine("2026-11", fix=True)
    assert fixed.findings[0].fixed
    assert fixed.findings[0].action is Action.ADOPT
    adopted = books.store.get("A-5041")
    assert adopted is not None
    assert adopted.flag is F.REPOSTED
    assert engine.commit_counts["A-5041"] == 1
    assert books.reconcile_engine("2026-11").clean


def test_a_void_at_the_engine_only_is_found_and_recorded(
    books: TaxBridge, engine: RecordingBackend
) -> None:
    from taxbridge.backends.base import VoidReason

    books.on_invoice(sale("5201", 4))
    engine.void_document("DEFAULT", "A-5201", DocumentType.SALES_INVOICE, VoidReason.DOC_VOIDED)
    check = books.reconcile_engine("2026-11")
    assert [(f.code, f.kind, f.action) for f in check.findings] == [
        ("A-5201", FindingKind.VOIDED_AT_ENGINE, Action.RECORD_VOID)
    ]
    books.reconcile_engine("2026-11", fix=True)
    stored = books.store.get("A-5201")
    assert stored is not None
    assert stored.voided_at is not None
    assert stored.flag is F.POSTED
    assert list(books.workfile("2026-11")) == []
    assert books.reconcile_engine("2026-11").clean


def test_a_posting_missing_at_the_engine_is_requeued_and_reposted_once(
    books: TaxBridge, engine: RecordingBackend
) -> None:
    books.on_invoice(sale("5300", 6))  # the engine lists this one
    engine.outage = True
    books.on_invoice(sale("5301", 7))
    engine.outage = False
    books.mark_manual("A-5301", "said it was keyed in at Avalara", "ops")  # it never was
    check = books.reconcile_engine("2026-11")
    assert [(f.code, f.kind) for f in check.findings] == [("A-5301", FindingKind.MISSING_AT_ENGINE)]
    books.reconcile_engine("2026-11", fix=True)
    requeued = books.store.get("A-5301")
    assert requeued is not None
    assert requeued.flag is F.FAILED
    assert books.store.queue_entry("A-5301") is not None
    assert books.repost().reposted == ("A-5301",)
    assert engine.commit_counts["A-5301"] == 1
    assert books.reconcile_engine("2026-11").clean


def test_a_journal_is_regenerated_while_unposted_and_locked_once_posted(
    books: TaxBridge,
) -> None:
    books.on_invoice(sale("5401", 2))
    first = books.generate_journal("2026-11")
    books.on_invoice(sale("5402", 3))
    second = books.generate_journal("2026-11")
    assert (first.version, second.version) == (1, 2)
    assert second.total_tax == 2 * first.total_tax
    posted = books.post_journal("2026-11", user="controller")
    assert posted.status is JournalStatus.POSTED
    assert posted.posted_by == "controller"
    with pytest.raises(JournalError, match="locked"):
        books.generate_journal("2026-11")
    with pytest.raises(JournalError, match="posted already"):
        books.post_journal("2026-11", user="controller")
    assert books.journal("2026-11") == posted
    with pytest.raises(JournalError, match="overlaps journal \\*:2026-11"):
        books.generate_journal(DateRange.between("2026-11-20", "2026-12-05"))
    with pytest.raises(JournalError, match="no journal"):
        books.journal("2026-10")


def test_a_region_without_an_account_stores_no_journal(
    engine: RecordingBackend, store: SQLiteStore
) -> None:
    bridge = TaxBridge(config(gl_accounts=GL[:1]), engine, store)
    bridge.on_invoice(sale("5501", 2, ship_to=CHICAGO))
    with pytest.raises(AccountMissingError) as caught:
        bridge.generate_journal("2026-11")
    assert (caught.value.company, caught.value.region) == ("01", "IL")
    assert "liability_account" in str(caught.value)
    assert bridge.ledger.journals() == []
    no_offset = TaxBridge(
        config(gl_accounts=(GLAccount("IL", "2310-IL"),)),
        engine,
        store,
    )
    with pytest.raises(AccountMissingError, match="offset_account"):
        no_offset.generate_journal("2026-11")


def test_a_credit_in_another_period_lowers_that_periods_tax(books: TaxBridge) -> None:
    sold = books.on_invoice(sale("5601", 30))
    claim = books.credit_from_invoice("A-5601", number="7601", claim_date=dt.date(2026, 12, 2))
    credit = books.on_claim_invoice(claim)
    assert credit.total_tax == -sold.total_tax
    assert books.state_report("2026-11").total.tax == sold.total_tax
    assert books.state_report("2026-12").total.tax == -sold.total_tax
    december = books.generate_journal("2026-12")
    liability = [row for row in december.lines if row.account == "2310-NY"]
    assert liability[0].debit == sold.total_tax
    assert liability[0].credit == 0


@pytest.mark.parametrize(
    ("text", "field"),
    [("2026-13", "period"), ("11/2026", "period"), ("", "period"), ("2026-1", "period")],
)
def test_an_unknown_period_format_is_refused(text: str, field: str) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        DateRange.period(text)
    assert caught.value.field == field
    assert caught.value.value == text


def test_a_reversed_range_is_refused() -> None:
    with pytest.raises(InvalidFieldError, match="end: '2026-11-01' is before start 2026-11-30"):
        DateRange.between("2026-11-30", "2026-11-01")
    with pytest.raises(InvalidFieldError, match="start"):
        DateRange.between("30/11/2026", "2026-12-01")


def test_a_period_is_a_whole_month_with_its_key() -> None:
    assert DateRange.period("2028-02").end == dt.date(2028, 2, 29)
    assert DateRange.period("2026-11").key == "2026-11"
    assert DateRange.between("2026-11-01", "2026-11-15").key == "2026-11-01..2026-11-15"


def test_voiding_refuses_what_is_not_posted_and_releases_a_credits_allocations(
    books: TaxBridge, engine: RecordingBackend
) -> None:
    engine.outage = True
    books.on_invoice(sale("5701", 2))
    engine.outage = False
    with pytest.raises(InvalidTransition, match="only a posted document"):
        books.void("A-5701", "wrong")
    books.on_invoice(sale("5702", 3))
    with pytest.raises(InvalidFieldError, match="reason"):
        books.void("A-5702", "  ")
    credit = books.on_claim_invoice(books.credit_from_invoice("A-5702", number="7702"))
    assert books.store.credited("A-5702")
    books.void(credit.code, "credit raised twice")
    assert books.store.credited("A-5702") == {}
    with pytest.raises(InvalidTransition, match="voided on"):
        books.void(credit.code, "again")
    events = books.store.events(credit.code)
    assert events[-1].stage.value == "void"
    assert events[-1].flag_after is F.POSTED


def test_a_locked_document_cannot_be_voided_and_nothing_is_stored(store: SQLiteStore) -> None:

    with fake_avatax() as engine:
        bridge = TaxBridge(config(), engine, store)
        bridge.on_invoice(sale("5801", 2))
        engine.fake.lock("DEFAULT", "A-5801")
        with pytest.raises(DocumentRejected, match="CannotModifyLockedTransaction"):
            bridge.void("A-5801", "too late")
        stored = store.get("A-5801")
        assert stored is not None
        assert stored.voided_at is None
        engine.fake.documents[
            ("DEFAULT", "A-5801", DocumentType.SALES_INVOICE)
        ].status = __import__("taxbridge").models.DocumentStatus.CANCELLED
        found = bridge.reconcile_engine("2026-11").findings
        assert [(f.kind, f.locked) for f in found] == [(FindingKind.VOIDED_AT_ENGINE, True)]


def test_the_local_engine_register_outlives_the_process(tmp_path: Path) -> None:
    db = tmp_path / "books.db"
    first = TaxBridge.from_settings(attrs.evolve(default_config(str(db))))
    first.on_invoice(sale("5901", 2))
    first.close()
    assert (tmp_path / "books-engine.db").exists()
    again = TaxBridge.from_settings(default_config(str(db)), create=False)
    try:
        assert again.reconcile_engine("2026-11").clean
        assert again.reconcile_engine("2026-11").listed == 1
    finally:
        again.close()


def test_a_version_5_file_gains_the_charged_tax_from_the_repost_log(tmp_path: Path) -> None:
    """Before v6 a repost kept the figure the invoice carried only in its log text."""
    import sqlite3

    path = tmp_path / "old.db"
    with SQLiteStore(path) as store:
        engine = RecordingBackend(LocalEngine())
        bridge = TaxBridge(config(), engine, store)
        engine.outage = True
        bridge.on_invoice(sale("6001", 3, ship_to=CHICAGO))
        engine.outage = False
        bridge.on_invoice(sale("6002", 4))
    with sqlite3.connect(path) as conn:  # what a v5 file held after such a repost
        conn.execute("UPDATE documents SET flag = 'R', total_tax = '14.35' WHERE code = 'A-6001'")
        conn.execute(
            "INSERT INTO document_events (code, at, stage, flag_before, flag_after, backend, "
            "message, error) VALUES ('A-6001', '2026-11-04T00:00:00+00:00', 'repost', 'U', 'R', "
            "'local', 'reposted to local: tax 14.35 (the invoice carried 14.37)', 0)"
        )
        conn.execute("DROP INDEX documents_period")
        for table in ("journal_documents", "journal_lines", "journals"):
            conn.execute(f"DROP TABLE {table}")
        for table, column in (
            ("documents", "charged_tax"),
            ("documents", "voided_at"),
            ("documents", "void_reason"),
            ("document_lines", "region"),
            ("document_lines", "charged_tax"),
        ):
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute("DELETE FROM schema_migrations WHERE version = 6")
    with SQLiteStore(path) as reopened:
        old = reopened.get("A-6001")
        kept = reopened.get("A-6002")
        assert old is not None
        assert kept is not None
        assert old.charged_tax == Decimal("14.37")
        assert old.total_tax == Decimal("14.35")
        assert sum(line.tax_charged for line in old.lines) == Decimal("14.37")
        assert kept.charged_tax == kept.total_tax
        regions = {line.code: line.region for line in reopened.workfile(NOVEMBER)}
        assert regions == {"A-6001": "IL", "A-6002": "NY"}


def test_the_avatax_listing_pages_by_date_and_shows_locks(store: SQLiteStore) -> None:

    with fake_avatax() as engine:
        bridge = TaxBridge(config(), engine, store)
        for day in range(1, 6):
            bridge.on_invoice(sale(f"61{day:02d}", day))
        bridge.on_invoice(sale("6110", 10))  # after the range
        engine.fake.lock("DEFAULT", "A-6101")
        listed = list(
            engine.inner.list_documents(  # type: ignore[attr-defined]
                "DEFAULT", dt.date(2026, 11, 1), dt.date(2026, 11, 5), page=2
            )
        )
        assert [doc.code for doc in listed] == ["A-6101", "A-6102", "A-6103", "A-6104", "A-6105"]
        assert [doc.locked for doc in listed] == [True, False, False, False, False]
        assert all(doc.status is DocumentStatus.COMMITTED and doc.total_tax > 0 for doc in listed)
        calls = [r for r in engine.fake.requests if r.path.endswith("/DEFAULT/transactions")]
        assert len(calls) == 3
        assert calls[0].params["$filter"] == "date ge '2026-11-01' and date le '2026-11-05'"
        assert [c.params["$skip"] for c in calls] == ["0", "2", "4"]


def test_two_local_engines_on_one_register_file_commit_a_code_once(tmp_path: Path) -> None:
    from taxbridge import AlreadyCommitted, LocalEngine
    from taxbridge.backends._register import FileRegister

    first = LocalEngine(register=FileRegister(tmp_path / "engine.db"))
    second = LocalEngine(register=FileRegister(tmp_path / "engine.db"))
    with SQLiteStore(tmp_path / "a.db") as store:
        bridge = TaxBridge(config(), first, store)
        posted = bridge.on_invoice(sale("6201", 2))
        request = posted.request
        assert request is not None
    with pytest.raises(AlreadyCommitted):
        second.calculate(request)
    found = second.get_document("DEFAULT", "A-6201", DocumentType.SALES_INVOICE)
    assert found is not None
    assert found.total_tax == posted.total_tax
    first.close()
    second.close()


def test_listed_transactions_follow_the_published_transaction_model(
    store: SQLiteStore, shared_reference: Path
) -> None:
    import base64
    import json

    import avatax_contract
    import httpx

    from taxbridge.testing.fake_avatax import FakeAvaTax

    fake = FakeAvaTax(account_id=FAKE_ACCOUNT, license_key=FAKE_KEY)
    basic = "Basic " + base64.b64encode(f"{FAKE_ACCOUNT}:{FAKE_KEY}".encode()).decode()
    with fake_avatax(fake) as engine:
        TaxBridge(config(), engine, store).on_invoice(sale("6301", 2))
    fake.lock("DEFAULT", "A-6301")
    answer = fake.handle(
        httpx.Request(
            "GET",
            "https://avatax.fake.test/api/v2/companies/DEFAULT/transactions",
            params={"$filter": "date ge '2026-11-01' and date le '2026-11-30'"},
            headers={"authorization": basic},
        )
    )
    body = json.loads(answer.content)
    assert body["@recordsetCount"] == 1
    [row] = body["value"]
    assert row["locked"] is True
    assert avatax_contract.problems("TransactionModel", row, shared_reference) == []


def test_an_unknown_code_an_uncommitted_one_and_a_tax_difference_are_reported_only(
    store: SQLiteStore,
) -> None:

    with fake_avatax() as engine:
        bridge = TaxBridge(config(), engine, store, offline=stale_offline())
        bridge.on_invoice(sale("6401", 2))
        bridge.on_invoice(sale("6402", 3))
        engine.inner.uncommit_document(  # type: ignore[attr-defined]
            "DEFAULT", "A-6402", DocumentType.SALES_INVOICE
        )
        posted = bridge.on_invoice(sale("6403", 4))
        assert posted.request is not None
        other = attrs.evolve(posted.request, code="A-6499")
        engine.inner.calculate(other)  # committed at the engine by someone else
        engine.outage = True
        bridge.on_invoice(sale("6404", 5))
        engine.outage = False
        stored = store.get("A-6404")
        assert stored is not None
        assert stored.request is not None
        engine.inner.calculate(stored.request)  # keyed in by hand at the engine's figure
        bridge.mark_manual("A-6404", "keyed in", "ops")
        check = bridge.reconcile_engine("2026-11", fix=True)
    kinds = {(f.code, f.kind, f.action, f.fixed) for f in check.findings}
    assert kinds == {
        ("A-6402", FindingKind.UNCOMMITTED_AT_ENGINE, Action.REPORT, False),
        ("A-6499", FindingKind.UNKNOWN_HERE, Action.REPORT, False),
        ("A-6404", FindingKind.TAX_DIFFERS, Action.REPORT, False),
    }
    differs = next(f for f in check.findings if f.kind is FindingKind.TAX_DIFFERS)
    assert (differs.tax_here, differs.tax_engine) == (Decimal("11.73"), Decimal("12.43"))
    assert check.stored == 4
    assert check.listed == 5


def test_an_engine_that_lists_nothing_requeues_nothing(store: SQLiteStore) -> None:
    """A store from before the local engine kept a register (or the wrong company or
    environment): every posted document looks missing, and none is requeued on that alone."""
    first = TaxBridge(config(), RecordingBackend(LocalEngine()), store)
    first.on_invoice(sale("6501", 2))
    first.on_invoice(sale("6502", 3))
    forgetful = TaxBridge(config(), RecordingBackend(LocalEngine()), store)  # an empty register
    check = forgetful.reconcile_engine("2026-11", fix=True)
    assert [f.kind for f in check.findings] == [FindingKind.MISSING_AT_ENGINE] * 2
    assert not any(f.fixed for f in check.findings)
    assert all("listed no document" in f.result for f in check.findings)
    assert {doc.flag for doc in store.documents()} == {F.POSTED}


# -- reconciling per engine company ------------------------------------------------------------


def companies(*pairs: tuple[str, str]) -> BridgeConfig:
    return config(companies=tuple(CompanyMapping(erp, code) for erp, code in pairs))


def sale_of(company: str, number: str, day: int) -> Invoice:
    invoice = sale(number, day)
    order = attrs.evolve(invoice.orders[0], company=company)
    return attrs.evolve(invoice, orders=(order,))


def test_an_empty_listing_of_one_engine_company_requeues_none_of_its_documents(
    store: SQLiteStore,
) -> None:
    """ALPHA lists its documents; BETA's listing comes back empty (its documents are under
    another company code at the engine): BETA's postings are not requeued on that evidence, so
    no repost commits them a second time."""
    fake = FakeAvaTax(account_id=FAKE_ACCOUNT, license_key=FAKE_KEY)
    with fake_avatax(fake) as engine:
        bridge = TaxBridge(companies(("01", "ALPHA"), ("02", "BETA")), engine, store)
        for n in range(1, 4):
            bridge.on_invoice(sale_of("01", f"710{n}", n))
        for n in range(1, 5):
            bridge.on_invoice(sale_of("02", f"720{n}", n))
        fake.documents = {
            ("BETA-OLD" if key[0] == "BETA" else key[0], *key[1:]): stored
            for key, stored in fake.documents.items()
        }
        check = bridge.reconcile_engine("2026-11", fix=True)
        assert [(f.code, f.kind, f.fixed) for f in check.findings] == [
            (f"A-720{n}", FindingKind.MISSING_AT_ENGINE, False) for n in range(1, 5)
        ]
        assert all("of company BETA" in f.result for f in check.findings)
        assert {doc.flag for doc in store.documents()} == {F.POSTED}
        assert bridge.repost().reposted == ()
    assert set(fake.commit_counts.values()) == {1}


def test_a_listing_paged_by_the_server_is_whole_and_nothing_is_requeued(
    store: SQLiteStore,
) -> None:
    fake = FakeAvaTax(account_id=FAKE_ACCOUNT, license_key=FAKE_KEY)
    with fake_avatax(fake) as engine:
        bridge = TaxBridge(config(), engine, store)
        for n in range(1, 14):
            bridge.on_invoice(sale(f"73{n:02d}", n))
        fake.page_size = 5
        check = bridge.reconcile_engine("2026-11", fix=True)
        assert (check.stored, check.listed, check.findings) == (13, 13, ())
        assert bridge.repost().reposted == ()
    assert {doc.flag for doc in store.documents()} == {F.POSTED}
    assert sorted(fake.commit_counts.values()) == [1] * 13


def test_erp_companies_sharing_an_engine_company_are_reconciled_each_with_its_own(
    store: SQLiteStore,
) -> None:
    with fake_avatax() as engine:
        bridge = TaxBridge(companies(("01", "SHARED"), ("02", "SHARED")), engine, store)
        bridge.on_invoice(sale_of("01", "7401", 2))
        bridge.on_invoice(sale_of("01", "7402", 3))
        bridge.on_invoice(sale_of("02", "7403", 4))
        engine.outage = True
        bridge.on_invoice(sale_of("02", "7404", 5))
        engine.outage = False
        bridge.mark_manual("A-7404", "said it was keyed in", "ops")  # it never was
        first = bridge.reconcile_engine("2026-11", company="01")
        second = bridge.reconcile_engine("2026-11", company="02")
        both = bridge.reconcile_engine("2026-11")
    assert (first.stored, first.listed, first.findings) == (2, 2, ())
    assert (second.stored, second.listed) == (2, 1)
    assert [(f.code, f.kind, f.company_code) for f in second.findings] == [
        ("A-7404", FindingKind.MISSING_AT_ENGINE, "SHARED")
    ]
    assert (both.stored, both.listed, len(both.findings)) == (4, 3, 1)


def test_a_document_shipped_to_two_regions_is_one_document_in_the_total(
    books: TaxBridge,
) -> None:
    two = sale("7501", 3)
    order = two.orders[0]
    lines = (order.lines[0], attrs.evolve(order.lines[1], ship_to=CHICAGO))
    books.on_invoice(attrs.evolve(two, orders=(attrs.evolve(order, lines=lines),)))
    books.on_invoice(sale("7502", 4))
    report = books.state_report("2026-11")
    assert [(row.region, row.documents) for row in report.rows] == [("IL", 1), ("NY", 2)]
    assert report.total.documents == 2


def test_an_invoice_that_credits_take_from_is_voided_only_after_them(
    books: TaxBridge, engine: RecordingBackend
) -> None:
    books.on_invoice(sale("7601", 2))
    claim = books.credit_from_invoice("A-7601", ["7601-1"], number="7601")
    books.on_claim_invoice(attrs.evolve(claim, claim_date=dt.date(2026, 11, 20)))
    with pytest.raises(InvalidTransition, match="credits B-7601 take from it: void them first"):
        books.void("A-7601", "raised in error")
    invoice = books.store.get("A-7601")
    assert invoice is not None
    assert invoice.voided_at is None
    books.void("B-7601", "the return was raised in error")
    assert books.void("A-7601", "raised in error").voided_at is not None
    report = books.state_report("2026-11")
    assert (report.rows, report.total.tax) == ((), ZERO_CENTS)


def test_a_full_credit_of_a_reposted_invoice_gives_back_what_was_charged_and_what_is_owed(
    books: TaxBridge, engine: RecordingBackend
) -> None:
    """The invoice carried 11.73 (the stale offline rate), the engine's repost says 12.43: a
    full credit refunds 12.43 of liability and 11.73 to the customer, so both columns of the
    state report net to zero for a sale that is fully credited."""
    engine.outage = True
    books.on_invoice(sale("7701", 5))
    engine.outage = False
    books.repost("A-7701")
    claim = books.credit_from_invoice("A-7701", number="7701")
    half = attrs.evolve(
        claim, lines=tuple(attrs.evolve(x, amount=x.amount / 2) for x in claim.lines)
    )
    first = books.on_claim_invoice(attrs.evolve(half, claim_date=dt.date(2026, 11, 20)))
    rest = books.credit_from_invoice("A-7701", number="7702", claim_date=dt.date(2026, 11, 21))
    second = books.on_claim_invoice(rest)
    assert first.total_tax + second.total_tax == Decimal("-12.43")
    assert first.tax_charged + second.tax_charged == Decimal("-11.73")
    report = books.state_report("2026-11")
    assert (report.total.tax, report.total.tax_charged) == (ZERO_CENTS, ZERO_CENTS)
    lines = list(books.workfile("2026-11"))
    assert sum((item.tax_charged for item in lines), ZERO_CENTS) == ZERO_CENTS


@pytest.mark.parametrize(
    "code", ['=HYPERLINK("http://evil.example","x")', "+1+1", "@SUM(A1)", "-2+3"]
)
def test_finance_csvs_keep_formula_text_plain_and_numbers_numbers(
    books: TaxBridge, code: str
) -> None:
    import csv
    import io

    from taxbridge.accounting.export import Format, workfile_table, write

    invoice = sale("7801", 2)
    order = attrs.evolve(invoice.orders[0], customer=Customer(code, "Mallory"))
    books.on_invoice(attrs.evolve(invoice, orders=(order,)))
    claim = books.credit_from_invoice("A-7801", number="7801")
    books.on_claim_invoice(attrs.evolve(claim, claim_date=dt.date(2026, 11, 20)))
    out = io.StringIO()
    write(workfile_table(books.workfile("2026-11"), "workfile"), Format.CSV, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert {row["customer"] for row in rows} == {"'" + code}
    assert sorted(Decimal(row["tax"]) for row in rows)[0] < 0  # a credit's tax: a number
