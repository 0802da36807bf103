"""The store contract: every store implementation passes the same tests.

A new store plugs in by adding one entry to ``IMPLEMENTATIONS``: a function that opens a store
on fresh data under ``tmp_path``, and a second connection to the same data (for the tests of
leases between processes or servers).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from taxbridge import FinalTaxFlag as F
from taxbridge.backends import LocalEngine
from taxbridge.errors import (
    BackendUnavailable,
    ConcurrentChange,
    DocumentRejected,
    LeaseLost,
)
from taxbridge.models import (
    Address,
    Certificate,
    CertificateRequest,
    CreditedLine,
    CustomerCard,
    CustomerNote,
    DateRange,
    DocumentEvent,
    DocumentKind,
    DocumentType,
    Exemption,
    Journal,
    JournalLine,
    JournalShare,
    JournalStatus,
    Stage,
    TaxDocument,
    TaxLine,
    TaxRequest,
)
from taxbridge.queue import RetryPolicy
from taxbridge.rates import shipped_rates
from taxbridge.store import SQLiteStore
from taxbridge.store.base import (
    CreditAllocation,
    Expected,
    InvoiceLink,
    QueueEntry,
    ReferenceData,
    SettledEntry,
    Store,
    Write,
)

Opener = Callable[[], Store]


def _postgres(folder: Path, request: pytest.FixtureRequest) -> Opener:
    url = request.getfixturevalue("postgres_url")
    from taxbridge.store.postgres import PostgresStore

    return lambda: PostgresStore(url, pool_max=4)


IMPLEMENTATIONS: dict[str, Callable[[Path, pytest.FixtureRequest], Opener]] = {
    "sqlite": lambda folder, request: lambda: SQLiteStore(folder / "contract.db"),
    "postgres": _postgres,
}
"""Store kind -> (a folder and the test's request -> a function opening a connection to one
store's data: a file in the folder, or a fresh database on the session's server)."""

T0 = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(minutes=5)
NYC = Address("350 5th Ave", "New York", "NY", "10118")
WAREHOUSE = Address("822 Reed St", "Philadelphia", "PA", "19147")
ENGINE = LocalEngine()
RETRY = RetryPolicy(jitter=0.0)


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    return IMPLEMENTATIONS[request.param](tmp_path, request)


@pytest.fixture
def store(opener: Opener) -> Iterator[Store]:
    opened = opener()
    yield opened
    opened.close()


def document(
    code: str = "A-1",
    *,
    flag: F = F.POSTED,
    amount: str = "100.00",
    kind: DocumentKind = DocumentKind.INVOICE,
    orders: tuple[str, ...] = (),
) -> TaxDocument:
    """A document as a stage stores it, calculated by the local engine."""
    document_type = {
        DocumentKind.INVOICE: DocumentType.SALES_INVOICE,
        DocumentKind.ORDER: DocumentType.SALES_ORDER,
        DocumentKind.CREDIT: DocumentType.RETURN_INVOICE,
    }[kind]
    sign = -1 if kind is DocumentKind.CREDIT else 1
    request = TaxRequest(
        code=code,
        document_type=document_type,
        company_code="DEFAULT",
        customer_code="C001",
        date=dt.date(2026, 11, 20),
        ship_from=WAREHOUSE,
        ship_to=NYC,
        lines=(
            TaxLine("P1-1", Decimal(amount) * sign, item_code="SKU-1", description="Atlas"),
            TaxLine("P1-2", Decimal("9.95") * sign, tax_code="FR020100", freight=True),
        ),
    )
    result = ENGINE.calculate(request)
    return TaxDocument(
        code=code,
        kind=kind,
        stage=Stage.INVOICE,
        flag=flag,
        erp_company="01",
        company_code="DEFAULT",
        customer_code="C001",
        document_type=document_type,
        document_date=request.date,
        currency="USD",
        total_amount=result.total_amount,
        total_taxable=result.total_taxable,
        total_exempt=result.total_exempt,
        total_tax=result.total_tax,
        lines=result.lines,
        breakdown=result.summary,
        backend="local",
        last_log=f"{flag} by the contract suite",
        updated_at=T0,
        tax_date=result.tax_date,
        request=request,
        orders=orders,
    )


def event(doc: TaxDocument, before: F | None = None, message: str = "") -> DocumentEvent:
    return DocumentEvent(
        doc.code, doc.updated_at, doc.stage, before, doc.flag, doc.backend, message or doc.last_log
    )


def failed(store: Store, code: str, *, error: Exception | None = None) -> QueueEntry:
    """Store ``code`` as U with its first queue entry, as the invoicing run does."""
    entry = RETRY.entry(code, error or BackendUnavailable("down", sent=False), T0)
    doc = document(code, flag=F.FAILED)
    store.save([doc], [event(doc)], enqueue=entry)
    return entry


class TestDocuments:
    def test_a_document_round_trips_with_lines_breakdown_request_and_orders(self, store) -> None:
        doc = document(orders=("1001", "1013"))
        store.save([doc], [event(doc)])
        assert store.get("A-1") == doc
        assert store.get("A-1").request == doc.request
        head = store.head("A-1")
        assert (head.code, head.kind, head.stage, head.flag, head.invoice_code) == (
            "A-1",
            DocumentKind.INVOICE,
            Stage.INVOICE,
            F.POSTED,
            None,
        )

    def test_money_keeps_every_digit(self, store) -> None:
        doc = attrs.evolve(document(), total_amount=Decimal("12345678901234.5678"))
        store.save([doc], [event(doc)])
        assert store.get("A-1").total_amount == Decimal("12345678901234.5678")

    def test_unknown_codes_are_none(self, store) -> None:
        assert store.get("A-404") is None
        assert store.head("A-404") is None
        assert store.events("A-404") == []

    def test_saving_again_replaces_the_document_and_appends_to_its_log(self, store) -> None:
        first = document(flag=F.CALCULATED, amount="100.00")
        store.save([first], [event(first)])
        second = document(flag=F.POSTED, amount="50.00")
        store.save([second], [event(second, F.CALCULATED, "posted")])
        assert store.get("A-1") == second
        assert len(store.get("A-1").lines) == 2
        log = store.events("A-1")
        assert [(e.flag_before, e.flag_after, e.message) for e in log] == [
            (None, F.CALCULATED, first.last_log),
            (F.CALCULATED, F.POSTED, "posted"),
        ]

    def test_lines_saved_again_unchanged_stay_and_changed_lines_replace_them(self, store) -> None:
        first = document(flag=F.CALCULATED)
        store.save([first], [event(first)])
        same_lines = attrs.evolve(first, stage=Stage.PICK, last_log="pick")
        store.save([same_lines], [event(same_lines, F.CALCULATED)])
        assert store.get("A-1") == same_lines
        charged = attrs.evolve(
            same_lines, lines=(attrs.evolve(first.lines[0], charged=Decimal("1.23")),)
        )
        store.save([charged], [event(charged, F.CALCULATED)])
        assert store.get("A-1") == charged
        back = attrs.evolve(charged, lines=first.lines, breakdown=first.breakdown[:1])
        store.save([back], [event(back, F.CALCULATED)])
        assert store.get("A-1") == back

    def test_documents_are_listed_in_code_order_by_flag_and_kind(self, store) -> None:
        for doc in (
            document("A-2", flag=F.FAILED),
            document("A-1"),
            document("O-1", flag=F.CALCULATED, kind=DocumentKind.ORDER),
        ):
            store.save([doc], [event(doc)])
        assert [d.code for d in store.documents()] == ["A-1", "A-2", "O-1"]
        assert [d.code for d in store.documents(flags=[F.FAILED, F.CALCULATED])] == ["A-2", "O-1"]
        assert [d.code for d in store.documents(kind=DocumentKind.ORDER)] == ["O-1"]

    def test_many_documents_are_read_at_once_each_as_it_reads_alone(self, store) -> None:
        docs = [
            document("A-1"),
            document("A-2", flag=F.FAILED, amount="7.50"),
            document("O-1", flag=F.CALCULATED, kind=DocumentKind.ORDER),
            attrs.evolve(document("A-3", flag=F.EXCLUDED), breakdown=()),
        ]
        for doc in docs:
            store.save([doc], [event(doc)])
        found = store.get_many(["O-1", "A-404", "A-1", "A-3", "A-1"])
        assert found == {"O-1": docs[2], "A-1": docs[0], "A-3": docs[3]}
        assert all(found[code] == store.get(code) for code in found)
        assert store.get_many([]) == {}
        assert store.get_many(["A-404"]) == {}

    def test_more_documents_than_one_statement_lists_are_read_whole(self, store) -> None:
        first = document("A-1")
        docs = [attrs.evolve(first, code=f"A-{n}", total_tax=Decimal(n)) for n in range(1, 1002)]
        store.save(docs, [event(doc) for doc in docs])
        found = store.get_many([doc.code for doc in docs])
        assert [found[doc.code] for doc in docs] == docs
        listed = store.documents()
        assert len(listed) == 1001
        assert {doc.lines for doc in listed} == {first.lines}
        assert {doc.breakdown for doc in listed} == {first.breakdown}

    def test_an_invoice_stamps_its_orders_once(self, store) -> None:
        for code in ("O-1001", "O-1013"):
            order = document(code, flag=F.CALCULATED, kind=DocumentKind.ORDER)
            store.save([order], [event(order)])
        invoice = document("A-9001", orders=("1001", "1013"))
        link = InvoiceLink("A-9001", ("O-1001", "O-1013", "O-404"), T0)
        store.save([invoice], [event(invoice)], invoiced=link)
        store.save([invoice], [event(invoice)], invoiced=link)
        for code in ("O-1001", "O-1013"):
            head = store.head(code)
            assert (head.invoice_code, head.stage, head.flag) == (
                "A-9001",
                Stage.INVOICE,
                F.CALCULATED,
            )
            assert [e.message for e in store.events(code)][-1] == "invoiced as A-9001"
            assert len(store.events(code)) == 2
        assert store.get("O-404") is None

    def test_credits_sum_per_invoice_line_and_a_credit_replaces_its_own(self, store) -> None:
        invoice = document("A-1")
        store.save([invoice], [event(invoice)])
        for code, amount in (("B-1", "40.00"), ("B-2", "10.00")):
            credit = document(code, kind=DocumentKind.CREDIT, amount=amount)
            taken = CreditAllocation(
                code, "A-1", (CreditedLine("P1-1", Decimal(amount), Decimal("3.55")),)
            )
            store.save([credit], [event(credit)], credits=taken)
        assert store.credited("A-1") == {"P1-1": (Decimal("50.00"), Decimal("7.10"))}
        assert store.credited("A-1", excluding="B-2") == {
            "P1-1": (Decimal("40.00"), Decimal("3.55"))
        }
        again = CreditAllocation(
            "B-2", "A-1", (CreditedLine("P1-2", Decimal("9.95"), Decimal("0.88")),)
        )
        credit = document("B-2", kind=DocumentKind.CREDIT)
        store.save([credit], [event(credit)], credits=again)
        assert store.credited("A-1") == {
            "P1-1": (Decimal("40.00"), Decimal("3.55")),
            "P1-2": (Decimal("9.95"), Decimal("0.88")),
        }
        assert store.credits_of("A-1") == ["B-1", "B-2"]
        store.save([credit], [event(credit)], credits=CreditAllocation("B-2", "", ()))
        assert store.credits_of("A-1") == ["B-1"]  # a voided credit takes nothing any more
        assert store.credits_of("A-404") == []

    def test_a_write_expecting_what_is_no_longer_there_writes_nothing(self, store) -> None:
        first = document(flag=F.CALCULATED)
        store.save([first], [event(first)], expected=Expected(None))
        with pytest.raises(ConcurrentChange, match="it read no document, it is now N"):
            store.save([first], [event(first)], expected=Expected(None))
        posted = document(flag=F.POSTED)
        store.save([posted], [event(posted, F.CALCULATED)], expected=Expected(F.CALCULATED))
        failed_doc = document(flag=F.FAILED)
        with pytest.raises(ConcurrentChange, match="it read N, it is now Y"):
            store.save([failed_doc], [event(failed_doc)], expected=Expected(F.CALCULATED))
        assert store.get("A-1") == posted
        assert len(store.events("A-1")) == 2

    def test_text_with_quotes_marks_and_placeholders_comes_back_as_written(self, store) -> None:
        awkward = "it's 100% done \\ \"?\" %s %% ;-- $$ O'Brien \u00e9\u4e2d ''"
        doc = attrs.evolve(document(flag=F.CALCULATED), last_log=awkward, customer_code="C'1")
        store.save([doc], [event(doc, message=awkward)])
        assert store.get("A-1") == doc
        assert store.events("A-1")[0].message == awkward

    def test_a_document_of_thousands_of_lines_is_written_and_read_whole(self, store) -> None:
        doc = document(flag=F.CALCULATED)
        lines = tuple(
            attrs.evolve(doc.lines[0], number=f"P1-{n}", amount=Decimal(n) / 100)
            for n in range(1, 2502)
        )
        big = attrs.evolve(doc, lines=lines)
        store.save([big], [event(big)])
        assert store.get("A-1") == big
        store.save([doc], [event(doc, F.CALCULATED)], expected=Expected(F.CALCULATED))
        assert store.get("A-1") == doc

    def test_a_blank_flag_is_a_state_a_write_can_expect(self, store) -> None:
        offline = document(flag=F.OFFLINE)
        store.save([offline], [event(offline)])
        posted = document(flag=F.POSTED)
        with pytest.raises(ConcurrentChange, match="it read N") as changed:
            store.save([posted], [event(posted)], expected=Expected(F.CALCULATED))
        assert changed.value.found == Expected(F.OFFLINE).describe()
        with pytest.raises(ConcurrentChange, match="it read no document"):
            store.save([posted], [event(posted)], expected=Expected(None))
        store.save([posted], [event(posted, F.OFFLINE)], expected=Expected(F.OFFLINE))
        assert store.get("A-1") == posted

    def test_a_refused_write_leaves_the_store_usable_for_the_next(self, store) -> None:
        first = document(flag=F.CALCULATED)
        store.save([first], [event(first)])
        for _ in range(3):
            with pytest.raises(ConcurrentChange):
                store.save([first], [event(first)], expected=Expected(None))
        second = document("A-2", flag=F.CALCULATED)
        store.save([second], [event(second)], expected=Expected(None))
        assert [d.code for d in store.documents()] == ["A-1", "A-2"]
        assert len(store.events("A-1")) == 1

    def test_a_write_expecting_no_invoice_link_finds_an_invoiced_order(self, store) -> None:
        order = document("O-1", flag=F.CALCULATED, kind=DocumentKind.ORDER)
        store.save([order], [event(order)])
        invoice = document("A-1")
        store.save([invoice], [event(invoice)], invoiced=InvoiceLink("A-1", ("O-1",), T0))
        with pytest.raises(ConcurrentChange, match="it is now N invoiced as A-1"):
            store.save([order], [event(order)], expected=Expected(F.CALCULATED))
        assert store.head("O-1").invoice_code == "A-1"

    def test_a_failed_write_leaves_nothing_half_written(self, store) -> None:
        doc = document(flag=F.FAILED)
        entry = failed(store, "A-1")
        changed = attrs.evolve(doc, flag=F.REPOSTED, last_log="half")
        broken = attrs.evolve(event(changed), message=None)  # the log refuses it
        with pytest.raises(Exception):  # noqa: B017, PT011 - each database has its own error
            store.save([changed], [broken], dequeue="A-1")
        assert store.get("A-1").flag is F.FAILED
        assert len(store.events("A-1")) == 1
        assert store.queue_entry("A-1") == entry


class TestQueue:
    def test_an_entry_is_written_with_its_document_and_read_back(self, store) -> None:
        entry = failed(store, "A-1")
        assert store.queue_entry("A-1") == entry
        assert store.queue() == [entry]
        assert entry.may_have_landed is False

    def test_due_and_needs_fix_filter_the_open_entries(self, store) -> None:
        failed(store, "A-1")
        failed(store, "A-2", error=DocumentRejected("bad ZIP"))
        later = attrs.evolve(
            RETRY.entry("A-3", BackendUnavailable("x"), T0), next_attempt_at=T0 + LEASE
        )
        doc = document("A-3", flag=F.FAILED)
        store.save([doc], [event(doc)], enqueue=later)
        assert [e.code for e in store.queue(due_at=T0)] == ["A-1", "A-2"]
        assert [e.code for e in store.queue(needs_fix=True)] == ["A-2"]
        assert [e.code for e in store.queue(due_at=T0, needs_fix=False)] == ["A-1"]

    def test_two_connections_never_claim_the_same_entry(self, store, opener) -> None:
        codes = [f"A-{n}" for n in range(1, 8)]
        for code in codes:
            failed(store, code)
        other = opener()
        try:
            first = store.claim("a", now=T0, lease=LEASE, limit=3)
            second = other.claim("b", now=T0, lease=LEASE)
        finally:
            other.close()
        assert [e.code for e in first] == codes[:3]
        assert sorted(e.code for e in first + second) == codes
        assert {e.claimed_by for e in second} == {"b"}
        assert {e.lease_expires_at for e in second} == {T0 + LEASE}
        assert store.claim("c", now=T0, lease=LEASE) == []

    def test_needs_fix_is_claimed_only_by_code(self, store) -> None:
        failed(store, "A-1", error=DocumentRejected("bad ZIP"))
        assert store.claim("a", now=T0, lease=LEASE) == []
        assert [e.code for e in store.claim("a", now=T0, lease=LEASE, code="A-1")] == ["A-1"]

    def test_an_expired_lease_is_taken_over_and_reported_a_live_one_is_not(self, store) -> None:
        failed(store, "A-1")
        (held,) = store.claim("died", now=T0, lease=LEASE)
        assert held.taken_over_from is None
        assert store.claim("b", now=T0 + dt.timedelta(minutes=4), lease=LEASE, code="A-1") == []
        (taken,) = store.claim("b", now=T0 + LEASE, lease=LEASE)
        assert (taken.claimed_by, taken.taken_over_from) == ("b", "died")
        (again,) = store.claim("b", now=T0 + LEASE, lease=LEASE, code="A-1")
        assert again.taken_over_from is None  # its own claim

    def test_released_entries_are_free_at_once_and_a_taken_over_one_keeps_its_doubt(
        self, store
    ) -> None:
        for code in ("A-1", "A-2", "A-3"):
            failed(store, code)
        store.claim("died", now=T0, lease=LEASE, code="A-2")
        claimed = store.claim("b", now=T0 + LEASE, lease=LEASE)
        assert {e.code: e.taken_over_from for e in claimed} == {
            "A-1": None, "A-2": "died", "A-3": None,
        }  # fmt: skip
        assert store.release("other", ["A-1"]) == 0  # only the holder gives back
        assert store.release("b", ["A-1", "A-2"], in_doubt=["A-2"]) == 2
        entries = {e.code: e for e in store.queue()}
        assert (entries["A-1"].claimed_by, entries["A-1"].may_have_landed) == (None, False)
        assert (entries["A-2"].claimed_by, entries["A-2"].may_have_landed) == (None, True)
        assert entries["A-3"].claimed_by == "b"
        again = store.claim("c", now=T0 + LEASE, lease=LEASE)
        assert sorted(e.code for e in again) == ["A-1", "A-2"]

    def test_a_worker_that_lost_its_lease_writes_nothing(self, store) -> None:
        failed(store, "A-1")
        store.claim("slow", now=T0, lease=LEASE)
        store.claim("fast", now=T0 + LEASE, lease=LEASE)
        doc = document("A-1", flag=F.REPOSTED)
        with pytest.raises(LeaseLost, match="slow"):
            store.save([doc], [event(doc, F.FAILED)], dequeue="A-1", holder="slow")
        assert store.get("A-1").flag is F.FAILED
        store.save([doc], [event(doc, F.FAILED)], dequeue="A-1", holder="fast")
        assert store.get("A-1").flag is F.REPOSTED

    def test_a_lost_lease_names_who_holds_the_entry_now(self, store) -> None:
        failed(store, "A-1")
        store.claim("slow", now=T0, lease=LEASE)
        store.claim("fast", now=T0 + LEASE, lease=LEASE)
        doc = document("A-1", flag=F.REPOSTED)
        with pytest.raises(LeaseLost) as lost:
            store.save([doc], [event(doc, F.FAILED)], dequeue="A-1", holder="slow")
        assert (lost.value.code, lost.value.holder, lost.value.current) == ("A-1", "slow", "fast")
        store.save([doc], [event(doc, F.FAILED)], dequeue="A-1", holder="fast")
        with pytest.raises(LeaseLost) as settled:
            store.save([doc], [event(doc, F.REPOSTED)], dequeue="A-1", holder="fast")
        assert settled.value.current is None

    def test_several_writes_in_one_call_skip_only_the_refused_one(self, store) -> None:
        for code in ("A-1", "A-2", "A-3", "A-4"):
            failed(store, code)
        store.claim("slow", now=T0, lease=LEASE)
        store.claim("fast", now=T0 + LEASE, lease=LEASE, code="A-2")
        settled = [document(code, flag=F.REPOSTED) for code in ("A-1", "A-2", "A-3")]
        writes = [
            Write((doc,), (event(doc, F.FAILED),), dequeue=doc.code, holder="slow")
            for doc in settled
        ]
        changed = document("A-4", flag=F.REPOSTED)
        writes.append(Write((changed,), (event(changed, F.POSTED),), expected=Expected(F.POSTED)))
        refusals = store.save_all(writes)
        assert refusals[0] is None
        assert refusals[2] is None
        assert isinstance(refusals[1], LeaseLost)
        assert (refusals[1].code, refusals[1].holder, refusals[1].current) == (
            "A-2",
            "slow",
            "fast",
        )
        assert isinstance(refusals[3], ConcurrentChange)
        assert refusals[3].code == "A-4"
        assert "it read Y, it is now U" in str(refusals[3])
        assert {code: store.get(code).flag for code in ("A-1", "A-2", "A-3", "A-4")} == {
            "A-1": F.REPOSTED,
            "A-2": F.FAILED,
            "A-3": F.REPOSTED,
            "A-4": F.FAILED,
        }
        assert [e.code for e in store.queue()] == ["A-2", "A-4"]
        assert [s.code for s in store.settled()] == ["A-1", "A-3"]
        assert [e.flag_after for e in store.events("A-2")] == [F.FAILED]
        assert [e.flag_after for e in store.events("A-3")] == [F.FAILED, F.REPOSTED]
        assert store.save_all([]) == []

    def test_writes_in_one_call_see_the_ones_before_them(self, store) -> None:
        first = document("A-1", flag=F.CALCULATED)
        second = attrs.evolve(first, flag=F.POSTED, last_log="posted")
        refusals = store.save_all(
            [
                Write((first,), (event(first),), expected=Expected(None)),
                Write((second,), (event(second, F.CALCULATED),), expected=Expected(F.CALCULATED)),
            ]
        )
        assert refusals == [None, None]
        assert store.get("A-1") == second
        assert [e.flag_after for e in store.events("A-1")] == [F.CALCULATED, F.POSTED]

    def test_a_claim_of_many_entries_returns_each_once_in_due_order(self, store) -> None:
        codes = [f"A-{n:04d}" for n in range(1, 1202)]
        for code in codes:
            failed(store, code)
        claimed = store.claim("w", now=T0, lease=LEASE)
        assert [e.code for e in claimed] == codes
        assert {(e.claimed_by, e.attempts) for e in claimed} == {("w", 1)}
        assert store.claim("w", now=T0, lease=LEASE) == []

    def test_settling_keeps_history_until_purged_open_entries_always_stay(self, store) -> None:
        failed(store, "A-1")
        failed(store, "A-2")
        done = attrs.evolve(document("A-1", flag=F.REPOSTED), updated_at=T0 + LEASE)
        store.save([done], [event(done, F.FAILED)], dequeue="A-1")
        assert store.queue_entry("A-1") is None
        assert store.settled() == [SettledEntry("A-1", "R", T0 + LEASE)]
        assert store.settled()[0] == ("A-1", "R", T0 + LEASE)
        assert store.purge(T0) == 0
        assert store.purge(T0 + dt.timedelta(days=1)) == 1
        assert store.settled() == []
        assert [e.code for e in store.queue()] == ["A-2"]

    def test_a_new_entry_replaces_the_old_one_and_clears_the_claim(self, store) -> None:
        first = failed(store, "A-1")
        store.claim("w", now=T0, lease=LEASE)
        nxt = RETRY.entry("A-1", BackendUnavailable("read timeout"), T0, previous=first)
        doc = document("A-1", flag=F.FAILED)
        store.save([doc], [event(doc, F.FAILED)], enqueue=nxt, holder="w")
        assert store.queue_entry("A-1") == nxt
        assert (nxt.attempts, nxt.may_have_landed, nxt.claimed_by) == (2, True, None)


class TestReference:
    def test_the_refreshed_tables_are_empty_before_the_first_refresh(self, store) -> None:
        assert store.active_tax_codes() is None
        assert store.entity_use_codes() == {}
        assert store.nexus("DEFAULT") == frozenset()
        assert len(store.offline_rates()) == 0

    def test_each_part_is_replaced_and_the_others_kept(self, store) -> None:
        store.replace_reference(
            ReferenceData(
                as_of=dt.date(2026, 11, 20),
                tax_codes=frozenset({"P0000000", "NT"}),
                entity_use_codes={"G": "Resale"},
                nexus={"DEFAULT": frozenset({"NY", "CA"})},
                rates=shipped_rates().only({"NY"}),
            )
        )
        store.replace_reference(ReferenceData(tax_codes=frozenset({"FR020100"})))
        assert store.active_tax_codes() == {"FR020100"}
        assert store.entity_use_codes() == {"G": "Resale"}
        assert store.nexus("DEFAULT") == {"NY", "CA"}
        assert store.offline_rates().to_csv() == shipped_rates().only({"NY"}).to_csv()

    def test_a_replacement_that_fails_halfway_keeps_the_old_tables(self, store) -> None:
        store.replace_reference(ReferenceData(rates=shipped_rates().only({"NY"})))

        class Broken:
            def __iter__(self):
                yield from shipped_rates().only({"CA"})
                raise RuntimeError("download broke halfway")

        with pytest.raises(RuntimeError):
            store.replace_reference(
                ReferenceData(tax_codes=frozenset({"X"}), rates=Broken())  # type: ignore[arg-type]
            )
        assert store.offline_rates().regions == {"NY"}
        assert store.active_tax_codes() is None


class TestExemptions:
    def test_entries_are_added_replaced_listed_and_removed(self, store) -> None:
        ny = Exemption("C001", "NY", "2026-01-01", exemption_no="NY-1", expiry="2027-06-30")
        ca = Exemption("C001", "CA", "2026-01-01", entity_use_code="G")
        other = Exemption("C002", "NY", "2026-01-01", exemption_no="X")
        for entry in (ny, ca, other):
            store.save_exemption(entry)
        store.save_exemption(attrs.evolve(ny, exemption_no="NY-2"))
        assert store.exemptions("C001") == [ca, attrs.evolve(ny, exemption_no="NY-2")]
        assert len(store.exemptions()) == 3
        assert store.delete_exemption("C001", "CA", dt.date(2026, 1, 1))
        assert not store.delete_exemption("C001", "CA", dt.date(2026, 1, 1))
        assert [e.region for e in store.exemptions("C001")] == ["NY"]


# -- the ledger: workfile, posted documents, journals ------------------------------------------

NOVEMBER = DateRange.period("2026-11")


def test_the_workfile_streams_posted_lines_in_order_across_batches(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taxbridge.store import _ledger_sql

    monkeypatch.setattr(_ledger_sql, "BATCH", 3)
    docs = [document(f"A-{n}", amount=f"{n}.00") for n in range(10, 15)]
    docs.append(document("A-20", flag=F.FAILED))
    docs.append(document("A-21", flag=F.OFFLINE))  # not posted: not in the workfile
    docs.append(document("O-1", kind=DocumentKind.ORDER, flag=F.CALCULATED))
    docs.append(attrs.evolve(document("A-22"), voided_at=T0, void_reason="error"))
    store.save(docs, [event(doc) for doc in docs])
    lines = list(store.workfile(NOVEMBER))
    assert [(item.code, item.line) for item in lines] == [
        (code, number)
        for code in ("A-10", "A-11", "A-12", "A-13", "A-14", "A-20")
        for number in ("P1-1", "P1-2")
    ]
    first = lines[0]
    assert (first.region, first.process, first.erp_company) == ("NY", "P1", "01")
    assert first.tax == first.tax_charged == first.tax_engine == docs[0].lines[0].tax
    assert lines[-1].tax_engine is None  # U: the engine does not hold it
    assert list(store.workfile(NOVEMBER, company="02")) == []
    assert list(store.workfile(DateRange.period("2026-10"))) == []
    heads = {head.code: head for head in store.posted_documents(NOVEMBER)}
    assert set(heads) == {"A-10", "A-11", "A-12", "A-13", "A-14", "A-20", "A-22"}
    assert heads["A-22"].voided_at == T0
    breakdown = list(store.workfile_jurisdictions(NOVEMBER))
    assert {row.code for row in breakdown} == {"A-10", "A-11", "A-12", "A-13", "A-14", "A-20"}


def test_charged_tax_voids_and_line_regions_survive_a_round_trip(store: Store) -> None:
    doc = document("A-1", flag=F.REPOSTED)
    charged = tuple(attrs.evolve(line, charged=line.tax - Decimal("0.10")) for line in doc.lines)
    doc = attrs.evolve(
        doc, lines=charged, charged_tax=doc.total_tax - Decimal("0.20"), voided_at=T0
    )
    store.save([doc], [event(doc)])
    assert store.get("A-1") == doc


def test_a_journal_write_that_lost_a_race_writes_nothing(store: Store) -> None:
    lines = (JournalLine("01", "NY", "1190", Decimal("8.88"), Decimal("0.00")),)
    shares = (JournalShare("A-1", "P1", "01", dt.date(2026, 11, 20), Decimal("8.88")),)
    first = Journal("*", NOVEMBER, JournalStatus.GENERATED, 1, T0, lines, shares, Decimal("8.88"))
    store.save_journal(first, expected=None)
    assert store.journal(first.key) == first
    with pytest.raises(ConcurrentChange):
        store.save_journal(attrs.evolve(first, version=2), expected=None)
    posted = attrs.evolve(first, status=JournalStatus.POSTED, posted_at=T0, posted_by="cfo")
    store.save_journal(posted, expected=first)
    with pytest.raises(ConcurrentChange):
        store.save_journal(attrs.evolve(first, version=2), expected=first)
    assert store.journal(first.key) == posted
    assert [j.key for j in store.journals()] == [first.key]
    assert store.journals("01") == []


def test_certificates_round_trip_and_a_pull_back_replaces_the_customers(store: Store) -> None:
    pdf = b"%PDF-1.7 certificate"
    kept = Certificate(
        "C1", "G", ("NY", "PA"), signed="2026-01-01", expiry="2027-01-01", id="9", pdf=pdf
    )
    gone = Certificate("C1", "RESALE", ("NJ",), signed="2026-01-01", id="8", single_use=True)
    other = Certificate(
        "C2", "G", ("NY",), signed="2026-01-01", id="L-1", po_numbers=("PO-1", 'PO 2, "B"')
    )
    store.save_certificates([kept, gone], service="avatax", at=T0)
    store.save_certificates([other], service="local", at=T0)
    assert store.certificates("C1") == [gone, kept]
    assert store.certificate("9") == kept
    assert store.certificate("9").pdf == pdf  # type: ignore[union-attr]
    store.save_certificates([kept], service="avatax", at=T0, replace_customer="C1")
    assert store.certificates() == [kept, other]
    store.save_certificates([], service="avatax", at=T0, replace_customer="C2")
    assert store.certificates() == [kept]
    assert store.certificate("nope") is None


def test_a_single_use_certificate_goes_to_the_first_order_only(opener: Opener) -> None:
    first, second = opener(), opener()
    try:
        assert first.use_certificate("7", "O-1", T0) == "O-1"
        assert second.use_certificate("7", "O-2", T0) == "O-1"
        assert second.use_certificate("7", "O-1", T0) == "O-1"
        assert first.certificate_uses() == {"7": "O-1"}
    finally:
        first.close()
        second.close()


def test_customer_cards_keep_what_was_wanted_and_what_was_sent(store: Store) -> None:
    card = CustomerCard("C1", "DEFAULT", "Acme", "1 Main St", "New York", "NY", "10118")
    store.save_customer_card(card, T0, sent=False)
    assert store.customer_card("C1") == (card, None)
    assert store.customer_cards(unsynced=True) == [(card, None)]
    store.save_customer_card(card, T0, sent=True)
    assert store.customer_cards(unsynced=True) == []
    renamed = attrs.evolve(card, name="Acme Inc")
    store.save_customer_card(renamed, T0, sent=False)
    assert store.customer_card("C1") == (renamed, card)
    assert store.customer_cards() == [(renamed, card)]


def test_a_customer_note_is_kept_once_a_day_and_requests_are_remembered(store: Store) -> None:
    note = CustomerNote("C1", "TXEEXP", dt.date(2026, 11, 20), "reminder sent", T0)
    assert store.add_customer_note(note)
    assert not store.add_customer_note(attrs.evolve(note, text="again"))
    assert store.customer_notes("C1") == [note]
    assert store.customer_notes(note_type="OTHER") == []
    request = CertificateRequest(
        "C1",
        "tax@c1.example",
        ("NY",),
        ("RESALE",),
        link="https://x",
        id="5",
        service="avatax",
        sent_at=T0,
        status="Ready",
    )
    store.record_certificate_request(request)
    assert store.certificate_requests("C1") == [request]
    assert store.certificate_requests("C2") == []
    store.record_reminded("C1", ["NY", "PA"], dt.date(2026, 11, 20))
    store.record_reminded("C1", ["NY"], dt.date(2026, 11, 27))
    assert store.reminded() == {
        ("C1", "NY"): dt.date(2026, 11, 27),
        ("C1", "PA"): dt.date(2026, 11, 20),
    }
