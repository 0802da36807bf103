"""The seeds' file formats: the AvaTax transaction import (seed 001), the CertCapture customer
templates and the ECMS certificate template (seed 000) — declared once, written, read and
validated by one small framework (:mod:`taxbridge.files.template`)."""

from taxbridge.errors import FileFormatError
from taxbridge.files.avatax_import import TaxWriteOff, avatax_template
from taxbridge.files.certcapture import BASIC, ECMS, FULL, CustomerRecord, ecms_template
from taxbridge.files.service import CustomerDiff, Files
from taxbridge.files.template import (
    Column,
    Kind,
    Problem,
    Report,
    Severity,
    Template,
    read,
)

__all__ = [
    "BASIC",
    "ECMS",
    "FULL",
    "Column",
    "CustomerDiff",
    "CustomerRecord",
    "FileFormatError",
    "Files",
    "Kind",
    "Problem",
    "Report",
    "Severity",
    "TaxWriteOff",
    "Template",
    "avatax_template",
    "ecms_template",
    "read",
]
