"""The tax side: what a stage asks a backend (TaxRequest), what it answers (TaxResult), and the
stored tax document with its log. Requests are checked where they are built; results come from
backends that have already checked their data, so they carry no converters (a 15,000-line
invoice builds 60,000 of them)."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from attrs import field, frozen

from taxbridge.errors import InvalidFieldError
from taxbridge.flags import FinalTaxFlag
from taxbridge.models import _fields as _f
from taxbridge.models.erp import Address, OrderLine
from taxbridge.money import ZERO, allocate

_new = object.__new__
_set = object.__setattr__
"""Makes an instance and sets a field of it, frozen or not: the engine line of an order line is
built from fields already checked."""


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
    VOID = "void"
    """Voided at the engine (or the engine's void recorded here)."""
    RECONCILE = "reconcile"
    """Changed by the engine reconciliation (adopted, requeued)."""


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
    EXEMPTION_CERTIFICATE = "exemption_certificate"
    """An exempt customer's certificate for the ship-to region is missing or expired (or a
    single-use one went to another order): the ERP may send a certificate request."""


def _document_type(value: Any) -> DocumentType:
    return _f.enum_member(DocumentType, value)  # type: ignore[no-any-return]


def _pend_code(value: Any) -> PendCode:
    return _f.enum_member(PendCode, value)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
# The tax side


@frozen
class TaxLine:
    """One line of a tax request, as the engine sees it."""

    number: str = field(converter=_f.required_text)
    amount: Decimal = field(converter=_f.money)
    quantity: Decimal = field(default=Decimal(1), converter=_f.non_negative)
    item_code: str = field(default="", converter=_f.text)
    description: str = field(default="", converter=_f.text)
    discount: Decimal = field(default=ZERO, converter=_f.money)
    tax_code: str = field(default="", converter=_f.text)
    freight: bool = field(default=False, converter=_f.flag)
    ship_to: Address | None = field(default=None, validator=_f.instance_of(Address, optional=True))
    excluded: bool = field(default=False, converter=_f.flag)
    """True for a line shipped outside the nexus regions: zero tax, not sent to the engine."""
    ref1: str = field(default="", converter=_f.text)
    """Reference sent with the line (AvaTax ``ref1``): the item level 1 where there is one."""
    ref2: str = field(default="", converter=_f.text)
    discounted: bool = field(default=False, converter=_f.flag)
    """The document's ``discount`` is spread over this line (with the other discounted lines)."""
    exemption_no: str | None = field(default=None, converter=_f.optional_text)
    """Exemption evidence for this line only (AvaTax line ``exemptionCode``)."""
    entity_use_code: str | None = field(default=None, converter=_f.optional_text)
    tax_override: Decimal | None = field(default=None, converter=_f.optional_money)
    """The line's tax fixed in advance (AvaTax line ``taxOverride`` of type TaxAmount): the
    engine spreads it over the jurisdictions by rate. A credit of part of an invoice line sends
    its pro rata share of the tax that line was charged."""

    @property
    def exempt(self) -> bool:
        """True when the line carries its own exemption evidence."""
        return bool(self.exemption_no or self.entity_use_code)

    @classmethod
    def from_order_line(
        cls,
        line: OrderLine,
        tax_code: str,
        ship_to: Address | None,
        excluded: bool,
        ref1: str = "",
    ) -> TaxLine:
        """The engine line of an order line.

        The order line's fields have passed the checks this class makes (text stripped, amounts
        finite and in range), so they are copied as they are: every stage builds one engine
        line per order line, and the converters cost more than the rest of the request. The
        other values are checked here, and any not plainly valid (a configured tax code with
        spaces) goes through the full constructor."""
        if not (
            tax_code.__class__ is str
            and tax_code == tax_code.strip()
            and ref1.__class__ is str
            and ref1 == ref1.strip()
            and (excluded is True or excluded is False)
            and (ship_to is None or ship_to.__class__ is Address)
        ):
            return cls(
                line.engine_number,
                line.amount,
                line.quantity,
                line.item_code,
                line.description,
                line.discount,
                tax_code,
                line.freight,
                ship_to,
                excluded,
                ref1,
            )
        made = _new(cls)
        _set(made, "number", line.engine_number)
        _set(made, "amount", line.amount)
        _set(made, "quantity", line.quantity)
        _set(made, "item_code", line.item_code)
        _set(made, "description", line.description)
        _set(made, "discount", line.discount)
        _set(made, "tax_code", tax_code)
        _set(made, "freight", line.freight)
        _set(made, "ship_to", ship_to)
        _set(made, "excluded", excluded)
        _set(made, "ref1", ref1)
        _set(made, "ref2", "")
        _set(made, "discounted", False)
        _set(made, "exemption_no", None)
        _set(made, "entity_use_code", None)
        _set(made, "tax_override", None)
        return made


@frozen
class TaxRequest:
    """What a stage asks a backend to calculate (or post, when ``commit`` is set)."""

    code: str = field(converter=_f.required_text)
    document_type: DocumentType = field(
        converter=_document_type, validator=_f.member_of(DocumentType)
    )
    company_code: str = field(converter=_f.required_text)
    customer_code: str = field(converter=_f.required_text)
    date: dt.date = field(converter=_f.date)
    ship_from: Address = field(validator=_f.instance_of(Address))
    ship_to: Address = field(validator=_f.instance_of(Address))
    lines: tuple[TaxLine, ...] = field(
        converter=_f.as_tuple, validator=_f.tuple_of(TaxLine, min_items=1)
    )
    commit: bool = field(default=False, converter=_f.flag)
    currency: str = field(default="USD", converter=_f.text)
    exemption_no: str | None = field(default=None, converter=_f.optional_text)
    entity_use_code: str | None = field(default=None, converter=_f.optional_text)
    tax_date: dt.date | None = field(default=None, converter=_f.optional_date)
    """Tax date override (claims use the original invoice's date)."""
    tax_date_reason: str = field(default="", converter=_f.text)
    """Why the tax date differs from the document date (sent with the override)."""
    discount: Decimal = field(default=ZERO, converter=_f.non_negative)
    """Document discount, spread by amount over the lines marked ``discounted``."""
    reference_code: str = field(default="", converter=_f.text)
    purchase_order_no: str = field(default="", converter=_f.text)
    business_identification_no: str | None = field(default=None, converter=_f.optional_text)
    """The customer's VAT / tax registration number (AvaTax ``businessIdentificationNo``)."""
    include_details: bool = field(default=True, converter=_f.flag)
    """Ask for the per-jurisdiction breakdown (off when MAXDL says totals only)."""
    line_details: bool = field(default=False, converter=_f.flag)
    """Also ask for each line's per-jurisdiction details (AvaTax ``$include=Details``); the
    stages store only the document breakdown, so they leave this off."""

    def __attrs_post_init__(self) -> None:
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

    def discount_shares(self) -> list[Decimal]:
        """Each line's share of the document discount: by amount over the discounted lines, to
        the cent, the shares summing to the discount exactly (zero for a line without one)."""
        if not self.discount:
            return [ZERO] * len(self.lines)
        weights = [line.amount - line.discount if line.discounted else ZERO for line in self.lines]
        room = sum(weights, ZERO)
        return allocate(self.discount, [self.discount * weight / room for weight in weights])


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
    charged: Decimal | None = None
    """On a stored invoice or credit line: the tax the invoice carried, when a repost left the
    engine with another figure in ``tax``; None: the invoice carried ``tax``."""

    @property
    def tax_charged(self) -> Decimal:
        """The tax the invoice carried on this line."""
        return self.tax if self.charged is None else self.charged


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

    code: PendCode = field(converter=_pend_code, validator=_f.member_of(PendCode))
    message: str = field(converter=_f.text)
    line: str | None = None
    """Engine line number (``<process>-<line>``) the reason concerns, if any."""
    customer: str | None = None
    """Customer code the reason concerns, if any."""


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
    charged_tax: Decimal | None = None
    """For an invoice or credit: the tax the invoice (credit note) carried, kept when a repost
    gives ``total_tax`` the engine's figure; None for an order."""
    voided_at: dt.datetime | None = None
    """When the document was voided at the engine (reports leave it out)."""
    void_reason: str = ""

    @property
    def tax_charged(self) -> Decimal:
        """The tax the customer was charged (``total_tax`` when none was recorded apart)."""
        return self.total_tax if self.charged_tax is None else self.charged_tax

    @property
    def engine_tax(self) -> Decimal | None:
        """The tax the engine holds: ``total_tax`` of a Y or R document; None when not known
        here (U never reached it; M was posted by hand; estimates are not posted)."""
        return self.total_tax if self.flag.engine_holds_stored_tax else None

    @property
    def details_calculated(self) -> bool:
        """False when only totals were calculated (no jurisdiction breakdown)."""
        return bool(self.breakdown) or self.total_tax == 0
