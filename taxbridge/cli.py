"""The ``taxbridge`` command: thin argument parsing over the library, tables on stdout, logs and
errors on stderr."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from taxbridge.bridge import TaxBridge
from taxbridge.cli_books import add_commands
from taxbridge.cli_customers import add_commands as add_customer_commands
from taxbridge.cli_files import add_commands as add_file_commands
from taxbridge.cli_files import mark_manual_from_file
from taxbridge.cli_open import day_option
from taxbridge.cli_open import open_bridge as _bridge
from taxbridge.cli_open import read_config as _config
from taxbridge.config import example_config_text
from taxbridge.demo import DEMO_DB, run_demo
from taxbridge.errors import BackendError, ConfigError, InvalidFieldError, TaxBridgeError
from taxbridge.logs import LEVELS, configure
from taxbridge.store.urls import shown_url

DESCRIPTION = """\
Sales tax for an ERP's orders, invoices and claims, over a tax engine (the embedded local
engine, or AvaTax). These commands are for operations: look a tax document up, work the list
of documents whose posting failed (flag U), repost them, mark one posted by hand, refresh the
offline rates at the end of the day; and for finance at month-end: the tax workfile, GL
journals, the sales-vs-GL and engine-vs-store reconciliations, the state report; and the
seeds' files: the AvaTax transaction import, CertCapture customers and ECMS certificates. The
ERP itself calls the library.

Every command but demo works on an existing store: name it with --db FILE or --config FILE
(else TAXBRIDGE_CONFIG, else ./taxbridge.toml; TAXBRIDGE_DB); "taxbridge demo" writes one to
try them on. A command that posts or changes the store says on stderr which config, engine and
store it uses (--quiet: not).
"""


def _version() -> str:
    try:
        return version("taxbridge")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0"


def _when(moment: dt.datetime, now: dt.datetime) -> str:
    """A time as a person reads it: ``now``, ``in 4 min``, ``2026-11-21 09:30 UTC``."""
    ahead = (moment - now).total_seconds()
    if ahead <= 0:
        return "now"
    if ahead < 3600:
        return f"in {max(1, round(ahead / 60))} min"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _span(span: dt.timedelta) -> str:
    """A duration as a person says it: ``90 days``, ``12 hours``, ``30 minutes``."""
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def _demo(args: argparse.Namespace) -> int:
    return run_demo(args.db or DEMO_DB)


def _inquiry(args: argparse.Namespace) -> int:
    with _bridge(args, read_only=True) as bridge:
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
    return 0


def _unposted(args: argparse.Namespace) -> int:
    with _bridge(args, read_only=True) as bridge:
        if args.history:
            return _history(bridge, args.json)
        now = bridge.clock()
        found = bridge.unposted_entries(needs_fix=True if args.needs_fix else None)
    if args.json:
        rows = [
            {
                "code": item.document.code,
                "customer": item.document.customer_code,
                "tax": str(item.document.total_tax),
                "attempts": item.entry.attempts if item.entry else 0,
                "needs_fix": item.entry.needs_fix if item.entry else None,
                "next_attempt_at": item.entry.next_attempt_at.isoformat() if item.entry else None,
                "last_error_code": item.entry.last_error_code if item.entry else "",
                "last_error": (
                    item.entry.last_error_message if item.entry else item.document.last_log
                ),
            }
            for item in found
        ]
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'code':<12} {'customer':<9} {'tax':>9} {'tries':>5}  {'next try':<22} last error")
    for item in found:
        doc, entry = item.document, item.entry
        if entry is None:
            when, tries, error = "", 0, doc.last_log
        else:
            tries, error = entry.attempts, entry.last_error_message
            when = "needs a fix (skipped)" if entry.needs_fix else _when(entry.next_attempt_at, now)
        print(
            f"{doc.code:<12} {doc.customer_code:<9} {doc.total_tax!s:>9} {tries:>5}  "
            f"{when:<22} {error}"
        )
    fixes = sum(1 for item in found if item.entry is not None and item.entry.needs_fix)
    note = ": repost skips them until fixed (then taxbridge repost --code CODE)" if fixes else ""
    print(f"{len(found)} unposted, {fixes} needing a fix{note}")
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
                lease=args.lease,
                progress=None if args.json else bar,
            )
        finally:
            bar.close()
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
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
    return 1 if summary.failed or summary.not_taken else 0


def _duration(text: str) -> dt.timedelta:
    """``90d``, ``12h``, ``30m`` or ``45s``."""
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or len(number) > 6:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90d, 12h, 30m or 45s")
    return dt.timedelta(**{units[unit]: int(number)})


def _lease(text: str) -> dt.timedelta:
    lease = _duration(text)
    if not dt.timedelta(seconds=1) <= lease <= dt.timedelta(days=1):
        raise argparse.ArgumentTypeError(f"{text!r} is not a lease from 1s to 1d")
    return lease


def _purge(args: argparse.Namespace) -> int:
    with _bridge(args, read_only=True) as bridge:
        removed = bridge.purge(args.older_than)
    entries = "entry" if removed == 1 else "entries"
    print(f"purged {removed} settled queue {entries} older than {_span(args.older_than)}")
    return 0


def _refresh(args: argparse.Namespace) -> int:
    as_of = day_option(args.as_of, "--as-of")
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
    config = _config(args)
    try:
        name, result = TaxBridge.ping_engine(config)
    except BackendError as exc:
        print(f"taxbridge ping: {config.backend} unreachable: {exc}", file=sys.stderr)
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
    if args.from_file:
        if args.code:
            raise InvalidFieldError("command line", "code", args.code, "goes without --from-file")
        return mark_manual_from_file(args, _bridge)
    if not args.code or not args.reason:
        raise InvalidFieldError(
            "command line", "code", args.code, "and --reason are needed (or --from-file FILE)"
        )
    with _bridge(args, read_only=True) as bridge:
        doc = bridge.mark_manual(args.code, args.reason, args.user)
    print(f"{doc.code}: flag {doc.flag.value}  {doc.last_log}")
    return 0


def _store_use_engine(args: argparse.Namespace) -> int:
    with _bridge(args, read_only=True) as bridge:
        before, after = bridge.use_engine()
    if before == after:
        print(f"the store's documents are posted through {after} already; nothing changed")
    else:
        print(f"the store now posts through {after} (before: {before or 'none on record'})")
    return 0


def _named(spec: str) -> str:
    """A store the command line names, as messages may show it (a URL without secrets)."""
    return shown_url(spec) if spec.strip().startswith(("postgresql:", "postgres:")) else spec


def _store_migrate(args: argparse.Namespace) -> int:
    from taxbridge.factory import open_store
    from taxbridge.files.service import CUSTOMERS, ECMS_IDS
    from taxbridge.store.copy import copy_store

    config = _config(args)
    source = open_store(args.source, create=False)
    bar: _ProgressBar | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        bar = bar or _ProgressBar(total)
        bar.done = done - 1
        bar(f"{done} copied", "")

    try:
        target = open_store(args.target, create=True, unfinished_ok=True)
        try:
            summary = copy_store(
                source,
                target,
                companies=[c.company_code for c in config.companies],
                export_kinds=(CUSTOMERS, ECMS_IDS),
                source_name=_named(args.source),
                target_name=_named(args.target),
                progress=progress,
            )
        finally:
            target.close()
            if bar is not None:
                bar.close()
    finally:
        source.close()
    flags = ", ".join(f"{flag}={count}" for flag, count in summary.by_flag)
    print(
        f"{'finished the interrupted copy: ' if summary.resumed else ''}"
        f"copied {summary.documents} documents ({flags}; tax {summary.total_tax}), "
        f"{summary.events} log entries, {summary.queue_entries} open queue entries, "
        f"{summary.exemptions} exemptions, {summary.journals} journals; counts and tax "
        "totals checked equal"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``taxbridge`` command."""
    parser = argparse.ArgumentParser(
        prog="taxbridge",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"taxbridge {_version()}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config file (default: $TAXBRIDGE_CONFIG, else ./taxbridge.toml if there is "
        "one, else the embedded defaults)",
    )
    common.add_argument(
        "--quiet",
        action="store_true",
        help="do not say which config, engine and store a changing command uses",
    )
    common.add_argument(
        "--db",
        metavar="FILE",
        help="the SQLite store file (instead of the config's [store]; default: $TAXBRIDGE_DB "
        "or ./taxbridge.db)",
    )
    common.add_argument(
        "--log-level",
        choices=LEVELS,
        help="what is logged to stderr (default: warning; error for the demo)",
    )
    common.add_argument(
        "--log-json", action="store_true", help="log JSON lines to stderr instead of text"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="run a realistic day on the embedded defaults into a demo store",
        description="Run fifty orders through every stage, with two engine outages, into "
        f"--db (default {DEMO_DB}); a file that is not a demo store is left alone.",
    )
    demo.set_defaults(run=_demo)

    inquiry = commands.add_parser(
        "inquiry", parents=[common], help="show a tax document: breakdown, flag, log"
    )
    inquiry.add_argument("code", help="document code, e.g. A-9001 (invoice) or O-1001 (order)")
    inquiry.add_argument(
        "--lines", type=int, default=20, metavar="N", help="lines to show (default 20)"
    )
    inquiry.set_defaults(run=_inquiry)

    unposted = commands.add_parser(
        "unposted", parents=[common], help="list documents whose posting failed (U)"
    )
    unposted.add_argument("--json", action="store_true", help="print JSON")
    unposted.add_argument(
        "--needs-fix",
        action="store_true",
        help="only those the engine rejected (repost skips them until fixed)",
    )
    unposted.add_argument(
        "--history", action="store_true", help="settled entries (R, M) instead, until purged"
    )
    unposted.set_defaults(run=_unposted)

    repost = commands.add_parser("repost", parents=[common], help="repost due U documents (U -> R)")
    repost.add_argument("--code", help="repost this document only, due or not (e.g. after a fix)")
    repost.add_argument("--limit", type=int, metavar="N", help="repost at most N documents")
    repost.add_argument(
        "--concurrency", type=int, default=1, metavar="N", help="worker threads (default 1)"
    )
    repost.add_argument(
        "--lease",
        type=_lease,
        metavar="DURATION",
        help="how long this run holds each entry, e.g. 2m (default: [queue] lease_seconds)",
    )
    repost.add_argument("--dry-run", action="store_true", help="list what is due; post nothing")
    repost.add_argument("--json", action="store_true", help="print the summary as JSON")
    repost.set_defaults(run=_repost)

    purge = commands.add_parser(
        "purge", parents=[common], help="delete settled queue history (never a U entry)"
    )
    purge.add_argument(
        "--older-than",
        type=_duration,
        required=True,
        metavar="DURATION",
        help="settled longer ago than this, e.g. 90d, 12h, 30m",
    )
    purge.set_defaults(run=_purge)

    refresh = commands.add_parser(
        "refresh-rates",
        parents=[common],
        help="end-of-day refresh: tax codes, entity use codes, nexus and offline rates",
    )
    refresh.add_argument(
        "--as-of", metavar="DATE", help="business date, YYYY-MM-DD (default: today, UTC)"
    )
    refresh.set_defaults(run=_refresh)

    ping = commands.add_parser(
        "ping", parents=[common], help="check that the engine answers and knows our credentials"
    )
    ping.set_defaults(run=_ping)

    example = commands.add_parser(
        "config-example", help="print the annotated example taxbridge.toml"
    )
    example.set_defaults(run=_config_example, config=None, db=None, log_level=None, log_json=False)

    manual = commands.add_parser(
        "mark-manual", parents=[common], help="flag a U document as posted by hand (U -> M)"
    )
    manual.add_argument(
        "code", nargs="?", help="the U document keyed into the engine by hand, e.g. A-9031"
    )
    manual.add_argument("--reason", help="why, for the document's log")
    manual.add_argument(
        "--from-file",
        metavar="FILE",
        help="mark every document of this AvaTax import file (imported at AvaTax) M",
    )
    manual.add_argument(
        "--user",
        default=os.environ.get("USER", "operator"),
        help="who posted it by hand (default: $USER)",
    )
    manual.set_defaults(run=_mark_manual)
    add_commands(commands, common, _bridge)
    add_file_commands(commands, common, _bridge)
    add_customer_commands(commands, common, _bridge)

    store = commands.add_parser(
        "store", help="the store itself: migrate it to another, or move it to another engine"
    )
    store_actions = store.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="migrate or use-engine"
    )
    use_engine = store_actions.add_parser(
        "use-engine",
        parents=[common],
        help="post this store's documents through the configured engine from now on",
        description="A store refuses to post, repost, void or reconcile through other books "
        "(engine, environment, account) than its documents were posted through. After moving "
        "on purpose (sandbox to production), record the configured engine's books as its own.",
    )
    use_engine.set_defaults(run=_store_use_engine)
    migrate = store_actions.add_parser(
        "migrate",
        parents=[common],
        help="copy a store into an empty one (e.g. SQLite to PostgreSQL), checked",
        description="Copy documents with their log, credit allocations, the open queue, "
        "reference data, exemptions, journals and the export registry; then check that "
        "document counts (by flag), tax totals, queue and exemptions are equal.",
    )
    migrate.add_argument(
        "--from", dest="source", required=True, metavar="STORE", help="sqlite:PATH (or PATH)"
    )
    migrate.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="STORE",
        help="postgresql://user@host/db (password: PGPASSWORD) or sqlite:PATH",
    )
    migrate.set_defaults(run=_store_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``taxbridge`` console script."""
    args = build_parser().parse_args(argv)
    configure(
        args.log_level or ("error" if args.command == "demo" else "warning"), json=args.log_json
    )
    try:
        code: int = args.run(args)
    except ConfigError as exc:
        print(f"taxbridge: configuration error: {exc}", file=sys.stderr)
        return 2
    except TaxBridgeError as exc:
        print(f"taxbridge: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        done = (
            ": what the engine answered is recorded, what was not sent is back in the queue"
            if args.command == "repost"
            else ""
        )
        print(f"taxbridge {args.command}: interrupted{done}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader (``| head``) left: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
