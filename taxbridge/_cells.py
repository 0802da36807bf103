"""Text cells that a spreadsheet would run as a formula, made plain text: one rule for every
file the package writes (finance's CSVs, the seeds' templates, the Excel reports)."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet reads as the start of a formula (OWASP's CSV injection list)."""


def formula_safe(text: str) -> str:
    """``text`` as a spreadsheet shows it and never evaluates: one that starts like a formula
    (``=HYPERLINK(...)``, ``+1+1``, ``@SUM(A1)``) gets a leading apostrophe."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text
