"""A realistic day on the embedded defaults, for ``taxbridge demo``.

Twelve customers (one exempt, one shipping to Oregon, which is not a nexus region), fifty orders
through entry, pending check, pick (one short pick), despatch and invoice (two orders merged into
one invoice), with a simulated engine outage during entry and another during invoicing. Then the
engine comes back and the unposted invoices are reposted: U turns R. One invoice, to a ZIP the
engine has no rate for, stays U needing a fix: the operator's to settle. Then half of an
invoice line is credited (a claim allocated to the invoice) and a prospect is quoted. The day
ends with month-end: the GL tax journal, the sales-vs-GL and engine-vs-store reconciliations
(no differences) and the sales tax report by state.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import attrs

from taxbridge.accounting.export import Format, render, state_table
from taxbridge.backends.local import LocalEngine, register_at
from taxbridge.bridge import TaxBridge
from taxbridge.config import example_config, example_config_text
from taxbridge.context import running_from
from taxbridge.flags import FinalTaxFlag
from taxbridge.models import (
    Address,
    Certificate,
    Customer,
    Invoice,
    Order,
    OrderLine,
    PendCode,
    Quotation,
    QuotationLine,
    TaxDocument,
)
from taxbridge.money import ZERO
from taxbridge.store.sqlite import PLUGIN, SQLiteSettings, SQLiteStore
from taxbridge.testing import RecordingBackend

DEMO_DB = "taxbridge-demo.db"
"""The demo's store file when none is named."""
DAY = dt.date(2026, 11, 20)
OPENS = dt.datetime.combine(DAY, dt.time(9, 0), tzinfo=dt.UTC)
"""When the demo's day starts: its clock runs from here, whatever today's date is."""
WAREHOUSE = Address("822 Reed St", "Philadelphia", "PA", "19147")
NO_RATE = Address("1 Erie Blvd", "Schenectady", "NY", "12345")
"""Order 1050's ship-to: a ZIP the engine has no rate for, so its invoice needs a fix."""


def _customer(code: str, name: str, *address: str, **exemption: str) -> Customer:
    return Customer(code, name, (Address(*address),), **exemption)


CUSTOMERS = (
    _customer("C001", "Golden Gate Books", "742 Washington St", "San Francisco", "CA", "94108"),
    _customer("C002", "Empire Outfitters", "350 5th Ave", "New York", "NY", "10118"),
    _customer("C003", "Lone Star Supply", "600 Congress Ave", "Austin", "TX", "78701"),
    _customer("C004", "Emerald City Traders", "400 Broad St", "Seattle", "WA", "98101"),
    _customer("C005", "Windy City Goods", "233 S Wacker Dr", "Chicago", "IL", "60601"),
    _customer("C006", "Garden State Apparel", "1 Gateway Ctr", "Newark", "NJ", "07102"),
    _customer("C007", "North Star Retail", "250 Marquette Ave", "Minneapolis", "MN", "55401"),
    _customer("C008", "Sunshine Stores", "100 Biscayne Blvd", "Miami", "FL", "33101"),
    _customer("C009", "Liberty Bell Shop", "1 Market St", "Philadelphia", "PA", "19103"),
    _customer("C010", "Brooklyn Bindery", "1 Pierrepont St", "Brooklyn", "NY", "11201"),
    _customer("C011", "Cascade Public Library", "801 SW 10th Ave", "Portland", "OR", "97201"),
    _customer(
        "C012", "St. Mary's Charity", "1400 Main St", "Dallas", "TX", "75201",
        tax_number="EX-TX-4471", entity_use_code="E", email="accounts@stmarys.example",
    ),
)  # fmt: skip
"""C011 ships to Oregon (no nexus: flag X); C012 is exempt by the tax number on its master."""

ITEMS = (
    ("BK-100", "Hardback atlas", "BOOK", Decimal("34.95")),
    ("TS-200", "Cotton T-shirt", "CLOTH", Decimal("12.50")),
    ("LM-300", "Reading lamp", "", Decimal("41.99")),
    ("PN-400", "Fountain pen", "", Decimal("18.75")),
    ("JK-500", "Rain jacket", "CLOTH", Decimal("89.00")),
    ("SV-600", "Gift wrapping", "", Decimal("4.99")),
)


def _order(number: int) -> Order:
    customer = CUSTOMERS[(number - 1) % len(CUSTOMERS)]
    lines = []
    count = 1 + number % 5
    for n in range(1, count + 1):
        code, description, classification, price = ITEMS[(number + n) % len(ITEMS)]
        quantity = Decimal(1 + (number * n) % 4)
        lines.append(
            OrderLine(
                process_number=f"P{number}",
                line_number=n,
                item_code=code,
                description=description,
                quantity=quantity,
                amount=quantity * price,
                item_classification=classification,
                tax_code="SV000000" if code == "SV-600" and number == 1017 else None,
            )
        )
    lines.append(
        OrderLine(
            process_number=f"P{number}",
            line_number=count + 1,
            item_code="FRT",
            description="Freight",
            quantity=Decimal(1),
            amount=Decimal("9.95"),
            freight=True,
        )
    )
    return Order(
        number=str(number),
        company="01",
        customer=customer,
        order_date=DAY,
        ship_from=WAREHOUSE,
        ship_to=customer.addresses[0],
        lines=tuple(lines),
    )


def _short_pick(order: Order) -> Order:
    """The warehouse found only one of the first line's items."""
    first = order.lines[0]
    unit = first.amount / first.quantity
    picked = attrs.evolve(first, quantity=Decimal(1), amount=unit)
    return attrs.evolve(order, lines=(picked, *order.lines[1:]))


def _fixed_tax_code(order: Order) -> Order:
    """Replace the obsolete gift-wrap tax code with the item classification's mapping."""
    return attrs.evolve(
        order,
        lines=tuple(
            attrs.evolve(line, tax_code=None) if line.tax_code == "SV000000" else line
            for line in order.lines
        ),
    )


def _table(documents: list[TaxDocument], echo: Callable[[str], None]) -> None:
    echo(f"{'code':<10} {'customer':<9} {'stage':<9} {'flag':<5} {'amount':>10} {'tax':>9}")
    for doc in documents:
        echo(
            f"{doc.code:<10} {doc.customer_code:<9} {doc.stage.value:<9} "
            f"{doc.flag!s:<5} {doc.total_amount:>10} {doc.total_tax:>9}"
        )


def _demo_store(path: Path) -> SQLiteStore | None:
    """A fresh demo store at ``path``; an earlier demo's is replaced, any other file refused."""
    if path.exists():
        with SQLiteStore(path) as store:
            is_demo = store.get_meta("demo") == "1"
        if not is_demo:
            print(
                f"taxbridge demo: {path} exists and is not a demo store; "
                "name another file with --db",
                file=sys.stderr,
            )
            return None
        for file in (path, _register_file(path)):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{file}{suffix}").unlink(missing_ok=True)
    store = SQLiteStore(path)
    store.set_meta("demo", "1")
    return store


DEMO_CONFIG_MARK = "# written by taxbridge demo: the example config on the demo's store\n"


def _demo_config(store: Path) -> Path | None:
    """Where the demo writes its config: beside its store (``taxbridge-demo.toml``), so the
    commands it suggests work on what it ran on (its GL accounts for the nine states, its
    certificate service). None, and a line why, when a file there is not the demo's."""
    path = store.with_suffix(".toml")
    if path.exists() and not path.read_text(encoding="utf-8").startswith(DEMO_CONFIG_MARK):
        print(
            f"taxbridge demo: {path} exists and is not the demo's config; "
            "name another store file with --db",
            file=sys.stderr,
        )
        return None
    return path


def _write_demo_config(path: Path, store: Path) -> None:
    """The example config, on the demo's store."""

    text = example_config_text().replace(
        'path = "taxbridge.db"', f"path = {json.dumps(store.name)}", 1
    )
    path.write_text(DEMO_CONFIG_MARK + text, encoding="utf-8")


def _register_file(path: Path) -> str:
    """The local engine's register beside the demo store (as ``from_config`` puts it)."""
    return str(PLUGIN.beside(SQLiteSettings(str(path)), "engine"))


def run_demo(db_path: str, echo: Callable[[str], None] = print) -> int:
    """Run the demo day into ``db_path``; return the process exit code (2: the file is there and
    is not a demo store, so it is left alone)."""
    config_file = _demo_config(Path(db_path))
    store = _demo_store(Path(db_path)) if config_file is not None else None
    if store is None or config_file is None:
        return 2
    _write_demo_config(config_file, Path(db_path))
    register = register_at(_register_file(Path(db_path)))
    engine = RecordingBackend(LocalEngine(register=register), name="local")
    bridge = TaxBridge(example_config(db_path), engine, store, clock=running_from(OPENS))
    orders = {number: _order(number) for number in range(1001, 1051)}
    orders[1050] = attrs.evolve(orders[1050], ship_to=NO_RATE)

    echo(f"taxbridge demo: {len(orders)} orders, {len(CUSTOMERS)} customers, store {db_path}")
    echo("")
    echo("Order entry (engine down for orders 1041-1045: offline estimates, flag blank)")
    for number, order in orders.items():
        engine.outage = 1041 <= number <= 1045
        bridge.on_entry(order)
    engine.outage = False
    entry_flags = Counter(bridge.inquiry(order.code).document.flag for order in orders.values())
    echo("  flags after entry: " + _flags(entry_flags))

    echo("Pending check")
    for number, order in orders.items():
        check = bridge.on_pending_check(order)
        for reason in check.reasons:
            echo(f"  order {number} pends: {reason.code.value}: {reason.message}")
        if any(reason.code is PendCode.OBSOLETE_TAX_CODE for reason in check.reasons):
            orders[number] = fixed = _fixed_tax_code(order)
            again = bridge.on_pending_check(fixed)
            echo(f"  order {number} fixed and checked again: pends={again.pends}")
        elif check.pends:
            echo(f"  order {number} approved over the pend by a supervisor")

    echo("Pick (order 1007 short-picked) and despatch")
    orders[1007] = _short_pick(orders[1007])
    for order in orders.values():
        bridge.on_pick(order)
        bridge.on_despatch(order)

    echo("Invoicing (orders 1001 and 1013 merged into invoice 9001; engine down for 9030-9034)")
    remaining = [order for number, order in orders.items() if number not in (1001, 1013)]
    invoices = [Invoice("9001", DAY, (orders[1001], orders[1013]))]
    invoices += [Invoice(str(9002 + i), DAY, (order,)) for i, order in enumerate(remaining)]
    for invoice in invoices:
        engine.outage = 9030 <= int(invoice.number) <= 9034
        bridge.on_invoice(invoice)
    engine.outage = False

    documents = [bridge.store.get(invoice.code) for invoice in invoices]
    posted = [doc for doc in documents if doc is not None]
    echo("")
    _table(posted, echo)
    echo("")
    totals: Counter[FinalTaxFlag] = Counter(doc.flag for doc in posted)
    tax = sum((doc.total_tax for doc in posted), ZERO)
    amount = sum((doc.total_amount for doc in posted), ZERO)
    echo(f"{len(posted)} invoices, amount {amount}, tax {tax}; flags: {_flags(totals)}")

    unposted = bridge.unposted()
    echo("")
    echo(f"Unposted (flag U): {', '.join(doc.code for doc in unposted)}")
    echo("Engine back: taxbridge repost")
    summary = bridge.repost()
    for code in summary.reposted:
        doc = bridge.store.get(code)
        if doc is not None:
            echo(f"  {code}: U -> {doc.flag.value}  {doc.last_log}")
    after = Counter(doc.flag for doc in (bridge.store.get(i.code) for i in invoices) if doc)
    echo(f"flags now: {_flags(after)}")

    echo("")
    sale, first = next(
        (doc, line)
        for doc in posted
        if doc.flag is FinalTaxFlag.POSTED
        for line in doc.lines
        if line.tax > 0
    )
    echo(f"Claims: half of line {first.number} of {sale.code} returned, credited from the invoice")
    if sale.lines:
        whole = bridge.credit_from_invoice(sale.code, [first.number], number="5001")
        half = attrs.evolve(
            whole,
            lines=(
                attrs.evolve(whole.lines[0], amount=(first.amount / 2).quantize(Decimal("0.01"))),
            ),
        )
        pending = bridge.on_claim_pending(half, update=True)
        echo(f"  claim 5001 pending check: pends={pending.pends}")
        credit = bridge.on_claim_invoice(half)
        echo(
            f"  {credit.code}: flag {credit.flag.value}, amount {credit.total_amount}, "
            f"tax {credit.total_tax} (the line was charged {first.tax} on {first.amount}; "
            f"taxed at the invoice date {credit.tax_date})"
        )

    echo("")
    echo("Quotation Q-7001 for a prospect in Chicago (calculated, saved nowhere)")
    quote = bridge.quote(
        Quotation(
            quote_number="Q-7001",
            prospect_company="Prairie Books",
            prospect_address=Address("233 S Wacker Dr", "Chicago", "IL", "60601"),
            lines=(
                QuotationLine(1, Decimal(10), Decimal("349.50"), item_number="BK-100"),
                QuotationLine(2, Decimal(1), Decimal("41.99"), item_quote_description="Lamp"),
            ),
            total_price_discount=Decimal("20.00"),
        )
    )
    echo(
        f"  {quote.request.code}: amount {quote.result.total_amount}, tax "
        f"{quote.result.total_tax} ({quote.source}); stored: "
        f"{bridge.store.get('Q-7001') is not None}"
    )
    echo("")
    _exempt_customers(bridge, echo)
    echo("")
    _month_end(bridge, echo)
    echo("")
    where = Path(db_path).resolve()
    left = ", ".join(doc.code for doc in bridge.unposted()) or "none"
    echo(
        f"The demo wrote its store to {where} and its config beside it; still U (needing a "
        f"fix): {left}. Try:"
    )
    cfg = f"--config {config_file}"
    echo(f"  taxbridge inquiry A-9001 {cfg}      (or B-5001, the credit)")
    echo(f"  taxbridge unposted {cfg}")
    echo(f"  taxbridge report state --period {PERIOD} {cfg}")
    echo(f"  taxbridge reconcile engine --period {PERIOD} {cfg}")
    echo(f"  taxbridge journal generate --period {PERIOD} {cfg}")
    bridge.close()
    return 0 if not summary.failed else 1


PERIOD = f"{DAY:%Y-%m}"


def _month_end(bridge: TaxBridge, echo: Callable[[str], None]) -> None:
    """The journal, both reconciliations and the state report of the demo's month."""
    echo(f"Month-end {PERIOD}")
    journal = bridge.generate_journal(PERIOD)
    echo(
        f"  GL journal {journal.key}: {len(journal.lines)} lines, debits {journal.debits}, "
        f"credits {journal.credits}"
    )
    gl = bridge.reconcile_gl(PERIOD, differences_only=True)
    echo(
        f"  sales versus GL: sales {gl.sales_total}, GL {gl.gl_total}, differences {gl.differences}"
    )
    check = bridge.reconcile_engine(PERIOD)
    echo(
        f"  engine versus store: {check.stored} documents here, {check.listed} at the engine, "
        f"findings {len(check.findings)}"
    )
    for row in render(state_table(bridge.state_report(PERIOD)), Format.TABLE).splitlines():
        echo("  " + row)


def _exempt_customers(bridge: TaxBridge, echo: Callable[[str], None]) -> None:
    """C012's certificate (local certificate service) and the reminders it is due."""
    echo("Exempt customers (certificate service: local)")
    card = bridge.store.customer_card("C012")
    echo(f"  C012's card was created at its first order: {card is not None}")
    stored = bridge.add_certificate(
        Certificate(
            "C012",
            "E",
            ("TX",),
            signed=DAY.replace(year=DAY.year - 3),
            expiry=DAY + dt.timedelta(days=20),
            exemption_no="EX-TX-4471",
        )
    )
    echo(f"  certificate {stored.id} uploaded: {stored.erp_fields()}")
    run = bridge.send_reminders(DAY, 30, dry_run=True)
    for letter in run.letters:
        echo(f"  reminder due, not sent (dry run): to {letter.recipient}: {letter.subject}")


def _flags(counts: Counter[FinalTaxFlag]) -> str:
    return ", ".join(
        f"{flag.value or 'blank'}={counts[flag]}" for flag in FinalTaxFlag if counts[flag]
    )
