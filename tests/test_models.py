"""Bad ERP input fails where it enters, naming the field and the value; nothing is stored."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest
from conftest import DAY, NYC, WAREHOUSE, invoice, line, order

from taxbridge import Address, Customer, InvalidFieldError, Invoice, Order, OrderLine
from taxbridge.models import Certificate, Exemption, TaxLine


class TestOrderLine:
    def test_negative_quantity_names_the_field(self) -> None:
        with pytest.raises(InvalidFieldError) as caught:
            OrderLine("P1", 1, "SKU", quantity="-2", amount="10.00")
        assert (caught.value.owner, caught.value.field, caught.value.value) == (
            "OrderLine",
            "quantity",
            "-2",
        )
        assert str(caught.value) == "OrderLine.quantity: '-2' must not be negative"

    @pytest.mark.parametrize("field", ["amount", "quantity", "discount"])
    def test_amounts_and_quantities_of_ten_trillion_and_more_are_refused(self, field: str) -> None:
        values = {"quantity": "1", "amount": "10", field: "1e28"}
        with pytest.raises(InvalidFieldError) as caught:
            OrderLine("P1", 1, "SKU", **values)  # type: ignore[arg-type]
        assert (caught.value.field, caught.value.value) == (field, "1e28")
        assert "too large" in str(caught.value)
        assert OrderLine("P1", 1, "SKU", quantity=1, amount="9999999999999.99").amount

    def test_float_amount_is_refused(self) -> None:
        with pytest.raises(InvalidFieldError, match=r"OrderLine.amount: 19.99 is a float"):
            OrderLine("P1", 1, "SKU", quantity=1, amount=19.99)  # type: ignore[arg-type]

    def test_discount_above_amount_is_refused(self) -> None:
        with pytest.raises(InvalidFieldError, match="OrderLine.discount"):
            OrderLine("P1", 1, "SKU", quantity=1, amount="5", discount="6")

    @pytest.mark.parametrize(
        ("field", "value"), [("line_number", 0), ("line_number", "1"), ("subline", -1)]
    )
    def test_line_numbers_must_be_whole_and_positive(self, field: str, value: object) -> None:
        kwargs = {"line_number": 1, "subline": 0, field: value}
        with pytest.raises(InvalidFieldError, match=f"OrderLine.{field}"):
            OrderLine("P1", item_code="SKU", quantity=1, amount="1", **kwargs)  # type: ignore[arg-type]

    def test_strings_and_ints_become_exact_decimals(self) -> None:
        made = OrderLine("P1", 1, "SKU", quantity=3, amount=" 10.10 ")
        assert (str(made.quantity), str(made.amount)) == ("3", "10.10")
        assert made.engine_number == "P1-1"


class TestEngineLineOfAnOrderLine:
    """An order line's engine line is built without re-running the checks the order line has
    passed; it must equal the checked construction field for field."""

    @pytest.mark.parametrize(
        ("tax_code", "ship_to", "excluded", "ref1"),
        [("P0000000", None, False, ""), ("FR020100", NYC, True, "PUB")],
    )
    def test_equals_the_checked_construction(
        self, tax_code: str, ship_to: Address | None, excluded: bool, ref1: str
    ) -> None:
        made = line(3, "25.98", "2", description=" Widget ", discount=Decimal("1"), freight=True)
        engine_line = TaxLine.from_order_line(made, tax_code, ship_to, excluded, ref1)
        checked = TaxLine(
            "P1-3",
            Decimal("25.98"),
            Decimal("2"),
            "SKU-3",
            "Widget",
            Decimal("1"),
            tax_code,
            True,
            ship_to,
            excluded,
            ref1,
        )
        assert attrs.asdict(engine_line) == attrs.asdict(checked)
        assert engine_line == checked

    def test_a_value_not_plainly_valid_is_refused_naming_the_field(self) -> None:
        with pytest.raises(InvalidFieldError, match="TaxLine.excluded"):
            TaxLine.from_order_line(line(), "P0000000", None, "yes")  # type: ignore[arg-type]


class TestOrder:
    def test_missing_ship_to_is_refused(self) -> None:
        with pytest.raises(InvalidFieldError, match="Order.ship_to is missing"):
            Order("1", "01", Customer("C1"), DAY, WAREHOUSE, None, (line(),))  # type: ignore[arg-type]

    def test_an_order_needs_a_line(self) -> None:
        with pytest.raises(InvalidFieldError, match="Order.lines"):
            Order("1", "01", Customer("C1"), DAY, WAREHOUSE, NYC, ())

    def test_duplicate_line_numbers_are_refused(self) -> None:
        with pytest.raises(InvalidFieldError, match=r"Order.lines\[1\]: 'P1-1'"):
            order(lines=(line(1), line(1)))

    def test_bad_date_and_currency(self) -> None:
        with pytest.raises(InvalidFieldError, match="Order.order_date: '2026-13-01'"):
            Order("1", "01", Customer("C1"), "2026-13-01", WAREHOUSE, NYC, (line(),))
        with pytest.raises(InvalidFieldError, match="Order.currency: 'usd'"):
            Order("1", "01", Customer("C1"), DAY, WAREHOUSE, NYC, (line(),), currency="usd")

    def test_lines_must_be_order_lines(self) -> None:
        with pytest.raises(InvalidFieldError, match=r"Order.lines\[0\]: 'x' is not a OrderLine"):
            Order("1", "01", Customer("C1"), DAY, WAREHOUSE, NYC, ("x",))  # type: ignore[arg-type]


class TestAddress:
    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"region": "New York"}, "region"),
            ({"postal_code": "1011"}, "postal_code"),
            ({"country": "USA"}, "country"),
        ],
    )
    def test_bad_address_parts_are_named(self, kwargs: dict[str, str], field: str) -> None:
        values = {
            "line1": "1 Main",
            "city": "NYC",
            "region": "NY",
            "postal_code": "10001",
            **kwargs,
        }
        with pytest.raises(InvalidFieldError, match=f"Address.{field}"):
            Address(**values)

    def test_zip_plus_four_keeps_zip5(self) -> None:
        assert Address("1 Main", "NYC", "NY", "10001-1234").zip5 == "10001"


class TestInvoice:
    def test_orders_of_different_customers_cannot_merge(self) -> None:
        other = order("1002", customer=Customer("C2"))
        with pytest.raises(InvalidFieldError, match=r"orders\[1\].customer.code: 'C2'"):
            invoice("1", order(), other)

    def test_an_order_cannot_be_merged_twice(self) -> None:
        with pytest.raises(InvalidFieldError, match="names an order twice"):
            Invoice("1", DAY, (order(), order()))


def test_bad_input_at_a_stage_stores_nothing(bridge, engine) -> None:
    with pytest.raises(InvalidFieldError):
        bridge.on_invoice(invoice("1", order(), order("1002", customer=Customer("C2"))))
    assert bridge.store.documents() == []
    assert engine.calls == 0


class TestTaxLine:
    def test_an_engine_line_made_from_an_order_line_is_checked_like_any_other(self) -> None:
        from taxbridge.models import TaxLine

        made = TaxLine.from_order_line(line(), tax_code=" P0000000 ", ship_to=None, excluded=False)
        assert (made.number, made.tax_code, made.amount) == ("P1-1", "P0000000", line().amount)
        with pytest.raises(InvalidFieldError, match="TaxLine.tax_code: 7 must be a string"):
            TaxLine.from_order_line(line(), tax_code=7, ship_to=None, excluded=False)  # type: ignore[arg-type]
        with pytest.raises(InvalidFieldError, match="TaxLine.ship_to: 'NYC' is not a Address"):
            TaxLine.from_order_line(line(), tax_code="P", ship_to="NYC", excluded=False)  # type: ignore[arg-type]


@pytest.mark.parametrize("control", ["\x00", "\x1b", "\x7f"])
def test_a_control_character_in_any_text_field_is_refused_naming_it(control: str) -> None:
    """A NUL was stored by SQLite and refused by PostgreSQL: the model refuses it for both."""
    with pytest.raises(InvalidFieldError, match=r"Certificate.exemption_no: .* control character"):
        Certificate("C900", "E", ("NY",), signed=DAY, exemption_no=f"NY{control}77")
    with pytest.raises(InvalidFieldError, match=r"Exemption.exemption_no"):
        Exemption("C900", "NY", DAY, f"EX{control}1")
    with pytest.raises(InvalidFieldError, match=r"Customer.name"):
        Customer("C900", f"Museum{control}Shop")
    with pytest.raises(InvalidFieldError, match=r"Address.city"):
        Address("350 5th Ave", f"New{control}York", "NY", "10118")


def test_tabs_and_line_breaks_are_whitespace_not_control_characters() -> None:
    assert Customer("C900", "Museum\tShop\r\n").name == "Museum\tShop"
    assert OrderLine("P1", 1, "SKU", "1", "10.00", description="two\nlines").description == (
        "two\nlines"
    )
