"""The local engine's document register: saved invoices and credits by company, code and type.

In memory by default (tests, benchmarks); in its own SQLite file when the engine is built from
a config, so that what the engine committed outlives the process and can be reconciled with
the store, and so that several processes on one machine share one engine. A save that must not
overwrite a committed document checks and writes in one transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import attrs

from taxbridge.errors import BackendUnavailable
from taxbridge.models import (
    DocumentStatus,
    DocumentType,
    EngineDocument,
    JurisdictionTax,
    JurisdictionType,
    LineTax,
    TaxResult,
)

Key = tuple[str, str, DocumentType]
"""Company code, document code, document type."""

Refuse = Callable[[TaxResult], None]
"""Raises when a document may not be replaced (it is committed)."""


class Register(Protocol):
    """Where the local engine keeps saved documents."""

    def get(self, key: Key) -> TaxResult | None:
        """The saved document, or None."""
        ...

    def put(self, key: Key, result: TaxResult, customer: str, *, unless: Refuse) -> None:
        """Save ``result``; ``unless`` is called with the document already saved under the key
        (if any) inside the same lock or transaction and may raise to refuse the save."""
        ...

    def listed(self, company: str, start: dt.date, end: dt.date) -> Iterator[EngineDocument]:
        """Saved documents of a company dated in the range, by date and code."""
        ...


def listing(result: TaxResult, customer: str) -> EngineDocument:
    """A saved document as the engine lists it."""
    return EngineDocument(
        code=result.code,
        document_type=result.document_type.value,
        status=result.status,
        date=result.date,
        customer_code=customer,
        total_amount=result.total_amount,
        total_exempt=result.total_exempt,
        total_taxable=result.total_taxable,
        total_tax=result.total_tax,
    )


class MemoryRegister:
    """The register in a dict: gone with the process."""

    def __init__(self) -> None:
        self._documents: dict[Key, tuple[TaxResult, str]] = {}
        self._lock = threading.Lock()

    def get(self, key: Key) -> TaxResult | None:
        """The saved document, or None."""
        with self._lock:
            found = self._documents.get(key)
        return None if found is None else found[0]

    def put(self, key: Key, result: TaxResult, customer: str, *, unless: Refuse) -> None:
        """Save unless refused."""
        with self._lock:
            existing = self._documents.get(key)
            if existing is not None:
                unless(existing[0])
            self._documents[key] = (result, customer or (existing[1] if existing else ""))

    def listed(self, company: str, start: dt.date, end: dt.date) -> Iterator[EngineDocument]:
        """Saved documents of a company dated in the range."""
        with self._lock:
            found = [
                listing(result, customer)
                for (owner, _, _), (result, customer) in self._documents.items()
                if owner == company and start <= result.date <= end
            ]
        return iter(sorted(found, key=lambda doc: (doc.date, doc.code, doc.document_type)))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS register (
    company TEXT NOT NULL,
    code TEXT NOT NULL,
    document_type TEXT NOT NULL,
    status TEXT NOT NULL,
    date TEXT NOT NULL,
    customer TEXT NOT NULL,
    result_json TEXT NOT NULL,
    PRIMARY KEY (company, code, document_type)
);
CREATE INDEX IF NOT EXISTS register_date ON register (company, date, code)
"""


class FileRegister:
    """The register in its own SQLite file (WAL): shared by the processes of one machine."""

    def __init__(self, path: str | Path, *, timeout: float = 30.0):
        self.path = Path(path)
        self._timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self, *, create: bool) -> sqlite3.Connection | None:
        """The open file; it is made by the first save only (None until then), so an engine
        that never saves leaves nothing behind. Called under the lock."""
        if self._conn is None and (create or self.path.exists()):
            return self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        """The file, opened (and made) if it is not open yet. Called under the lock."""
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    str(self.path),
                    timeout=self._timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                for statement in _SCHEMA.split(";"):
                    conn.execute(statement)
            except (sqlite3.Error, OSError) as exc:
                raise BackendUnavailable(
                    f"cannot open the local engine's register {self.path}: {exc}",
                    backend="local",
                    sent=False,
                ) from exc
            self._conn = conn
        return self._conn

    @contextmanager
    def _failing_as_engine(self, code: str) -> Iterator[None]:
        """A register that cannot be read or written is an engine that is unavailable: the
        stage degrades or queues the document, as for a remote engine."""
        try:
            yield
        except sqlite3.Error as exc:
            raise BackendUnavailable(
                f"the local engine's register {self.path} failed: {exc}", backend="local", code=code
            ) from exc

    def get(self, key: Key) -> TaxResult | None:
        """The saved document, or None."""
        with self._lock, self._failing_as_engine(key[1]):
            conn = self._connection(create=False)
            if conn is None:
                return None
            row = conn.execute(
                "SELECT result_json FROM register WHERE company = ? AND code = ? "
                "AND document_type = ?",
                (key[0], key[1], key[2].value),
            ).fetchone()
        return None if row is None else result_from_json(row[0])

    def put(self, key: Key, result: TaxResult, customer: str, *, unless: Refuse) -> None:
        """Save unless refused, checked and written in one transaction."""
        with self._lock, self._failing_as_engine(key[1]):
            conn = self._open()
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT result_json, customer FROM register WHERE company = ? AND code = ? "
                    "AND document_type = ?",
                    (key[0], key[1], key[2].value),
                ).fetchone()
                if row is not None:
                    unless(result_from_json(row[0]))
                conn.execute(
                    "INSERT OR REPLACE INTO register VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        key[0],
                        key[1],
                        key[2].value,
                        result.status.value,
                        result.date.isoformat(),
                        customer or (row[1] if row else ""),
                        result_to_json(result),
                    ),
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def listed(self, company: str, start: dt.date, end: dt.date) -> Iterator[EngineDocument]:
        """Saved documents of a company dated in the range, read in pages."""
        after = ("", "", "")
        while True:
            with self._lock, self._failing_as_engine(""):
                conn = self._connection(create=False)
                if conn is None:
                    return
                rows = conn.execute(
                    "SELECT date, code, document_type, customer, result_json FROM register "
                    "WHERE company = ? AND date BETWEEN ? AND ? "
                    "AND (date, code, document_type) > (?, ?, ?) "
                    "ORDER BY date, code, document_type LIMIT 1000",
                    (company, start.isoformat(), end.isoformat(), *after),
                ).fetchall()
            for _, _, _, customer, text in rows:
                yield listing(result_from_json(text), customer)
            if len(rows) < 1000:
                return
            after = (rows[-1][0], rows[-1][1], rows[-1][2])

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def result_to_json(result: TaxResult) -> str:
    """A saved document as the register writes it (lines without details, and the summary)."""
    return json.dumps(
        {
            "code": result.code,
            "type": result.document_type.value,
            "status": result.status.value,
            "date": result.date.isoformat(),
            "tax_date": result.tax_date.isoformat() if result.tax_date else None,
            "totals": [
                str(result.total_amount),
                str(result.total_taxable),
                str(result.total_exempt),
                str(result.total_tax),
            ],
            "lines": [
                [
                    line.number,
                    str(line.amount),
                    str(line.taxable),
                    str(line.exempt),
                    str(line.tax),
                    line.tax_code,
                    str(line.rate),
                ]
                for line in result.lines
            ],
            "summary": [
                [
                    j.jurisdiction_type.value,
                    j.name,
                    j.region,
                    str(j.rate),
                    str(j.taxable),
                    str(j.exempt),
                    str(j.tax),
                ]
                for j in result.summary
            ],
            "backend": result.backend,
        },
        separators=(",", ":"),
    )


def result_from_json(text: str) -> TaxResult:
    """What :func:`result_to_json` wrote."""
    data = json.loads(text)
    amount, taxable, exempt, tax = (Decimal(value) for value in data["totals"])
    return TaxResult(
        code=data["code"],
        document_type=DocumentType(data["type"]),
        status=DocumentStatus(data["status"]),
        date=dt.date.fromisoformat(data["date"]),
        total_amount=amount,
        total_taxable=taxable,
        total_exempt=exempt,
        total_tax=tax,
        lines=tuple(
            LineTax(n, Decimal(a), Decimal(t), Decimal(e), Decimal(x), c, Decimal(r))
            for n, a, t, e, x, c, r in data["lines"]
        ),
        summary=tuple(
            JurisdictionTax(
                JurisdictionType(k), name, region, Decimal(r), Decimal(t), Decimal(e), Decimal(x)
            )
            for k, name, region, r, t, e, x in data["summary"]
        ),
        tax_date=dt.date.fromisoformat(data["tax_date"]) if data["tax_date"] else None,
        backend=data["backend"],
    )


def with_status(result: TaxResult, status: DocumentStatus) -> TaxResult:
    """The same document in another status."""
    return attrs.evolve(result, status=status)
