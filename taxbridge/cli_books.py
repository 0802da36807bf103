"""The month-end commands of ``taxbridge``: workfile, journal, reconcile, report and void."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from taxbridge.accounting.export import (
    Format,
    Table,
    engine_table,
    gl_table,
    journal_table,
    jurisdiction_table,
    state_table,
    workfile_table,
    write,
)
from taxbridge.bridge import TaxBridge
from taxbridge.errors import InvalidFieldError
from taxbridge.models import DateRange

Opener = Callable[..., TaxBridge]


def _period(args: argparse.Namespace) -> DateRange:
    """``--period YYYY-MM``, or ``--from`` and ``--to``; never both, never neither."""
    if args.period and (args.start or args.end):
        raise InvalidFieldError("command line", "--period", args.period, "goes without --from/--to")
    if args.period:
        return DateRange.period(args.period)
    if not (args.start and args.end):
        raise InvalidFieldError(
            "command line", "--period", None, "is needed (or both --from and --to)"
        )
    return DateRange.between(args.start, args.end)


def _emit(table: Table, args: argparse.Namespace) -> None:
    fmt = Format(args.format)
    path = Path(args.output) if args.output else None
    if fmt is Format.XLSX:
        if path is None:
            raise InvalidFieldError(
                "command line", "--output", None, "is needed with --format xlsx"
            )
        write(table, fmt, path=path)
        print(f"wrote {path}", file=sys.stderr)
        return
    if path is None:
        write(table, fmt, sys.stdout)
        return
    with path.open("w", encoding="utf-8", newline="") as out:
        write(table, fmt, out)
    print(f"wrote {path}", file=sys.stderr)


def _workfile(args: argparse.Namespace, open_bridge: Opener) -> int:
    period = _period(args)
    with open_bridge(args, read_only=True) as bridge:
        if args.jurisdictions:
            found = bridge.workfile_jurisdictions(period, args.company)
            _emit(jurisdiction_table(found, f"Jurisdictions {period}"), args)
        else:
            _emit(workfile_table(bridge.workfile(period, args.company), f"Workfile {period}"), args)
    return 0


def _journal(args: argparse.Namespace, open_bridge: Opener) -> int:
    period = _period(args)
    with open_bridge(args, read_only=True) as bridge:
        if args.action == "generate":
            journal = bridge.generate_journal(period, args.company)
        elif args.action == "post":
            journal = bridge.post_journal(period, args.company, user=args.user)
        else:
            journal = bridge.journal(period, args.company)
    _emit(journal_table(journal), args)
    return 0


def _tolerance(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount like 0.01") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount >= 0")
    return value


class _Counter:
    """``listed N documents`` on a terminal's stderr while the engine is paged through."""

    def __init__(self) -> None:
        self.on = sys.stderr.isatty()
        self.seen = 0

    def __call__(self, count: int) -> None:
        self.seen = count
        if self.on and count % 100 == 0:
            print(f"\rlisted {count} documents at the engine", end="", file=sys.stderr)

    def close(self) -> None:
        if self.on and self.seen:
            print(f"\rlisted {self.seen} documents at the engine", file=sys.stderr)


def _reconcile(args: argparse.Namespace, open_bridge: Opener) -> int:
    period = _period(args)
    if args.what == "gl":
        with open_bridge(args, read_only=True) as bridge:
            found = bridge.reconcile_gl(
                period, args.company, differences_only=args.diff, tolerance=args.tolerance
            )
        _emit(gl_table(found), args)
        return 0 if found.balanced else 1
    counter = _Counter()
    try:
        with open_bridge(args, read_only=True) as bridge:
            engine = bridge.reconcile_engine(period, args.company, fix=args.fix, progress=counter)
    finally:
        counter.close()
    _emit(engine_table(engine), args)
    return 0 if all(f.fixed for f in engine.findings) else 1


def _report(args: argparse.Namespace, open_bridge: Opener) -> int:
    period = _period(args)
    with open_bridge(args, read_only=True) as bridge:
        report = bridge.state_report(period, args.company)
    _emit(state_table(report), args)
    return 0


def _void(args: argparse.Namespace, open_bridge: Opener) -> int:
    with open_bridge(args) as bridge:
        doc = bridge.void(args.code, args.reason)
    print(f"{doc.code}: voided ({doc.void_reason}); flag stays {doc.flag}")
    return 0


def _period_options(parser: argparse.ArgumentParser, *, output: bool = True) -> None:
    parser.add_argument("--period", metavar="YYYY-MM", help="a calendar month")
    parser.add_argument("--from", dest="start", metavar="DATE", help="first date, YYYY-MM-DD")
    parser.add_argument("--to", dest="end", metavar="DATE", help="last date, YYYY-MM-DD")
    parser.add_argument("--company", metavar="ERP", help="one ERP company (default: all)")
    if output:
        parser.add_argument(
            "--format",
            choices=[f.value for f in Format],
            default=Format.TABLE.value,
            help="table (default), csv, json (a line per row) or xlsx (needs --output)",
        )
        parser.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")


def add_commands(commands: Any, common: argparse.ArgumentParser, open_bridge: Opener) -> None:
    """Add the month-end commands to the ``taxbridge`` parser."""

    def bind(run: Callable[[argparse.Namespace, Opener], int]) -> Callable[..., int]:
        return lambda args: run(args, open_bridge)

    workfile = commands.add_parser(
        "workfile",
        parents=[common],
        help="the tax workfile (BNO155G): posted invoice and credit lines of a period",
    )
    _period_options(workfile)
    workfile.add_argument(
        "--jurisdictions", action="store_true", help="the jurisdiction breakdown instead"
    )
    workfile.set_defaults(run=bind(_workfile))

    journal = commands.add_parser(
        "journal", parents=[common], help="GL tax journals (BNO010): generate, post, show"
    )
    journal.add_argument(
        "action",
        choices=["generate", "post", "show"],
        help="generate (or regenerate, while unposted), post (locks it), show",
    )
    _period_options(journal)
    journal.add_argument(
        "--user", default=os.environ.get("USER", "operator"), help="who posts (default: $USER)"
    )
    journal.set_defaults(run=bind(_journal))

    reconcile = commands.add_parser(
        "reconcile",
        parents=[common],
        help="sales versus GL tax (gl, BNI010A) or the engine versus the store (engine)",
    )
    reconcile.add_argument(
        "what", choices=["gl", "engine"], help="gl: sales versus GL; engine: engine versus store"
    )
    _period_options(reconcile)
    reconcile.add_argument(
        "--diff", action="store_true", help="gl: only the differences (F10 Show Diff)"
    )
    reconcile.add_argument(
        "--tolerance",
        type=_tolerance,
        default=Decimal("0.00"),
        metavar="AMOUNT",
        help="gl: differences up to this are not ones (default 0.00)",
    )
    reconcile.add_argument(
        "--fix", action="store_true", help="engine: take each finding's safe action"
    )
    reconcile.set_defaults(run=bind(_reconcile))

    report = commands.add_parser("report", parents=[common], help="reports: state (sales tax)")
    report.add_argument("which", choices=["state"], help="state: sales tax by state")
    _period_options(report)
    report.set_defaults(run=bind(_report))

    void = commands.add_parser(
        "void", parents=[common], help="void a posted invoice or credit at the engine"
    )
    void.add_argument("code", help="the document, e.g. A-9001")
    void.add_argument("--reason", required=True, help="why, for the document's log")
    void.set_defaults(run=bind(_void))
