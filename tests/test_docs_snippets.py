"""Every Python example in the README and the docs runs as written, so none can rot.

Each page's examples run in order in one namespace, in a fresh working folder that holds the
example config as ``taxbridge.toml``. A page that says ``<!-- the examples below continue the
program of erp.md -->`` runs after the complete program of ``docs/erp.md``, with its names. What
a page reaches outside the working folder is brought inside it: ``/etc/taxbridge.toml`` and
``/var/lib/erp/`` name the working folder's files, AvaTax's sandbox is the shipped fake (through
respx, at the transport), and the schedulers the reposting page shows (APScheduler, Celery) are
small stand-ins that run each job once.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
import structlog
from conftest import FAKE_ACCOUNT, FAKE_KEY

from taxbridge.backends.avatax.settings import ENVIRONMENTS
from taxbridge.config import example_config_text
from taxbridge.testing.fake_avatax import FakeAvaTax

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONTINUES = "<!-- the examples below continue the program of erp.md -->"
OUTSIDE = {"/etc/taxbridge.toml": "taxbridge.toml", "/var/lib/erp/": ""}


def _blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M)


def _inside(code: str) -> str:
    for outside, inside in OUTSIDE.items():
        code = code.replace(outside, inside)
    return code


class _Scheduler:
    """APScheduler's BlockingScheduler, as far as the page uses it: ``start`` runs each job."""

    def __init__(self) -> None:
        self.jobs: list[Callable[[], object]] = []

    def add_job(self, job: Callable[[], object], *args: object, **kwargs: object) -> None:
        self.jobs.append(job)

    def start(self) -> None:
        for job in self.jobs:
            job()


class _Celery:
    """Celery's app, as far as the page uses it: ``task`` runs the task once when defined."""

    def __init__(self, name: str) -> None:
        self.conf = types.SimpleNamespace(beat_schedule={})
        self.results: list[object] = []

    def task(self, **options: object) -> Callable[[Callable[[], object]], Callable[[], object]]:
        def register(function: Callable[[], object]) -> Callable[[], object]:
            self.results.append(function())
            return function

        return register


@pytest.fixture
def schedulers(monkeypatch: pytest.MonkeyPatch) -> None:
    blocking = types.ModuleType("apscheduler.schedulers.blocking")
    blocking.BlockingScheduler = _Scheduler  # type: ignore[attr-defined]
    celery = types.ModuleType("celery")
    celery.Celery = _Celery  # type: ignore[attr-defined]
    for name, module in (
        ("apscheduler", types.ModuleType("apscheduler")),
        ("apscheduler.schedulers", types.ModuleType("apscheduler.schedulers")),
        ("apscheduler.schedulers.blocking", blocking),
        ("celery", celery),
    ):
        monkeypatch.setitem(sys.modules, name, module)


@contextlib.contextmanager
def _sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAvaTax]:
    """AvaTax's sandbox is the shipped fake, reached through the real client and transport."""
    monkeypatch.setenv("AVATAX_LICENSE_KEY", FAKE_KEY)
    fake = FakeAvaTax(account_id=FAKE_ACCOUNT, license_key=FAKE_KEY)
    with respx.mock(base_url=ENVIRONMENTS["sandbox"], assert_all_called=False) as router:
        router.route().mock(side_effect=fake.handle)
        yield fake


def _run(page: Path, namespace: dict[str, Any]) -> str:
    """Run a page's examples in ``namespace``; what they print."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for number, code in enumerate(_blocks(page), 1):
            compiled = compile(_inside(code), f"{page.name} example {number}", "exec")
            exec(compiled, namespace)
    return printed.getvalue()


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p)], ids=lambda p: p.name)
def test_every_python_example_of_the_page_runs_as_written(
    page: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    schedulers: None,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taxbridge.toml").write_text(example_config_text(), encoding="utf-8")
    logging_before = structlog.get_config()
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    try:
        with _sandbox(monkeypatch):
            if CONTINUES in page.read_text(encoding="utf-8"):
                _run(ROOT / "docs" / "erp.md", namespace)
            _run(page, namespace)
    finally:
        structlog.configure(**logging_before)
        bridge = namespace.get("bridge")
        if bridge is not None:
            bridge.close()


def test_the_erp_program_prints_what_its_page_says(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    page = ROOT / "docs" / "erp.md"
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    printed = _run(page, namespace)
    shown = re.search(r"What it prints.*?```text\n(.*?)```", page.read_text(), re.S)
    assert shown is not None
    assert printed == shown.group(1)
