"""Month-end over a large store: the workfile, the GL journal and the state report.

Builds a store of N invoice lines (20 a document, spread over one month, a tenth of them
reposted with a different charged tax) in a child process, then, in a fresh process, times one
pass of each report and prints peak RSS, beside a floor: the same rows read with a bare
``sqlite3`` cursor and summed as Decimal in the same run.

    python benchmarks/accounting.py                    # 100,000 lines
    python benchmarks/accounting.py --lines 2000       # CI smoke size
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import attrs
import structlog
from _memory import peak_rss_mb

from taxbridge import LocalEngine, SQLiteStore, TaxBridge
from taxbridge.config import GLAccount, default_config
from taxbridge.flags import FinalTaxFlag
from taxbridge.models import (
    Address,
    DocumentEvent,
    DocumentKind,
    DocumentType,
    Stage,
    TaxDocument,
    TaxLine,
    TaxRequest,
)

SHIP_FROM = Address("822 Reed St", "Philadelphia", "PA", "19147")
DESTINATIONS = (
    Address("742 Washington St", "San Francisco", "CA", "94108"),
    Address("350 5th Ave", "New York", "NY", "10118"),
    Address("600 Congress Ave", "Austin", "TX", "78701"),
    Address("233 S Wacker Dr", "Chicago", "IL", "60601"),
)
LINES_PER_DOCUMENT = 20
START = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def build(path: Path, lines: int) -> None:
    """Write ``lines`` invoice lines as posted invoices dated over November 2026."""
    engine = LocalEngine()
    documents = []
    with SQLiteStore(path) as store:
        for number in range(lines // LINES_PER_DOCUMENT):
            request = TaxRequest(
                code=f"A-{number:06d}",
                document_type=DocumentType.SALES_INVOICE,
                company_code="DEFAULT",
                customer_code=f"C{number % 97:03d}",
                date=dt.date(2026, 11, 1 + number % 30),
                ship_from=SHIP_FROM,
                ship_to=DESTINATIONS[number % len(DESTINATIONS)],
                lines=tuple(
                    TaxLine(f"{number}-{n}", Decimal(10 + n) + Decimal("0.99"))
                    for n in range(1, LINES_PER_DOCUMENT + 1)
                ),
                commit=True,
            )
            result = engine.calculate(request)
            reposted = number % 10 == 0
            documents.append(
                TaxDocument(
                    code=request.code,
                    kind=DocumentKind.INVOICE,
                    stage=Stage.REPOST if reposted else Stage.INVOICE,
                    flag=FinalTaxFlag.REPOSTED if reposted else FinalTaxFlag.POSTED,
                    erp_company="01",
                    company_code="DEFAULT",
                    customer_code=request.customer_code,
                    document_type=request.document_type,
                    document_date=request.date,
                    currency="USD",
                    total_amount=result.total_amount,
                    total_taxable=result.total_taxable,
                    total_exempt=result.total_exempt,
                    total_tax=result.total_tax,
                    lines=tuple(
                        attrs.evolve(line, details=(), charged=line.tax - Decimal("0.01"))
                        if reposted
                        else attrs.evolve(line, details=())
                        for line in result.lines
                    ),
                    breakdown=result.summary,
                    backend="local",
                    last_log="bench",
                    updated_at=START,
                    tax_date=result.tax_date,
                    request=request,
                    charged_tax=result.total_tax - Decimal("0.20")
                    if reposted
                    else result.total_tax,
                )
            )
            if len(documents) == 250:
                _save(store, documents)
                documents = []
        _save(store, documents)


def _save(store: SQLiteStore, documents: list[TaxDocument]) -> None:
    events = [
        DocumentEvent(d.code, START, d.stage, None, d.flag, "local", "bench") for d in documents
    ]
    store.save(documents, events)


def floor(path: Path) -> tuple[float, Decimal, int]:
    """The irreducible read: every workfile row from SQLite, tax summed as Decimal."""
    started = time.perf_counter()
    conn = sqlite3.connect(str(path))
    total, count = Decimal(0), 0
    cursor = conn.execute(
        "SELECT l.amount, l.exempt, l.taxable, l.tax, l.charged_tax, l.region, d.code "
        "FROM documents d JOIN document_lines l ON l.code = d.code "
        "WHERE d.kind = 'invoice' AND d.document_date BETWEEN '2026-11-01' AND '2026-11-30' "
        "ORDER BY d.document_date, d.code, l.seq"
    )
    for row in cursor:
        total += Decimal(row[3])
        count += 1
    conn.close()
    return time.perf_counter() - started, total, count


def measure(path: Path) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    config = attrs.evolve(
        default_config(str(path)),
        gl_accounts=tuple(GLAccount(a.region, f"2310-{a.region}", "1190") for a in DESTINATIONS),
    )
    floor_s, floor_tax, rows = floor(path)
    with SQLiteStore(path) as store:
        bridge = TaxBridge(config, LocalEngine(), store, seed_offline=False)
        started = time.perf_counter()
        tax = sum((line.tax for line in bridge.workfile("2026-11")), Decimal(0))
        workfile_s = time.perf_counter() - started
        started = time.perf_counter()
        journal = bridge.generate_journal("2026-11")
        journal_s = time.perf_counter() - started
        started = time.perf_counter()
        report = bridge.state_report("2026-11")
        report_s = time.perf_counter() - started
    assert tax == journal.total_tax == report.total.tax == floor_tax, (tax, journal, floor_tax)
    assert journal.debits == journal.credits
    total = workfile_s + journal_s + report_s
    peak = peak_rss_mb()
    print(f"lines                      {rows:,}")
    print(f"floor (bare sqlite3 pass)  {floor_s:.2f} s")
    print(f"workfile pass              {workfile_s:.2f} s  ({workfile_s / floor_s:.1f}x the floor)")
    print(f"journal generate           {journal_s:.2f} s")
    print(f"state report               {report_s:.2f} s")
    print(f"workfile+journal+report    {total:.2f} s")
    print(f"peak RSS (report process)  {peak:.0f} MB")
    print(f"tax                        {tax} (workfile = journal = report = floor)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--build", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--measure", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build(Path(args.build), args.lines)
        return
    if args.measure:
        measure(Path(args.measure))
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "books.db"
        started = time.perf_counter()
        here = [sys.executable, __file__]
        subprocess.run([*here, "--build", str(path), "--lines", str(args.lines)], check=True)
        print(f"built {args.lines:,} lines in {time.perf_counter() - started:.1f} s")
        subprocess.run([*here, "--measure", str(path)], check=True)


if __name__ == "__main__":
    main()
