"""Typed configuration: the ERP's control files, loaded from TOML or built in code.

Each section is one class whose docstring names its control file in the seed (the "IP1 Business
rules" table); :class:`BridgeConfig` holds them all, with the kinds and settings of the backend
and the store. A mistake raises :class:`~taxbridge.errors.ConfigError` naming the file, the key
path and the value, e.g. ``taxbridge.toml: nexus[2].region: 'XX' is not a US state or Canadian
province``.
"""

from taxbridge.config.certificates import (
    CertificateServiceKind,
    CertificateSettings,
    ReminderSettings,
    SMTPSettings,
)
from taxbridge.config.core import DEFAULT_NEXUS, BridgeConfig, default_config
from taxbridge.config.file import (
    _TOP,
    example_config,
    example_config_text,
    load_config,
    parse_config,
    parse_config_text,
)
from taxbridge.config.sections import (
    CANADIAN_PROVINCES,
    REGIONS,
    AddressValidation,
    CanadianRate,
    CompanyMapping,
    ExemptionMode,
    ExemptionSettings,
    GLAccount,
    LevyItem,
    NexusRegion,
    PendingRules,
    QueueSettings,
    QuotationSettings,
    TaxCodeMap,
    TransactionGroup,
)

__all__ = [
    "CANADIAN_PROVINCES",
    "DEFAULT_NEXUS",
    "REGIONS",
    "_TOP",
    "AddressValidation",
    "BridgeConfig",
    "CanadianRate",
    "CertificateServiceKind",
    "CertificateSettings",
    "CompanyMapping",
    "ExemptionMode",
    "ExemptionSettings",
    "GLAccount",
    "LevyItem",
    "NexusRegion",
    "PendingRules",
    "QueueSettings",
    "QuotationSettings",
    "ReminderSettings",
    "SMTPSettings",
    "TaxCodeMap",
    "TransactionGroup",
    "default_config",
    "example_config",
    "example_config_text",
    "load_config",
    "parse_config",
    "parse_config_text",
]
