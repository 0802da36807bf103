"""The SQLite store's schema, as the migrations that build it, and the data fills that some
migrations need (values computed in Python from rows already stored)."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from decimal import Decimal

from taxbridge.money import allocate

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE documents (
            code TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            stage TEXT NOT NULL,
            flag TEXT NOT NULL,
            erp_company TEXT NOT NULL,
            company_code TEXT NOT NULL,
            customer_code TEXT NOT NULL,
            document_type TEXT NOT NULL,
            document_date TEXT NOT NULL,
            tax_date TEXT,
            currency TEXT NOT NULL,
            total_amount TEXT NOT NULL,
            total_taxable TEXT NOT NULL,
            total_exempt TEXT NOT NULL,
            total_tax TEXT NOT NULL,
            backend TEXT NOT NULL,
            last_log TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            request_json TEXT,
            orders_json TEXT NOT NULL DEFAULT '[]',
            invoice_code TEXT
        );
        CREATE INDEX documents_flag ON documents (flag);
        CREATE TABLE document_lines (
            code TEXT NOT NULL,
            seq INTEGER NOT NULL,
            number TEXT NOT NULL,
            amount TEXT NOT NULL,
            taxable TEXT NOT NULL,
            exempt TEXT NOT NULL,
            tax TEXT NOT NULL,
            tax_code TEXT NOT NULL,
            rate TEXT NOT NULL,
            PRIMARY KEY (code, seq)
        ) WITHOUT ROWID;
        CREATE TABLE document_breakdown (
            code TEXT NOT NULL,
            seq INTEGER NOT NULL,
            jurisdiction_type TEXT NOT NULL,
            name TEXT NOT NULL,
            region TEXT NOT NULL,
            rate TEXT NOT NULL,
            taxable TEXT NOT NULL,
            exempt TEXT NOT NULL,
            tax TEXT NOT NULL,
            PRIMARY KEY (code, seq)
        ) WITHOUT ROWID;
        CREATE TABLE document_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            code TEXT NOT NULL,
            at TEXT NOT NULL,
            stage TEXT NOT NULL,
            flag_before TEXT,
            flag_after TEXT NOT NULL,
            backend TEXT NOT NULL,
            message TEXT NOT NULL,
            error INTEGER NOT NULL
        );
        CREATE INDEX document_events_code ON document_events (code, id);
        CREATE TABLE unposted_queue (
            code TEXT PRIMARY KEY REFERENCES documents (code),
            attempts INTEGER NOT NULL,
            next_attempt_at TEXT NOT NULL,
            last_error_code TEXT NOT NULL,
            last_error_message TEXT NOT NULL,
            retryable INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE offline_rates (
            zip_code TEXT NOT NULL,
            state TEXT NOT NULL,
            county TEXT NOT NULL,
            city TEXT NOT NULL,
            state_rate TEXT NOT NULL,
            state_use_rate TEXT NOT NULL,
            county_rate TEXT NOT NULL,
            county_use_rate TEXT NOT NULL,
            city_rate TEXT NOT NULL,
            city_use_rate TEXT NOT NULL,
            total_rate TEXT NOT NULL,
            total_use_rate TEXT NOT NULL,
            shipping_taxable TEXT NOT NULL,
            shipping_and_handling_taxable TEXT NOT NULL,
            PRIMARY KEY (zip_code, state)
        ) WITHOUT ROWID;
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
    ),
    (
        2,
        """
        CREATE TABLE reference_tax_codes (code TEXT PRIMARY KEY) WITHOUT ROWID;
        CREATE TABLE reference_entity_use_codes (
            code TEXT PRIMARY KEY,
            description TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE reference_nexus (
            company_code TEXT NOT NULL,
            region TEXT NOT NULL,
            PRIMARY KEY (company_code, region)
        ) WITHOUT ROWID;
        CREATE TABLE exemptions (
            customer_code TEXT NOT NULL,
            region TEXT NOT NULL,
            effective TEXT NOT NULL,
            exemption_no TEXT,
            entity_use_code TEXT,
            expiry TEXT,
            PRIMARY KEY (customer_code, region, effective)
        ) WITHOUT ROWID;
        """,
    ),
    (
        3,
        """
        ALTER TABLE unposted_queue ADD COLUMN claimed_by TEXT;
        ALTER TABLE unposted_queue ADD COLUMN lease_expires_at TEXT;
        ALTER TABLE unposted_queue ADD COLUMN settled_at TEXT;
        ALTER TABLE unposted_queue ADD COLUMN outcome TEXT NOT NULL DEFAULT '';
        CREATE INDEX unposted_queue_due ON unposted_queue (settled_at, next_attempt_at)
        """,
    ),
    (
        4,
        """
        ALTER TABLE unposted_queue ADD COLUMN may_have_landed INTEGER NOT NULL DEFAULT 1
        """,
    ),
    (
        5,
        """
        CREATE TABLE credit_allocations (
            credit_code TEXT NOT NULL,
            seq INTEGER NOT NULL,
            invoice_code TEXT NOT NULL,
            invoice_line TEXT NOT NULL,
            amount TEXT NOT NULL,
            tax TEXT NOT NULL,
            PRIMARY KEY (credit_code, seq)
        ) WITHOUT ROWID;
        CREATE INDEX credit_allocations_invoice ON credit_allocations (invoice_code)
        """,
    ),
    (
        6,
        """
        ALTER TABLE documents ADD COLUMN charged_tax TEXT;
        ALTER TABLE documents ADD COLUMN voided_at TEXT;
        ALTER TABLE documents ADD COLUMN void_reason TEXT NOT NULL DEFAULT '';
        ALTER TABLE document_lines ADD COLUMN region TEXT NOT NULL DEFAULT '';
        ALTER TABLE document_lines ADD COLUMN charged_tax TEXT;
        CREATE INDEX documents_period ON documents (document_date, code)
            WHERE kind IN ('invoice', 'credit');
        CREATE TABLE journals (
            key TEXT PRIMARY KEY,
            company TEXT NOT NULL,
            start_date TEXT NOT NULL,
            end_date TEXT NOT NULL,
            status TEXT NOT NULL,
            version INTEGER NOT NULL,
            generated_at TEXT NOT NULL,
            posted_at TEXT,
            posted_by TEXT NOT NULL DEFAULT '',
            total_tax TEXT NOT NULL
        );
        CREATE TABLE journal_lines (
            journal_key TEXT NOT NULL REFERENCES journals (key),
            seq INTEGER NOT NULL,
            company TEXT NOT NULL,
            region TEXT NOT NULL,
            account TEXT NOT NULL,
            debit TEXT NOT NULL,
            credit TEXT NOT NULL,
            PRIMARY KEY (journal_key, seq)
        ) WITHOUT ROWID;
        CREATE TABLE journal_documents (
            journal_key TEXT NOT NULL REFERENCES journals (key),
            code TEXT NOT NULL,
            process TEXT NOT NULL,
            company TEXT NOT NULL,
            document_date TEXT NOT NULL,
            tax TEXT NOT NULL,
            PRIMARY KEY (journal_key, code, process)
        ) WITHOUT ROWID
        """,
    ),
    (
        7,
        """
        CREATE TABLE file_exports (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            exported_at TEXT NOT NULL,
            PRIMARY KEY (kind, key)
        ) WITHOUT ROWID
        """,
    ),
    (
        8,
        """
        CREATE TABLE certificates (
            id TEXT PRIMARY KEY,
            customer_code TEXT NOT NULL,
            service TEXT NOT NULL,
            exempt_reason TEXT NOT NULL,
            regions TEXT NOT NULL,
            signed TEXT NOT NULL,
            expiry TEXT,
            effective TEXT,
            exemption_no TEXT NOT NULL,
            single_use INTEGER NOT NULL,
            po_number TEXT NOT NULL,
            status TEXT NOT NULL,
            filename TEXT NOT NULL,
            pdf BLOB,
            pulled_at TEXT NOT NULL
        );
        CREATE INDEX certificates_customer ON certificates (customer_code);
        CREATE TABLE certificate_uses (
            certificate_id TEXT PRIMARY KEY,
            order_number TEXT NOT NULL,
            used_at TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE customer_cards (
            customer_code TEXT PRIMARY KEY,
            wanted TEXT NOT NULL,
            sent TEXT,
            synced_at TEXT,
            updated_at TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE certificate_requests (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL,
            customer_code TEXT NOT NULL,
            recipient TEXT NOT NULL,
            regions TEXT NOT NULL,
            reasons TEXT NOT NULL,
            link TEXT NOT NULL,
            service TEXT NOT NULL,
            status TEXT NOT NULL,
            sent_at TEXT NOT NULL
        );
        CREATE TABLE customer_notes (
            customer_code TEXT NOT NULL,
            note_type TEXT NOT NULL,
            day TEXT NOT NULL,
            text TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (customer_code, note_type, day)
        ) WITHOUT ROWID
        """,
    ),
    (
        9,
        # The digest of the lines and breakdown rows written with the document; null (before
        # this version) always rewrites them. Anything else that changes those rows must set it
        # to null.
        "ALTER TABLE documents ADD COLUMN lines_digest TEXT",
    ),
    (
        10,
        # When each customer was last reminded for each region ([reminders] again_after_days).
        """
        CREATE TABLE reminded (
            customer_code TEXT NOT NULL,
            region TEXT NOT NULL,
            day TEXT NOT NULL,
            PRIMARY KEY (customer_code, region)
        ) WITHOUT ROWID
        """,
    ),
    (
        11,
        # A certificate names every purchase order it is for (AvaTax poNumbers): a JSON array.
        """
        ALTER TABLE certificates RENAME COLUMN po_number TO po_numbers;
        UPDATE certificates SET po_numbers =
            CASE WHEN po_numbers = '' THEN '[]' ELSE json_array(po_numbers) END
        """,
    ),
)
"""Schema changes in order. Later features append a (version, sql) pair; never edit one."""

_CARRIED = re.compile(r"\(the invoice carried (-?\d+(?:\.\d+)?)\)")


def _fill_charged_and_regions(conn: sqlite3.Connection) -> None:
    """Version 6: each line's ship-to region from the saved request, and the tax each invoice
    and credit carried. A repost before v6 kept that figure only in its log ("the invoice
    carried X"): it is taken from there and spread over the lines by their tax."""
    rows = conn.execute(
        "SELECT code, kind, total_tax, request_json FROM documents ORDER BY code"
    ).fetchall()
    for code, kind, total_tax, request_json in rows:
        if request_json:
            request = json.loads(request_json)
            default = (request.get("ship_to") or {}).get("region", "")
            conn.executemany(
                "UPDATE document_lines SET region = ? WHERE code = ? AND number = ?",
                [
                    ((line[8] or {}).get("region", default) if line[8] else default, code, line[0])
                    for line in request.get("lines", ())
                ],
            )
        if kind == "order":
            continue
        carried = None
        for (message,) in conn.execute(
            "SELECT message FROM document_events WHERE code = ? AND stage = 'repost' ORDER BY id",
            (code,),
        ):
            found = _CARRIED.search(message)
            if found:
                carried = Decimal(found.group(1))
        charged = Decimal(total_tax) if carried is None else carried
        conn.execute("UPDATE documents SET charged_tax = ? WHERE code = ?", (str(charged), code))
        if carried is not None:
            _spread_charged(conn, code, carried)


def _spread_charged(conn: sqlite3.Connection, code: str, charged: Decimal) -> None:
    lines = conn.execute(
        "SELECT seq, tax, amount FROM document_lines WHERE code = ? ORDER BY seq", (code,)
    ).fetchall()
    if not lines:
        return
    weights = [Decimal(tax) for _, tax, _ in lines]
    if not any(weights):
        weights = [Decimal(amount) for _, _, amount in lines]
    total = sum(weights, Decimal(0))
    raw = (
        [charged * w / total for w in weights]
        if total
        else [charged] + [Decimal(0)] * (len(lines) - 1)
    )
    conn.executemany(
        "UPDATE document_lines SET charged_tax = ? WHERE code = ? AND seq = ?",
        [
            (str(part), code, seq)
            for part, (seq, _, _) in zip(allocate(charged, raw), lines, strict=True)
        ],
    )


FILLS: dict[int, Callable[[sqlite3.Connection], None]] = {6: _fill_charged_and_regions}
"""Data fills run right after a migration's SQL, in the same transaction."""
