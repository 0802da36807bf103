"""The ERP's documents as taxbridge receives them: addresses, customers, orders, invoices, claims
and quotations. Frozen attrs values, checked where they enter: a bad value raises
:class:`~taxbridge.errors.InvalidFieldError` naming the class, the field and the value."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from attrs import field, frozen

from taxbridge.errors import InvalidFieldError
from taxbridge.models import _fields as _f
from taxbridge.models.exempt import TAX_CONTACT_ROLE, Contact, valid_email
from taxbridge.money import ZERO
from taxbridge.regions import BY_COUNTRY

_REGION = re.compile(r"^[A-Z]{2}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_US_ZIP = re.compile(r"^\d{5}(-?\d{4})?$")
_ANY_REGION = frozenset().union(*BY_COUNTRY.values())


@frozen
class Address:
    """A postal address; ``region`` is the two-letter state or province."""

    line1: str = field(converter=_f.text)
    city: str = field(converter=_f.text)
    region: str = field(converter=_f.code)
    """Upper-cased as given (``pa`` is ``PA``); a US or Canadian region must be a real one."""
    postal_code: str = field(converter=_f.text)
    country: str = field(default="US", converter=_f.code)
    line2: str = field(default="", converter=_f.text)
    line3: str = field(default="", converter=_f.text)

    def __attrs_post_init__(self) -> None:
        if not _COUNTRY.match(self.country):
            raise InvalidFieldError("Address", "country", self.country, "is not a 2-letter code")
        known = BY_COUNTRY.get(self.country)
        if known is not None and self.region not in known:
            what = "US state or territory" if self.country == "US" else "Canadian province"
            raise InvalidFieldError("Address", "region", self.region, f"is not a {what}")
        if not _REGION.match(self.region):
            raise InvalidFieldError("Address", "region", self.region, "is not a 2-letter region")
        if not self.postal_code:
            raise InvalidFieldError("Address", "postal_code", self.postal_code, "is empty")
        if self.country == "US" and not _US_ZIP.match(self.postal_code):
            raise InvalidFieldError(
                "Address",
                "postal_code",
                self.postal_code,
                "is not a US ZIP (12345 or 12345-6789)",
            )

    @property
    def zip5(self) -> str:
        """The five-digit ZIP (IP1 keeps ZIP5 internally; users may enter ZIP+4)."""
        return self.postal_code[:5]


@frozen
class Customer:
    """A customer master record, with the exemption data that drives tax."""

    code: str = field(converter=_f.required_text)
    name: str = field(default="", converter=_f.text)
    addresses: tuple[Address, ...] = field(
        default=(), converter=_f.as_tuple, validator=_f.tuple_of(Address)
    )
    email: str = field(default="", converter=_f.text)
    tax_number: str | None = field(default=None, converter=_f.optional_text)
    """Tax exemption number on the customer master: when set, the customer pays no tax."""
    entity_use_code: str | None = field(default=None, converter=_f.optional_text)
    """Why the customer is exempt (BNADS/AV-EX1), e.g. ``G`` resale, ``E`` charitable."""
    classification: str = field(default="", converter=_f.text)
    """Customer classification CC-TXUS: maps to an overseas-resident exemption code."""
    contacts: tuple[Contact, ...] = field(
        default=(), converter=_f.as_tuple, validator=_f.tuple_of(Contact)
    )
    """Contacts by role; the ``TAX`` contact (CM-CTSS) gets certificate mail before ``email``."""
    bill_to: str = field(default="", converter=_f.text)
    """For a ship-to customer kept under its own number: the bill-to customer's number."""

    @property
    def is_exempt(self) -> bool:
        """Flagged tax exempt: by an exemption number *or* an exemption code (seed 002)."""
        return bool(self.tax_number or self.entity_use_code)

    @property
    def certificate_email(self) -> str:
        """Where certificate requests and reminders go: the ``TAX`` contact's e-mail when it is
        a valid address, else the A/P e-mail (blank when there is neither)."""
        for contact in self.contacts:
            if contact.role == TAX_CONTACT_ROLE and valid_email(contact.email):
                return contact.email
        return self.email


@frozen
class Exemption:
    """An entry of the customer exemption database (BNW150), valid in one region and period."""

    customer_code: str = field(converter=_f.required_text)
    region: str = field(converter=_f.code)
    effective: dt.date = field(converter=_f.date)
    exemption_no: str | None = field(default=None, converter=_f.optional_text)
    entity_use_code: str | None = field(default=None, converter=_f.optional_text)
    """The reason (BNADS/AV-EX1)."""
    expiry: dt.date | None = field(default=None, converter=_f.optional_date)

    def __attrs_post_init__(self) -> None:
        if self.region not in _ANY_REGION:
            raise InvalidFieldError(
                "Exemption", "region", self.region, "is not a US state or Canadian province"
            )
        if not (self.exemption_no or self.entity_use_code):
            raise InvalidFieldError(
                "Exemption", "exemption_no", self.exemption_no, "or entity_use_code is required"
            )
        if self.expiry is not None and self.expiry < self.effective:
            raise InvalidFieldError(
                "Exemption", "expiry", self.expiry.isoformat(), "is before the effective date"
            )

    def valid_on(self, day: dt.date) -> bool:
        """True when the exemption covers ``day``."""
        return self.effective <= day and (self.expiry is None or day <= self.expiry)


@frozen
class OrderLine:
    """One order line; the engine line number is ``<process number>-<line number>``."""

    process_number: str = field(converter=_f.required_text)
    line_number: int = field(converter=_f.line_number)
    item_code: str = field(converter=_f.required_text)
    quantity: Decimal = field(converter=_f.non_negative)
    amount: Decimal = field(converter=_f.non_negative)
    """Extended line amount before discount, in the order's currency."""
    description: str = field(default="", converter=_f.text)
    discount: Decimal = field(default=ZERO, converter=_f.non_negative)
    subline: int = field(default=0, converter=_f.subline)
    """Pack components have sublines above zero; only subline zero is sent to the engine."""
    item_classification: str = field(default="", converter=_f.text)
    """Item classification IC-TXUS, mapped to a tax code by BNADS/AV-TC2M."""
    tax_code: str | None = field(default=None, converter=_f.optional_text)
    """A tax code override for this line; wins over the item classification's code."""
    freight: bool = field(default=False, converter=_f.flag)
    ship_to: Address | None = field(default=None, validator=_f.instance_of(Address, optional=True))
    item_level1: str = field(default="", converter=_f.text)
    """The item's level 1 (publisher); blank: the order's. Freight split uses it (TAX-FRTS)."""
    engine_number: str = field(init=False, eq=False, repr=False)
    """The engine line number: ``<process number>-<line number>`` (made once: every stage
    sends it)."""

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "engine_number", f"{self.process_number}-{self.line_number}")
        if self.discount > self.amount:
            raise InvalidFieldError(
                "OrderLine",
                "discount",
                self.discount,
                f"exceeds the amount {self.amount}",
            )


@frozen
class Order:
    """A sales order as the ERP holds it at one stage of its life."""

    number: str = field(converter=_f.required_text)
    company: str = field(converter=_f.required_text)
    customer: Customer = field(validator=_f.instance_of(Customer))
    order_date: dt.date = field(converter=_f.date)
    ship_from: Address = field(validator=_f.instance_of(Address))
    ship_to: Address = field(validator=_f.instance_of(Address))
    lines: tuple[OrderLine, ...] = field(
        converter=_f.as_tuple, validator=_f.tuple_of(OrderLine, min_items=1)
    )
    item_level1: str = field(default="", converter=_f.text)
    transaction_group: str = field(default="", converter=_f.text)
    currency: str = field(default="USD", converter=_f.text)
    reference: str = field(default="", converter=_f.text)
    """Customer reference from the order header (the engine's reference code)."""
    purchase_order_no: str = field(default="", converter=_f.text)

    def __attrs_post_init__(self) -> None:
        if not _CURRENCY.match(self.currency):
            raise InvalidFieldError("Order", "currency", self.currency, "is not an ISO 4217 code")
        seen: set[tuple[str, int, int]] = set()
        for index, line in enumerate(self.lines):
            key = (line.process_number, line.line_number, line.subline)
            if key in seen:
                raise InvalidFieldError(
                    "Order",
                    f"lines[{index}]",
                    line.engine_number,
                    "is a duplicate line number",
                )
            seen.add(key)

    @property
    def code(self) -> str:
        """The tax document code of the order before invoicing."""
        return f"O-{self.number}"


@frozen
class Invoice:
    """An invoice: one or more orders of one customer merged under one document number."""

    number: str = field(converter=_f.required_text)
    invoice_date: dt.date = field(converter=_f.date)
    orders: tuple[Order, ...] = field(
        converter=_f.as_tuple, validator=_f.tuple_of(Order, min_items=1)
    )

    def __attrs_post_init__(self) -> None:
        first = self.orders[0]
        for index, order in enumerate(self.orders[1:], start=1):
            for name in ("company", "item_level1", "currency"):
                if getattr(order, name) != getattr(first, name):
                    raise InvalidFieldError(
                        "Invoice",
                        f"orders[{index}].{name}",
                        getattr(order, name),
                        f"differs from orders[0].{name} {getattr(first, name)!r}",
                    )
            if order.customer.code != first.customer.code:
                raise InvalidFieldError(
                    "Invoice",
                    f"orders[{index}].customer.code",
                    order.customer.code,
                    f"differs from orders[0].customer.code {first.customer.code!r}",
                )
        numbers = [order.number for order in self.orders]
        if len(set(numbers)) != len(numbers):
            raise InvalidFieldError("Invoice", "orders", numbers, "names an order twice")

    @property
    def code(self) -> str:
        """The document code the engine posts under: ``A-<invoice number>``."""
        return f"A-{self.number}"


@frozen
class ClaimLine:
    """One line of a claim: the quantity and amount credited, both positive.

    ``invoice_line`` names the engine line of the allocated invoice it credits (``1001-1``);
    then its tax is that line's tax pro rata to the amount, not a fresh calculation.
    """

    line_number: int = field(converter=_f.line_number)
    item_code: str = field(converter=_f.required_text)
    quantity: Decimal = field(converter=_f.non_negative)
    amount: Decimal = field(converter=_f.non_negative)
    description: str = field(default="", converter=_f.text)
    item_classification: str = field(default="", converter=_f.text)
    tax_code: str | None = field(default=None, converter=_f.optional_text)
    freight: bool = field(default=False, converter=_f.flag)
    invoice_line: str | None = field(default=None, converter=_f.optional_text)

    def __attrs_post_init__(self) -> None:
        if self.amount <= 0:
            raise InvalidFieldError(
                "ClaimLine", "amount", self.amount, "must be above zero (stored positive)"
            )


@frozen
class Claim:
    """A claim (credit note or return) as the ERP holds it; posted as ``B-<number>``.

    Allocated to an invoice (``invoice_code``, e.g. ``A-1001``), the credit is taxed at the
    invoice's date, addresses and exemption; otherwise at the claim's, which then needs
    ``ship_from`` and ``ship_to``.
    """

    number: str = field(converter=_f.required_text)
    company: str = field(converter=_f.required_text)
    customer: Customer = field(validator=_f.instance_of(Customer))
    claim_date: dt.date = field(converter=_f.date)
    lines: tuple[ClaimLine, ...] = field(
        converter=_f.as_tuple, validator=_f.tuple_of(ClaimLine, min_items=1)
    )
    invoice_code: str | None = field(default=None, converter=_f.optional_text)
    ship_from: Address | None = field(
        default=None, validator=_f.instance_of(Address, optional=True)
    )
    ship_to: Address | None = field(default=None, validator=_f.instance_of(Address, optional=True))
    item_level1: str = field(default="", converter=_f.text)
    transaction_group: str = field(default="", converter=_f.text)
    currency: str = field(default="USD", converter=_f.text)
    reference: str = field(default="", converter=_f.text)

    def __attrs_post_init__(self) -> None:
        if not _CURRENCY.match(self.currency):
            raise InvalidFieldError("Claim", "currency", self.currency, "is not an ISO 4217 code")
        if self.invoice_code is None:
            for name in ("ship_from", "ship_to"):
                if getattr(self, name) is None:
                    raise InvalidFieldError(
                        "Claim", name, None, "is required when the claim is not allocated"
                    )
            for index, line in enumerate(self.lines):
                if line.invoice_line is not None:
                    raise InvalidFieldError(
                        "Claim",
                        f"lines[{index}].invoice_line",
                        line.invoice_line,
                        "needs the claim allocated to an invoice (invoice_code)",
                    )
        numbers = [line.line_number for line in self.lines]
        if len(set(numbers)) != len(numbers):
            raise InvalidFieldError("Claim", "lines", numbers, "repeats a line number")

    @property
    def code(self) -> str:
        """The document code the engine posts the credit under: ``B-<claim number>``."""
        return f"B-{self.number}"

    @property
    def allocated(self) -> bool:
        """True when the claim credits a known invoice."""
        return self.invoice_code is not None


@frozen
class Warehouse:
    """A warehouse of an account: its own address, or the address of the ICP linked to it."""

    code: str = field(converter=_f.required_text)
    address: Address | None = field(default=None, validator=_f.instance_of(Address, optional=True))
    icp_address: Address | None = field(
        default=None, validator=_f.instance_of(Address, optional=True)
    )


@frozen
class QuotationAccount:
    """An account a quotation names (customer account or override bill-to account), with the
    fields of it and of its account extension record the quotation mapping reads."""

    name: str = field(converter=_f.required_text)
    shipping_address: Address | None = field(
        default=None, validator=_f.instance_of(Address, optional=True)
    )
    tax_registration_number: str | None = field(default=None, converter=_f.optional_text)
    tax_exemption_reason: str | None = field(default=None, converter=_f.optional_text)
    """From the account extension record: sent as entity use code and exemption number."""
    warehouse: Warehouse | None = field(
        default=None, validator=_f.instance_of(Warehouse, optional=True)
    )


@frozen
class QuotationLine:
    """One customer quotation line (seed 004's line fields)."""

    line_number: int = field(converter=_f.line_number)
    quantity: Decimal = field(converter=_f.non_negative)
    customer_total_price: Decimal = field(converter=_f.money)
    item_number: str = field(default="", converter=_f.text)
    """The item master's number; blank for a line described only in the quote."""
    item_quote_description: str = field(default="", converter=_f.text)
    avalara_tax_code: str = field(default="", converter=_f.text)
    override_avalara_tax_code: str = field(default="", converter=_f.text)
    ship_to: Address | None = field(default=None, validator=_f.instance_of(Address, optional=True))


@frozen
class Quotation:
    """A customer quotation (seed 004): quoted for tax, never saved anywhere.

    The customer is an account (``customer_account``, optionally billed to
    ``override_bill_to_account``) or a prospect (``prospect_company`` with its address and tax
    registration number).
    """

    quote_number: str = field(converter=_f.required_text)
    lines: tuple[QuotationLine, ...] = field(
        converter=_f.as_tuple, validator=_f.tuple_of(QuotationLine, min_items=1)
    )
    customer_account: QuotationAccount | None = field(
        default=None, validator=_f.instance_of(QuotationAccount, optional=True)
    )
    override_bill_to_account: QuotationAccount | None = field(
        default=None, validator=_f.instance_of(QuotationAccount, optional=True)
    )
    override_ship_to: Address | None = field(
        default=None, validator=_f.instance_of(Address, optional=True)
    )
    """The customer address record chosen on the quote instead of the account's shipping one."""
    prospect_company: str = field(default="", converter=_f.text)
    prospect_address: Address | None = field(
        default=None, validator=_f.instance_of(Address, optional=True)
    )
    prospect_tax_registration_number: str = field(default="", converter=_f.text)
    total_price_discount: Decimal = field(default=ZERO, converter=_f.money)
    currency: str = field(default="USD", converter=_f.text)

    def __attrs_post_init__(self) -> None:
        if not _CURRENCY.match(self.currency):
            raise InvalidFieldError(
                "Quotation", "currency", self.currency, "is not an ISO 4217 code"
            )
        numbers = [line.line_number for line in self.lines]
        if len(set(numbers)) != len(numbers):
            raise InvalidFieldError("Quotation", "lines", numbers, "repeats a line number")
