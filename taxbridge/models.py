"""The ERP's documents and the tax side's values: attrs classes, Decimal money, no I/O.

Values are frozen and validated where they enter: a bad value raises
:class:`~taxbridge.errors.InvalidFieldError` naming the class, the field and the value.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, cast

import attrs
from attrs import field, frozen

from taxbridge.errors import InvalidFieldError
from taxbridge.flags import FinalTaxFlag
from taxbridge.money import ZERO, to_decimal

# ---------------------------------------------------------------------------------------------
# Field normalisers. attrs converters cannot name the field in their errors (and mypy's attrs
# plugin does not type converter objects), so fields carry a normaliser in their metadata and
# ``__attrs_post_init__`` runs them: each gets the value, the class name and the field name.

Normaliser = Callable[[Any, str, str], Any]
_NORM = "taxbridge.normalise"


def _n(normaliser: Normaliser) -> dict[str, Normaliser]:
    """Field metadata naming the normaliser that checks the field after init."""
    return {_NORM: normaliser}


_NORMALISED: dict[type, tuple[tuple[str, Normaliser], ...]] = {}


def _normalise(instance: object) -> None:
    """Run every field's normaliser, storing what it returns (frozen classes included)."""
    cls = type(instance)
    spec = _NORMALISED.get(cls)
    if spec is None:
        spec = tuple(
            (f.name, f.metadata[_NORM]) for f in attrs.fields(cast(Any, cls)) if _NORM in f.metadata
        )
        _NORMALISED[cls] = spec
    owner = cls.__name__
    for name, normaliser in spec:
        value = getattr(instance, name)
        result = normaliser(value, owner, name)
        if result is not value:
            object.__setattr__(instance, name, result)


def _money(value: Any, owner: str, name: str) -> Decimal:
    return to_decimal(value, owner, name)


def _optional_money(value: Any, owner: str, name: str) -> Decimal | None:
    return None if value is None else to_decimal(value, owner, name)


def _non_negative(value: Any, owner: str, name: str) -> Decimal:
    number = to_decimal(value, owner, name)
    if number < 0:
        raise InvalidFieldError(owner, name, value, "must not be negative")
    return number


def _text(value: Any, owner: str, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidFieldError(owner, name, value, "must be a string")
    return value.strip()


def _required_text(value: Any, owner: str, name: str) -> str:
    text = _text(value, owner, name)
    if not text:
        raise InvalidFieldError(owner, name, value, "must not be empty")
    return text


def _optional_text(value: Any, owner: str, name: str) -> str | None:
    if value is None:
        return None
    return _text(value, owner, name) or None


def _date(value: Any, owner: str, name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise InvalidFieldError(owner, name, value, "is not a date (YYYY-MM-DD)") from None
    raise InvalidFieldError(owner, name, value, "is not a date (YYYY-MM-DD)")


def _optional_date(value: Any, owner: str, name: str) -> dt.date | None:
    return None if value is None else _date(value, owner, name)


def _flag(value: Any, owner: str, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidFieldError(owner, name, value, "must be True or False")
    return value


def _instance_of(kind: type[Any], *, optional: bool = False) -> Normaliser:
    def check(value: Any, owner: str, name: str) -> Any:
        if value is None and optional:
            return None
        if not isinstance(value, kind):
            reason = "is missing" if value is None else f"is not a {kind.__name__}"
            raise InvalidFieldError(owner, name, value, reason)
        return value

    return check


def _tuple_of(kind: type[Any], *, min_items: int = 0) -> Normaliser:
    def check(value: Any, owner: str, name: str) -> tuple[Any, ...]:
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise InvalidFieldError(owner, name, value, "must be a sequence")
        items = tuple(value)
        for index, item in enumerate(items):
            if not isinstance(item, kind):
                raise InvalidFieldError(
                    owner, f"{name}[{index}]", item, f"is not a {kind.__name__}"
                )
        if len(items) < min_items:
            raise InvalidFieldError(owner, name, value, f"needs at least {min_items} item(s)")
        return items

    return check


def _enum(kind: type[enum.Enum]) -> Normaliser:
    def check(value: Any, owner: str, name: str) -> Any:
        if isinstance(value, kind):
            return value
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(repr(member.value) for member in kind)
            raise InvalidFieldError(owner, name, value, f"is not one of {allowed}") from None

    return check


_REGION = re.compile(r"^[A-Z]{2}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_US_ZIP = re.compile(r"^\d{5}(-?\d{4})?$")


# ---------------------------------------------------------------------------------------------
# Enumerations


class DocumentType(enum.Enum):
    """The engine's document types (AvaTax DocumentType names)."""

    SALES_ORDER = "SalesOrder"
    """An estimate: calculated, never saved by the engine."""
    SALES_INVOICE = "SalesInvoice"
    """A sale: saved, and committed when posted."""
    RETURN_ORDER = "ReturnOrder"
    """A return estimate: never saved."""
    RETURN_INVOICE = "ReturnInvoice"
    """A credit (claim): saved, and committed when posted."""

    @property
    def is_saved(self) -> bool:
        """True for the permanent types the engine keeps (invoices), False for estimates."""
        return self in (DocumentType.SALES_INVOICE, DocumentType.RETURN_INVOICE)


class DocumentStatus(enum.Enum):
    """State of a document at the engine (AvaTax DocumentStatus names)."""

    TEMPORARY = "Temporary"
    SAVED = "Saved"
    POSTED = "Posted"
    COMMITTED = "Committed"
    CANCELLED = "Cancelled"
    ADJUSTED = "Adjusted"
    """A superseded version of an adjusted document."""
    QUEUED = "Queued"
    PENDING_APPROVAL = "PendingApproval"
    UNCOMMITTED = "Uncommitted"


class Stage(enum.Enum):
    """The lifecycle stage that last wrote a tax document."""

    ENTRY = "entry"
    PENDING_CHECK = "pending_check"
    PICK = "pick"
    DESPATCH = "despatch"
    INVOICE = "invoice"
    RECALCULATE = "recalculate"
    REPOST = "repost"
    MANUAL = "manual"
    CLAIM_PENDING = "claim_pending"
    """Claims pending check with update (BNO155BC)."""
    CLAIM_INQUIRY = "claim_inquiry"
    CLAIM_INVOICE = "claim_invoice"


class DocumentKind(enum.Enum):
    """What a stored tax document stands for in the ERP."""

    ORDER = "order"
    """A sales order before invoicing; code ``O-<order number>``."""
    INVOICE = "invoice"
    """An invoice, one or more orders merged under a document number; code ``A-<number>``."""
    CREDIT = "credit"
    """A claim (credit or return); code ``B-<claim number>``. Its amounts and tax are negative,
    as the engine keeps them."""


class JurisdictionType(enum.Enum):
    """Level of a taxing jurisdiction (AvaTax ``jurisType`` codes)."""

    COUNTRY = "CNT"
    """A national tax: Canada's GST."""
    STATE = "STA"
    COUNTY = "CTY"
    CITY = "CIT"
    SPECIAL = "STJ"
    """Special districts and any other tax (transit, stadium, ...): the seed's "Others"."""


class PendCode(enum.Enum):
    """Why an order pends for tax (user-defined pend codes, TMSDS/PEND-DSC)."""

    TAX_VALIDATION = "tax_validation"
    """BNO155B: the engine rejects the address or cannot find a jurisdiction."""
    OBSOLETE_TAX_CODE = "obsolete_tax_code"
    """BNO155BT: a line's tax code is not in the engine's active list."""
    EXEMPTION_EXPIRY = "exemption_expiry"
    """BNW150C: the customer's exemption has expired or expires within the warning days."""


# ---------------------------------------------------------------------------------------------
# The ERP side


@frozen
class Address:
    """A postal address; ``region`` is the two-letter state or province."""

    line1: str = field(metadata=_n(_text))
    city: str = field(metadata=_n(_text))
    region: str = field(metadata=_n(_text))
    postal_code: str = field(metadata=_n(_text))
    country: str = field(default="US", metadata=_n(_text))
    line2: str = field(default="", metadata=_n(_text))
    line3: str = field(default="", metadata=_n(_text))

    def __attrs_post_init__(self) -> None:
        _normalise(self)
        if not _REGION.match(self.region):
            raise InvalidFieldError("Address", "region", self.region, "is not a 2-letter region")
        if not _COUNTRY.match(self.country):
            raise InvalidFieldError("Address", "country", self.country, "is not a 2-letter code")
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

    code: str = field(metadata=_n(_required_text))
    name: str = field(default="", metadata=_n(_text))
    addresses: tuple[Address, ...] = field(default=(), metadata=_n(_tuple_of(Address)))
    email: str = field(default="", metadata=_n(_text))
    tax_number: str | None = field(default=None, metadata=_n(_optional_text))
    """Tax exemption number on the customer master: when set, the customer pays no tax."""
    entity_use_code: str | None = field(default=None, metadata=_n(_optional_text))
    """Why the customer is exempt (BNADS/AV-EX1), e.g. ``G`` resale, ``E`` charitable."""
    classification: str = field(default="", metadata=_n(_text))
    """Customer classification CC-TXUS: maps to an overseas-resident exemption code."""

    def __attrs_post_init__(self) -> None:
        _normalise(self)


@frozen
class Exemption:
    """An entry of the customer exemption database (BNW150), valid in one region and period."""

    customer_code: str = field(metadata=_n(_required_text))
    region: str = field(metadata=_n(_required_text))
    effective: dt.date = field(metadata=_n(_date))
    exemption_no: str | None = field(default=None, metadata=_n(_optional_text))
    entity_use_code: str | None = field(default=None, metadata=_n(_optional_text))
    """The reason (BNADS/AV-EX1)."""
    expiry: dt.date | None = field(default=None, metadata=_n(_optional_date))

    def __attrs_post_init__(self) -> None:
        _normalise(self)
        if not _REGION.match(self.region):
            raise InvalidFieldError("Exemption", "region", self.region, "is not a 2-letter region")
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

    process_number: str = field(metadata=_n(_required_text))
    line_number: int = field()
    item_code: str = field(metadata=_n(_required_text))
    quantity: Decimal = field(metadata=_n(_non_negative))
    amount: Decimal = field(metadata=_n(_non_negative))
    """Extended line amount before discount, in the order's currency."""
    description: str = field(default="", metadata=_n(_text))
    discount: Decimal = field(default=ZERO, metadata=_n(_non_negative))
    subline: int = field(default=0)
    """Pack components have sublines above zero; only subline zero is sent to the engine."""
    item_classification: str = field(default="", metadata=_n(_text))
    """Item classification IC-TXUS, mapped to a tax code by BNADS/AV-TC2M."""
    tax_code: str | None = field(default=None, metadata=_n(_optional_text))
    """A tax code override for this line; wins over the item classification's code."""
    freight: bool = field(default=False, metadata=_n(_flag))
    ship_to: Address | None = field(default=None, metadata=_n(_instance_of(Address, optional=True)))
    item_level1: str = field(default="", metadata=_n(_text))
    """The item's level 1 (publisher); blank: the order's. Freight split uses it (TAX-FRTS)."""

    def __attrs_post_init__(self) -> None:
        _normalise(self)
        for name in ("line_number", "subline"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidFieldError("OrderLine", name, value, "must be an int")
        if self.line_number < 1:
            raise InvalidFieldError("OrderLine", "line_number", self.line_number, "must be >= 1")
        if self.subline < 0:
            raise InvalidFieldError("OrderLine", "subline", self.subline, "must be >= 0")
        if self.discount > self.amount:
            raise InvalidFieldError(
                "OrderLine",
                "discount",
                self.discount,
                f"exceeds the amount {self.amount}",
            )

    @property
    def engine_number(self) -> str:
        """The engine line number: ``<process number>-<line number>``."""
        return f"{self.process_number}-{self.line_number}"


@frozen
class Order:
    """A sales order as the ERP holds it at one stage of its life."""

    number: str = field(metadata=_n(_required_text))
    company: str = field(metadata=_n(_required_text))
    customer: Customer = field(metadata=_n(_instance_of(Customer)))
    order_date: dt.date = field(metadata=_n(_date))
    ship_from: Address = field(metadata=_n(_instance_of(Address)))
    ship_to: Address = field(metadata=_n(_instance_of(Address)))
    lines: tuple[OrderLine, ...] = field(metadata=_n(_tuple_of(OrderLine, min_items=1)))
    item_level1: str = field(default="", metadata=_n(_text))
    transaction_group: str = field(default="", metadata=_n(_text))
    currency: str = field(default="USD", metadata=_n(_text))
    reference: str = field(default="", metadata=_n(_text))
    """Customer reference from the order header (the engine's reference code)."""
    purchase_order_no: str = field(default="", metadata=_n(_text))

    def __attrs_post_init__(self) -> None:
        _normalise(self)
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

    number: str = field(metadata=_n(_required_text))
    invoice_date: dt.date = field(metadata=_n(_date))
    orders: tuple[Order, ...] = field(metadata=_n(_tuple_of(Order, min_items=1)))

    def __attrs_post_init__(self) -> None:
        _normalise(self)
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

    line_number: int = field()
    item_code: str = field(metadata=_n(_required_text))
    quantity: Decimal = field(metadata=_n(_non_negative))
    amount: Decimal = field(metadata=_n(_non_negative))
    description: str = field(default="", metadata=_n(_text))
    item_classification: str = field(default="", metadata=_n(_text))
    tax_code: str | None = field(default=None, metadata=_n(_optional_text))
    freight: bool = field(default=False, metadata=_n(_flag))
    invoice_line: str | None = field(default=None, metadata=_n(_optional_text))

    def __attrs_post_init__(self) -> None:
        _normalise(self)
        if isinstance(self.line_number, bool) or not isinstance(self.line_number, int):
            raise InvalidFieldError("ClaimLine", "line_number", self.line_number, "must be an int")
        if self.line_number < 1:
            raise InvalidFieldError("ClaimLine", "line_number", self.line_number, "must be >= 1")
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

    number: str = field(metadata=_n(_required_text))
    company: str = field(metadata=_n(_required_text))
    customer: Customer = field(metadata=_n(_instance_of(Customer)))
    claim_date: dt.date = field(metadata=_n(_date))
    lines: tuple[ClaimLine, ...] = field(metadata=_n(_tuple_of(ClaimLine, min_items=1)))
    invoice_code: str | None = field(default=None, metadata=_n(_optional_text))
    ship_from: Address | None = field(
        default=None, metadata=_n(_instance_of(Address, optional=True))
    )
    ship_to: Address | None = field(default=None, metadata=_n(_instance_of(Address, optional=True)))
    item_level1: str = field(default="", metadata=_n(_text))
    transaction_group: str = field(default="", metadata=_n(_text))
    currency: str = field(default="USD", metadata=_n(_text))
    reference: str = field(default="", metadata=_n(_text))

    def __attrs_post_init__(self) -> None:
        _normalise(self)
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

    code: str = field(metadata=_n(_required_text))
    address: Address | None = field(default=None, metadata=_n(_instance_of(Address, optional=True)))
    icp_address: Address | None = field(
        default=None, metadata=_n(_instance_of(Address, optional=True))
    )

    def __attrs_post_init__(self) -> None:
        _normalise(self)


@frozen
class QuotationAccount:
    """An account a quotation names (customer account or override bill-to account), with the
    fields of it and of its account extension record the quotation mapping reads."""

    name: str = field(metadata=_n(_required_text))
    shipping_address: Address | None = field(
        default=None, metadata=_n(_instance_of(Address, optional=True))
    )
    tax_registration_number: str | None = field(default=None, metadata=_n(_optional_text))
    tax_exemption_reason: str | None = field(default=None, metadata=_n(_optional_text))
    """From the account extension record: sent as entity use code and exemption number."""
    warehouse: Warehouse | None = field(
        default=None, metadata=_n(_instance_of(Warehouse, optional=True))
    )

    def __attrs_post_init__(self) -> None:
        _normalise(self)


@frozen
class QuotationLine:
    """One customer quotation line (seed 004's line fields)."""

    line_number: int = field()
    quantity: Decimal = field(metadata=_n(_non_negative))
    customer_total_price: Decimal = field(metadata=_n(_money))
    item_number: str = field(default="", metadata=_n(_text))
    """The item master's number; blank for a line described only in the quote."""
    item_quote_description: str = field(default="", metadata=_n(_text))
    avalara_tax_code: str = field(default="", metadata=_n(_text))
    override_avalara_tax_code: str = field(default="", metadata=_n(_text))
    ship_to: Address | None = field(default=None, metadata=_n(_instance_of(Address, optional=True)))

    def __attrs_post_init__(self) -> None:
        _normalise(self)
        if isinstance(self.line_number, bool) or not isinstance(self.line_number, int):
            raise InvalidFieldError(
                "QuotationLine", "line_number", self.line_number, "must be an int"
            )
        if self.line_number < 1:
            raise InvalidFieldError(
                "QuotationLine", "line_number", self.line_number, "must be >= 1"
            )


@frozen
class Quotation:
    """A customer quotation (seed 004): quoted for tax, never saved anywhere.

    The customer is an account (``customer_account``, optionally billed to
    ``override_bill_to_account``) or a prospect (``prospect_company`` with its address and tax
    registration number).
    """

    quote_number: str = field(metadata=_n(_required_text))
    lines: tuple[QuotationLine, ...] = field(metadata=_n(_tuple_of(QuotationLine, min_items=1)))
    customer_account: QuotationAccount | None = field(
        default=None, metadata=_n(_instance_of(QuotationAccount, optional=True))
    )
    override_bill_to_account: QuotationAccount | None = field(
        default=None, metadata=_n(_instance_of(QuotationAccount, optional=True))
    )
    override_ship_to: Address | None = field(
        default=None, metadata=_n(_instance_of(Address, optional=True))
    )
    """The customer address record chosen on the quote instead of the account's shipping one."""
    prospect_company: str = field(default="", metadata=_n(_text))
    prospect_address: Address | None = field(
        default=None, metadata=_n(_instance_of(Address, optional=True))
    )
    prospect_tax_registration_number: str = field(default="", metadata=_n(_text))
    total_price_discount: Decimal = field(default=ZERO, metadata=_n(_money))
    currency: str = field(default="USD", metadata=_n(_text))

    def __attrs_post_init__(self) -> None:
        _normalise(self)
        if not _CURRENCY.match(self.currency):
            raise InvalidFieldError(
                "Quotation", "currency", self.currency, "is not an ISO 4217 code"
            )
        numbers = [line.line_number for line in self.lines]
        if len(set(numbers)) != len(numbers):
            raise InvalidFieldError("Quotation", "lines", numbers, "repeats a line number")


# ---------------------------------------------------------------------------------------------
# The tax side


@frozen
class TaxLine:
    """One line of a tax request, as the engine sees it."""

    number: str = field(metadata=_n(_required_text))
    amount: Decimal = field(metadata=_n(_money))
    quantity: Decimal = field(default=Decimal(1), metadata=_n(_non_negative))
    item_code: str = field(default="", metadata=_n(_text))
    description: str = field(default="", metadata=_n(_text))
    discount: Decimal = field(default=ZERO, metadata=_n(_money))
    tax_code: str = field(default="", metadata=_n(_text))
    freight: bool = field(default=False, metadata=_n(_flag))
    ship_to: Address | None = field(default=None, metadata=_n(_instance_of(Address, optional=True)))
    excluded: bool = field(default=False, metadata=_n(_flag))
    """True for a line shipped outside the nexus regions: zero tax, not sent to the engine."""
    ref1: str = field(default="", metadata=_n(_text))
    """Reference sent with the line (AvaTax ``ref1``): the item level 1 where there is one."""
    ref2: str = field(default="", metadata=_n(_text))
    discounted: bool = field(default=False, metadata=_n(_flag))
    """The document's ``discount`` is spread over this line (with the other discounted lines)."""
    exemption_no: str | None = field(default=None, metadata=_n(_optional_text))
    """Exemption evidence for this line only (AvaTax line ``exemptionCode``)."""
    entity_use_code: str | None = field(default=None, metadata=_n(_optional_text))
    tax_override: Decimal | None = field(default=None, metadata=_n(_optional_money))
    """The line's tax fixed in advance (AvaTax line ``taxOverride`` of type TaxAmount): the
    engine spreads it over the jurisdictions by rate. A credit of part of an invoice line sends
    its pro rata share of the tax that line was charged."""

    def __attrs_post_init__(self) -> None:
        _normalise(self)

    @property
    def exempt(self) -> bool:
        """True when the line carries its own exemption evidence."""
        return bool(self.exemption_no or self.entity_use_code)

    @classmethod
    def from_order_line(
        cls,
        line: OrderLine,
        *,
        tax_code: str,
        ship_to: Address | None,
        excluded: bool,
        number: str | None = None,
        amount: Decimal | None = None,
        ref1: str = "",
    ) -> TaxLine:
        """The engine line of an order line. Its values were checked when the OrderLine was
        made, so the checks are not run again (every stage maps every line)."""
        new = object.__new__(cls)
        for name, value in (
            ("number", number or line.engine_number),
            ("amount", line.amount if amount is None else amount),
            ("quantity", line.quantity),
            ("item_code", line.item_code),
            ("description", line.description),
            ("discount", line.discount),
            ("tax_code", tax_code),
            ("freight", line.freight),
            ("ship_to", ship_to),
            ("excluded", excluded),
            ("ref1", ref1),
            ("ref2", ""),
            ("discounted", False),
            ("exemption_no", None),
            ("entity_use_code", None),
            ("tax_override", None),
        ):
            object.__setattr__(new, name, value)
        return new


@frozen
class TaxRequest:
    """What a stage asks a backend to calculate (or post, when ``commit`` is set)."""

    code: str = field(metadata=_n(_required_text))
    document_type: DocumentType = field(metadata=_n(_enum(DocumentType)))
    company_code: str = field(metadata=_n(_required_text))
    customer_code: str = field(metadata=_n(_required_text))
    date: dt.date = field(metadata=_n(_date))
    ship_from: Address = field(metadata=_n(_instance_of(Address)))
    ship_to: Address = field(metadata=_n(_instance_of(Address)))
    lines: tuple[TaxLine, ...] = field(metadata=_n(_tuple_of(TaxLine, min_items=1)))
    commit: bool = field(default=False, metadata=_n(_flag))
    currency: str = field(default="USD", metadata=_n(_text))
    exemption_no: str | None = field(default=None, metadata=_n(_optional_text))
    entity_use_code: str | None = field(default=None, metadata=_n(_optional_text))
    tax_date: dt.date | None = field(default=None, metadata=_n(_optional_date))
    """Tax date override (claims use the original invoice's date)."""
    tax_date_reason: str = field(default="", metadata=_n(_text))
    """Why the tax date differs from the document date (sent with the override)."""
    discount: Decimal = field(default=ZERO, metadata=_n(_non_negative))
    """Document discount, spread by amount over the lines marked ``discounted``."""
    reference_code: str = field(default="", metadata=_n(_text))
    purchase_order_no: str = field(default="", metadata=_n(_text))
    business_identification_no: str | None = field(default=None, metadata=_n(_optional_text))
    """The customer's VAT / tax registration number (AvaTax ``businessIdentificationNo``)."""
    include_details: bool = field(default=True, metadata=_n(_flag))
    """Ask for the per-jurisdiction breakdown (off when MAXDL says totals only)."""
    line_details: bool = field(default=False, metadata=_n(_flag))
    """Also ask for each line's per-jurisdiction details (AvaTax ``$include=Details``); the
    stages store only the document breakdown, so they leave this off."""

    def __attrs_post_init__(self) -> None:
        _normalise(self)
        if self.discount:
            room = sum(
                (line.amount - line.discount for line in self.lines if line.discounted), ZERO
            )
            if room <= 0:
                raise InvalidFieldError(
                    "TaxRequest", "discount", self.discount, "needs lines marked discounted"
                )
            if self.discount > room:
                raise InvalidFieldError(
                    "TaxRequest",
                    "discount",
                    self.discount,
                    f"is more than the discounted lines' amount {room}",
                )

    @property
    def exempt(self) -> bool:
        """True when the request carries exemption evidence (number or entity use code)."""
        return bool(self.exemption_no or self.entity_use_code)


# Results are built by backends from data they have already checked (the local engine's tables, a
# parsed engine response), so they carry no converters: a 15,000-line invoice builds 60,000 of them.


@frozen
class JurisdictionTax:
    """Tax of one jurisdiction, on one line (a detail) or summed over a document (a summary)."""

    jurisdiction_type: JurisdictionType
    name: str
    region: str
    rate: Decimal
    taxable: Decimal
    exempt: Decimal
    tax: Decimal


@frozen
class LineTax:
    """The engine's answer for one line."""

    number: str
    amount: Decimal
    taxable: Decimal
    exempt: Decimal
    tax: Decimal
    tax_code: str = ""
    rate: Decimal = ZERO
    """Combined rate applied to the line (sum of its jurisdictions' rates)."""
    details: tuple[JurisdictionTax, ...] = ()


@frozen
class TaxResult:
    """The engine's answer for a document: totals, lines and the per-jurisdiction summary."""

    code: str
    document_type: DocumentType
    status: DocumentStatus
    date: dt.date
    total_amount: Decimal
    total_taxable: Decimal
    total_exempt: Decimal
    total_tax: Decimal
    lines: tuple[LineTax, ...] = ()
    summary: tuple[JurisdictionTax, ...] = ()
    """Tax by jurisdiction over the document; empty when details were not asked for."""
    tax_date: dt.date | None = None
    backend: str = ""


@frozen
class CreditedLine:
    """What a credit takes off one line of the invoice it is allocated to (both positive)."""

    invoice_line: str
    amount: Decimal
    tax: Decimal


@frozen
class PendReason:
    """Why an order pends for tax, naming the line or customer concerned."""

    code: PendCode = field(metadata=_n(_enum(PendCode)))
    message: str = field(metadata=_n(_text))
    line: str | None = None
    """Engine line number (``<process>-<line>``) the reason concerns, if any."""
    customer: str | None = None
    """Customer code the reason concerns, if any."""

    def __attrs_post_init__(self) -> None:
        _normalise(self)


@frozen
class DocumentEvent:
    """One entry of a document's log: what a stage did, and the flag before and after."""

    code: str
    at: dt.datetime
    stage: Stage
    flag_before: FinalTaxFlag | None
    flag_after: FinalTaxFlag
    backend: str
    message: str
    error: bool = False


@frozen
class TaxDocument:
    """The stored tax transaction record ("US tax transaction file") of an order or invoice."""

    code: str
    kind: DocumentKind
    stage: Stage
    flag: FinalTaxFlag
    erp_company: str
    company_code: str
    customer_code: str
    document_type: DocumentType
    document_date: dt.date
    currency: str
    total_amount: Decimal
    total_taxable: Decimal
    total_exempt: Decimal
    total_tax: Decimal
    lines: tuple[LineTax, ...]
    breakdown: tuple[JurisdictionTax, ...]
    backend: str
    last_log: str
    updated_at: dt.datetime
    tax_date: dt.date | None = None
    request: TaxRequest | None = None
    """The last request sent for this document; reposting sends it again."""
    orders: tuple[str, ...] = ()
    """Order numbers merged into an invoice document."""
    invoice_code: str | None = None
    """For an order document: the invoice it was invoiced under."""

    @property
    def details_calculated(self) -> bool:
        """False when only totals were calculated (no jurisdiction breakdown)."""
        return bool(self.breakdown) or self.total_tax == 0
