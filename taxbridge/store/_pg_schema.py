"""The PostgreSQL store's schema, as the migrations that build it. Money and rates are NUMERIC
(exact, never float); dates and times are ISO text, as the row codecs write them for any
database (they sort as they should: every time is UTC)."""

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
            total_amount NUMERIC NOT NULL,
            total_taxable NUMERIC NOT NULL,
            total_exempt NUMERIC NOT NULL,
            total_tax NUMERIC NOT NULL,
            backend TEXT NOT NULL,
            last_log TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            request_json TEXT,
            orders_json TEXT NOT NULL DEFAULT '[]',
            invoice_code TEXT,
            charged_tax NUMERIC,
            voided_at TEXT,
            void_reason TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX documents_flag ON documents (flag);
        CREATE INDEX documents_period ON documents (document_date, code)
            WHERE kind IN ('invoice', 'credit');
        CREATE TABLE document_lines (
            code TEXT NOT NULL,
            seq INTEGER NOT NULL,
            number TEXT NOT NULL,
            amount NUMERIC NOT NULL,
            taxable NUMERIC NOT NULL,
            exempt NUMERIC NOT NULL,
            tax NUMERIC NOT NULL,
            tax_code TEXT NOT NULL,
            rate NUMERIC NOT NULL,
            region TEXT NOT NULL DEFAULT '',
            charged_tax NUMERIC,
            PRIMARY KEY (code, seq)
        );
        CREATE TABLE document_breakdown (
            code TEXT NOT NULL,
            seq INTEGER NOT NULL,
            jurisdiction_type TEXT NOT NULL,
            name TEXT NOT NULL,
            region TEXT NOT NULL,
            rate NUMERIC NOT NULL,
            taxable NUMERIC NOT NULL,
            exempt NUMERIC NOT NULL,
            tax NUMERIC NOT NULL,
            PRIMARY KEY (code, seq)
        );
        CREATE TABLE document_events (
            id BIGSERIAL PRIMARY KEY,
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
            updated_at TEXT NOT NULL,
            claimed_by TEXT,
            lease_expires_at TEXT,
            settled_at TEXT,
            outcome TEXT NOT NULL DEFAULT '',
            may_have_landed INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX unposted_queue_due ON unposted_queue (settled_at, next_attempt_at);
        CREATE TABLE credit_allocations (
            credit_code TEXT NOT NULL,
            seq INTEGER NOT NULL,
            invoice_code TEXT NOT NULL,
            invoice_line TEXT NOT NULL,
            amount NUMERIC NOT NULL,
            tax NUMERIC NOT NULL,
            PRIMARY KEY (credit_code, seq)
        );
        CREATE INDEX credit_allocations_invoice ON credit_allocations (invoice_code);
        CREATE TABLE offline_rates (
            zip_code TEXT NOT NULL,
            state TEXT NOT NULL,
            county TEXT NOT NULL,
            city TEXT NOT NULL,
            state_rate NUMERIC NOT NULL,
            state_use_rate NUMERIC NOT NULL,
            county_rate NUMERIC NOT NULL,
            county_use_rate NUMERIC NOT NULL,
            city_rate NUMERIC NOT NULL,
            city_use_rate NUMERIC NOT NULL,
            total_rate NUMERIC NOT NULL,
            total_use_rate NUMERIC NOT NULL,
            shipping_taxable TEXT NOT NULL,
            shipping_and_handling_taxable TEXT NOT NULL,
            PRIMARY KEY (zip_code, state)
        );
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE reference_tax_codes (code TEXT PRIMARY KEY);
        CREATE TABLE reference_entity_use_codes (code TEXT PRIMARY KEY, description TEXT NOT NULL);
        CREATE TABLE reference_nexus (
            company_code TEXT NOT NULL,
            region TEXT NOT NULL,
            PRIMARY KEY (company_code, region)
        );
        CREATE TABLE exemptions (
            customer_code TEXT NOT NULL,
            region TEXT NOT NULL,
            effective TEXT NOT NULL,
            exemption_no TEXT,
            entity_use_code TEXT,
            expiry TEXT,
            PRIMARY KEY (customer_code, region, effective)
        );
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
            total_tax NUMERIC NOT NULL
        );
        CREATE TABLE journal_lines (
            journal_key TEXT NOT NULL REFERENCES journals (key),
            seq INTEGER NOT NULL,
            company TEXT NOT NULL,
            region TEXT NOT NULL,
            account TEXT NOT NULL,
            debit NUMERIC NOT NULL,
            credit NUMERIC NOT NULL,
            PRIMARY KEY (journal_key, seq)
        );
        CREATE TABLE journal_documents (
            journal_key TEXT NOT NULL REFERENCES journals (key),
            code TEXT NOT NULL,
            process TEXT NOT NULL,
            company TEXT NOT NULL,
            document_date TEXT NOT NULL,
            tax NUMERIC NOT NULL,
            PRIMARY KEY (journal_key, code, process)
        );
        CREATE TABLE file_exports (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            exported_at TEXT NOT NULL,
            PRIMARY KEY (kind, key)
        )
        """,
    ),
    (
        2,
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
            pdf BYTEA,
            pulled_at TEXT NOT NULL
        );
        CREATE INDEX certificates_customer ON certificates (customer_code);
        CREATE TABLE certificate_uses (
            certificate_id TEXT PRIMARY KEY,
            order_number TEXT NOT NULL,
            used_at TEXT NOT NULL
        );
        CREATE TABLE customer_cards (
            customer_code TEXT PRIMARY KEY,
            wanted TEXT NOT NULL,
            sent TEXT,
            synced_at TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE certificate_requests (
            seq BIGSERIAL PRIMARY KEY,
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
        )
        """,
    ),
    (
        3,
        """
        CREATE FUNCTION taxbridge_guard(
            keys TEXT[],
            held_code TEXT,
            holder TEXT,
            checked TEXT[],
            want_present BOOLEAN,
            want_flag TEXT,
            want_invoice TEXT
        ) RETURNS VOID LANGUAGE plpgsql AS $$
        DECLARE
            claimed TEXT;
            settled TEXT;
            found_flag TEXT;
            found_invoice TEXT;
            checked_code TEXT;
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtext(k)) FROM unnest(keys) AS k ORDER BY k;
            IF holder IS NOT NULL THEN
                SELECT q.claimed_by, q.settled_at INTO claimed, settled
                    FROM unposted_queue AS q WHERE q.code = held_code FOR UPDATE;
                IF NOT FOUND OR settled IS NOT NULL OR claimed IS DISTINCT FROM holder THEN
                    RAISE EXCEPTION USING ERRCODE = 'TB001', MESSAGE = 'lease lost',
                        DETAIL = json_build_array(held_code, holder, claimed)::text;
                END IF;
            END IF;
            FOREACH checked_code IN ARRAY checked LOOP
                SELECT d.flag, NULLIF(d.invoice_code, '') INTO found_flag, found_invoice
                    FROM documents AS d WHERE d.code = checked_code;
                IF FOUND IS DISTINCT FROM want_present
                    OR (FOUND AND (found_flag IS DISTINCT FROM want_flag
                                   OR found_invoice IS DISTINCT FROM want_invoice)) THEN
                    RAISE EXCEPTION USING ERRCODE = 'TB002', MESSAGE = 'concurrent change',
                        DETAIL = json_build_array(checked_code, FOUND, found_flag,
                            found_invoice, want_present, want_flag, want_invoice)::text;
                END IF;
            END LOOP;
        END
        $$
        """,
    ),
    (
        4,
        # As SQLite's version 9: the digest of the rows written with the document.
        "ALTER TABLE documents ADD COLUMN lines_digest TEXT",
    ),
)
"""Schema changes in order; later features append a (version, sql) pair, never edit one.
Version 3 adds the one-call guard of a write (locks, lease, expected state) that lets a save
travel to the server in one round trip; version 4 the digest of a document's lines."""

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "documents": ("code",),
    "unposted_queue": ("code",),
    "offline_rates": ("zip_code", "state"),
    "meta": ("key",),
    "exemptions": ("customer_code", "region", "effective"),
    "journals": ("key",),
    "file_exports": ("kind", "key"),
    "certificates": ("id",),
    "certificate_uses": ("certificate_id",),
    "customer_cards": ("customer_code",),
    "customer_notes": ("customer_code", "note_type", "day"),
}
"""What an upsert of each table conflicts on."""
