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
    (
        5,
        """
        DROP FUNCTION taxbridge_guard(TEXT[], TEXT, TEXT, TEXT[], BOOLEAN, TEXT, TEXT);
        CREATE FUNCTION taxbridge_save(writes JSONB) RETURNS JSONB LANGUAGE plpgsql AS $$
        DECLARE
            w JSONB;
            d JSONB;
            want JSONB;
            refused JSONB;
            refusals JSONB := '[]';
            claimed TEXT;
            settled TEXT;
            found_flag TEXT;
            found_invoice TEXT;
            checked_code TEXT;
            order_code TEXT;
            doc_code TEXT;
            stored TEXT;
            existed BOOLEAN;
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtext(k)) FROM (
                SELECT DISTINCT jsonb_array_elements_text(x -> 'keys') AS k
                FROM jsonb_array_elements(writes) AS x
            ) AS codes ORDER BY k;
            FOR w IN SELECT value FROM jsonb_array_elements(writes) LOOP
                refused := NULL;
                IF w ? 'holder' THEN
                    SELECT q.claimed_by, q.settled_at INTO claimed, settled
                        FROM unposted_queue AS q WHERE q.code = w ->> 'held' FOR UPDATE;
                    IF NOT FOUND OR settled IS NOT NULL
                            OR claimed IS DISTINCT FROM w ->> 'holder' THEN
                        refused := jsonb_build_object('state', 'TB001', 'detail',
                            jsonb_build_array(w ->> 'held', w ->> 'holder', claimed));
                    END IF;
                END IF;
                want := w -> 'expected';
                IF refused IS NULL AND want IS NOT NULL THEN
                    FOR checked_code IN SELECT jsonb_array_elements_text(w -> 'checked') LOOP
                        SELECT x.flag, NULLIF(x.invoice_code, '') INTO found_flag, found_invoice
                            FROM documents AS x WHERE x.code = checked_code;
                        IF FOUND IS DISTINCT FROM (want ->> 'present')::BOOLEAN
                                OR (FOUND AND (found_flag IS DISTINCT FROM want ->> 'flag'
                                    OR found_invoice IS DISTINCT FROM want ->> 'invoice')) THEN
                            refused := jsonb_build_object('state', 'TB002', 'detail',
                                jsonb_build_array(checked_code, FOUND, found_flag, found_invoice,
                                    (want ->> 'present')::BOOLEAN, want ->> 'flag',
                                    want ->> 'invoice'));
                            EXIT;
                        END IF;
                    END LOOP;
                END IF;
                refusals := refusals || jsonb_build_array(refused);
                CONTINUE WHEN refused IS NOT NULL;
                FOR d IN SELECT value FROM jsonb_array_elements(w -> 'documents') LOOP
                    doc_code := d -> 'row' ->> 'code';
                    SELECT x.lines_digest INTO stored FROM documents AS x WHERE x.code = doc_code;
                    existed := FOUND;
                    INSERT INTO documents
                        SELECT * FROM jsonb_populate_record(NULL::documents, d -> 'row')
                    ON CONFLICT (code) DO UPDATE SET kind = EXCLUDED.kind,
                        stage = EXCLUDED.stage, flag = EXCLUDED.flag,
                        erp_company = EXCLUDED.erp_company, company_code = EXCLUDED.company_code,
                        customer_code = EXCLUDED.customer_code,
                        document_type = EXCLUDED.document_type,
                        document_date = EXCLUDED.document_date, tax_date = EXCLUDED.tax_date,
                        currency = EXCLUDED.currency, total_amount = EXCLUDED.total_amount,
                        total_taxable = EXCLUDED.total_taxable,
                        total_exempt = EXCLUDED.total_exempt, total_tax = EXCLUDED.total_tax,
                        backend = EXCLUDED.backend, last_log = EXCLUDED.last_log,
                        updated_at = EXCLUDED.updated_at, request_json = EXCLUDED.request_json,
                        orders_json = EXCLUDED.orders_json, invoice_code = EXCLUDED.invoice_code,
                        charged_tax = EXCLUDED.charged_tax, voided_at = EXCLUDED.voided_at,
                        void_reason = EXCLUDED.void_reason, lines_digest = EXCLUDED.lines_digest;
                    CONTINUE WHEN existed AND stored = d -> 'row' ->> 'lines_digest';
                    IF existed THEN
                        DELETE FROM document_lines WHERE code = doc_code;
                        DELETE FROM document_breakdown WHERE code = doc_code;
                    END IF;
                    INSERT INTO document_lines
                        SELECT * FROM jsonb_populate_recordset(NULL::document_lines, d -> 'lines');
                    INSERT INTO document_breakdown
                        SELECT * FROM jsonb_populate_recordset(
                            NULL::document_breakdown, d -> 'breakdown');
                END LOOP;
                INSERT INTO document_events
                        (code, at, stage, flag_before, flag_after, backend, message, error)
                    SELECT e.code, e.at, e.stage, e.flag_before, e.flag_after, e.backend,
                        e.message, e.error
                    FROM jsonb_populate_recordset(NULL::document_events, w -> 'events')
                        WITH ORDINALITY AS e ORDER BY e.ordinality;
                IF w ? 'enqueue' THEN
                    INSERT INTO unposted_queue
                        SELECT * FROM jsonb_populate_record(NULL::unposted_queue, w -> 'enqueue')
                    ON CONFLICT (code) DO UPDATE SET attempts = EXCLUDED.attempts,
                        next_attempt_at = EXCLUDED.next_attempt_at,
                        last_error_code = EXCLUDED.last_error_code,
                        last_error_message = EXCLUDED.last_error_message,
                        retryable = EXCLUDED.retryable, created_at = EXCLUDED.created_at,
                        updated_at = EXCLUDED.updated_at, claimed_by = EXCLUDED.claimed_by,
                        lease_expires_at = EXCLUDED.lease_expires_at,
                        settled_at = EXCLUDED.settled_at, outcome = EXCLUDED.outcome,
                        may_have_landed = EXCLUDED.may_have_landed;
                END IF;
                IF w ? 'dequeue' THEN
                    UPDATE unposted_queue SET settled_at = w -> 'dequeue' ->> 'at',
                        outcome = w -> 'dequeue' ->> 'flag', claimed_by = NULL,
                        lease_expires_at = NULL
                    WHERE code = w -> 'dequeue' ->> 'code' AND settled_at IS NULL;
                END IF;
                IF w ? 'invoiced' THEN
                    d := w -> 'invoiced';
                    FOR order_code IN SELECT jsonb_array_elements_text(d -> 'orders') LOOP
                        INSERT INTO document_events
                                (code, at, stage, flag_before, flag_after, backend, message, error)
                            SELECT x.code, d ->> 'at', d ->> 'stage', x.flag, x.flag, x.backend,
                                d ->> 'message', 0
                            FROM documents AS x WHERE x.code = order_code
                                AND x.invoice_code IS DISTINCT FROM d ->> 'invoice';
                        UPDATE documents SET stage = d ->> 'stage', invoice_code = d ->> 'invoice',
                            last_log = d ->> 'message', updated_at = d ->> 'at'
                        WHERE code = order_code AND invoice_code IS DISTINCT FROM d ->> 'invoice';
                    END LOOP;
                END IF;
                IF w ? 'credits' THEN
                    DELETE FROM credit_allocations WHERE credit_code = w -> 'credits' ->> 'code';
                    INSERT INTO credit_allocations SELECT * FROM jsonb_populate_recordset(
                        NULL::credit_allocations, w -> 'credits' -> 'rows');
                END IF;
            END LOOP;
            RETURN refusals;
        END
        $$
        """,
    ),
    (
        6,
        # As SQLite's version 10: when each customer was last reminded for each region.
        """
        CREATE TABLE reminded (
            customer_code TEXT NOT NULL,
            region TEXT NOT NULL,
            day TEXT NOT NULL,
            PRIMARY KEY (customer_code, region)
        )
        """,
    ),
    (
        7,
        # A certificate names every purchase order it is for (AvaTax poNumbers): a JSON array.
        """
        ALTER TABLE certificates RENAME COLUMN po_number TO po_numbers;
        UPDATE certificates SET po_numbers =
            CASE WHEN po_numbers = '' THEN '[]' ELSE json_build_array(po_numbers)::text END
        """,
    ),
)
"""Schema changes in order; later features append a (version, sql) pair, never edit one.
Version 3 adds the one-call guard of a write (locks, lease, expected state) that lets a save
travel to the server in one round trip; version 4 the digest of a document's lines; version 5
replaces the guard with ``taxbridge_save``, which makes several writes, each checked and all
or nothing, from one JSON argument: its statements are planned once per connection."""
