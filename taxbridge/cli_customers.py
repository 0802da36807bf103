"""The exempt-customer commands: ``customers sync``, ``certificates list|request|add`` and
``reminders``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from taxbridge.bridge import TaxBridge
from taxbridge.cli_open import day_option, file_option
from taxbridge.errors import InvalidFieldError
from taxbridge.models import Address, Certificate, Contact, Customer

Opener = Callable[..., TaxBridge]


def load_erp_customers(path: str, option: str = "--from-file") -> list[Customer]:
    """Customers from a JSON file: a list of objects with Customer's fields (``addresses`` a
    list of Address objects, ``contacts`` a list of {role, email, name}); errors name
    ``option``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidFieldError(option, "file", path, f"cannot be read: {exc}") from exc
    if not isinstance(data, list):
        raise InvalidFieldError(option, "file", path, "is not a JSON list of customers")
    found = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise InvalidFieldError(option, f"{path}[{index}]", item, "is not an object")
        fields = dict(item)
        try:
            fields["addresses"] = tuple(Address(**a) for a in fields.get("addresses", ()))
            fields["contacts"] = tuple(Contact(**c) for c in fields.get("contacts", ()))
            found.append(Customer(**fields))
        except TypeError as exc:
            raise InvalidFieldError(option, f"{path}[{index}]", item, str(exc)) from exc
    return found


def _sync(args: argparse.Namespace, open_bridge: Opener) -> int:
    with open_bridge(args, read_only=True) as bridge:
        exempt = bridge.exempt_customers
        if args.from_file:
            company = args.company or bridge.config.companies[0].company_code
            for customer in load_erp_customers(args.from_file):
                if customer.is_exempt:
                    bridge.store.save_customer_card(
                        exempt.card_for(customer, company), bridge.clock(), sent=False
                    )
        summary = bridge.sync_customers()
    for code in summary.created:
        print(f"created   {code}")
    for code in summary.updated:
        print(f"updated   {code}")
    for code, why in summary.failed:
        print(f"failed    {code}: {why}")
    print(
        f"{len(summary.created)} created, {len(summary.updated)} updated, "
        f"{summary.unchanged} unchanged, {len(summary.failed)} failed"
    )
    return 1 if summary.failed else 0


def _certificate_row(certificate: Certificate, uses: dict[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = {"id": certificate.id, **certificate.erp_fields()}
    row["Status"] = certificate.status.value
    row["Single use"] = (
        f"yes ({uses[certificate.id]})"
        if certificate.id in uses
        else "yes"
        if certificate.single_use
        else "no"
    )
    if certificate.po_numbers:
        row["PO"] = ", ".join(certificate.po_numbers)
    return row


def _list(args: argparse.Namespace, open_bridge: Opener) -> int:
    with open_bridge(args, read_only=True) as bridge:
        found = bridge.certificates(args.customer, pull=args.pull, company_code=args.company)
        uses = bridge.store.certificate_uses()
        status = None
        if args.region:
            status = bridge.certificate_status(
                args.customer, args.region, company_code=args.company
            )
    rows = [_certificate_row(certificate, uses) for certificate in found]
    if args.format == "json":
        body: dict[str, Any] = {"customer": args.customer, "certificates": rows}
        if args.region:
            body["valid_in_region"] = {args.region: status.id if status else None}
        print(json.dumps(body, indent=2))
        return 0
    for row in rows:
        print(
            f"{row['id']:<20} {row['Ex State']:<8} {row['Ex Code']:<22} "
            f"no={row['Exemption No'] or '-':<12} signed {row['Cert Signed']} "
            f"expires {row['Cert Exp Date'] or 'never':<10} {row['Status']:<8} "
            f"single-use {row['Single use']}"
        )
    print(f"{len(rows)} certificates of {args.customer}")
    if args.region:
        valid = f"certificate {status.id}" if status else "none"
        print(f"valid in {args.region.upper()} today (service): {valid}")
    return 0


def _request(args: argparse.Namespace, open_bridge: Opener) -> int:
    with open_bridge(args, read_only=True) as bridge:
        found = bridge.store.customer_card(args.customer)
        card = found[0] if found else None
        address = (
            (Address(card.line1, card.city, card.region, card.postal_code, card.country),)
            if card
            else ()
        )
        customer = Customer(
            args.customer,
            card.name if card else "",
            addresses=address,
            email=args.email or (card.email if card else ""),
        )
        sent = bridge.request_certificate(
            customer, args.region, args.reason or (), company_code=args.company
        )
    print(
        f"request {sent.id or '-'} sent to {sent.recipient} for {', '.join(sent.regions)} "
        f"({sent.service}, {sent.status or 'sent'})"
    )
    if sent.link:
        print(f"upload link: {sent.link}")
    return 0


def _add(args: argparse.Namespace, open_bridge: Opener) -> int:
    pdf = file_option(args.pdf, "--pdf") if args.pdf else None
    certificate = Certificate(
        customer_code=args.customer,
        exempt_reason=args.reason,
        regions=tuple(args.region),
        signed=args.signed,
        expiry=args.expiry,
        effective=args.effective,
        exemption_no=args.exemption_no or "",
        single_use=args.single_use,
        po_numbers=args.po or (),
        filename=Path(args.pdf).name if args.pdf else "",
        pdf=pdf,
    )
    with open_bridge(args, read_only=True) as bridge:
        stored = bridge.add_certificate(certificate)
    print(f"certificate {stored.id} stored for {stored.customer_code}")
    return 0


def _reminders(args: argparse.Namespace, open_bridge: Opener) -> int:
    as_of = day_option(args.as_of, "--as-of")
    customers = (
        {c.code: c for c in load_erp_customers(args.customers, "--customers")}
        if args.customers
        else None
    )
    with open_bridge(args, read_only=True) as bridge:
        day = as_of or bridge.clock().date()
        run = bridge.send_reminders(
            day, args.days, dry_run=args.dry_run or not args.send, customers=customers
        )
    recipients = {letter.customer_code: letter.recipient for letter in run.letters}
    due = [
        {
            "customer": r.customer_code,
            "region": r.region,
            "expiry": r.expiry.isoformat(),
            "expired": r.expired_on(day),
            "source": r.source,
            "reference": r.reference,
            "recipient": recipients.get(r.customer_code, ""),
        }
        for r in run.due
    ]
    if args.format == "json":
        body = {
            "as_of": day.isoformat(),
            "dry_run": run.dry_run,
            "due": due,
            "letters": [
                {"customer": x.customer_code, "recipient": x.recipient, "subject": x.subject}
                for x in run.letters
            ],
            "sent": list(run.sent),
            "skipped": [{"customer": c, "why": why} for c, why in run.skipped],
            "failed": [{"customer": c, "why": why} for c, why in run.failed],
        }
        print(json.dumps(body, indent=2))
    else:
        for row in due:
            state = "expired" if row["expired"] else "expires"
            print(
                f"{row['customer']:<12} {row['region']:<3} {state:<7} {row['expiry']} "
                f"{row['source']:<19} {row['reference']:<20} -> {row['recipient'] or '(no e-mail)'}"
            )
        for code, why in run.skipped:
            print(f"{code:<12} skipped: {why}")
        for code, why in run.failed:
            print(f"{code:<12} NOT SENT: {why}")
        verb = "would send" if run.dry_run else "sent"
        count = len(run.letters) if run.dry_run else len(run.sent)
        print(f"{verb} {count} letters ({len(run.failed)} failed, {len(run.skipped)} skipped)")
    return 1 if run.failed else 0


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def add_commands(commands: Any, common: argparse.ArgumentParser, open_bridge: Opener) -> None:
    """Add ``customers``, ``certificates`` and ``reminders``."""

    def bind(run: Callable[[argparse.Namespace, Opener], int]) -> Callable[..., int]:
        return lambda args: run(args, open_bridge)

    customers = commands.add_parser("customers", help="exempt customers at the certificate service")
    customer_actions = customers.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="sync"
    )
    sync = customer_actions.add_parser(
        "sync",
        parents=[common],
        help="send the certificate service every customer card it lacks or has out of date",
    )
    sync.add_argument(
        "--from-file", metavar="FILE.json", help="the ERP's customers (exempt ones are synced)"
    )
    sync.add_argument("--company", metavar="CODE", help="their engine company code")
    sync.set_defaults(run=bind(_sync))

    certificates = commands.add_parser("certificates", help="exemption certificates")
    actions = certificates.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="list, request or add"
    )
    listed = actions.add_parser("list", parents=[common], help="a customer's certificates")
    listed.add_argument("customer", help="the customer number")
    listed.add_argument("--pull", action="store_true", help="ask the service first")
    listed.add_argument("--region", metavar="XX", help="and which one is valid there today")
    listed.add_argument("--company", metavar="CODE", help="the engine company code")
    listed.add_argument(
        "--format", choices=("table", "json"), default="table", help="output format"
    )
    listed.set_defaults(run=bind(_list))

    request = actions.add_parser(
        "request", parents=[common], help="send a customer a certificate request"
    )
    request.add_argument("customer", help="the customer number")
    request.add_argument(
        "--region", action="append", required=True, metavar="XX", help="a region (repeat)"
    )
    request.add_argument("--reason", action="append", metavar="REASON", help="exempt reason")
    request.add_argument("--email", help="send here (default: the customer card's e-mail)")
    request.add_argument("--company", metavar="CODE", help="the engine company code")
    request.set_defaults(run=bind(_request))

    add = actions.add_parser(
        "add", parents=[common], help="store an uploaded certificate (local service)"
    )
    add.add_argument("customer", help="the customer number")
    add.add_argument(
        "--region", action="append", required=True, metavar="XX", help="a region it covers"
    )
    add.add_argument("--reason", required=True, help="the exempt reason (entity use code)")
    add.add_argument(
        "--signed", required=True, type=_date, metavar="YYYY-MM-DD", help="Cert Signed"
    )
    add.add_argument("--expiry", type=_date, metavar="YYYY-MM-DD", help="Cert Exp Date")
    add.add_argument("--effective", type=_date, metavar="YYYY-MM-DD", help="from (default: signed)")
    add.add_argument("--exemption-no", metavar="NO", help="Exemption No")
    add.add_argument("--single-use", action="store_true", help="for one purchase only")
    add.add_argument(
        "--po",
        metavar="PO",
        action="append",
        help="a purchase order a single-use one is for (repeat for each)",
    )
    add.add_argument("--pdf", metavar="FILE", help="the certificate itself")
    add.set_defaults(run=bind(_add))

    reminders = commands.add_parser(
        "reminders",
        parents=[common],
        help="exemptions and certificates expired or expiring: list, or --send the letters",
    )
    reminders.add_argument("--days", type=int, metavar="N", help="days ahead")
    reminders.add_argument("--as-of", metavar="YYYY-MM-DD", help="the day (default: today, UTC)")
    reminders.add_argument("--send", action="store_true", help="mail the letters (SMTP)")
    reminders.add_argument("--dry-run", action="store_true", help="render, send nothing")
    reminders.add_argument(
        "--customers",
        metavar="FILE.json",
        help="who to write to: the customer file of 'customers sync --from-file' (needed for "
        "exemption database customers when no certificate service keeps their cards)",
    )
    reminders.add_argument(
        "--format", choices=("table", "json"), default="table", help="output format"
    )
    reminders.set_defaults(run=bind(_reminders))
