"""The ERP's documents and the tax side's values: attrs classes, Decimal money, no I/O.

Values are frozen and validated where they enter: a bad value raises
:class:`~taxbridge.errors.InvalidFieldError` naming the class, the field and the value.
"""

from taxbridge.models.erp import (
    Address,
    Claim,
    ClaimLine,
    Customer,
    Exemption,
    Invoice,
    Order,
    OrderLine,
    Quotation,
    QuotationAccount,
    QuotationLine,
    Warehouse,
)
from taxbridge.models.tax import (
    CreditedLine,
    DocumentEvent,
    DocumentKind,
    DocumentStatus,
    DocumentType,
    JurisdictionTax,
    JurisdictionType,
    LineTax,
    PendCode,
    PendReason,
    Stage,
    TaxDocument,
    TaxLine,
    TaxRequest,
    TaxResult,
)

__all__ = [
    "Address",
    "Claim",
    "ClaimLine",
    "CreditedLine",
    "Customer",
    "DocumentEvent",
    "DocumentKind",
    "DocumentStatus",
    "DocumentType",
    "Exemption",
    "Invoice",
    "JurisdictionTax",
    "JurisdictionType",
    "LineTax",
    "Order",
    "OrderLine",
    "PendCode",
    "PendReason",
    "Quotation",
    "QuotationAccount",
    "QuotationLine",
    "Stage",
    "TaxDocument",
    "TaxLine",
    "TaxRequest",
    "TaxResult",
    "Warehouse",
]
