"""taxbridge: an ERP-side sales-tax interface over pluggable tax engines."""

from importlib.metadata import PackageNotFoundError, version

from taxbridge.backends import Capability, LocalEngine, OfflineTable, TaxBackend
from taxbridge.bridge import TaxBridge
from taxbridge.config import BridgeConfig, CompanyMapping, NexusRegion, TaxCodeMap, load_config
from taxbridge.errors import (
    AlreadyCommitted,
    BackendError,
    BackendUnavailable,
    ConfigError,
    DocumentNotFoundError,
    DocumentRejected,
    InvalidFieldError,
    InvalidTransition,
    MailError,
    NoCertificateService,
    TaxBridgeError,
    UnknownCompanyError,
)
from taxbridge.flags import FinalTaxFlag
from taxbridge.lifecycle import Inquiry, PendingCheck
from taxbridge.models import (
    Address,
    Certificate,
    CertificateCheck,
    CertificateRequest,
    Claim,
    ClaimLine,
    Contact,
    Coverage,
    Customer,
    DocumentType,
    Invoice,
    JurisdictionTax,
    JurisdictionType,
    LineTax,
    Order,
    OrderLine,
    PendCode,
    PendReason,
    Quotation,
    QuotationAccount,
    QuotationLine,
    Reminder,
    Stage,
    TaxDocument,
    TaxLine,
    TaxRequest,
    TaxResult,
    Warehouse,
)
from taxbridge.money import RoundingLevel
from taxbridge.queue import RepostSummary, RetryPolicy
from taxbridge.quotations import Quote, QuoteSource
from taxbridge.store import SQLiteStore, Store
from taxbridge.testing import RecordingBackend

try:
    __version__ = version("taxbridge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "Address",
    "AlreadyCommitted",
    "BackendError",
    "BackendUnavailable",
    "BridgeConfig",
    "Capability",
    "Certificate",
    "CertificateCheck",
    "CertificateRequest",
    "Claim",
    "ClaimLine",
    "CompanyMapping",
    "ConfigError",
    "Contact",
    "Coverage",
    "Customer",
    "DocumentNotFoundError",
    "DocumentRejected",
    "DocumentType",
    "FinalTaxFlag",
    "Inquiry",
    "InvalidFieldError",
    "InvalidTransition",
    "Invoice",
    "JurisdictionTax",
    "JurisdictionType",
    "LineTax",
    "LocalEngine",
    "MailError",
    "NexusRegion",
    "NoCertificateService",
    "OfflineTable",
    "Order",
    "OrderLine",
    "PendCode",
    "PendReason",
    "PendingCheck",
    "Quotation",
    "QuotationAccount",
    "QuotationLine",
    "Quote",
    "QuoteSource",
    "RecordingBackend",
    "Reminder",
    "RepostSummary",
    "RetryPolicy",
    "RoundingLevel",
    "SQLiteStore",
    "Stage",
    "Store",
    "TaxBackend",
    "TaxBridge",
    "TaxBridgeError",
    "TaxCodeMap",
    "TaxDocument",
    "TaxLine",
    "TaxRequest",
    "TaxResult",
    "UnknownCompanyError",
    "Warehouse",
    "__version__",
    "load_config",
]
