"""The stores' exempt-customer half, in SQL both stores run: certificates (the local service's,
or those pulled back from AvaTax), single-use certificates' orders, the customer cards wanted
and sent, certificate requests and customer-history notes (TXEEXP)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from taxbridge.models import (
    Certificate,
    CertificateRequest,
    CustomerCard,
    CustomerNote,
)
from taxbridge.store._ledger_sql import Runner
from taxbridge.store._statements import insert_new, upsert

_CERTIFICATE_COLUMNS = (
    "id, customer_code, service, exempt_reason, regions, signed, expiry, effective, "
    "exemption_no, single_use, po_numbers, status, filename, pdf, pulled_at"
)
_CERTIFICATES = f"SELECT {_CERTIFICATE_COLUMNS} FROM certificates"


def _certificate_row(certificate: Certificate, service: str, at: dt.datetime) -> tuple[Any, ...]:
    return (
        certificate.id,
        certificate.customer_code,
        service,
        certificate.exempt_reason,
        " ".join(certificate.regions),
        certificate.signed.isoformat(),
        certificate.expiry.isoformat() if certificate.expiry else None,
        certificate.effective.isoformat() if certificate.effective else None,
        certificate.exemption_no,
        int(certificate.single_use),
        json.dumps(list(certificate.po_numbers)),
        certificate.status.value,
        certificate.filename,
        certificate.pdf,
        at.isoformat(),
    )


def _certificate(row: Sequence[Any]) -> Certificate:
    pdf = row[13]
    return Certificate(
        id=row[0],
        customer_code=row[1],
        exempt_reason=row[3],
        regions=tuple(str(row[4]).split()),
        signed=dt.date.fromisoformat(row[5]),
        expiry=dt.date.fromisoformat(row[6]) if row[6] else None,
        effective=dt.date.fromisoformat(row[7]) if row[7] else None,
        exemption_no=row[8],
        single_use=bool(row[9]),
        po_numbers=json.loads(row[10]),
        status=row[11],
        filename=row[12],
        pdf=bytes(pdf) if pdf is not None else None,
    )


def _card(text: str | None) -> CustomerCard | None:
    return CustomerCard.from_dict(json.loads(text)) if text else None


def _card_text(card: CustomerCard) -> str:
    return json.dumps(card.as_dict(), sort_keys=True)


class CertificatesMixin:
    """What a store keeps for exempt customers (see
    :class:`~taxbridge.store.base.CertificateStore`)."""

    _read: Callable[..., AbstractContextManager[Runner]]
    _write: Callable[[], AbstractContextManager[Runner]]

    def save_certificates(
        self,
        certificates: Sequence[Certificate],
        *,
        service: str,
        at: dt.datetime,
        replace_customer: str | None = None,
    ) -> None:
        """Store certificates (upsert by id, ``service`` noted with each); with
        ``replace_customer``, that customer's certificates not among them are dropped (a
        pull back: the service is the truth), in the same transaction."""
        for certificate in certificates:
            if not certificate.id:
                raise ValueError("a stored certificate needs its id")
        with self._write() as conn:
            if replace_customer is not None:
                keep = {certificate.id for certificate in certificates}
                rows = conn.execute(
                    "SELECT id FROM certificates WHERE customer_code = ?", (replace_customer,)
                ).fetchall()
                gone = [(row[0],) for row in rows if row[0] not in keep]
                conn.executemany("DELETE FROM certificates WHERE id = ?", gone)
            conn.executemany(
                upsert("certificates", _CERTIFICATE_COLUMNS, ", ".join("?" * 15)),
                [_certificate_row(certificate, service, at) for certificate in certificates],
            )

    def certificates(self, customer_code: str | None = None) -> list[Certificate]:
        """Certificates of one customer or all, by customer and id."""
        with self._read() as conn:
            if customer_code is None:
                rows = conn.execute(_CERTIFICATES + " ORDER BY customer_code, id").fetchall()
            else:
                rows = conn.execute(
                    _CERTIFICATES + " WHERE customer_code = ? ORDER BY id", (customer_code,)
                ).fetchall()
        return [_certificate(row) for row in rows]

    def certificate(self, certificate_id: str) -> Certificate | None:
        """One certificate by id, or None."""
        with self._read() as conn:
            row = conn.execute(_CERTIFICATES + " WHERE id = ?", (certificate_id,)).fetchone()
        return _certificate(row) if row is not None else None

    def use_certificate(self, certificate_id: str, order_number: str, at: dt.datetime) -> str:
        """Give a single-use certificate to ``order_number`` unless an order has it already;
        the order that holds it (the first one to ask, whichever process it ran in)."""
        with self._write() as conn:
            conn.execute(
                insert_new("certificate_uses", "certificate_id, order_number, used_at", "?, ?, ?"),
                (certificate_id, order_number, at.isoformat()),
            )
            row = conn.execute(
                "SELECT order_number FROM certificate_uses WHERE certificate_id = ?",
                (certificate_id,),
            ).fetchone()
        return str(row[0])

    def certificate_uses(self) -> dict[str, str]:
        """Every single-use certificate given to an order: id -> order number."""
        with self._read() as conn:
            rows = conn.execute("SELECT certificate_id, order_number FROM certificate_uses")
            return {str(cid): str(order) for cid, order in rows.fetchall()}

    def save_customer_card(self, card: CustomerCard, at: dt.datetime, *, sent: bool) -> None:
        """Keep the card the ERP's data gives now; ``sent``: the service has it too."""
        text = _card_text(card)
        stamp = at.isoformat()
        with self._write() as conn:
            row = conn.execute(
                "SELECT sent, synced_at FROM customer_cards WHERE customer_code = ?",
                (card.customer_code,),
            ).fetchone()
            before_sent, before_synced = (row[0], row[1]) if row is not None else (None, None)
            conn.execute(
                upsert(
                    "customer_cards",
                    "customer_code, wanted, sent, synced_at, updated_at",
                    "?, ?, ?, ?, ?",
                ),
                (
                    card.customer_code,
                    text,
                    text if sent else before_sent,
                    stamp if sent else before_synced,
                    stamp,
                ),
            )

    def customer_cards(
        self, *, unsynced: bool = False
    ) -> list[tuple[CustomerCard, CustomerCard | None]]:
        """Each customer's card (wanted, sent); ``unsynced``: only those the service lacks."""
        sql = "SELECT wanted, sent FROM customer_cards"
        if unsynced:
            sql += " WHERE sent IS NULL OR sent <> wanted"
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY customer_code").fetchall()
        found = []
        for wanted, sent in rows:
            card = _card(wanted)
            if card is not None:
                found.append((card, _card(sent)))
        return found

    def customer_card(self, customer_code: str) -> tuple[CustomerCard, CustomerCard | None] | None:
        """One customer's card (wanted, sent), or None."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT wanted, sent FROM customer_cards WHERE customer_code = ?",
                (customer_code,),
            ).fetchone()
        if row is None:
            return None
        wanted = _card(row[0])
        return (wanted, _card(row[1])) if wanted is not None else None

    def record_certificate_request(self, request: CertificateRequest) -> None:
        """Remember a request sent."""
        sent = (request.sent_at or dt.datetime.now(dt.UTC)).isoformat()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO certificate_requests (id, customer_code, recipient, regions, "
                "reasons, link, service, status, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request.id,
                    request.customer_code,
                    request.recipient,
                    " ".join(request.regions),
                    json.dumps(list(request.reasons)),
                    request.link,
                    request.service,
                    request.status,
                    sent,
                ),
            )

    def certificate_requests(self, customer_code: str | None = None) -> list[CertificateRequest]:
        """Requests sent, oldest first."""
        sql = (
            "SELECT id, customer_code, recipient, regions, reasons, link, service, status, "
            "sent_at FROM certificate_requests"
        )
        params: tuple[Any, ...] = ()
        if customer_code is not None:
            sql, params = sql + " WHERE customer_code = ?", (customer_code,)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY sent_at, seq", params).fetchall()
        return [
            CertificateRequest(
                id=row[0],
                customer_code=row[1],
                recipient=row[2],
                regions=tuple(str(row[3]).split()),
                reasons=tuple(json.loads(row[4])),
                link=row[5],
                service=row[6],
                status=row[7],
                sent_at=dt.datetime.fromisoformat(row[8]),
            )
            for row in rows
        ]

    def add_customer_note(self, note: CustomerNote) -> bool:
        """Record a customer-history note; False (nothing written) when the customer has a
        note of that type for that day already."""
        with self._write() as conn:
            cursor = conn.execute(
                insert_new(
                    "customer_notes",
                    "customer_code, note_type, day, text, created_at",
                    "?, ?, ?, ?, ?",
                ),
                (
                    note.customer_code,
                    note.note_type,
                    note.day.isoformat(),
                    note.text,
                    note.created_at.isoformat(),
                ),
            )
            return bool(cursor.rowcount)

    def reminded(self) -> dict[tuple[str, str], dt.date]:
        """(customer, region) -> the day a reminder last went out for it."""
        with self._read() as conn:
            rows = conn.execute("SELECT customer_code, region, day FROM reminded").fetchall()
        return {(str(c), str(r)): dt.date.fromisoformat(str(d)) for c, r, d in rows}

    def record_reminded(self, customer_code: str, regions: Sequence[str], day: dt.date) -> None:
        """Remember that a reminder for these regions of the customer went out on ``day``."""
        with self._write() as conn:
            conn.executemany(
                upsert("reminded", "customer_code, region, day", "?, ?, ?"),
                [(customer_code, region, day.isoformat()) for region in regions],
            )

    def customer_notes(
        self, customer_code: str | None = None, note_type: str | None = None
    ) -> list[CustomerNote]:
        """Customer-history notes, oldest first."""
        clauses, params = [], []
        if customer_code is not None:
            clauses.append("customer_code = ?")
            params.append(customer_code)
        if note_type is not None:
            clauses.append("note_type = ?")
            params.append(note_type)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT customer_code, note_type, day, text, created_at FROM customer_notes"
                + where
                + " ORDER BY day, customer_code",
                tuple(params),
            ).fetchall()
        return [
            CustomerNote(
                customer_code=row[0],
                note_type=row[1],
                day=dt.date.fromisoformat(row[2]),
                text=row[3],
                created_at=dt.datetime.fromisoformat(row[4]),
            )
            for row in rows
        ]
