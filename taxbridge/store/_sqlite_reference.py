"""The SQLite store's reference tables (the end-of-day refresh replaces them in one go) and
the exemption database."""

from __future__ import annotations

import datetime as dt
from typing import Any

from taxbridge.rates import RATE_COLUMNS
from taxbridge.store._codec import EXEMPTION_COLUMNS
from taxbridge.store._ledger_sql import Runner
from taxbridge.store._statements import upsert
from taxbridge.store.base import ReferenceData


def replace_reference(conn: Runner, reference: ReferenceData) -> None:
    """Replace the parts of ``reference`` that are given (inside the caller's transaction)."""
    placeholders = ", ".join("?" for _ in RATE_COLUMNS)
    if reference.tax_codes is not None:
        conn.execute("DELETE FROM reference_tax_codes")
        conn.executemany(
            "INSERT INTO reference_tax_codes VALUES (?)",
            [(code,) for code in sorted(reference.tax_codes)],
        )
    if reference.entity_use_codes is not None:
        conn.execute("DELETE FROM reference_entity_use_codes")
        conn.executemany(
            "INSERT INTO reference_entity_use_codes VALUES (?, ?)",
            sorted(reference.entity_use_codes.items()),
        )
    if reference.nexus is not None:
        conn.execute("DELETE FROM reference_nexus")
        conn.executemany(
            "INSERT INTO reference_nexus VALUES (?, ?)",
            [
                (company, region)
                for company, regions in sorted(reference.nexus.items())
                for region in sorted(regions)
            ],
        )
    if reference.rates is not None:
        conn.execute("DELETE FROM offline_rates")
        conn.executemany(
            f"INSERT INTO offline_rates VALUES ({placeholders})",
            (rate.as_row() for rate in reference.rates),
        )
    if reference.as_of is not None:
        conn.execute(
            upsert("meta", "key, value", "'refreshed_as_of', ?"),
            (reference.as_of.isoformat(),),
        )


def delete_exemption(conn: Runner, customer_code: str, region: str, effective: dt.date) -> bool:
    """Remove one exemption entry; False when there was none."""
    cursor = conn.execute(
        "DELETE FROM exemptions WHERE customer_code = ? AND region = ? AND effective = ?",
        (customer_code, region, effective.isoformat()),
    )
    return bool(cursor.rowcount > 0)


def exemption_rows(conn: Runner, customer_code: str | None) -> list[Any]:
    """Exemption rows of one customer (or all), by customer, region and effective date."""
    sql = f"SELECT {EXEMPTION_COLUMNS} FROM exemptions"
    params: tuple[str, ...] = ()
    if customer_code is not None:
        sql += " WHERE customer_code = ?"
        params = (customer_code,)
    rows: list[Any] = conn.execute(sql + " ORDER BY 1, 2, 3", params).fetchall()
    return rows
