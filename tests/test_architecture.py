"""The package's shape, pinned: imports run one way, modules stay small, and each rule lives in
exactly one place (the flag table, the posting-once rule, the retry schedule, "retryable")."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "taxbridge"
SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "taxbridge" or name.startswith("taxbridge.")}


MODULES = {_module(path): _imports(path) for path in SOURCES}

FACE = {
    "taxbridge",
    "taxbridge.__main__",
    "taxbridge.cli",
    "taxbridge.demo",
}
BRIDGE = {
    "taxbridge.bridge",
    "taxbridge.lifecycle",
    "taxbridge.posting",
    "taxbridge.queue",
    "taxbridge.claims",
    "taxbridge.quotations",
    "taxbridge.exemptions",
    "taxbridge.reference",
    "taxbridge.factory",
    "taxbridge.context",
    "taxbridge.accounting",
    "taxbridge.files",
    "taxbridge.certificates",
}
RULES = {"taxbridge.rules", "taxbridge.config"}
BASE = {
    "taxbridge.models",
    "taxbridge.flags",
    "taxbridge.errors",
    "taxbridge.money",
    "taxbridge.rates",
    "taxbridge.logs",
    "taxbridge._toml",
    "taxbridge._registry",
    "taxbridge.regions",
    "taxbridge._cells",
    "taxbridge._version",
}
CONCRETE = ("taxbridge.backends.local", "taxbridge.backends.avatax", "taxbridge.store.sqlite")


def _layer(name: str) -> str:
    for layer, members in (("face", FACE), ("bridge", BRIDGE), ("rules", RULES), ("base", BASE)):
        if name in members or any(
            name.startswith(f"{member}.") for member in members - {"taxbridge"}
        ):
            return layer
    if name.startswith(("taxbridge.backends", "taxbridge.store", "taxbridge.testing")):
        return "parts"
    raise AssertionError(f"{name} is in no layer")


ORDER = ["face", "bridge", "rules", "parts", "base"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_one_way(module: str) -> None:
    """face -> bridge modules -> rules/config -> backends/store -> models and the like."""
    own = ORDER.index(_layer(module))
    upward = sorted(
        name
        for name in MODULES[module]
        if _layer(name if name in MODULES else name.rsplit(".", 1)[0]) in ORDER[:own]
    )
    assert upward == [], f"{module} imports a layer above it"


def test_no_backend_store_or_test_helper_imports_the_bridge_or_the_package_root() -> None:
    for module, imports in MODULES.items():
        if _layer(module) == "parts":
            assert "taxbridge" not in imports, module


@pytest.mark.parametrize(
    "module",
    [
        "taxbridge.cli",
        "taxbridge.cli._shared",
        "taxbridge.cli.books",
        "taxbridge.cli.customers",
        "taxbridge.cli.files",
        "taxbridge.cli.operations",
        "taxbridge.cli.store",
        "taxbridge.config.core",
        "taxbridge.config.file",
        "taxbridge.factory",
        "taxbridge.bridge",
    ],
)
def test_the_cli_config_and_factory_name_no_concrete_backend_or_store(module: str) -> None:
    assert not [name for name in MODULES[module] if name.startswith(CONCRETE)]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_600_lines_but_the_shipped_avatax_fake(path: Path) -> None:
    if path.name == "fake_avatax.py":
        return
    assert len(path.read_text().splitlines()) <= 600


def _users(pattern: str) -> set[str]:
    regex = re.compile(pattern)
    return {str(path.relative_to(PACKAGE)) for path in SOURCES if regex.search(path.read_text())}


def test_the_flag_table_is_read_in_one_place() -> None:
    assert _users(r"\bTRANSITIONS\b") == {"flags.py"}


def test_only_the_posting_rule_looks_a_code_up() -> None:
    assert _users(r"\.get_document\(") == {"posting.py", "testing/recording.py"}


def test_queue_entries_are_made_by_the_retry_schedule_alone() -> None:
    # the store's codec reads them back from rows; nothing else makes one
    assert _users(r"\bQueueEntry\(") == {"queue.py", "store/_codec.py"}


def test_document_events_are_made_by_the_write_path_alone() -> None:
    assert _users(r"\bDocumentEvent\(") == {"context.py", "store/_codec.py"}


def test_what_is_retried_is_read_off_the_error_classes_in_two_places() -> None:
    assert _users(r"\.transient\b") == {"backends/_http.py"}
    assert _users(r"\b(?:error|exc)\.retryable\b") == {"queue.py"}
    assert _users(r"(?m)^import tenacity") == {"backends/_http.py"}


def test_no_part_sniffs_a_backend_class() -> None:
    assert (
        _users(r"isinstance\([^)]*, *(?:OfflineTable|LocalEngine|AvaTaxBackend|RecordingBackend)")
        == set()
    )


def test_the_flag_diagram_draws_exactly_the_flag_table() -> None:
    """docs/lifecycle.md's state diagram is the flag table, reconciliation moves included."""
    from taxbridge.flags import RECONCILIATION_MOVES, TRANSITIONS, FinalTaxFlag

    text = (PACKAGE.parent / "docs" / "lifecycle.md").read_text(encoding="utf-8")
    diagram = text.split("stateDiagram-v2", 1)[1].split("```", 1)[0]
    drawn = set(re.findall(r"^\s*(\[\*\]|\w+) --> (\w+)", diagram, re.M))
    names = {"[*]": None, "blank": FinalTaxFlag.OFFLINE}
    names.update({flag.value: flag for flag in FinalTaxFlag if flag.value})
    table = {(start, end) for start, ends in TRANSITIONS.items() for end in ends}
    table |= {(start, end) for start, ends in RECONCILIATION_MOVES.items() for end in ends}
    assert {(names[start], names[end]) for start, end in drawn} == table


def test_no_command_reaches_into_the_store_or_the_engine() -> None:
    """Commands call the library (the bridge and its parts, the factory): none touches
    ``bridge.store`` or imports a store's or an engine's modules."""
    cli = sorted((PACKAGE / "cli").glob("*.py"))
    touching = [p.name for p in cli if re.search(r"\bbridge\.store\b", p.read_text())]
    assert touching == []
    allowed = ("taxbridge.backends.base", "taxbridge.store.urls")
    reaching = sorted(
        f"{module} -> {name}"
        for module, imports in MODULES.items()
        if module.startswith("taxbridge.cli")
        for name in imports
        if name.startswith(("taxbridge.store", "taxbridge.backends"))
        and not name.startswith(allowed)
    )
    assert reaching == []


def test_the_shared_sql_is_one_dialect_and_postgresql_only_swaps_placeholders() -> None:
    """Upserts in the form both stores read; SQLite's index hint only as a store hook."""
    from taxbridge.store._pg_sql import translate

    shared = ["_sql_store", "_ledger_sql", "_certificate_sql", "_meta_sql", "_codec"]
    for name in shared:
        text = (PACKAGE / "store" / f"{name}.py").read_text()
        assert "INSERT OR " not in text, name
        assert "rowid" not in text, name
        hints = [line for line in text.splitlines() if "INDEXED BY" in line]
        assert all("PERIOD_INDEX = " in line for line in hints), name
    sql = "INSERT INTO meta (key, value) VALUES (?, '5%') ON CONFLICT (key) DO NOTHING"
    assert translate(sql) == sql.replace("?", "%s").replace("%'", "%%'")
