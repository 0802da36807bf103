"""The SQLite store's schema, as the migrations that build it."""

from __future__ import annotations

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
)
"""Schema changes in order. Later features append a (version, sql) pair; never edit one."""
