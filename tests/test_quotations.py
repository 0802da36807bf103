"""Customer quotations (seed 004): each branch of each fallback chain, and that quoting stores
and posts nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs
import pytest
from conftest import CHICAGO, NYC, PORTLAND, WAREHOUSE

from taxbridge import (
    Address,
    InvalidFieldError,
    Quotation,
    QuotationAccount,
    QuotationLine,
    TaxBridge,
    Warehouse,
)
from taxbridge.config import CompanyMapping, QuotationSettings, default_config
from taxbridge.models import DocumentType
from taxbridge.rules import Context, quotation_request

TODAY = dt.date(2026, 11, 21)
ORG = Address("1 Org Plaza", "Philadelphia", "PA", "19103")
DEPOT = Address("10 Depot Rd", "Newark", "NJ", "07102")
ICP = Address("20 ICP Way", "Jersey City", "NJ", "07302")
CONFIG = attrs.evolve(default_config(), quotations=QuotationSettings(org_address=ORG))
CONTEXT = Context(nexus=lambda company: CONFIG.nexus_regions(company))


def _account(**kwargs: object) -> QuotationAccount:
    kwargs.setdefault("shipping_address", CHICAGO)
    return QuotationAccount(name=str(kwargs.pop("name", "ACME-ACCT")), **kwargs)  # type: ignore[arg-type]


def _line(number: int = 1, **kwargs: object) -> QuotationLine:
    kwargs.setdefault("quantity", Decimal(2))
    kwargs.setdefault("customer_total_price", Decimal("100.00"))
    return QuotationLine(line_number=number, **kwargs)  # type: ignore[arg-type]


def _quote(*lines: QuotationLine, **kwargs: object) -> Quotation:
    return Quotation(quote_number="Q-100", lines=lines or (_line(),), **kwargs)  # type: ignore[arg-type]


def _request(quotation: Quotation, config=CONFIG):
    return quotation_request(config, quotation, CONTEXT, TODAY)


class TestDocument:
    def test_code_type_date_company_and_currency(self) -> None:
        request = _request(_quote(customer_account=_account(), currency="CAD"))
        assert request.code == "Q-100"
        assert request.document_type is DocumentType.SALES_ORDER  # never saved by the engine
        assert not request.commit
        assert request.date == TODAY
        assert request.company_code == "DEFAULT"  # the first company's when not set
        assert request.currency == "CAD"

    def test_the_company_code_comes_from_the_settings(self) -> None:
        config = attrs.evolve(
            CONFIG,
            companies=(*CONFIG.companies, CompanyMapping("Q", "QUOTES")),
            quotations=QuotationSettings(company_code="QUOTES", org_address=ORG),
        )
        assert _request(_quote(customer_account=_account()), config).company_code == "QUOTES"


class TestCustomerCode:
    def test_the_override_bill_to_account_wins(self) -> None:
        quotation = _quote(
            customer_account=_account(),
            override_bill_to_account=_account(name="BILL-TO"),
            prospect_company="Prospect Inc",
        )
        assert _request(quotation).customer_code == "BILL-TO"

    def test_then_the_customer_account(self) -> None:
        quotation = _quote(customer_account=_account(), prospect_company="Prospect Inc")
        assert _request(quotation).customer_code == "ACME-ACCT"

    def test_then_the_prospect_company(self) -> None:
        quotation = _quote(prospect_company="Prospect Inc", prospect_address=NYC)
        assert _request(quotation).customer_code == "Prospect Inc"

    def test_none_of_them_is_refused(self) -> None:
        with pytest.raises(InvalidFieldError, match="Quotation.customer_account"):
            _request(_quote(prospect_address=NYC))


class TestExemption:
    def test_override_ship_to_uses_the_customer_accounts_exemption_reason(self) -> None:
        quotation = _quote(
            customer_account=_account(tax_exemption_reason="G"), override_ship_to=NYC
        )
        request = _request(quotation)
        assert (request.entity_use_code, request.exemption_no) == ("G", "G")

    def test_the_customer_accounts_exemption_reason(self) -> None:
        request = _request(_quote(customer_account=_account(tax_exemption_reason="E")))
        assert (request.entity_use_code, request.exemption_no) == ("E", "E")

    def test_override_ship_to_without_an_account_carries_none(self) -> None:
        quotation = _quote(prospect_company="P", override_ship_to=NYC)
        request = _request(quotation)
        assert (request.entity_use_code, request.exemption_no) == (None, None)

    def test_a_prospect_carries_none(self) -> None:
        request = _request(_quote(prospect_company="P", prospect_address=NYC))
        assert not request.exempt


class TestVatNumber:
    def test_override_ship_to_uses_the_customer_accounts_registration(self) -> None:
        quotation = _quote(
            customer_account=_account(tax_registration_number="VAT-A"),
            override_ship_to=NYC,
            prospect_tax_registration_number="VAT-P",
        )
        assert _request(quotation).business_identification_no == "VAT-A"

    def test_the_customer_accounts_registration(self) -> None:
        quotation = _quote(customer_account=_account(tax_registration_number="VAT-A"))
        assert _request(quotation).business_identification_no == "VAT-A"

    def test_then_the_prospects_registration(self) -> None:
        quotation = _quote(
            prospect_company="P", prospect_address=NYC, prospect_tax_registration_number="VAT-P"
        )
        assert _request(quotation).business_identification_no == "VAT-P"

    def test_none_when_nothing_is_given(self) -> None:
        quotation = _quote(prospect_company="P", prospect_address=NYC)
        assert _request(quotation).business_identification_no is None


class TestShipFrom:
    def test_the_warehouse_address(self) -> None:
        account = _account(warehouse=Warehouse("W1", address=DEPOT, icp_address=ICP))
        assert _request(_quote(customer_account=account)).ship_from == DEPOT

    def test_the_icp_of_a_warehouse_without_an_address(self) -> None:
        account = _account(warehouse=Warehouse("W1", icp_address=ICP))
        assert _request(_quote(customer_account=account)).ship_from == ICP

    def test_the_org_address_when_the_account_has_no_warehouse(self) -> None:
        assert _request(_quote(customer_account=_account())).ship_from == ORG

    def test_the_org_address_without_an_account(self) -> None:
        quotation = _quote(prospect_company="P", prospect_address=NYC)
        assert _request(quotation).ship_from == ORG

    def test_a_warehouse_with_no_address_and_no_icp_is_refused(self) -> None:
        account = _account(warehouse=Warehouse("W9"))
        with pytest.raises(InvalidFieldError, match="Warehouse.icp_address.*'W9'"):
            _request(_quote(customer_account=account))

    def test_no_org_address_configured_is_refused(self) -> None:
        with pytest.raises(InvalidFieldError, match="QuotationSettings.org_address"):
            _request(_quote(customer_account=_account()), default_config())


class TestShipTo:
    def test_the_override_ship_to(self) -> None:
        quotation = _quote(customer_account=_account(), override_ship_to=NYC)
        assert _request(quotation).ship_to == NYC

    def test_the_customer_accounts_shipping_address(self) -> None:
        quotation = _quote(customer_account=_account(), prospect_address=NYC)
        assert _request(quotation).ship_to == CHICAGO

    def test_the_prospect_address(self) -> None:
        quotation = _quote(prospect_company="P", prospect_address=NYC)
        assert _request(quotation).ship_to == NYC

    def test_no_address_at_all_is_refused(self) -> None:
        with pytest.raises(InvalidFieldError, match="Quotation.override_ship_to"):
            _request(_quote(prospect_company="P"))


class TestLines:
    def test_item_code_is_the_line_number_and_amount_the_total_price(self) -> None:
        (sent,) = _request(_quote(_line(7), customer_account=_account())).lines
        assert (sent.number, sent.item_code) == ("7", "7")
        assert (sent.quantity, sent.amount) == (Decimal(2), Decimal("100.00"))

    def test_description_is_the_item_number_else_the_quote_description(self) -> None:
        quotation = _quote(
            _line(1, item_number="ITEM-1", item_quote_description="A widget"),
            _line(2, item_quote_description="A custom widget"),
            customer_account=_account(),
        )
        assert [x.description for x in _request(quotation).lines] == ["ITEM-1", "A custom widget"]

    def test_the_override_tax_code_wins_over_the_tax_code(self) -> None:
        quotation = _quote(
            _line(1, avalara_tax_code="P0000000", override_avalara_tax_code="PC040100"),
            _line(2, avalara_tax_code="PB100000"),
            customer_account=_account(),
        )
        assert [x.tax_code for x in _request(quotation).lines] == ["PC040100", "PB100000"]

    def test_a_discount_above_zero_is_sent_and_every_line_takes_part(self) -> None:
        quotation = _quote(
            _line(1), _line(2), customer_account=_account(), total_price_discount=Decimal("20")
        )
        request = _request(quotation)
        assert request.discount == Decimal("20")
        assert all(x.discounted for x in request.lines)

    def test_no_discount_means_none_sent_and_no_line_discounted(self) -> None:
        for discount in (Decimal(0), Decimal("-5")):
            quotation = _quote(customer_account=_account(), total_price_discount=discount)
            request = _request(quotation)
            assert request.discount == 0
            assert not any(x.discounted for x in request.lines)

    def test_a_line_ship_to_is_its_own_else_the_quotations(self) -> None:
        quotation = _quote(
            _line(1, ship_to=NYC), _line(2), _line(3, ship_to=CHICAGO), customer_account=_account()
        )
        request = _request(quotation)
        assert request.ship_to == CHICAGO
        assert [x.ship_to for x in request.lines] == [NYC, None, None]  # None: the document's

    def test_a_line_shipped_outside_nexus_is_excluded(self) -> None:
        quotation = _quote(_line(1, ship_to=PORTLAND), _line(2), customer_account=_account())
        assert [x.excluded for x in _request(quotation).lines] == [True, False]


class TestQuote:
    @pytest.fixture
    def quoting(self, engine, store) -> TaxBridge:
        config = attrs.evolve(default_config(), quotations=QuotationSettings(org_address=WAREHOUSE))
        return TaxBridge(config, engine, store)

    def test_quoting_stores_nothing_and_posts_nothing(self, quoting, engine, store) -> None:
        quotation = _quote(customer_account=_account(shipping_address=NYC))
        quote = quoting.quote(quotation)
        assert quote.source == "engine"
        assert quote.result.total_tax == Decimal("8.88")
        assert store.documents() == []
        assert store.events("Q-100") == []
        assert store.queue() == []
        assert engine.commit_counts == {}
        assert quoting.quote(quotation).result == quote.result  # again: same, still nothing
        fake = getattr(engine, "fake", None)
        if fake is not None:
            assert fake.documents == {}  # AvaTax saved nothing either
            assert {r.body["type"] for r in fake.requests if r.body} == {"SalesOrder"}

    def test_the_discount_lowers_the_tax(self, quoting, engine) -> None:
        quotation = _quote(
            customer_account=_account(shipping_address=NYC), total_price_discount=Decimal("50")
        )
        assert quoting.quote(quotation).result.total_tax == Decimal("4.44")

    def test_an_engine_outage_quotes_from_the_offline_table(self, quoting, engine, store) -> None:
        engine.outage = True
        quote = quoting.quote(_quote(customer_account=_account(shipping_address=NYC)))
        assert quote.source == "offline"
        assert "engine unavailable" in quote.note
        assert store.documents() == []

    def test_a_quote_shipped_outside_nexus_is_zero_without_an_engine_call(
        self, quoting, engine
    ) -> None:
        quote = quoting.quote(_quote(customer_account=_account(shipping_address=PORTLAND)))
        assert quote.source == "excluded"
        assert quote.result.total_tax == 0
        assert engine.requests == []


def test_the_config_reads_quotation_settings() -> None:
    from taxbridge.config import parse_config_text

    text = """
[[companies]]
erp_company = "01"
company_code = "DEFAULT"
[quotations]
company_code = "DEFAULT"
org_address = { line1 = "1 Org Plaza", city = "Philadelphia", region = "PA", postal_code = "19103" }
"""
    config = parse_config_text(text, source="t.toml")
    assert config.quotations == QuotationSettings("DEFAULT", ORG)
    from taxbridge.errors import ConfigError

    with pytest.raises(ConfigError, match="quotations.company_code"):
        parse_config_text(
            text.replace('company_code = "DEFAULT"\n[', 'company_code = "X"\n['), source="t"
        )
    with pytest.raises(ConfigError, match="quotations.org_address.postal_code"):
        parse_config_text(text.replace('"19103"', '"ABC"'), source="t.toml")
