"""The public API is the sorted __all__ of the package, every name in it exists, every name
the user docs use is in it, and importing it loads nothing until a name is used."""

import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import taxbridge


def test_all_is_sorted_and_importable() -> None:
    assert taxbridge.__all__ == sorted(taxbridge.__all__)
    for name in taxbridge.__all__:
        assert hasattr(taxbridge, name), name


DOCS = Path(__file__).resolve().parents[1] / "docs"
INTERNAL_PAGES = {"architecture.md", "performance.md", "performance-notes.md"}
"""Pages about the package's insides: the names they use are not the API."""


def _public_names() -> dict[str, str]:
    """Every public class and function the package defines, and the module that does."""
    found: dict[str, str] = {}
    for info in pkgutil.walk_packages(taxbridge.__path__, "taxbridge."):
        if info.name.endswith("__main__") or "._" in info.name:
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            owner = getattr(value, "__module__", "") or ""
            if (
                not name.startswith("_")
                and (inspect.isclass(value) or inspect.isfunction(value))
                and owner.startswith("taxbridge")
            ):
                found.setdefault(name, owner)
    return found


def test_every_name_the_user_docs_use_is_importable_from_taxbridge() -> None:
    """A name the docs show unqualified is in ``taxbridge.__all__``; one that lives elsewhere
    is shown with its module (``from taxbridge.testing import FakeAvaTax``)."""
    pages = [DOCS.parent / "README.md"]
    pages += [p for p in sorted(DOCS.glob("*.md")) if p.name not in INTERNAL_PAGES]
    public = _public_names()
    missing = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        named = set(re.findall(r"`([A-Z][A-Za-z0-9]+)(?:\.\w+)*(?:\(\))?`", text))
        for block in re.findall(r"```python\n(.*?)```", text, re.S):
            named.update(re.findall(r"\b([A-Z][a-z]+[A-Za-z0-9]*)\b", block))
        for name in sorted(named & public.keys()):
            qualified = re.search(
                rf"taxbridge(\.\w+)+\.{name}\b|from taxbridge(\.\w+)+ import [^\n]*\b{name}\b",
                text,
            )
            if name not in taxbridge.__all__ and not qualified:
                missing.append(f"{page.name}: {name} ({public[name]})")
    assert missing == []


def test_importing_the_package_or_the_command_loads_nothing_heavy() -> None:
    """Names load on first use, so ``import taxbridge`` and ``taxbridge --version`` start in
    about the interpreter's own time (benchmarks/startup.py measures it)."""
    probe = (  # what the interpreter loaded before (a sitecustomize, say) is not ours
        "import sys; before = set(sys.modules); import taxbridge, taxbridge.cli; "
        "print(' '.join(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
        "('httpx', 'structlog', 'attrs', 'attr', 'sqlite3', 'tenacity', 'tqdm') "
        "or m in ('taxbridge.bridge', 'taxbridge.models', 'importlib.metadata'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == []


def test_python_dash_m_taxbridge_is_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "taxbridge", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert done.stdout == f"taxbridge {taxbridge.__version__}\n"


def test_log_levels_of_the_command_are_the_logs_levels() -> None:
    from taxbridge.cli._shared import LOG_LEVELS
    from taxbridge.logs import LEVELS

    assert LOG_LEVELS == LEVELS


def test_the_errors_tree_in_the_docstring_names_every_error() -> None:
    import taxbridge.errors as errors

    classes = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and issubclass(value, Exception)
        and value.__module__ == errors.__name__
    }
    drawn = set(re.findall(r"(?:──|^ {4})\s*(\w+)", errors.__doc__ or "", re.M))
    assert classes - drawn == set()
    assert classes <= set(taxbridge.__all__)
