"""The ``taxbridge`` command: thin argument parsing over the library, tables on stdout."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence

from taxbridge.bridge import TaxBridge
from taxbridge.config import BridgeConfig, default_config, example_config_text, load_config
from taxbridge.demo import DEMO_DB, run_demo
from taxbridge.errors import BackendError, ConfigError, TaxBridgeError
from taxbridge.logs import configure


def _config(args: argparse.Namespace) -> BridgeConfig:
    """The config the options name: ``--config`` (or TAXBRIDGE_CONFIG), else embedded defaults;
    ``--db`` puts it on that SQLite file."""
    config_path = args.config or os.environ.get("TAXBRIDGE_CONFIG")
    config = load_config(config_path) if config_path else default_config()
    return config.with_store_file(args.db) if args.db else config


def _bridge(args: argparse.Namespace) -> TaxBridge:
    return TaxBridge.from_settings(_config(args))


def _demo(args: argparse.Namespace) -> int:
    return run_demo(args.db or DEMO_DB)


def _inquiry(args: argparse.Namespace) -> int:
    with _bridge(args) as bridge:
        found = bridge.inquiry(args.code)
    doc = found.document
    print(f"Document      {doc.code} ({doc.kind.value}, {doc.document_type.value})")
    print(f"Final flag    {doc.flag.value or 'blank'}   stage {doc.stage.value}")
    print(f"Company       {doc.erp_company} -> {doc.company_code}   customer {doc.customer_code}")
    print(f"Date          {doc.document_date}   tax date {doc.tax_date}   {doc.currency}")
    print(
        f"Totals        amount {doc.total_amount}  taxable {doc.total_taxable}  "
        f"exempt {doc.total_exempt}  tax {doc.total_tax}"
    )
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
    return 0


def _unposted(args: argparse.Namespace) -> int:
    with _bridge(args) as bridge:
        if args.history:
            return _history(bridge, args.json)
        rows = [
            {
                "code": found.document.code,
                "customer": found.document.customer_code,
                "tax": str(found.document.total_tax),
                "attempts": entry.attempts if entry else 0,
                "needs_fix": entry.needs_fix if entry else None,
                "next_attempt_at": entry.next_attempt_at.isoformat() if entry else None,
                "last_error_code": entry.last_error_code if entry else "",
                "last_error": entry.last_error_message if entry else found.document.last_log,
            }
            for found in bridge.unposted_entries(needs_fix=True if args.needs_fix else None)
            for entry in (found.entry,)
        ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'code':<12} {'customer':<9} {'tax':>9} {'tries':>5}  {'next try':<25} last error")
    for row in rows:
        state = "needs fix: " if row["needs_fix"] else ""
        print(
            f"{row['code']:<12} {row['customer']:<9} {row['tax']:>9} {row['attempts']:>5}  "
            f"{row['next_attempt_at'] or '':<25} {state}{row['last_error']}"
        )
    print(f"{len(rows)} unposted")
    return 0


def _history(bridge: TaxBridge, as_json: bool) -> int:
    settled = bridge.settled()
    if as_json:
        rows = [
            {"code": s.code, "outcome": s.outcome, "settled_at": s.settled_at.isoformat()}
            for s in settled
        ]
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'code':<12} {'flag':<4} settled at")
    for entry in settled:
        print(f"{entry.code:<12} {entry.outcome:<4} {entry.settled_at.isoformat()}")
    print(f"{len(settled)} settled")
    return 0


class _ProgressBar:
    """A one-line progress bar on a terminal's stderr; silent when stderr is not a terminal."""

    def __init__(self, total: int):
        self.total = max(total, 1)
        self.done = 0
        self.on = sys.stderr.isatty()

    def __call__(self, code: str, outcome: str) -> None:
        self.done += 1
        if self.on:
            filled = int(30 * min(self.done, self.total) / self.total)
            bar = "#" * filled + "." * (30 - filled)
            print(f"\r[{bar}] {self.done}/{self.total} {code:<16}", end="", file=sys.stderr)

    def close(self) -> None:
        if self.on and self.done:
            print(file=sys.stderr)


def _repost(args: argparse.Namespace) -> int:
    with _bridge(args) as bridge:
        due = 1 if args.code else bridge.due()
        bar = _ProgressBar(min(due, args.limit) if args.limit else due)
        try:
            summary = bridge.repost(
                args.code,
                limit=args.limit,
                concurrency=args.concurrency,
                dry_run=args.dry_run,
                progress=None if args.json else bar,
            )
        finally:
            bar.close()
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    elif args.dry_run:
        print(f"would repost {len(summary.due)}: {' '.join(summary.due)}".rstrip(": "))
    else:
        print(
            f"reposted {len(summary.reposted)}, still failing {len(summary.failed)}, "
            f"needing a fix {len(summary.skipped)}, taken by another worker "
            f"{len(summary.taken_over)}"
        )
    return 1 if summary.failed else 0


def _duration(text: str) -> dt.timedelta:
    """``90d``, ``12h`` or ``30m``."""
    units = {"d": "days", "h": "hours", "m": "minutes"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90d, 12h or 30m")
    return dt.timedelta(**{units[unit]: int(number)})


def _purge(args: argparse.Namespace) -> int:
    with _bridge(args) as bridge:
        removed = bridge.purge(args.older_than)
    print(f"purged {removed} settled queue entries older than {args.older_than}")
    return 0


def _refresh(args: argparse.Namespace) -> int:
    as_of = dt.date.fromisoformat(args.as_of) if args.as_of else None
    try:
        with _bridge(args) as bridge:
            summary = bridge.refresh(as_of)
    except BackendError as exc:
        print(f"taxbridge refresh-rates: failed, yesterday's tables kept: {exc}", file=sys.stderr)
        return 1
    nexus = "; ".join(f"{code}: {' '.join(regions)}" for code, regions in summary.nexus.items())
    print(f"refreshed as of {summary.as_of}")
    print(f"  tax codes         {summary.tax_codes if summary.tax_codes is not None else 'kept'}")
    print(
        "  entity use codes  "
        f"{summary.entity_use_codes if summary.entity_use_codes is not None else 'kept'}"
    )
    print(f"  nexus             {nexus or 'kept'}")
    print(f"  offline rates     {summary.rate_rows} rows for {' '.join(summary.rate_regions)}")
    return 0


def _ping(args: argparse.Namespace) -> int:
    with _bridge(args) as bridge:
        name = bridge.backend.name
        try:
            result = bridge.ping()
        except BackendError as exc:
            print(f"taxbridge ping: {name} unreachable: {exc}", file=sys.stderr)
            return 1
    if result is None:
        print(f"backend {name}: embedded, nothing to reach")
        return 0
    state = "accepted" if result.authenticated else "NOT accepted"
    print(f"{result.where or name}: {name} {result.version}; credentials {state}")
    return 0 if result.authenticated else 1


def _config_example(args: argparse.Namespace) -> int:
    print(example_config_text(), end="")
    return 0


def _mark_manual(args: argparse.Namespace) -> int:
    with _bridge(args) as bridge:
        doc = bridge.mark_manual(args.code, args.reason, args.user)
    print(f"{doc.code}: flag {doc.flag.value}  {doc.last_log}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``taxbridge`` command."""
    parser = argparse.ArgumentParser(prog="taxbridge", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="TOML config file (default: $TAXBRIDGE_CONFIG)")
    common.add_argument("--db", help="SQLite store file (overrides the config's store.path)")
    common.add_argument(
        "--log-level", help="structlog level to stderr (default: warning; error for the demo)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", parents=[common], help="run a realistic day on the embedded defaults"
    )
    demo.set_defaults(run=_demo)

    inquiry = commands.add_parser(
        "inquiry", parents=[common], help="show a tax document: breakdown, flag, log"
    )
    inquiry.add_argument("code", help="document code, e.g. A-9001 or O-1001")
    inquiry.add_argument("--lines", type=int, default=20, help="lines to show (default 20)")
    inquiry.set_defaults(run=_inquiry)

    unposted = commands.add_parser(
        "unposted", parents=[common], help="list documents whose posting failed (U)"
    )
    unposted.add_argument("--json", action="store_true", help="print JSON")
    unposted.add_argument("--needs-fix", action="store_true", help="only those needing a fix")
    unposted.add_argument(
        "--history", action="store_true", help="settled entries (R, M) instead, until purged"
    )
    unposted.set_defaults(run=_unposted)

    repost = commands.add_parser("repost", parents=[common], help="repost due U documents (U -> R)")
    repost.add_argument("--code", help="repost this document only (e.g. after a fix)")
    repost.add_argument("--limit", type=int, help="repost at most this many documents")
    repost.add_argument("--concurrency", type=int, default=1, help="worker threads (default 1)")
    repost.add_argument("--dry-run", action="store_true", help="list what is due; post nothing")
    repost.add_argument("--json", action="store_true", help="print the summary as JSON")
    repost.set_defaults(run=_repost)

    purge = commands.add_parser(
        "purge", parents=[common], help="delete settled queue history (never a U entry)"
    )
    purge.add_argument("--older-than", type=_duration, required=True, help="e.g. 90d, 12h, 30m")
    purge.set_defaults(run=_purge)

    refresh = commands.add_parser(
        "refresh-rates",
        parents=[common],
        help="end-of-day refresh: tax codes, entity use codes, nexus and offline rates",
    )
    refresh.add_argument("--as-of", help="business date (YYYY-MM-DD; default today)")
    refresh.set_defaults(run=_refresh)

    ping = commands.add_parser(
        "ping", parents=[common], help="check that the engine answers and knows our credentials"
    )
    ping.set_defaults(run=_ping)

    example = commands.add_parser(
        "config-example", help="print the annotated example taxbridge.toml"
    )
    example.set_defaults(run=_config_example, config=None, db=None, log_level=None)

    manual = commands.add_parser(
        "mark-manual", parents=[common], help="flag a U document as posted by hand (M)"
    )
    manual.add_argument("code")
    manual.add_argument("--reason", required=True)
    manual.add_argument("--user", default=os.environ.get("USER", "operator"))
    manual.set_defaults(run=_mark_manual)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``taxbridge`` console script."""
    args = build_parser().parse_args(argv)
    configure(args.log_level or ("error" if args.command == "demo" else "warning"))
    try:
        code: int = args.run(args)
    except ConfigError as exc:
        print(f"taxbridge: configuration error: {exc}", file=sys.stderr)
        return 2
    except TaxBridgeError as exc:
        print(f"taxbridge: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
