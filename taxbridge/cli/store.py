"""``taxbridge store``: copy a store into another (SQLite to PostgreSQL), or move a store's
documents on to the configured engine."""

from __future__ import annotations

import argparse
from typing import Any

from taxbridge.cli._shared import (
    OK,
    Progress,
    command,
    format_option,
    open_bridge,
    print_json,
    read_config,
)


def _use_engine(args: argparse.Namespace) -> int:
    with open_bridge(args, read_only=True) as bridge:
        before, after = bridge.use_engine()
    if args.format == "json":
        print_json({"before": before or None, "after": after, "changed": before != after})
    elif before == after:
        print(f"the store's documents are posted through {after} already; nothing changed")
    else:
        print(f"the store now posts through {after} (before: {before or 'none on record'})")
    return OK


def _migrate(args: argparse.Namespace) -> int:
    from taxbridge.factory import migrate_store

    bar = Progress(None, "docs", "copying")
    try:
        summary = migrate_store(read_config(args), args.source, args.target, progress=bar.to)
    finally:
        bar.close()
    if args.format == "json":
        print_json(
            {
                "resumed": summary.resumed,
                "documents": summary.documents,
                "by_flag": dict(summary.by_flag),
                "total_tax": summary.total_tax,
                "events": summary.events,
                "queue_entries": summary.queue_entries,
                "exemptions": summary.exemptions,
                "journals": summary.journals,
            }
        )
        return OK
    flags = ", ".join(f"{flag}={count}" for flag, count in summary.by_flag)
    print(
        f"{'finished the interrupted copy: ' if summary.resumed else ''}"
        f"copied {summary.documents} documents ({flags}; tax {summary.total_tax}), "
        f"{summary.events} log entries, {summary.queue_entries} open queue entries, "
        f"{summary.exemptions} exemptions, {summary.journals} journals; counts and tax "
        "totals checked equal"
    )
    return OK


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """``taxbridge store migrate`` and ``taxbridge store use-engine``."""
    store = command(
        commands,
        "store",
        None,
        help="the store itself: copy it into another, or move it on to another engine",
    )
    actions = store.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="migrate or use-engine"
    )
    use_engine = command(
        actions,
        "use-engine",
        _use_engine,
        parents=[common],
        help="post this store's documents through the configured engine from now on",
        description="A store refuses to post, repost, void or reconcile through other books "
        "(engine, environment, account) than its documents were posted through. After moving "
        "on purpose (sandbox to production), record the configured engine's books as its own.",
    )
    format_option(use_engine, "table", "json")
    migrate = command(
        actions,
        "migrate",
        _migrate,
        parents=[common],
        help="copy a store into an empty one (e.g. SQLite to PostgreSQL), checked",
        description="Copy documents with their log, credit allocations, the open queue, "
        "reference data, exemptions, journals and the export registry; then check that "
        "document counts (by flag), tax totals, queue and exemptions are equal. An interrupted "
        "copy is finished by running the same command again.",
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
    format_option(migrate, "table", "json")
