"""Claims and credits: pending check, inquiry, claim invoicing (allocated and not), pro rata
credits to the cent, failure and reposting, credit from invoice.

Every test runs on a real SQLite file and on both engines (conftest ``engine``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from conftest import CHICAGO, DAY, NYC, PORTLAND, WAREHOUSE, invoice, line, order

from taxbridge import (
    Address,
    Claim,
    ClaimLine,
    Customer,
    DocumentNotFoundError,
    InvalidFieldError,
)
from taxbridge import FinalTaxFlag as F
from taxbridge.models import DocumentKind, DocumentType, Exemption, PendCode, Stage

LATER = DAY + dt.timedelta(days=40)
BAD = Address(
    "1 Main St", "Schenectady", "NY", "12345"
)  # a ZIP the engine has no rate for: rejected


def _claim(number: str = "7001", *lines: ClaimLine, **kwargs: object) -> Claim:
    """An unallocated claim of customer C001 returned from New York, unless told otherwise."""
    kwargs.setdefault("ship_from", WAREHOUSE)
    kwargs.setdefault("ship_to", NYC)
    return Claim(
        number=number,
        company="01",
        customer=kwargs.pop("customer", Customer("C001", "Acme")),  # type: ignore[arg-type]
        claim_date=kwargs.pop("claim_date", LATER),  # type: ignore[arg-type]
        lines=lines or (ClaimLine(1, "SKU-1", Decimal(1), Decimal("100.00")),),
        **kwargs,  # type: ignore[arg-type]
    )


def _posted_invoice(bridge, number: str = "1001", *lines, customer=None):
    """A posted invoice of one order (two lines of $100 and $10 to New York by default)."""
    the_order = order(
        str(int(number) + 5000),
        lines=lines or (line(1, "100.00"), line(2, "10.00")),
        customer=customer,
    )
    doc = bridge.on_invoice(invoice(number, the_order))
    assert doc.flag is F.POSTED
    return doc


class TestAllocated:
    def test_crediting_every_line_returns_exactly_the_invoice_tax(self, bridge, engine) -> None:
        sale = _posted_invoice(bridge)
        claim = bridge.credit_from_invoice(sale.code, number="9001", claim_date=LATER)
        credit = bridge.on_claim_invoice(claim)
        assert credit.code == "B-9001"
        assert credit.flag is F.POSTED
        assert credit.kind is DocumentKind.CREDIT
        assert credit.document_type is DocumentType.RETURN_INVOICE
        assert credit.total_tax == -sale.total_tax
        assert [x.tax for x in credit.lines] == [-x.tax for x in sale.lines]
        assert sum((x.tax for x in credit.breakdown), Decimal(0)) == -sale.total_tax
        assert engine.commit_counts["B-9001"] == 1

    def test_the_credit_is_taxed_at_the_invoice_date_and_addresses(self, bridge, engine) -> None:
        sale = _posted_invoice(bridge)
        claim = _claim(
            "9002",
            ClaimLine(1, "SKU-9", Decimal(1), Decimal("20.00")),  # not a line of the invoice
            invoice_code=sale.code,
            ship_from=None,
            ship_to=None,
        )
        credit = bridge.on_claim_invoice(claim)
        sent = credit.request
        assert sent.date == LATER
        assert sent.tax_date == DAY  # the original invoice's date, as an override
        assert "A-1001" in sent.tax_date_reason
        assert (sent.ship_from, sent.ship_to) == (WAREHOUSE, NYC)
        assert credit.tax_date == DAY
        assert credit.total_tax == Decimal("-1.78")  # 20.00 at New York's 8.875%

    def test_the_exemption_is_the_one_that_applied_to_the_sale(self, bridge, engine) -> None:
        bridge.add_exemption(Exemption("C001", "NY", dt.date(2026, 1, 1), exemption_no="EX-1"))
        sale = _posted_invoice(bridge)
        assert sale.request.exemption_no == "EX-1"
        assert sale.total_tax == Decimal("0.00")
        bridge.remove_exemption("C001", "NY", dt.date(2026, 1, 1))  # certificate gone since
        claim = _claim(
            "9003",
            ClaimLine(1, "SKU-1", Decimal(1), Decimal("50.00")),
            invoice_code=sale.code,
        )
        credit = bridge.on_claim_invoice(claim)
        assert credit.request.exemption_no == "EX-1"
        assert credit.total_tax == Decimal("0.00")

    def test_a_customer_exempt_only_after_the_sale_still_gets_the_tax_back(
        self, bridge, engine
    ) -> None:
        sale = _posted_invoice(bridge)
        bridge.add_exemption(Exemption("C001", "NY", dt.date(2026, 1, 1), exemption_no="EX-2"))
        credit = bridge.on_claim_invoice(bridge.credit_from_invoice(sale.code, number="9004"))
        assert credit.request.exemption_no is None
        assert credit.total_tax == -sale.total_tax

    def test_partial_credits_are_pro_rata_and_add_up_to_what_was_charged(
        self, bridge, engine
    ) -> None:
        sale = _posted_invoice(bridge, "1002", line(1, "10.00"))
        charged = sale.lines[0]
        assert charged.tax == Decimal("0.89")  # 10.00 x 8.875% = 0.8875
        first = bridge.on_claim_invoice(
            _claim(
                "9005",
                ClaimLine(1, "SKU-1", Decimal("0.5"), Decimal("5.00"), invoice_line=charged.number),
                invoice_code=sale.code,
            )
        )
        assert first.total_tax == Decimal("-0.45")  # 0.89 x 5/10 = 0.445, half up
        rest = bridge.on_claim_invoice(
            _claim(
                "9006",
                ClaimLine(1, "SKU-1", Decimal("0.5"), Decimal("5.00"), invoice_line=charged.number),
                invoice_code=sale.code,
            )
        )
        assert rest.total_tax == Decimal("-0.44")  # what is left: 0.89 - 0.45
        assert first.total_tax + rest.total_tax == -charged.tax
        assert engine.commit_counts["B-9005"] == engine.commit_counts["B-9006"] == 1

    def test_part_quantities_of_several_lines_to_the_cent(self, bridge, engine) -> None:
        sale = _posted_invoice(bridge, "1003", line(1, "33.33"), line(2, "66.67"))
        first, second = sale.lines
        claim = _claim(
            "9007",
            ClaimLine(1, "SKU-1", Decimal(1), Decimal("11.11"), invoice_line=first.number),
            ClaimLine(2, "SKU-2", Decimal(1), Decimal("66.67"), invoice_line=second.number),
            invoice_code=sale.code,
        )
        credit = bridge.on_claim_invoice(claim)
        expected_first = (first.tax * Decimal("11.11") / first.amount).quantize(Decimal("0.01"))
        assert [x.tax for x in credit.lines] == [-expected_first, -second.tax]

    def test_crediting_more_than_is_left_on_a_line_is_refused(self, bridge, engine, store) -> None:
        sale = _posted_invoice(bridge)
        bridge.on_claim_invoice(bridge.credit_from_invoice(sale.code, number="9008"))
        again = _claim(
            "9009",
            ClaimLine(1, "SKU-1", Decimal(1), Decimal("0.01"), invoice_line=sale.lines[0].number),
            invoice_code=sale.code,
        )
        with pytest.raises(InvalidFieldError, match=r"lines\[0\].amount.*0.00 left to credit"):
            bridge.on_claim_invoice(again)
        assert store.get("B-9009") is None

    def test_an_unknown_invoice_or_line_is_refused(self, bridge, engine) -> None:
        with pytest.raises(DocumentNotFoundError):
            bridge.on_claim_invoice(_claim("9010", invoice_code="A-404"))
        sale = _posted_invoice(bridge)
        bad_line = _claim(
            "9011",
            ClaimLine(1, "SKU-1", Decimal(1), Decimal("1.00"), invoice_line="P1-99"),
            invoice_code=sale.code,
        )
        with pytest.raises(
            InvalidFieldError, match=r"invoice_line.*'P1-99' is not a line of A-1001"
        ):
            bridge.on_claim_invoice(bad_line)
        other = _claim("9012", invoice_code=sale.code, customer=Customer("C999"))
        with pytest.raises(InvalidFieldError, match="customer.code"):
            bridge.on_claim_invoice(other)

    def test_credit_from_invoice_takes_all_or_selected_lines_and_what_is_left(
        self, bridge, engine
    ) -> None:
        sale = _posted_invoice(bridge)
        first, second = (x.number for x in sale.lines)
        one = bridge.credit_from_invoice(sale.code, [second], number="9013", claim_date=LATER)
        assert one.invoice_code == sale.code
        assert [(x.invoice_line, x.amount) for x in one.lines] == [(second, Decimal("10.00"))]
        assert one.customer.code == "C001"
        bridge.on_claim_invoice(one)
        rest = bridge.credit_from_invoice(sale.code, number="9014")
        assert [x.invoice_line for x in rest.lines] == [first]  # the second is fully credited
        with pytest.raises(InvalidFieldError, match="is not a line of"):
            bridge.credit_from_invoice(sale.code, ["nope"])
        bridge.on_claim_invoice(rest)
        with pytest.raises(InvalidFieldError, match="nothing left to credit"):
            bridge.credit_from_invoice(sale.code)
        with pytest.raises(InvalidFieldError, match="is not an invoice"):
            bridge.credit_from_invoice("B-9013")


class TestUnallocated:
    def test_calculated_offline_first_then_the_engine_figure_replaces_it(
        self, bridge, engine
    ) -> None:
        credit = bridge.on_claim_invoice(_claim("8001"))
        assert credit.flag is F.POSTED
        assert credit.total_tax == Decimal("-8.88")
        assert credit.tax_date in (None, LATER)
        assert "offline estimate" in credit.last_log
        assert "replaces the offline figure" in credit.last_log
        assert credit.request.tax_date is None
        assert engine.commit_counts["B-8001"] == 1

    def test_the_customers_exemption_applies(self, bridge, engine) -> None:
        bridge.add_exemption(Exemption("C001", "NY", dt.date(2026, 1, 1), exemption_no="EX-3"))
        credit = bridge.on_claim_invoice(_claim("8002"))
        assert credit.request.exemption_no == "EX-3"
        assert credit.total_tax == Decimal("0.00")

    def test_a_claim_without_addresses_or_with_lines_of_no_invoice_is_refused(self) -> None:
        with pytest.raises(InvalidFieldError, match="Claim.ship_to"):
            _claim("8003", ship_to=None)
        with pytest.raises(InvalidFieldError, match="needs the claim allocated"):
            _claim("8004", ClaimLine(1, "X", Decimal(1), Decimal(1), invoice_line="P1-1"))
        with pytest.raises(InvalidFieldError, match="ClaimLine.amount"):
            ClaimLine(1, "X", Decimal(1), Decimal(0))
        with pytest.raises(InvalidFieldError, match="repeats a line number"):
            _claim("8005", ClaimLine(1, "X", 1, 1), ClaimLine(1, "Y", 1, 1))


class TestFlagsAndQueue:
    def test_a_failed_posting_is_u_and_queued_then_reposted_once(
        self, bridge, engine, store
    ) -> None:
        sale = _posted_invoice(bridge)
        engine.outage = True
        credit = bridge.on_claim_invoice(bridge.credit_from_invoice(sale.code, number="9020"))
        assert credit.flag is F.FAILED
        assert store.queue_entry("B-9020") is not None
        assert credit.total_tax == -sale.total_tax  # the offline figure with the same overrides
        engine.outage = False
        assert bridge.repost().reposted == ("B-9020",)
        after = bridge.inquiry("B-9020").document
        assert after.flag is F.REPOSTED
        assert after.total_tax == -sale.total_tax
        assert engine.commit_counts["B-9020"] == 1

    def test_invoicing_a_claim_twice_posts_it_once(self, bridge, engine) -> None:
        first = bridge.on_claim_invoice(_claim("8010"))
        again = bridge.on_claim_invoice(_claim("8010"))
        assert again == first
        assert engine.commit_counts["B-8010"] == 1

    def test_a_u_credit_can_be_marked_manual(self, bridge, engine) -> None:
        engine.outage = True
        bridge.on_claim_invoice(_claim("8011"))
        engine.outage = False
        assert bridge.mark_manual("B-8011", "keyed in AvaTax", "jane").flag is F.MANUAL


class TestPendingAndInquiry:
    def test_pending_check_without_update_stores_nothing(self, bridge, engine, store) -> None:
        check = bridge.on_claim_pending(_claim("8020"))
        assert not check.pends
        assert check.document is None
        assert store.get("B-8020") is None
        assert engine.commit_counts == {}

    def test_pending_check_with_update_stores_the_tax_on_the_claim(
        self, bridge, engine, store
    ) -> None:
        check = bridge.on_claim_pending(_claim("8021"), update=True)
        assert not check.pends
        doc = store.get("B-8021")
        assert doc.flag is F.CALCULATED
        assert doc.stage is Stage.CLAIM_PENDING
        assert doc.document_type is DocumentType.RETURN_ORDER
        assert doc.total_tax == Decimal("-8.88")
        assert engine.commit_counts == {}

    def test_a_claim_the_engine_rejects_pends_for_tax_validation(self, bridge, engine) -> None:
        for update in (False, True):
            check = bridge.on_claim_pending(_claim("8022", ship_to=BAD), update=update)
            assert check.pends
            assert check.reasons[0].code is PendCode.TAX_VALIDATION

    def test_inquiry_calculates_and_updates_but_never_posts(self, bridge, engine, store) -> None:
        shown = bridge.claim_inquiry(_claim("8030"))
        assert shown.document.flag is F.CALCULATED
        assert shown.document.stage is Stage.CLAIM_INQUIRY
        assert shown.document.total_tax == Decimal("-8.88")
        assert engine.commit_counts == {}
        bridge.on_claim_invoice(_claim("8030"))
        again = bridge.claim_inquiry(_claim("8030"))  # posted: shown as stored, not changed
        assert again.document.flag is F.POSTED
        assert engine.commit_counts["B-8030"] == 1

    def test_an_allocated_claims_inquiry_uses_the_invoice(self, bridge, engine) -> None:
        sale = _posted_invoice(bridge, "1004", line(1, "100.00"), customer=None)
        claim = bridge.credit_from_invoice(sale.code, number="9030")
        shown = bridge.claim_inquiry(claim).document
        assert shown.total_tax == -sale.total_tax
        assert shown.request.tax_date == DAY
        assert engine.commit_counts.get("B-9030", 0) == 0


def test_a_credit_shipped_outside_nexus_is_excluded(bridge, engine) -> None:
    credit = bridge.on_claim_invoice(_claim("8040", ship_to=PORTLAND))
    assert credit.flag is F.EXCLUDED
    assert credit.total_tax == Decimal("0.00")
    assert engine.commit_counts == {}


def test_a_chicago_return_is_taxed_at_chicagos_rate(bridge, engine) -> None:
    credit = bridge.on_claim_invoice(_claim("8041", ship_to=CHICAGO))
    assert credit.total_tax < 0
