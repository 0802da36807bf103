"""What every command shares: the config it finds (``--config``, ``$TAXBRIDGE_CONFIG``,
``./taxbridge.toml``), the bridge on its store, the one stderr line a changing command prints,
options (dates, durations, files), the output convention, exit statuses and progress.

Only the standard library is imported here: the parser is built from these modules on every
run (``taxbridge --version`` too), and each command imports what it uses when it runs."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import enum
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taxbridge.bridge import TaxBridge
    from taxbridge.config import BridgeConfig

CONFIG_FILE = "taxbridge.toml"
"""The config file a command finds in the working folder when none is named."""

OK, FINDINGS, USAGE, UNUSABLE, INTERRUPTED = 0, 1, 2, 3, 130
"""Exit statuses: done; done with failures or findings left; a wrong command line or input
file; a config or store that cannot be used; interrupted (Ctrl-C)."""

EXIT_STATUS = """\
exit status:
  0    done
  1    done, with failures or findings left (the output lists them)
  2    the command line or an input file is wrong
  3    the config or the store cannot be used
  130  interrupted (Ctrl-C)"""

LOG_LEVELS = ("debug", "info", "warning", "error")
"""The levels ``--log-level`` accepts (``taxbridge.logs`` maps them)."""

Run = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """The command line asks for something it cannot mean; the message says what, in words."""


def command(
    actions: Any,
    name: str,
    run: Run | None,
    *,
    help: str,
    description: str | None = None,
    parents: Sequence[argparse.ArgumentParser] = (),
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` ends with the exit statuses."""
    parser: argparse.ArgumentParser = actions.add_parser(
        name,
        parents=list(parents),
        help=help,
        description=description or help[:1].upper() + help[1:] + ".",
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if run is not None:
        parser.set_defaults(run=run)
    return parser


# -- the config, the store and the bridge ------------------------------------------------------


def config_path(args: argparse.Namespace) -> str | None:
    """``--config``, else ``$TAXBRIDGE_CONFIG``, else ``./taxbridge.toml`` when there is one."""
    named = getattr(args, "config", None) or os.environ.get("TAXBRIDGE_CONFIG")
    if named:
        return str(named)
    return CONFIG_FILE if Path(CONFIG_FILE).is_file() else None


def read_config(args: argparse.Namespace) -> BridgeConfig:
    """The config the options name (:func:`config_path`), else embedded defaults; ``--db``
    puts it on that SQLite file."""
    from taxbridge.config import default_config, load_config

    path = config_path(args)
    config = load_config(path) if path else default_config()
    return config.with_store_file(args.db) if args.db is not None else config


def changes(args: argparse.Namespace) -> bool:
    """Whether the command posts or changes the store (and so says what it works on)."""
    command, action = args.command, getattr(args, "action", None)
    if command in ("repost", "purge", "refresh-rates", "mark-manual", "void"):
        return not getattr(args, "dry_run", False)
    return (
        (command == "journal" and action in ("generate", "post"))
        or (command == "reconcile" and bool(getattr(args, "fix", False)))
        or (command == "file" and action == "import")
        or (command == "customers" and action == "sync")
        or (command == "certificates" and action in ("add", "request"))
        or (command == "reminders" and args.send and not args.dry_run)
        or (command == "store" and action == "use-engine")
    )


def open_bridge(args: argparse.Namespace, *, read_only: bool = False) -> TaxBridge:
    """The bridge on the store the options name, which must exist; ``read_only`` commands
    never call the engine. A command that posts or changes the store says on stderr which
    config, engine and store it uses (not with ``--quiet``)."""
    from taxbridge.backends.base import Capabilities
    from taxbridge.bridge import TaxBridge

    config = read_config(args)
    bridge = TaxBridge.from_settings(config, create=False, read_only=read_only)
    if changes(args) and not getattr(args, "quiet", False):
        register = Capabilities(bridge.backend).documents
        engine = register.books if register is not None else bridge.backend.name
        print(
            f"taxbridge: config {config_path(args) or '(embedded defaults)'}, engine {engine}, "
            f"store {store_name(config)}",
            file=sys.stderr,
        )
    return bridge


def store_name(config: BridgeConfig) -> str:
    """The store a config names, as a person reads it (a URL without its query)."""
    from taxbridge.store.urls import shown_url

    settings = config.store_settings
    path = getattr(settings, "path", None)
    if path is not None:
        return str(path)
    return shown_url(str(getattr(settings, "url", config.store)))


# -- options ----------------------------------------------------------------------------------


def day_option(text: str | None, option: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` option's date (None when not given); anything else is one line naming
    the option, not a traceback."""
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a date like 2026-11-30") from None


def day(text: str) -> dt.date:
    """An argparse type: a ``YYYY-MM-DD`` date."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-30") from None


def month(text: str) -> str:
    """An argparse type: a calendar month ``YYYY-MM``."""
    try:
        dt.date.fromisoformat(f"{text}-01")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month like 2026-11") from None
    if len(text) != 7:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month like 2026-11")
    return text


def duration(text: str) -> dt.timedelta:
    """An argparse type: ``90d``, ``12h``, ``30m`` or ``45s``."""
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or len(number) > 6:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90d, 12h, 30m or 45s")
    return dt.timedelta(**{units[unit]: int(number)})


def file_option(path: str, option: str) -> bytes:
    """The bytes of a file an option names; one that cannot be read is one line naming it."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot be read ({_reason(exc)})") from None


def read_json_list(path: str, option: str) -> list[Any]:
    """A JSON file that holds a list (of customers), for ``option``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot be read ({_reason(exc)})") from None
    except ValueError as exc:
        raise UsageError(f"{option} {path}: is not JSON ({exc})") from None
    if not isinstance(data, list):
        raise UsageError(f"{option} {path}: is not a JSON list of customers")
    return data


def _reason(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


def check_writable(path: Path) -> None:
    """Refuse, before anything is written, a ``--output`` that names a folder or sits in a
    folder that does not exist (a writer that streams would fail half-way)."""
    if path.is_dir():
        raise UsageError(f"--output {path}: cannot be written (is a directory)")
    if not path.parent.is_dir():
        raise UsageError(f"--output {path}: cannot be written (no such file or directory)")


@contextmanager
def output_file(path: Path, mode: str = "w") -> Iterator[IO[str]]:
    """A file named by ``--output``, opened for writing; one that cannot be is one line."""
    try:
        out = path.open(mode, encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageError(f"--output {path}: cannot be written ({_reason(exc)})") from None
    with out:
        yield out


# -- the output convention ---------------------------------------------------------------------

FORMATS_HELP = (
    "table (default, for people), csv (a row per line) or json (JSON Lines: a line per row, "
    "or one line for a summary; keys in snake_case)"
)


def format_option(parser: argparse.ArgumentParser, *choices: str, json_alias: bool = False) -> None:
    """``--format`` with ``choices`` (table first), and ``--json`` as its old alias."""
    parser.add_argument(
        "--format",
        choices=choices,
        default=choices[0],
        help=FORMATS_HELP if "csv" in choices else "table (default) or json (one line)",
    )
    if json_alias:
        parser.add_argument(
            "--json",
            dest="format",
            action="store_const",
            const="json",
            help="the same as --format json",
        )


def plain(value: Any) -> Any:
    """A value as JSON and CSV carry it: Decimal and dates as text, enums as their value."""
    if isinstance(value, (Decimal, dt.date)):
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def print_json(body: Mapping[str, Any]) -> None:
    """One JSON object on one line."""
    print(json.dumps(plain(body), ensure_ascii=False))


def print_rows(
    args: argparse.Namespace,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    table: Callable[[], None],
) -> None:
    """A listing in ``--format``: JSON Lines or CSV by ``columns`` (snake_case keys), else
    ``table`` prints it for people."""
    if args.format == "json":
        for row in rows:
            print_json({key: row.get(key) for key in columns})
    elif args.format == "csv":
        from taxbridge._cells import formula_safe

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            cells = [_csv_text(plain(row.get(key))) for key in columns]
            writer.writerow([formula_safe(v) if isinstance(v, str) else v for v in cells])
    else:
        table()


def _csv_text(value: Any) -> Any:
    """A cell: none is empty, a list is its items joined by ``; ``."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(str(item) for item in value)
    return value


class Progress:
    """Progress on a terminal's stderr (tqdm: throttled, with rate and time left); nothing when
    stderr is not a terminal, so logs and cron mail stay clean."""

    def __init__(self, total: int | None, unit: str, what: str):
        self._bar: Any = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, unit=f" {unit}", desc=what, file=sys.stderr, mininterval=0.5
            )

    def update(self, done: int = 1) -> None:
        """``done`` more."""
        if self._bar is not None:
            self._bar.update(done)

    def to(self, done: int, total: int | None = None) -> None:
        """``done`` in all (of ``total``, when it became known)."""
        if self._bar is not None:
            if total is not None and self._bar.total != total:
                self._bar.total = total
            self._bar.update(done - self._bar.n)

    def close(self) -> None:
        """Leave the line as it ended (once)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
