"""Exempt customers and their certificates (seeds 000, 002, 003): the certificate service
contract and its local implementation, the workflow on orders, certificate requests, and the
expiry reminders with their notes and incidents."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import cast

from taxbridge.backends.base import Capability, TaxBackend
from taxbridge.certificates.base import CertificateProvider, CertificateService
from taxbridge.certificates.customers import ExemptCustomers, SyncSummary
from taxbridge.certificates.local import LocalCertificates
from taxbridge.certificates.mail import Mailer, Message
from taxbridge.certificates.reminders import IncidentHook, ReminderLetter, ReminderRun, Reminders
from taxbridge.config import BridgeConfig, CertificateServiceKind
from taxbridge.errors import ConfigError
from taxbridge.store.base import Store


def build_service(
    config: BridgeConfig,
    backend: TaxBackend,
    store: Store,
    mailer: Mailer,
    *,
    clock: Callable[[], dt.datetime],
    reasons: Callable[[], Mapping[str, str]],
) -> CertificateService | None:
    """The certificate service ``[certificates] service`` names (None for ``none``)."""
    kind = config.certificates.service
    if kind is CertificateServiceKind.NONE:
        return None
    if kind is CertificateServiceKind.LOCAL:
        return LocalCertificates(store, config.certificates, mailer, reasons=reasons, clock=clock)
    if Capability.CERTIFICATES not in backend.capabilities:
        raise ConfigError(
            f"the {backend.name} backend keeps no certificates",
            source=config.source,
            key="certificates.service",
            value=kind.value,
        )
    return cast(CertificateProvider, backend).certificate_service()


__all__ = [
    "CertificateProvider",
    "CertificateService",
    "ExemptCustomers",
    "IncidentHook",
    "LocalCertificates",
    "Mailer",
    "Message",
    "ReminderLetter",
    "ReminderRun",
    "Reminders",
    "SyncSummary",
    "build_service",
]
