"""Finance's side: the tax workfile, GL journals, the sales-vs-GL and engine-vs-store
reconciliations, the state report, and voids."""

from taxbridge.accounting.engine import (
    Action,
    EngineBooks,
    EngineReconciliation,
    Finding,
    FindingKind,
)
from taxbridge.accounting.ledger import (
    ALL_COMPANIES,
    Difference,
    GLReconciliation,
    Ledger,
    ReconciliationRow,
    StateReport,
    StateRow,
)

__all__ = [
    "ALL_COMPANIES",
    "Action",
    "Difference",
    "EngineBooks",
    "EngineReconciliation",
    "Finding",
    "FindingKind",
    "GLReconciliation",
    "Ledger",
    "ReconciliationRow",
    "StateReport",
    "StateRow",
]
