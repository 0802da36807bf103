"""The operator's commands: look a document up, work the unposted list, repost, mark a document
posted by hand, purge queue history, refresh the day's tables, ping the engine, and the demo."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from typing import TYPE_CHECKING, Any

from taxbridge.cli._shared import (
    FINDINGS,
    OK,
    Progress,
    UsageError,
    command,
    day_option,
    duration,
    format_option,
    open_bridge,
    print_json,
    print_rows,
    read_config,
)

if TYPE_CHECKING:
    from taxbridge.bridge import TaxBridge
    from taxbridge.lifecycle import Inquiry


def when(moment: dt.datetime, now: dt.datetime) -> str:
    """A time as a person reads it: ``now``, ``in 4 min``, ``2026-11-21 09:30 UTC``."""
    ahead = (moment - now).total_seconds()
    if ahead <= 0:
        return "now"
    if ahead < 3600:
        return f"in {max(1, round(ahead / 60))} min"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def span(length: dt.timedelta) -> str:
    """A duration as a person says it: ``90 days``, ``12 hours``, ``30 minutes``."""
    seconds = int(length.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def _demo(args: argparse.Namespace) -> int:
    from taxbridge.demo import DEMO_DB, run_demo

    return run_demo(args.db or DEMO_DB)


def _inquiry_body(found: Inquiry) -> dict[str, Any]:
    doc = found.document
    return {
        "code": doc.code,
        "kind": doc.kind,
        "document_type": doc.document_type,
        "flag": doc.flag.value or "blank",
        "stage": doc.stage,
        "erp_company": doc.erp_company,
        "company_code": doc.company_code,
        "customer_code": doc.customer_code,
        "document_date": doc.document_date,
        "tax_date": doc.tax_date,
        "currency": doc.currency,
        "total_amount": doc.total_amount,
        "total_taxable": doc.total_taxable,
        "total_exempt": doc.total_exempt,
        "total_tax": doc.total_tax,
        "tax_charged": doc.tax_charged if doc.charged_tax is not None else None,
        "engine_tax": doc.engine_tax,
        "voided_at": doc.voided_at.isoformat() if doc.voided_at else None,
        "void_reason": doc.void_reason or None,
        "orders": list(doc.orders),
        "invoice_code": doc.invoice_code or None,
        "breakdown": [
            {
                "jurisdiction_type": j.jurisdiction_type,
                "name": j.name,
                "region": j.region,
                "rate": j.rate,
                "taxable": j.taxable,
                "tax": j.tax,
            }
            for j in doc.breakdown
        ],
        "breakdown_note": found.breakdown_note or None,
        "lines": [
            {
                "number": line.number,
                "tax_code": line.tax_code,
                "amount": line.amount,
                "rate": line.rate,
                "tax": line.tax,
            }
            for line in doc.lines
        ],
        "can_recalculate": found.can_recalculate,
        "last_log": found.last_log,
    }


def _inquiry(args: argparse.Namespace) -> int:
    with open_bridge(args, read_only=True) as bridge:
        found = bridge.inquiry(args.code)
    if args.format == "json":
        print_json(_inquiry_body(found))
        return OK
    doc = found.document
    print(f"Document      {doc.code} ({doc.kind.value}, {doc.document_type.value})")
    print(f"Final flag    {doc.flag.value or 'blank'}   stage {doc.stage.value}")
    print(f"Company       {doc.erp_company} -> {doc.company_code}   customer {doc.customer_code}")
    print(f"Date          {doc.document_date}   tax date {doc.tax_date}   {doc.currency}")
    print(
        f"Totals        amount {doc.total_amount}  taxable {doc.total_taxable}  "
        f"exempt {doc.total_exempt}  tax {doc.total_tax}"
    )
    if doc.charged_tax is not None:
        engine = "unknown" if doc.engine_tax is None else str(doc.engine_tax)
        print(f"Tax charged   {doc.tax_charged}   at the engine {engine}")
    if doc.voided_at is not None:
        print(f"Voided        {doc.voided_at:%Y-%m-%d %H:%M} UTC: {doc.void_reason}")
    if doc.orders:
        print(f"Orders        {', '.join(doc.orders)}")
    if doc.invoice_code:
        print(f"Invoiced as   {doc.invoice_code}")
    if doc.breakdown:
        print("Breakdown")
        for j in doc.breakdown:
            print(
                f"  {j.jurisdiction_type.value}  {j.name:<24} {j.region}  rate {j.rate:<8} "
                f"taxable {j.taxable:>10}  tax {j.tax:>8}"
            )
    elif found.breakdown_note:
        print(f"Breakdown     {found.breakdown_note}")
    print("Lines")
    for line in doc.lines[: args.lines]:
        print(
            f"  {line.number:<12} {line.tax_code:<9} amount {line.amount:>10}  "
            f"rate {line.rate:<8} tax {line.tax:>8}"
        )
    if len(doc.lines) > args.lines:
        print(f"  ... {len(doc.lines) - args.lines} more lines")
    print(f"Recal         {'available' if found.can_recalculate else 'not available'}")
    print(f"Last log      {found.last_log}")
    return OK


UNPOSTED_COLUMNS = (
    "code",
    "customer",
    "tax",
    "attempts",
    "needs_fix",
    "next_attempt_at",
    "last_error_code",
    "last_error",
)


def _unposted(args: argparse.Namespace) -> int:
    with open_bridge(args, read_only=True) as bridge:
        if args.history:
            return _history(args, bridge)
        now = bridge.clock()
        found = bridge.unposted_entries(needs_fix=True if args.needs_fix else None)
    rows = [
        {
            "code": item.document.code,
            "customer": item.document.customer_code,
            "tax": item.document.total_tax,
            "attempts": item.entry.attempts if item.entry else 0,
            "needs_fix": item.entry.needs_fix if item.entry else None,
            "next_attempt_at": item.entry.next_attempt_at.isoformat() if item.entry else None,
            "last_error_code": item.entry.last_error_code if item.entry else "",
            "last_error": item.entry.last_error_message if item.entry else item.document.last_log,
        }
        for item in found
    ]

    def table() -> None:
        print(f"{'code':<12} {'customer':<9} {'tax':>9} {'tries':>5}  {'next try':<22} last error")
        for item in found:
            doc, entry = item.document, item.entry
            if entry is None:
                at, tries, error = "", 0, doc.last_log
            else:
                tries, error = entry.attempts, entry.last_error_message
                at = (
                    "needs a fix (skipped)" if entry.needs_fix else when(entry.next_attempt_at, now)
                )
            print(
                f"{doc.code:<12} {doc.customer_code:<9} {doc.total_tax!s:>9} {tries:>5}  "
                f"{at:<22} {error}"
            )
        fixes = sum(1 for item in found if item.entry is not None and item.entry.needs_fix)
        note = (
            ": repost skips them until fixed (then taxbridge repost --code CODE)" if fixes else ""
        )
        print(f"{len(found)} unposted, {fixes} needing a fix{note}")

    print_rows(args, UNPOSTED_COLUMNS, rows, table)
    return OK


def _history(args: argparse.Namespace, bridge: TaxBridge) -> int:
    settled = bridge.settled()
    rows = [{"code": s.code, "outcome": s.outcome, "settled_at": s.settled_at} for s in settled]

    def table() -> None:
        print(f"{'code':<12} {'flag':<4} settled at")
        for entry in settled:
            print(f"{entry.code:<12} {entry.outcome:<4} {entry.settled_at.isoformat()}")
        print(f"{len(settled)} settled")

    print_rows(args, ("code", "outcome", "settled_at"), rows, table)
    return OK


def _repost(args: argparse.Namespace) -> int:
    with open_bridge(args) as bridge:
        due = 1 if args.code else bridge.due()
        total = min(due, args.limit) if args.limit else due
        bar = Progress(total, "docs", "reposting")
        try:
            summary = bridge.repost(
                args.code,
                limit=args.limit,
                concurrency=args.concurrency,
                dry_run=args.dry_run,
                lease=args.lease,
                progress=lambda code, outcome: bar.update(),
            )
        finally:
            bar.close()
    if args.format == "json":
        print_json(summary.as_dict())
    elif args.dry_run:
        print(f"would repost {len(summary.due)}: {' '.join(summary.due)}".rstrip(": "))
    else:
        held = (
            f"; {summary.held} held by another run until "
            f"{summary.held_until.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
            if summary.held_until is not None
            else ""
        )
        print(
            f"reposted {len(summary.reposted)}, still failing {len(summary.failed)}, "
            f"needing a fix {len(summary.skipped)}, taken by another worker "
            f"{len(summary.taken_over)}{held}"
        )
        for code, why in summary.not_taken:
            print(f"{code} not taken: {why}")
    return FINDINGS if summary.failed or summary.not_taken else OK


def _lease(text: str) -> dt.timedelta:
    lease = duration(text)
    if not dt.timedelta(seconds=1) <= lease <= dt.timedelta(days=1):
        raise argparse.ArgumentTypeError(f"{text!r} is not a lease from 1s to 1d")
    return lease


def _purge(args: argparse.Namespace) -> int:
    with open_bridge(args, read_only=True) as bridge:
        removed = bridge.purge(args.older_than)
    if args.format == "json":
        print_json({"purged": removed, "older_than_seconds": args.older_than.total_seconds()})
        return OK
    entries = "entry" if removed == 1 else "entries"
    print(f"purged {removed} settled queue {entries} older than {span(args.older_than)}")
    return OK


def _refresh(args: argparse.Namespace) -> int:
    from taxbridge.errors import BackendError

    as_of = day_option(args.as_of, "--as-of")
    try:
        with open_bridge(args) as bridge:
            summary = bridge.refresh(as_of)
    except BackendError as exc:
        print(f"taxbridge refresh-rates: failed, yesterday's tables kept: {exc}", file=sys.stderr)
        return FINDINGS
    if args.format == "json":
        print_json(
            {
                "as_of": summary.as_of,
                "tax_codes": summary.tax_codes,
                "entity_use_codes": summary.entity_use_codes,
                "nexus": {code: list(regions) for code, regions in summary.nexus.items()},
                "rate_rows": summary.rate_rows,
                "rate_regions": list(summary.rate_regions),
            }
        )
        return OK
    nexus = "; ".join(f"{code}: {' '.join(regions)}" for code, regions in summary.nexus.items())
    print(f"refreshed as of {summary.as_of}")
    print(f"  tax codes         {summary.tax_codes if summary.tax_codes is not None else 'kept'}")
    print(
        "  entity use codes  "
        f"{summary.entity_use_codes if summary.entity_use_codes is not None else 'kept'}"
    )
    print(f"  nexus             {nexus or 'kept'}")
    print(f"  offline rates     {summary.rate_rows} rows for {' '.join(summary.rate_regions)}")
    return OK


def _ping(args: argparse.Namespace) -> int:
    from taxbridge.bridge import TaxBridge
    from taxbridge.errors import BackendError

    config = read_config(args)
    try:
        name, result = TaxBridge.ping_engine(config)
    except BackendError as exc:
        if args.format == "json":
            print_json({"engine": config.backend, "reachable": False, "error": str(exc)})
        print(f"taxbridge ping: {config.backend} unreachable: {exc}", file=sys.stderr)
        return FINDINGS
    if args.format == "json":
        print_json(
            {
                "engine": name,
                "reachable": True,
                "embedded": result is None,
                "where": result.where if result else None,
                "version": result.version if result else None,
                "authenticated": result.authenticated if result else None,
            }
        )
    elif result is None:
        print(f"engine {name}: embedded, nothing to reach")
    else:
        state = "accepted" if result.authenticated else "NOT accepted"
        print(f"{result.where or name}: {name} {result.version}; credentials {state}")
    return OK if result is None or result.authenticated else FINDINGS


def _config_example(args: argparse.Namespace) -> int:
    from taxbridge.config import example_config_text

    print(example_config_text(), end="")
    return OK


def _mark_manual(args: argparse.Namespace) -> int:
    if args.from_file and (args.code or args.reason):
        raise UsageError("give a document code and --reason, or --from-file FILE, not both")
    with open_bridge(args, read_only=True) as bridge:
        if args.from_file:
            marked = bridge.files.mark_manual_from_file(args.from_file, args.user)
        elif args.code and args.reason:
            marked = [bridge.mark_manual(args.code, args.reason, args.user)]
        else:
            raise UsageError("say which document and why: CODE --reason TEXT (or --from-file)")
    rows = [{"code": d.code, "flag": d.flag.value, "log": d.last_log} for d in marked]

    def table() -> None:
        for doc in marked:
            print(f"{doc.code}: flag {doc.flag.value}  {doc.last_log}")
        if args.from_file:
            print(f"marked {len(marked)} documents M")

    print_rows(args, ("code", "flag", "log"), rows, table)
    return OK


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """The operator's commands."""
    command(
        commands,
        "demo",
        _demo,
        parents=[common],
        help="run a realistic day on the embedded defaults into a demo store",
        description="Run fifty orders through every stage, with two engine outages, into --db "
        "(default taxbridge-demo.db); a file that is not a demo store is left alone.",
    )

    inquiry = command(
        commands,
        "inquiry",
        _inquiry,
        parents=[common],
        help="show a tax document: its flag, breakdown, lines and log",
    )
    inquiry.add_argument("code", help="the document code, e.g. A-9001 (invoice) or O-1001 (order)")
    inquiry.add_argument(
        "--lines", type=int, default=20, metavar="N", help="lines to show (default 20)"
    )
    format_option(inquiry, "table", "json")

    unposted = command(
        commands,
        "unposted",
        _unposted,
        parents=[common],
        help="list the documents whose posting failed (flag U)",
    )
    unposted.add_argument(
        "--needs-fix",
        action="store_true",
        help="only those the engine refused (repost skips them until the data is fixed)",
    )
    unposted.add_argument(
        "--history",
        action="store_true",
        help="the settled ones instead (reposted R, or posted by hand M), until purged",
    )
    format_option(unposted, "table", "csv", "json", json_alias=True)

    repost = command(
        commands,
        "repost",
        _repost,
        parents=[common],
        help="post again the failed documents that are due (U -> R)",
    )
    repost.add_argument("--code", help="repost this document only, due or not (e.g. after a fix)")
    repost.add_argument("--limit", type=int, metavar="N", help="repost at most N documents")
    repost.add_argument(
        "--concurrency", type=int, default=1, metavar="N", help="worker threads (default 1)"
    )
    repost.add_argument(
        "--lease",
        type=_lease,
        metavar="DURATION",
        help="how long this run holds each document, e.g. 2m (default: [queue] lease_seconds)",
    )
    repost.add_argument("--dry-run", action="store_true", help="list what is due; post nothing")
    format_option(repost, "table", "json", json_alias=True)

    purge = command(
        commands,
        "purge",
        _purge,
        parents=[common],
        help="delete settled queue history (never a document still U)",
    )
    purge.add_argument(
        "--older-than",
        type=duration,
        required=True,
        metavar="DURATION",
        help="settled longer ago than this, e.g. 90d, 12h, 30m",
    )
    format_option(purge, "table", "json")

    refresh = command(
        commands,
        "refresh-rates",
        _refresh,
        parents=[common],
        help="the end-of-day refresh: tax codes, entity use codes, nexus and offline rates",
    )
    refresh.add_argument(
        "--as-of", metavar="DATE", help="the business date, YYYY-MM-DD (default: today, UTC)"
    )
    format_option(refresh, "table", "json")

    ping = command(
        commands,
        "ping",
        _ping,
        parents=[common],
        help="check that the engine answers and accepts our credentials",
    )
    format_option(ping, "table", "json")

    example = command(
        commands, "config-example", _config_example, help="print the annotated example config"
    )
    example.set_defaults(config=None, db=None, log_level=None, log_json=False)

    manual = command(
        commands,
        "mark-manual",
        _mark_manual,
        parents=[common],
        help="record that failed documents were posted by hand outside the ERP (U -> M)",
    )
    manual.add_argument(
        "code", nargs="?", help="the document keyed into the engine by hand, e.g. A-9031"
    )
    manual.add_argument("--reason", help="why, for the document's log")
    manual.add_argument(
        "--from-file",
        metavar="FILE",
        help="every document of this AvaTax transaction import file, once imported at AvaTax",
    )
    manual.add_argument(
        "--user",
        default=os.environ.get("USER", "operator"),
        help="who posted it by hand (default: $USER)",
    )
    format_option(manual, "table", "csv", "json")
