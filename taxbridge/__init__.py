"""taxbridge: an ERP-side sales-tax interface over pluggable tax engines.

Every public name is importable from here. They are loaded when first used, so ``import taxbridge``
and the ``taxbridge`` command start fast (a cron job pays the start-up on every run)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from taxbridge._version import __version__ as __version__

if TYPE_CHECKING:
    from taxbridge.accounting.engine import (
        FindingKind as FindingKind,
    )
    from taxbridge.backends import (
        Capability as Capability,
    )
    from taxbridge.backends import (
        LocalEngine as LocalEngine,
    )
    from taxbridge.backends import (
        OfflineTable as OfflineTable,
    )
    from taxbridge.backends import (
        TaxBackend as TaxBackend,
    )
    from taxbridge.backends.base import (
        AddressResolver as AddressResolver,
    )
    from taxbridge.backends.base import (
        DocumentListing as DocumentListing,
    )
    from taxbridge.backends.base import (
        DocumentRegister as DocumentRegister,
    )
    from taxbridge.backends.base import (
        RateDownload as RateDownload,
    )
    from taxbridge.backends.base import (
        TaxCodeCatalog as TaxCodeCatalog,
    )
    from taxbridge.backends.base import (
        VoidReason as VoidReason,
    )
    from taxbridge.bridge import (
        TaxBridge as TaxBridge,
    )
    from taxbridge.config import (
        BridgeConfig as BridgeConfig,
    )
    from taxbridge.config import (
        CompanyMapping as CompanyMapping,
    )
    from taxbridge.config import (
        NexusRegion as NexusRegion,
    )
    from taxbridge.config import (
        TaxCodeMap as TaxCodeMap,
    )
    from taxbridge.config import (
        load_config as load_config,
    )
    from taxbridge.errors import (
        AccountMissingError as AccountMissingError,
    )
    from taxbridge.errors import (
        AlreadyCommitted as AlreadyCommitted,
    )
    from taxbridge.errors import (
        AuthenticationFailed as AuthenticationFailed,
    )
    from taxbridge.errors import (
        BackendError as BackendError,
    )
    from taxbridge.errors import (
        BackendUnavailable as BackendUnavailable,
    )
    from taxbridge.errors import (
        CertificateNotFoundError as CertificateNotFoundError,
    )
    from taxbridge.errors import (
        CircuitOpen as CircuitOpen,
    )
    from taxbridge.errors import (
        ConcurrentChange as ConcurrentChange,
    )
    from taxbridge.errors import (
        ConfigError as ConfigError,
    )
    from taxbridge.errors import (
        DeadlinePassed as DeadlinePassed,
    )
    from taxbridge.errors import (
        DocumentNotFoundError as DocumentNotFoundError,
    )
    from taxbridge.errors import (
        DocumentRejected as DocumentRejected,
    )
    from taxbridge.errors import (
        EngineMismatch as EngineMismatch,
    )
    from taxbridge.errors import (
        FileFormatError as FileFormatError,
    )
    from taxbridge.errors import (
        InvalidAddressError as InvalidAddressError,
    )
    from taxbridge.errors import (
        InvalidFieldError as InvalidFieldError,
    )
    from taxbridge.errors import (
        InvalidTransition as InvalidTransition,
    )
    from taxbridge.errors import (
        JournalError as JournalError,
    )
    from taxbridge.errors import (
        LeaseLost as LeaseLost,
    )
    from taxbridge.errors import (
        MailError as MailError,
    )
    from taxbridge.errors import (
        MalformedResponse as MalformedResponse,
    )
    from taxbridge.errors import (
        MissingAtEngine as MissingAtEngine,
    )
    from taxbridge.errors import (
        NoCertificateService as NoCertificateService,
    )
    from taxbridge.errors import (
        StoreError as StoreError,
    )
    from taxbridge.errors import (
        TaxBridgeError as TaxBridgeError,
    )
    from taxbridge.errors import (
        UnknownCompanyError as UnknownCompanyError,
    )
    from taxbridge.errors import (
        UnknownTransactionGroupError as UnknownTransactionGroupError,
    )
    from taxbridge.files import (
        CustomerRecord as CustomerRecord,
    )
    from taxbridge.flags import (
        FinalTaxFlag as FinalTaxFlag,
    )
    from taxbridge.lifecycle import (
        Inquiry as Inquiry,
    )
    from taxbridge.lifecycle import (
        PendingCheck as PendingCheck,
    )
    from taxbridge.models import (
        Address as Address,
    )
    from taxbridge.models import (
        Certificate as Certificate,
    )
    from taxbridge.models import (
        CertificateCheck as CertificateCheck,
    )
    from taxbridge.models import (
        CertificateRequest as CertificateRequest,
    )
    from taxbridge.models import (
        Claim as Claim,
    )
    from taxbridge.models import (
        ClaimLine as ClaimLine,
    )
    from taxbridge.models import (
        Contact as Contact,
    )
    from taxbridge.models import (
        Coverage as Coverage,
    )
    from taxbridge.models import (
        Customer as Customer,
    )
    from taxbridge.models import (
        DateRange as DateRange,
    )
    from taxbridge.models import (
        DocumentType as DocumentType,
    )
    from taxbridge.models import (
        Exemption as Exemption,
    )
    from taxbridge.models import (
        Invoice as Invoice,
    )
    from taxbridge.models import (
        JurisdictionTax as JurisdictionTax,
    )
    from taxbridge.models import (
        JurisdictionType as JurisdictionType,
    )
    from taxbridge.models import (
        LineTax as LineTax,
    )
    from taxbridge.models import (
        Order as Order,
    )
    from taxbridge.models import (
        OrderLine as OrderLine,
    )
    from taxbridge.models import (
        PendCode as PendCode,
    )
    from taxbridge.models import (
        PendReason as PendReason,
    )
    from taxbridge.models import (
        Quotation as Quotation,
    )
    from taxbridge.models import (
        QuotationAccount as QuotationAccount,
    )
    from taxbridge.models import (
        QuotationLine as QuotationLine,
    )
    from taxbridge.models import (
        Reminder as Reminder,
    )
    from taxbridge.models import (
        Stage as Stage,
    )
    from taxbridge.models import (
        TaxDocument as TaxDocument,
    )
    from taxbridge.models import (
        TaxLine as TaxLine,
    )
    from taxbridge.models import (
        TaxRequest as TaxRequest,
    )
    from taxbridge.models import (
        TaxResult as TaxResult,
    )
    from taxbridge.models import (
        Warehouse as Warehouse,
    )
    from taxbridge.money import (
        RoundingLevel as RoundingLevel,
    )
    from taxbridge.queue import (
        RepostSummary as RepostSummary,
    )
    from taxbridge.queue import (
        RetryPolicy as RetryPolicy,
    )
    from taxbridge.quotations import (
        Quote as Quote,
    )
    from taxbridge.quotations import (
        QuoteSource as QuoteSource,
    )
    from taxbridge.store import (
        SQLiteStore as SQLiteStore,
    )
    from taxbridge.store import (
        Store as Store,
    )
    from taxbridge.testing import (
        RecordingBackend as RecordingBackend,
    )

_EXPORTS: dict[str, str] = {
    "AccountMissingError": "taxbridge.errors",
    "Address": "taxbridge.models",
    "AddressResolver": "taxbridge.backends.base",
    "AlreadyCommitted": "taxbridge.errors",
    "AuthenticationFailed": "taxbridge.errors",
    "BackendError": "taxbridge.errors",
    "BackendUnavailable": "taxbridge.errors",
    "BridgeConfig": "taxbridge.config",
    "Capability": "taxbridge.backends",
    "Certificate": "taxbridge.models",
    "CertificateCheck": "taxbridge.models",
    "CertificateNotFoundError": "taxbridge.errors",
    "CertificateRequest": "taxbridge.models",
    "CircuitOpen": "taxbridge.errors",
    "Claim": "taxbridge.models",
    "ClaimLine": "taxbridge.models",
    "CompanyMapping": "taxbridge.config",
    "ConcurrentChange": "taxbridge.errors",
    "ConfigError": "taxbridge.errors",
    "Contact": "taxbridge.models",
    "Coverage": "taxbridge.models",
    "Customer": "taxbridge.models",
    "CustomerRecord": "taxbridge.files",
    "DateRange": "taxbridge.models",
    "DeadlinePassed": "taxbridge.errors",
    "DocumentListing": "taxbridge.backends.base",
    "DocumentNotFoundError": "taxbridge.errors",
    "DocumentRegister": "taxbridge.backends.base",
    "DocumentRejected": "taxbridge.errors",
    "DocumentType": "taxbridge.models",
    "EngineMismatch": "taxbridge.errors",
    "Exemption": "taxbridge.models",
    "FileFormatError": "taxbridge.errors",
    "FinalTaxFlag": "taxbridge.flags",
    "FindingKind": "taxbridge.accounting.engine",
    "Inquiry": "taxbridge.lifecycle",
    "InvalidAddressError": "taxbridge.errors",
    "InvalidFieldError": "taxbridge.errors",
    "InvalidTransition": "taxbridge.errors",
    "Invoice": "taxbridge.models",
    "JournalError": "taxbridge.errors",
    "JurisdictionTax": "taxbridge.models",
    "JurisdictionType": "taxbridge.models",
    "LeaseLost": "taxbridge.errors",
    "LineTax": "taxbridge.models",
    "LocalEngine": "taxbridge.backends",
    "MailError": "taxbridge.errors",
    "MalformedResponse": "taxbridge.errors",
    "MissingAtEngine": "taxbridge.errors",
    "NexusRegion": "taxbridge.config",
    "NoCertificateService": "taxbridge.errors",
    "OfflineTable": "taxbridge.backends",
    "Order": "taxbridge.models",
    "OrderLine": "taxbridge.models",
    "PendCode": "taxbridge.models",
    "PendReason": "taxbridge.models",
    "PendingCheck": "taxbridge.lifecycle",
    "Quotation": "taxbridge.models",
    "QuotationAccount": "taxbridge.models",
    "QuotationLine": "taxbridge.models",
    "Quote": "taxbridge.quotations",
    "QuoteSource": "taxbridge.quotations",
    "RateDownload": "taxbridge.backends.base",
    "RecordingBackend": "taxbridge.testing",
    "Reminder": "taxbridge.models",
    "RepostSummary": "taxbridge.queue",
    "RetryPolicy": "taxbridge.queue",
    "RoundingLevel": "taxbridge.money",
    "SQLiteStore": "taxbridge.store",
    "Stage": "taxbridge.models",
    "Store": "taxbridge.store",
    "StoreError": "taxbridge.errors",
    "TaxBackend": "taxbridge.backends",
    "TaxBridge": "taxbridge.bridge",
    "TaxBridgeError": "taxbridge.errors",
    "TaxCodeCatalog": "taxbridge.backends.base",
    "TaxCodeMap": "taxbridge.config",
    "TaxDocument": "taxbridge.models",
    "TaxLine": "taxbridge.models",
    "TaxRequest": "taxbridge.models",
    "TaxResult": "taxbridge.models",
    "UnknownCompanyError": "taxbridge.errors",
    "UnknownTransactionGroupError": "taxbridge.errors",
    "VoidReason": "taxbridge.backends.base",
    "Warehouse": "taxbridge.models",
    "load_config": "taxbridge.config",
}
"""Each public name and the module that defines it."""

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    """A public name, imported on first use (PEP 562) and kept."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'taxbridge' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
