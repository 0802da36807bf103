"""The ``taxbridge`` command: thin argument parsing over the library, one module per audience
(operations, month-end books, exempt customers, files, the store). Output goes to stdout in the
format ``--format`` names; logs, progress and errors go to stderr.

Building the parser imports only the standard library; each command imports the library when
it runs, so ``taxbridge --version`` and a cron job's start-up stay fast."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from taxbridge.cli import books, customers, files, operations, store
from taxbridge.cli._shared import (
    EXIT_STATUS,
    FINDINGS,
    INTERRUPTED,
    LOG_LEVELS,
    OK,
    UNUSABLE,
    USAGE,
    UsageError,
)

DESCRIPTION = """\
Sales tax for an ERP's orders, invoices and claims, over a tax engine (the embedded local
engine, or AvaTax). These commands are for operations: look a tax document up, work the list
of documents whose posting failed (flag U), repost them, mark one posted by hand, refresh the
day's rates and codes; for finance at month-end: the tax workfile, GL journals, the
reconciliations, the state report; and for the files other systems read: the AvaTax
transaction import, CertCapture customers and ECMS certificates. The ERP itself calls the
library.

Every command but demo works on an existing store: name it with --db FILE or --config FILE
(else TAXBRIDGE_CONFIG, else ./taxbridge.toml; TAXBRIDGE_DB); "taxbridge demo" writes one to
try them on. A command that posts or changes the store says on stderr which config, engine and
store it uses (--quiet: not). Each command takes --format: table (for people), csv, or json
(JSON Lines, keys in snake_case).
"""


class _Version(argparse.Action):
    """``--version``: the package's version."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from taxbridge._version import __version__

        print(f"taxbridge {__version__}")
        parser.exit()


def _common() -> argparse.ArgumentParser:
    """The options every command that opens a store takes."""
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
        choices=LOG_LEVELS,
        help="what is logged to stderr (default: warning; error for the demo)",
    )
    common.add_argument(
        "--log-json", action="store_true", help="log JSON lines to stderr instead of text"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``taxbridge`` command."""
    parser = argparse.ArgumentParser(
        prog="taxbridge",
        description=DESCRIPTION,
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="one of these; COMMAND --help for its own",
    )
    common = _common()
    for audience in (operations, books, files, customers, store):
        audience.add_commands(commands, common)
    return parser


def _unusable(exc: BaseException) -> bool:
    """A config or store that cannot be used: exit 3 rather than 2."""
    from taxbridge.errors import (
        AccountMissingError,
        AuthenticationFailed,
        ConfigError,
        EngineMismatch,
        NoCertificateService,
        StoreError,
    )

    return isinstance(
        exc,
        (
            ConfigError,
            StoreError,
            EngineMismatch,
            AccountMissingError,
            AuthenticationFailed,
            NoCertificateService,
        ),
    )


def _failed(exc: BaseException) -> bool:
    """The engine or the mail server did not do its part: exit 1 (try again later)."""
    from taxbridge.errors import BackendError, MailError

    return isinstance(exc, (BackendError, MailError))


def _run(args: argparse.Namespace) -> int:
    from taxbridge.errors import ConfigError, TaxBridgeError
    from taxbridge.logs import configure

    name = f"taxbridge {args.command}"
    configure(
        args.log_level or ("error" if args.command == "demo" else "warning"), json=args.log_json
    )
    try:
        code: int = args.run(args)
        sys.stdout.flush()
    except UsageError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return USAGE
    except (ConfigError, TaxBridgeError) as exc:
        kind = "configuration error: " if isinstance(exc, ConfigError) else ""
        print(f"{name}: {kind}{exc}", file=sys.stderr)
        if _unusable(exc):
            return UNUSABLE
        return FINDINGS if _failed(exc) else USAGE
    except KeyboardInterrupt:
        done = (
            ": what the engine answered is recorded, what was not sent is back in the queue"
            if args.command == "repost"
            else ""
        )
        print(f"{name}: interrupted{done}", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        raise
    except OSError as exc:  # a file the command line named
        where = f" {exc.filename}" if exc.filename else ""
        print(f"{name}:{where} {(exc.strerror or str(exc)).lower()}", file=sys.stderr)
        return USAGE
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``taxbridge`` console script and ``python -m taxbridge``."""
    try:
        args = build_parser().parse_args(argv)
        return _run(args)
    except KeyboardInterrupt:
        print("taxbridge: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # the reader (``| head``) has all it wanted: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK


__all__ = ["build_parser", "main"]
