"""Finance's month-end commands: the tax workfile, GL journals, the reconciliations, the state
report and void."""

from __future__ import annotations

import argparse
import os
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxbridge.cli._shared import (
    FINDINGS,
    OK,
    Progress,
    UsageError,
    check_writable,
    command,
    day,
    format_option,
    month,
    open_bridge,
    output_file,
    print_json,
)

if TYPE_CHECKING:
    from taxbridge.accounting.export import Table
    from taxbridge.models import DateRange


def _period(args: argparse.Namespace) -> DateRange:
    """``--period YYYY-MM``, or ``--from`` and ``--to``; never both, never neither."""
    from taxbridge.models import DateRange

    start, end = getattr(args, "start", None), getattr(args, "end", None)
    if args.period and (start or end):
        raise UsageError("give --period, or --from and --to, not both")
    if args.period:
        return DateRange.period(args.period)
    if not (start and end):
        raise UsageError("say which dates: --period YYYY-MM, or both --from and --to")
    if start > end:
        raise UsageError(f"--from {start} is after --to {end}")
    return DateRange.between(start, end)


def _emit(table: Table, args: argparse.Namespace) -> None:
    from taxbridge.accounting.export import Format, write

    fmt = Format(args.format)
    path = Path(args.output) if args.output else None
    if fmt is Format.XLSX:
        if path is None:
            raise UsageError("--format xlsx writes a file: name it with --output FILE.xlsx")
        check_writable(path)
        try:
            write(table, fmt, path=path)
        except OSError as exc:
            reason = (exc.strerror or type(exc).__name__).lower()
            raise UsageError(f"--output {path}: cannot be written ({reason})") from None
        print(f"wrote {path}", file=sys.stderr)
        return
    if path is None:
        write(table, fmt, sys.stdout)
        return
    with output_file(path) as out:
        write(table, fmt, out)
    print(f"wrote {path}", file=sys.stderr)


def _workfile(args: argparse.Namespace) -> int:
    from taxbridge.accounting.export import jurisdiction_table, workfile_table

    period = _period(args)
    with open_bridge(args, read_only=True) as bridge:
        if args.jurisdictions:
            found = bridge.workfile_jurisdictions(period, args.company)
            _emit(jurisdiction_table(found, f"Jurisdictions {period}"), args)
        else:
            _emit(workfile_table(bridge.workfile(period, args.company), f"Workfile {period}"), args)
    return OK


def _journal_show(args: argparse.Namespace) -> int:
    from taxbridge.accounting.export import journal_table

    period = _period(args)
    with open_bridge(args, read_only=True) as bridge:
        if args.action == "generate":
            journal = bridge.generate_journal(period, args.company)
        else:
            journal = bridge.journal(period, args.company)
    _emit(journal_table(journal), args)
    return OK


def _journal_post(args: argparse.Namespace) -> int:
    period = _period(args)
    with open_bridge(args, read_only=True) as bridge:
        journal = bridge.post_journal(period, args.company, user=args.user)
    body = {
        "key": journal.key,
        "version": journal.version,
        "status": journal.status,
        "posted_by": journal.posted_by,
        "posted_at": journal.posted_at.isoformat() if journal.posted_at else None,
        "lines": len(journal.lines),
        "debits": journal.debits,
        "credits": journal.credits,
    }
    if args.format == "json":
        print_json(body)
    else:
        print(
            f"posted journal {journal.key} version {journal.version} as {journal.posted_by}: "
            f"{len(journal.lines)} lines, debits {journal.debits}, credits {journal.credits}"
        )
    return OK


def _tolerance(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount like 0.01") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount >= 0")
    return value


def _reconcile_gl(args: argparse.Namespace) -> int:
    from taxbridge.accounting.export import gl_table

    period = _period(args)
    with open_bridge(args, read_only=True) as bridge:
        found = bridge.reconcile_gl(
            period, args.company, differences_only=args.diff, tolerance=args.tolerance
        )
    _emit(gl_table(found), args)
    return OK if found.balanced else FINDINGS


def _reconcile_engine(args: argparse.Namespace) -> int:
    from taxbridge.accounting.export import engine_table

    period = _period(args)
    bar = Progress(None, "docs", "listing the engine's documents")
    try:
        with open_bridge(args, read_only=True) as bridge:
            engine = bridge.reconcile_engine(period, args.company, fix=args.fix, progress=bar.to)
    finally:
        bar.close()
    _emit(engine_table(engine), args)
    return OK if all(f.fixed for f in engine.findings) else FINDINGS


def _report_state(args: argparse.Namespace) -> int:
    from taxbridge.accounting.export import state_table

    period = _period(args)
    with open_bridge(args, read_only=True) as bridge:
        report = bridge.state_report(period, args.company)
    _emit(state_table(report), args)
    return OK


def _void(args: argparse.Namespace) -> int:
    with open_bridge(args) as bridge:
        doc = bridge.void(args.code, args.reason)
    if args.format == "json":
        print_json({"code": doc.code, "flag": doc.flag.value, "void_reason": doc.void_reason})
    else:
        print(f"{doc.code}: voided ({doc.void_reason}); flag stays {doc.flag}")
    return OK


def _dates(parser: argparse.ArgumentParser, *, ranges: bool = True) -> None:
    parser.add_argument("--period", type=month, metavar="YYYY-MM", help="a calendar month")
    if ranges:
        parser.add_argument("--from", dest="start", type=day, metavar="DATE", help="first date")
        parser.add_argument("--to", dest="end", type=day, metavar="DATE", help="last date")
    parser.add_argument("--company", metavar="ERP", help="one ERP company (default: all)")


def _table_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("table", "csv", "json", "xlsx"),
        default="table",
        help="table (default), csv, json (a line per row) or xlsx (an Excel workbook: needs "
        "--output)",
    )
    parser.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """The month-end commands."""
    workfile = command(
        commands,
        "workfile",
        _workfile,
        parents=[common],
        help="the tax workfile: the posted invoice and credit lines of a period (BNO155G)",
    )
    _dates(workfile)
    workfile.add_argument(
        "--jurisdictions", action="store_true", help="the tax by jurisdiction instead"
    )
    _table_output(workfile)

    journal = command(commands, "journal", None, help="the GL tax journal of a period (BNO010)")
    actions = journal.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="generate, show or post"
    )
    for name, run, says in (
        ("generate", _journal_show, "generate it (again, while it is not posted) and show it"),
        ("show", _journal_show, "show the journal as stored"),
    ):
        shown = command(actions, name, run, parents=[common], help=says)
        _dates(shown)
        _table_output(shown)
    post = command(
        actions,
        "post",
        _journal_post,
        parents=[common],
        help="post the generated journal to the GL: it is locked from then on",
    )
    _dates(post)
    post.add_argument(
        "--user", default=os.environ.get("USER", "operator"), help="who posts (default: $USER)"
    )
    format_option(post, "table", "json")

    reconcile = command(
        commands,
        "reconcile",
        None,
        help="reconcile sales tax with the GL, or the engine's documents with the store",
    )
    kinds = reconcile.add_subparsers(
        dest="action", required=True, metavar="WHAT", help="gl or engine"
    )
    gl = command(
        kinds,
        "gl",
        _reconcile_gl,
        parents=[common],
        help="sales tax versus the GL's tax accounts, by process (BNI010A); exit 1 on a difference",
    )
    _dates(gl)
    gl.add_argument("--diff", action="store_true", help="only the differences (F10 Show Diff)")
    gl.add_argument(
        "--tolerance",
        type=_tolerance,
        default=Decimal("0.00"),
        metavar="AMOUNT",
        help="a difference up to this is not one (default 0.00)",
    )
    _table_output(gl)
    engine = command(
        kinds,
        "engine",
        _reconcile_engine,
        parents=[common],
        help="the engine's documents versus the store's; exit 1 on a finding left unfixed",
    )
    _dates(engine)
    engine.add_argument("--fix", action="store_true", help="take each finding's safe action")
    _table_output(engine)

    report = command(commands, "report", None, help="reports: state (sales tax by state)")
    which = report.add_subparsers(dest="action", required=True, metavar="REPORT", help="state")
    state = command(
        which, "state", _report_state, parents=[common], help="sales tax by state of a period"
    )
    _dates(state)
    _table_output(state)

    void = command(
        commands,
        "void",
        _void,
        parents=[common],
        help="void a posted invoice or credit at the engine",
    )
    void.add_argument("code", help="the document, e.g. A-9001")
    void.add_argument("--reason", required=True, help="why, for the document's log")
    format_option(void, "table", "json")
