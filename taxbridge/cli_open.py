"""Opening what a command works on: the config it finds (``--config``, ``$TAXBRIDGE_CONFIG``,
``./taxbridge.toml``), the bridge on its store, and the one stderr line a command that posts or
changes the store prints about them."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from taxbridge.backends.base import Capabilities
from taxbridge.bridge import TaxBridge
from taxbridge.config import BridgeConfig, default_config, load_config
from taxbridge.errors import InvalidFieldError
from taxbridge.store.urls import shown_url

CONFIG_FILE = "taxbridge.toml"
"""The config file a command finds in the working folder when none is named."""


def config_path(args: argparse.Namespace) -> str | None:
    """``--config``, else ``$TAXBRIDGE_CONFIG``, else ``./taxbridge.toml`` when there is one."""
    named = getattr(args, "config", None) or os.environ.get("TAXBRIDGE_CONFIG")
    if named:
        return str(named)
    return CONFIG_FILE if Path(CONFIG_FILE).is_file() else None


def read_config(args: argparse.Namespace) -> BridgeConfig:
    """The config the options name (:func:`config_path`), else embedded defaults; ``--db``
    puts it on that SQLite file."""
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
    settings = config.store_settings
    path = getattr(settings, "path", None)
    if path is not None:
        return str(path)
    return shown_url(str(getattr(settings, "url", config.store)))


def day_option(text: str | None, option: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` option's date (None when not given); anything else is one line naming
    the option, not a traceback."""
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidFieldError(
            "command line", option, text, "is not a date (YYYY-MM-DD)"
        ) from None


def file_option(path: str, option: str) -> bytes:
    """The bytes of a file an option names; one that cannot be read is one line naming it."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InvalidFieldError(
            "command line", option, path, f"cannot be read ({reason})"
        ) from None
