"""The exempt-customer commands: ``customers sync``, ``certificates list|request|add`` and
``reminders``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxbridge.cli._shared import (
    FINDINGS,
    OK,
    UsageError,
    command,
    day,
    day_option,
    file_option,
    format_option,
    open_bridge,
    print_json,
    print_rows,
    read_json_list,
)

if TYPE_CHECKING:
    from taxbridge.models import Certificate, Customer


def load_erp_customers(path: str, option: str = "--from-file") -> list[Customer]:
    """Customers from a JSON file: a list of objects with Customer's fields (``addresses`` a
    list of Address objects, ``contacts`` a list of {role, email, name}); errors name
    ``option``, the customer and the field."""
    from taxbridge.errors import InvalidFieldError
    from taxbridge.models import Address, Contact, Customer

    found = []
    for index, item in enumerate(read_json_list(path, option)):
        where = f"{option} {path}, customer {index + 1}"
        if not isinstance(item, dict):
            raise UsageError(f"{where}: is not a JSON object")
        fields = dict(item)
        try:
            fields["addresses"] = tuple(Address(**a) for a in fields.get("addresses", ()))
            fields["contacts"] = tuple(Contact(**c) for c in fields.get("contacts", ()))
            found.append(Customer(**fields))
        except (TypeError, InvalidFieldError) as exc:
            raise UsageError(f"{where}: {exc}") from None
    return found


def _sync(args: argparse.Namespace) -> int:
    customers = load_erp_customers(args.from_file) if args.from_file else []
    with open_bridge(args, read_only=True) as bridge:
        summary = bridge.sync_customers(customers, company_code=args.company)
    if args.format == "json":
        print_json(
            {
                "created": list(summary.created),
                "updated": list(summary.updated),
                "unchanged": summary.unchanged,
                "failed": [{"customer": code, "why": why} for code, why in summary.failed],
            }
        )
    else:
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
    return FINDINGS if summary.failed else OK


CERTIFICATE_COLUMNS = (
    "id",
    "ex_code",
    "exemption_no",
    "cert_signed",
    "cert_exp_date",
    "ex_state",
    "status",
    "single_use",
    "used_by_order",
    "po_numbers",
    "valid_in_region",
)
"""A certificate as a listing shows it: the ERP's fields (seed 002) by their names in
snake_case, then the service's."""


def _certificate_row(
    certificate: Certificate, uses: dict[str, str], valid_id: str | None
) -> dict[str, Any]:
    fields = certificate.erp_fields()
    return {
        "id": certificate.id,
        "ex_code": fields["Ex Code"],
        "exemption_no": fields["Exemption No"],
        "cert_signed": fields["Cert Signed"],
        "cert_exp_date": fields["Cert Exp Date"],
        "ex_state": fields["Ex State"],
        "status": certificate.status.value,
        "single_use": certificate.single_use,
        "used_by_order": uses.get(certificate.id),
        "po_numbers": list(certificate.po_numbers),
        "valid_in_region": None if valid_id is None else certificate.id == valid_id,
    }


def _list(args: argparse.Namespace) -> int:
    with open_bridge(args, read_only=True) as bridge:
        found = bridge.certificates(args.customer, pull=args.pull, company_code=args.company)
        uses = bridge.exempt_customers.holders()
        status = None
        if args.region:
            status = bridge.certificate_status(
                args.customer, args.region, company_code=args.company
            )
    valid_id = (status.id if status else "") if args.region else None
    rows = [_certificate_row(certificate, uses, valid_id) for certificate in found]

    def table() -> None:
        for row in rows:
            single = "no"
            if row["single_use"]:
                single = f"yes ({row['used_by_order']})" if row["used_by_order"] else "yes"
            po = f" PO {', '.join(row['po_numbers'])}" if row["po_numbers"] else ""
            print(
                f"{row['id']:<20} {row['ex_state']:<8} {row['ex_code']:<22} "
                f"no={row['exemption_no'] or '-':<12} signed {row['cert_signed']} "
                f"expires {row['cert_exp_date'] or 'never':<10} {row['status']:<8} "
                f"single-use {single}{po}"
            )
        print(f"{len(rows)} certificates of {args.customer}")
        if args.region:
            valid = f"certificate {status.id}" if status else "none"
            print(f"valid in {args.region.upper()} today (service): {valid}")

    print_rows(args, CERTIFICATE_COLUMNS, rows, table)
    return OK


def _request(args: argparse.Namespace) -> int:
    with open_bridge(args, read_only=True) as bridge:
        customer = bridge.exempt_customers.known_customer(args.customer, args.email or "")
        sent = bridge.request_certificate(
            customer, args.region, args.reason or (), company_code=args.company
        )
    if args.format == "json":
        print_json(
            {
                "id": sent.id or None,
                "customer": sent.customer_code,
                "recipient": sent.recipient,
                "regions": list(sent.regions),
                "service": sent.service,
                "status": sent.status or "sent",
                "link": sent.link or None,
            }
        )
        return OK
    print(
        f"request {sent.id or '-'} sent to {sent.recipient} for {', '.join(sent.regions)} "
        f"({sent.service}, {sent.status or 'sent'})"
    )
    if sent.link:
        print(f"upload link: {sent.link}")
    return OK


def _add(args: argparse.Namespace) -> int:
    from taxbridge.models import Certificate

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
    if args.format == "json":
        print_json({"id": stored.id, "customer": stored.customer_code})
    else:
        print(f"certificate {stored.id} stored for {stored.customer_code}")
    return OK


def _reminders(args: argparse.Namespace) -> int:
    as_of = day_option(args.as_of, "--as-of")
    customers = (
        {c.code: c for c in load_erp_customers(args.customers, "--customers")}
        if args.customers
        else None
    )
    with open_bridge(args, read_only=True) as bridge:
        on = as_of or bridge.clock().date()
        run = bridge.send_reminders(
            on, args.days, dry_run=args.dry_run or not args.send, customers=customers
        )
    recipients = {letter.customer_code: letter.recipient for letter in run.letters}
    due = [
        {
            "customer": r.customer_code,
            "region": r.region,
            "expiry": r.expiry.isoformat(),
            "expired": r.expired_on(on),
            "source": r.source,
            "reference": r.reference,
            "recipient": recipients.get(r.customer_code, ""),
        }
        for r in run.due
    ]
    if args.format == "json":
        print_json(
            {
                "as_of": on.isoformat(),
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
        )
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
    return FINDINGS if run.failed else OK


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """``customers``, ``certificates`` and ``reminders``."""
    customers = command(
        commands, "customers", None, help="exempt customers' cards at the certificate service"
    )
    customer_actions = customers.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="sync"
    )
    sync = command(
        customer_actions,
        "sync",
        _sync,
        parents=[common],
        help="send the certificate service every customer card it lacks or has out of date; "
        "exit 1 when one could not be sent",
    )
    sync.add_argument(
        "--from-file", metavar="FILE.json", help="the ERP's customers (the exempt ones are sent)"
    )
    sync.add_argument("--company", metavar="CODE", help="their engine company code")
    format_option(sync, "table", "json")

    certificates = command(commands, "certificates", None, help="exemption certificates")
    actions = certificates.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="list, request or add"
    )
    listed = command(
        actions, "list", _list, parents=[common], help="a customer's exemption certificates"
    )
    listed.add_argument("customer", help="the customer number")
    listed.add_argument("--pull", action="store_true", help="ask the service first")
    listed.add_argument("--region", metavar="XX", help="and say which one is valid there today")
    listed.add_argument("--company", metavar="CODE", help="the engine company code")
    format_option(listed, "table", "csv", "json")

    request = command(
        actions,
        "request",
        _request,
        parents=[common],
        help="e-mail a customer a request for a certificate, with an upload link",
    )
    request.add_argument("customer", help="the customer number")
    request.add_argument(
        "--region", action="append", required=True, metavar="XX", help="a region (repeat)"
    )
    request.add_argument("--reason", action="append", metavar="REASON", help="exempt reason")
    request.add_argument("--email", help="send here (default: the customer card's e-mail)")
    request.add_argument("--company", metavar="CODE", help="the engine company code")
    format_option(request, "table", "json")

    add = command(
        actions,
        "add",
        _add,
        parents=[common],
        help="store a certificate a customer sent (local certificate service)",
    )
    add.add_argument("customer", help="the customer number")
    add.add_argument(
        "--region", action="append", required=True, metavar="XX", help="a region it covers"
    )
    add.add_argument("--reason", required=True, help="the exempt reason (entity use code)")
    add.add_argument(
        "--signed", required=True, type=day, metavar="YYYY-MM-DD", help="signed on (Cert Signed)"
    )
    add.add_argument("--expiry", type=day, metavar="YYYY-MM-DD", help="expires (Cert Exp Date)")
    add.add_argument("--effective", type=day, metavar="YYYY-MM-DD", help="from (default: signed)")
    add.add_argument("--exemption-no", metavar="NO", help="the exemption number (Exemption No)")
    add.add_argument("--single-use", action="store_true", help="for one purchase only")
    add.add_argument(
        "--po",
        metavar="PO",
        action="append",
        help="a purchase order a single-use one is for (repeat for each)",
    )
    add.add_argument("--pdf", metavar="FILE", help="the certificate itself")
    format_option(add, "table", "json")

    reminders = command(
        commands,
        "reminders",
        _reminders,
        parents=[common],
        help="exemptions and certificates expired or expiring: list them, or --send the "
        "letters; exit 1 when a letter could not be sent",
    )
    reminders.add_argument("--days", type=int, metavar="N", help="days ahead")
    reminders.add_argument("--as-of", metavar="YYYY-MM-DD", help="the day (default: today, UTC)")
    reminders.add_argument("--send", action="store_true", help="mail the letters (SMTP)")
    reminders.add_argument("--dry-run", action="store_true", help="render them, send nothing")
    reminders.add_argument(
        "--customers",
        metavar="FILE.json",
        help="who to write to: the customer file of 'customers sync --from-file' (needed for "
        "exemption database customers when no certificate service keeps their cards)",
    )
    format_option(reminders, "table", "json")
