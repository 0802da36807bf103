"""The sales-order lifecycle on the real local engine and a real SQLite file."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest
import structlog
from conftest import CHICAGO, NYC, PORTLAND, WAREHOUSE, invoice, line, order
from structlog.testing import capture_logs

from taxbridge import (
    Address,
    Customer,
    FinalTaxFlag,
    InvalidFieldError,
    InvalidTransition,
    LocalEngine,
    OfflineTable,
    PendCode,
    SQLiteStore,
    Stage,
    TaxBridge,
    UnknownCompanyError,
)
from taxbridge.config import default_config
from taxbridge.rates import shipped_rates

F = FinalTaxFlag


class TestEstimateStages:
    def test_entry_online_calculates_with_the_engine_and_flags_n(self, bridge, engine) -> None:
        doc = bridge.on_entry(order())
        assert doc.flag is F.CALCULATED
        assert doc.code == "O-1001"
        assert doc.total_tax == Decimal("8.88")  # 100.00 x 8.875% NYC, half-up
        assert {j.jurisdiction_type.value for j in doc.breakdown} == {"STA", "CIT", "STJ"}
        assert engine.calls == 1
        assert engine.requests[0].document_type.value == "SalesOrder"
        assert engine.requests[0].commit is False

    def test_entry_offline_uses_the_offline_table_and_flags_blank(self, engine, store) -> None:
        config = attrs.evolve(default_config(), online_at_entry=False)
        bridge = TaxBridge(config, engine, store)
        doc = bridge.on_entry(order())
        assert doc.flag is F.OFFLINE
        assert doc.total_tax == Decimal("8.88")
        assert doc.backend == "offline"
        assert engine.calls == 0

    def test_entry_degrades_to_the_offline_table_when_the_engine_is_down(
        self, bridge, engine
    ) -> None:
        engine.outage = True
        doc = bridge.on_entry(order())
        assert doc.flag is F.OFFLINE
        assert doc.total_tax == Decimal("8.88")
        assert "unavailable" in doc.last_log

    def test_pick_and_despatch_recalculate_a_short_pick(self, bridge) -> None:
        full = order(lines=(line(1, "100.00", "4"),))
        assert bridge.on_entry(full).total_tax == Decimal("8.88")
        short = order(lines=(line(1, "50.00", "2"),))
        picked = bridge.on_pick(short)
        assert picked.flag is F.CALCULATED
        assert picked.stage is Stage.PICK
        assert picked.total_tax == Decimal("4.44")
        assert bridge.on_despatch(short).stage is Stage.DESPATCH

    def test_offline_table_results_carry_the_blank_flag_at_every_stage(self, store) -> None:
        bridge = TaxBridge(default_config(), OfflineTable(shipped_rates()), store)
        assert bridge.on_entry(order()).flag is F.OFFLINE
        assert bridge.on_pending_check(order()).document.flag is F.OFFLINE
        picked = bridge.on_pick(order())
        assert (picked.flag, picked.total_tax) == (F.OFFLINE, Decimal("8.88"))
        assert bridge.on_despatch(order()).flag is F.OFFLINE
        invoiced = bridge.on_invoice(invoice("1", order()))
        assert (invoiced.flag, invoiced.total_tax) == (F.OFFLINE, Decimal("8.88"))
        assert "not posted" in invoiced.last_log
        assert bridge.store.queue() == []

    def test_pack_components_are_not_sent(self, bridge, engine) -> None:
        pack = order(
            lines=(line(1, "30.00"), line(1, "10.00", subline=1), line(1, "20.00", subline=2))
        )
        doc = bridge.on_entry(pack)
        assert [tax_line.number for tax_line in engine.requests[0].lines] == ["P1-1"]
        assert doc.total_amount == Decimal("30.00")


class TestExemptionAndNexus:
    def test_customer_with_a_master_tax_number_pays_no_tax(self, bridge, engine) -> None:
        exempt = Customer("C9", "Charity", tax_number="EX-123", entity_use_code="E")
        doc = bridge.on_entry(order(customer=exempt))
        assert doc.total_tax == Decimal("0")
        assert doc.total_exempt == Decimal("100.00")
        assert engine.requests[0].exemption_no == "EX-123"
        posted = bridge.on_invoice(invoice("1", order(customer=exempt)))
        assert posted.flag is F.POSTED
        assert posted.total_tax == 0

    def test_exempt_customer_offline_gets_no_tax_either(self, engine, store) -> None:
        bridge = TaxBridge(attrs.evolve(default_config(), online_at_entry=False), engine, store)
        doc = bridge.on_entry(order(customer=Customer("C9", tax_number="EX-123")))
        assert doc.flag is F.OFFLINE
        assert doc.total_tax == 0

    def test_ship_to_outside_nexus_is_excluded_without_an_engine_call(self, bridge, engine) -> None:
        doc = bridge.on_entry(order(ship_to=PORTLAND))
        assert doc.flag is F.EXCLUDED
        assert doc.total_tax == 0
        invoiced = bridge.on_invoice(invoice("77", order(ship_to=PORTLAND)))
        assert invoiced.flag is F.EXCLUDED
        assert engine.calls == 0
        assert bridge.store.queue_entry("A-77") is None

    def test_a_line_shipped_outside_nexus_is_zero_rated_and_the_rest_taxed(self, bridge) -> None:
        mixed = order(lines=(line(1), line(2, ship_to=PORTLAND)))
        doc = bridge.on_entry(mixed)
        assert doc.flag is F.CALCULATED
        assert [tax_line.tax for tax_line in doc.lines] == [Decimal("8.88"), Decimal("0.00")]


class TestPendingCheck:
    def test_a_clean_order_does_not_pend(self, bridge) -> None:
        check = bridge.on_pending_check(order())
        assert not check.pends
        assert check.document.flag is F.CALCULATED

    def test_an_address_the_engine_rejects_pends_for_tax_validation(self, bridge) -> None:
        no_rate = Address("1 Main St", "Schenectady", "NY", "12345")
        check = bridge.on_pending_check(order(ship_to=no_rate))
        assert [reason.code for reason in check.reasons] == [PendCode.TAX_VALIDATION]
        assert "has no tax jurisdiction" in check.reasons[0].message

    def test_a_mistyped_state_is_refused_before_anything_is_stored(self, bridge, engine) -> None:
        wrong_state = Address("1 Main St", "New York", "NJ", "10118")
        with pytest.raises(InvalidFieldError) as caught:
            bridge.on_pending_check(order(ship_to=wrong_state))
        assert (caught.value.field, caught.value.value) == ("postal_code", "10118")
        assert "is not a ZIP of NJ" in str(caught.value)
        assert "places it in NY" in str(caught.value)
        with pytest.raises(InvalidFieldError, match="is not a ZIP of NJ"):
            bridge.on_invoice(invoice("5099", order(ship_to=wrong_state)))
        assert bridge.store.documents() == []
        assert engine.calls == 0

    def test_a_state_that_does_not_exist_is_refused_and_lower_case_is_read_as_upper(self) -> None:
        with pytest.raises(InvalidFieldError) as caught:
            Address("1 Main St", "Nowhere", "ZZ", "12345")
        assert str(caught.value) == "Address.region: 'ZZ' is not a US state or territory"
        with pytest.raises(InvalidFieldError, match="is not a Canadian province"):
            Address("1 Main St", "Toronto", "NY", "M5V 2T6", country="CA")
        assert Address("822 Reed St", "Philadelphia", "pa", "19147", country="us") == WAREHOUSE

    def test_an_obsolete_line_tax_code_pends_naming_the_line(self, bridge) -> None:
        check = bridge.on_pending_check(order(lines=(line(1), line(2, tax_code="OLD0001"))))
        assert [(r.code, r.line) for r in check.reasons] == [(PendCode.OBSOLETE_TAX_CODE, "P1-2")]

    def test_pending_check_never_changes_a_posted_document(self, bridge, engine) -> None:
        bridge.on_entry(order())
        bridge.on_invoice(invoice("5", order()))
        before = bridge.inquiry("O-1001").document
        check = bridge.on_pending_check(order(lines=(line(1, "999.00"),)))
        assert check.document == before
        assert bridge.inquiry("A-5").document.flag is F.POSTED


class TestInvoice:
    def test_invoice_posts_by_document_number_and_flags_y(self, bridge, engine) -> None:
        doc = bridge.on_invoice(invoice("5001", order()))
        assert doc.code == "A-5001"
        assert doc.flag is F.POSTED
        request = engine.requests[-1]
        assert (request.document_type.value, request.commit) == ("SalesInvoice", True)
        assert engine.commit_counts["A-5001"] == 1
        assert [tax_line.number for tax_line in doc.lines] == ["P1-1"]

    def test_merged_orders_post_as_one_invoice_with_each_orders_lines(self, bridge, engine) -> None:
        first = order("1001", lines=(line(1, "100.00", process="P1"),))
        second = order("1002", ship_to=CHICAGO, lines=(line(1, "200.00", process="P2"),))
        bridge.on_entry(first)
        bridge.on_entry(second)
        doc = bridge.on_invoice(invoice("5002", first, second))
        assert doc.orders == ("1001", "1002")
        assert [tax_line.number for tax_line in doc.lines] == ["P1-1", "P2-1"]
        assert doc.total_tax == Decimal("8.88") + Decimal("20.50")  # NYC 8.875%, Chicago 10.25%
        assert engine.requests[-1].lines[1].ship_to == CHICAGO
        assert bridge.inquiry("O-1001").document.invoice_code == "A-5002"
        assert bridge.inquiry("O-1002").document.stage is Stage.INVOICE
        assert engine.commit_counts["A-5002"] == 1

    def test_engine_outage_at_invoice_flags_u_queues_and_returns_normally(
        self, bridge, engine
    ) -> None:
        engine.outage = True
        doc = bridge.on_invoice(invoice("5003", order()))
        assert doc.flag is F.FAILED
        assert doc.total_tax == Decimal("8.88")  # the offline estimate the invoice carries
        assert "connection refused" in doc.last_log
        entry = bridge.store.queue_entry("A-5003")
        assert entry is not None
        assert entry.retryable
        assert [d.code for d in bridge.unposted()] == ["A-5003"]
        assert bridge.inquiry("A-5003").last_log == doc.last_log

    def test_a_rejected_invoice_is_queued_as_needing_a_fix(self, bridge) -> None:
        bad = Address("1 Main St", "Schenectady", "NY", "12345")
        doc = bridge.on_invoice(invoice("5004", order(ship_to=bad)))
        assert doc.flag is F.FAILED
        entry = bridge.store.queue_entry("A-5004")
        assert entry is not None
        assert not entry.retryable

    def test_re_invoicing_a_posted_document_does_not_post_twice(self, bridge, engine) -> None:
        first = bridge.on_invoice(invoice("5005", order()))
        calls = engine.calls
        again = bridge.on_invoice(invoice("5005", order()))
        assert again == first
        assert engine.calls == calls
        assert engine.commit_counts["A-5005"] == 1

    def test_a_lost_response_is_found_by_lookup_and_never_committed_twice(
        self, bridge, engine
    ) -> None:
        engine.lose_responses = 1  # the engine commits, then the answer times out
        doc = bridge.on_invoice(invoice("5006", order()))
        assert doc.flag is F.FAILED
        summary = bridge.repost()
        assert summary.reposted == ("A-5006",)
        reposted = bridge.inquiry("A-5006").document
        assert reposted.flag is F.REPOSTED
        assert "found already committed" in reposted.last_log
        assert engine.commit_counts["A-5006"] == 1
        assert bridge.store.queue_entry("A-5006") is None

    def test_already_committed_at_the_engine_is_taken_from_the_engine(self, store) -> None:
        engine = LocalEngine()
        TaxBridge(default_config(), engine, store).on_invoice(invoice("5007", order()))
        # a second ERP server with its own (empty) store invoices the same document
        other = TaxBridge(default_config(), engine, SQLiteStore(store.path.with_name("b.db")))
        doc = other.on_invoice(invoice("5007", order()))
        assert doc.flag is F.POSTED
        assert engine.commit_counts["A-5007"] == 1

    def test_unknown_company_raises_naming_it_and_stores_nothing(self, bridge, engine) -> None:
        with pytest.raises(UnknownCompanyError, match="'99'"):
            bridge.on_invoice(invoice("5008", order(company="99")))
        with pytest.raises(UnknownCompanyError):
            bridge.on_entry(order(company="99"))
        assert bridge.store.get("A-5008") is None
        assert bridge.store.get("O-1001") is None
        assert engine.calls == 0


class TestRepostAndManual:
    def test_repost_after_outage_turns_u_into_r(self, bridge, engine) -> None:
        engine.outage = True
        bridge.on_invoice(invoice("6001", order()))
        summary = bridge.repost()
        assert summary.failed == ("A-6001",)
        entry = bridge.store.queue_entry("A-6001")
        assert entry.attempts == 2
        assert entry.next_attempt_at > entry.updated_at
        engine.outage = False
        assert bridge.repost("A-6001").reposted == ("A-6001",)
        doc = bridge.inquiry("A-6001")
        assert doc.document.flag is F.REPOSTED
        assert [e.flag_after for e in doc.events] == [F.FAILED, F.FAILED, F.REPOSTED]

    def test_needs_fix_entries_wait_for_an_operator(self, bridge) -> None:
        no_rate = Address("1 Main", "Schenectady", "NY", "12345")
        bridge.on_invoice(invoice("6002", order(ship_to=no_rate)))
        assert bridge.repost().skipped == ("A-6002",)

    def test_repost_of_a_posted_document_is_refused(self, bridge) -> None:
        bridge.on_invoice(invoice("6003", order()))
        with pytest.raises(InvalidTransition):
            bridge.repost("A-6003")

    def test_mark_manual_flags_m_with_who_and_why(self, bridge, engine) -> None:
        engine.outage = True
        bridge.on_invoice(invoice("6004", order()))
        doc = bridge.mark_manual("A-6004", "keyed into AvaTax by hand", "jane")
        assert doc.flag is F.MANUAL
        assert "jane" in doc.last_log
        assert bridge.store.queue_entry("A-6004") is None

    def test_mark_manual_is_refused_unless_u(self, bridge) -> None:
        bridge.on_invoice(invoice("6005", order()))
        with pytest.raises(InvalidTransition) as caught:
            bridge.mark_manual("A-6005", "why", "jane")
        assert str(caught.value) == (
            "A-6005: mark manual refused: only a U document can be marked manual; A-6005 is Y"
        )

    def test_flag_messages_show_letters_and_what_is_allowed(self, bridge) -> None:
        bridge.on_invoice(invoice("6006", order()))
        with pytest.raises(InvalidTransition) as caught:
            bridge.repost("A-6006")
        assert "only a U document can be reposted; A-6006 is Y" in str(caught.value)
        assert "FinalTaxFlag" not in str(caught.value)


class TestRecalAndInquiry:
    def test_recalculate_only_blank_or_n(self, bridge, engine) -> None:
        engine.outage = True
        bridge.on_entry(order())
        engine.outage = False
        assert bridge.recalculate("O-1001").flag is F.CALCULATED
        bridge.on_invoice(invoice("7001", order()))
        with pytest.raises(InvalidTransition, match="Recal"):
            bridge.recalculate("A-7001")

    def test_an_invoiced_order_is_history_and_is_not_recalculated(self, bridge) -> None:
        bridge.on_entry(order("1054"))
        bridge.on_invoice(invoice("9054", order("1054")))
        before = bridge.inquiry("O-1054").document
        assert before.invoice_code == "A-9054"
        with pytest.raises(InvalidTransition) as caught:
            bridge.recalculate("O-1054")
        assert "O-1054 is invoiced as A-9054" in str(caught.value)
        short = order("1054", lines=(line(1, "10.00"),))
        assert bridge.on_pick(short) == before  # its link and its figures never change
        assert bridge.inquiry("O-1054").document == before

    def test_inquiry_shows_breakdown_flag_and_log(self, bridge) -> None:
        bridge.on_entry(order())
        found = bridge.inquiry("O-1001")
        assert found.can_recalculate
        assert found.document.breakdown
        assert found.last_log.startswith(f"calculated by {bridge.backend.name}")
        assert [e.stage for e in found.events] == [Stage.ENTRY]


class TestLogging:
    def test_one_event_per_stage_with_code_flags_backend_and_elapsed(self, bridge) -> None:
        structlog.reset_defaults()
        with capture_logs() as logs:
            bridge.on_entry(order())
            bridge.on_invoice(invoice("8001", order()))
        # stage events carry the stage; a backend's own transport events (debug) do not
        events = [entry for entry in logs if "stage" in entry]
        assert [entry["event"] for entry in events] == [
            "taxbridge.entry.calculated",
            "taxbridge.invoice.posted",
        ]
        posted = events[1]
        assert posted["code"] == "A-8001"
        assert (posted["flag_before"], posted["flag_after"]) == (None, "Y")
        assert posted["backend"] == bridge.backend.name
        assert posted["elapsed_ms"] >= 0

    def test_the_redaction_processor_hides_credentials_at_any_depth(self) -> None:
        from taxbridge.logs import REDACTED, redact_secrets

        event = {"event": "x", "license_key": "s3cret", "request": {"Authorization": "Basic abc"}}
        out = redact_secrets(None, "debug", event)
        assert out["license_key"] == REDACTED
        assert out["request"]["Authorization"] == REDACTED
        assert "s3cret" not in repr(out)


def test_ship_from_is_sent_as_the_warehouse(bridge, engine) -> None:
    bridge.on_entry(order())
    assert engine.requests[0].ship_from == WAREHOUSE
    assert engine.requests[0].ship_to == NYC
