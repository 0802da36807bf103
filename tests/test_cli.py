"""The command line: the demo day, inquiry, unposted, repost."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import sys
from pathlib import Path

import pytest
from conftest import T0, json_lines

from taxbridge.cli import main
from taxbridge.rates import RateTable
from taxbridge.store import ReferenceData, SQLiteStore


def test_demo_runs_a_day_and_reposts_u_to_r(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "demo.db"
    assert main(["demo", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "flags: Y=40, U=5, X=4" in out
    assert "flags now: Y=40, U=1, R=4, X=4" in out
    assert "order 1017 pends: obsolete_tax_code" in out
    assert (
        f"The demo wrote its store to {db.resolve()} and its config beside it; still U "
        "(needing a fix): A-9049"
    ) in out

    assert main(["inquiry", "A-9001", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "Orders        1001, 1013" in out
    assert "Final flag    Y" in out

    assert main(["unposted", "--db", str(db), "--json"]) == 0
    assert [row["code"] for row in json_lines(capsys.readouterr().out)] == ["A-9049"]
    assert main(["demo", "--db", str(db)]) == 0  # a demo store is recreated


def test_the_getting_started_walkthrough_runs_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shlex

    guide = (Path(__file__).resolve().parents[1] / "docs" / "getting-started.md").read_text()
    commands = [
        shlex.split(line.split(".venv/bin/taxbridge ", 1)[1].split("#")[0])
        for line in guide.split("## In your ERP")[0].splitlines()
        if ".venv/bin/taxbridge " in line
    ]
    assert commands[0][0] == "demo"
    db = str(tmp_path / "taxbridge-demo.db")
    config = str(tmp_path / "taxbridge-demo.toml")
    for argv in commands:
        argv = [{"taxbridge-demo.toml": config}.get(word, word) for word in argv]
        if argv[0] == "demo":
            argv += ["--db", db]
        assert main(argv) == 0, argv
    out = capsys.readouterr().out
    assert "A-9049: flag M  posted manually outside the ERP by jane" in out
    assert "A-9049       M" in out


def test_every_command_the_demo_suggests_runs_as_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shlex

    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--db", "taxbridge-demo.db"]) == 0
    out = capsys.readouterr().out
    hints = [line.split("(or")[0] for line in out.splitlines() if line.startswith("  taxbridge ")]
    assert any("journal generate" in hint for hint in hints)
    for hint in hints:
        argv = shlex.split(hint)[1:]
        assert main(argv) == 0, argv
    assert "debits 666.94  credits 666.94" in capsys.readouterr().out


def test_demo_refuses_a_config_beside_it_that_it_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "prod.toml"
    mine.write_text("[store]\npath = 'prod.db'\n")
    assert main(["demo", "--db", str(tmp_path / "prod.db")]) == 2
    assert "is not the demo's config" in capsys.readouterr().err
    assert mine.read_text() == "[store]\npath = 'prod.db'\n"
    assert not (tmp_path / "prod.db").exists()


def test_demo_refuses_a_store_that_is_not_a_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "prod.db"
    SQLiteStore(db).close()
    assert main(["demo", "--db", str(db)]) == 2
    assert "is not a demo store" in capsys.readouterr().err


def test_inquiry_of_an_unknown_code_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    SQLiteStore(tmp_path / "x.db").close()
    assert main(["inquiry", "A-404", "--db", str(tmp_path / "x.db")]) == 2
    assert "no tax document 'A-404'" in capsys.readouterr().err


def _two_unposted(db: Path, *, repost: str | None = None) -> None:
    """A store with invoices A-1 and A-2 posted during an outage (U); ``repost`` one after."""
    from conftest import invoice, order

    from taxbridge import LocalEngine, RecordingBackend, SQLiteStore, TaxBridge
    from taxbridge.config import default_config

    engine = RecordingBackend(LocalEngine())
    engine.outage = True
    with TaxBridge(default_config(str(db)), engine, SQLiteStore(db)) as bridge:
        bridge.on_invoice(invoice("1", order()))
        bridge.on_invoice(invoice("2", order("1002")))
        engine.outage = False
        if repost is not None:
            bridge.repost(repost)


def test_repost_and_mark_manual_from_the_shell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ops.db"
    _two_unposted(db)
    assert (
        main(["mark-manual", "A-2", "--reason", "keyed by hand", "--user", "ops", "--db", str(db)])
        == 0
    )
    assert main(["repost", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "reposted 1, still failing 0" in out


def test_refresh_rates_reports_what_it_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    SQLiteStore(tmp_path / "r.db").close()
    assert main(["refresh-rates", "--db", str(tmp_path / "r.db"), "--as-of", "2026-11-21"]) == 0
    out = capsys.readouterr().out
    assert "refreshed as of 2026-11-21" in out
    assert "entity use codes  17" in out


def test_config_example_prints_a_loadable_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from taxbridge import load_config

    assert main(["config-example"]) == 0
    path = tmp_path / "taxbridge.toml"
    path.write_text(capsys.readouterr().out)
    assert load_config(path).max_detail_lines == 500


def test_a_bad_config_exits_3_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "taxbridge.toml"
    path.write_text(
        '[[companies]]\nerp_company = "01"\ncompany_code = "A"\n[[nexus]]\nregion = "XX"\n'
    )
    assert main(["unposted", "--config", str(path)]) == 3
    assert "nexus[0].region: 'XX'" in capsys.readouterr().err


def test_unposted_history_lists_what_settled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ops.db"
    _two_unposted(db, repost="A-1")
    assert main(["unposted", "--history", "--db", str(db), "--json"]) == 0
    assert [(r["code"], r["outcome"]) for r in json_lines(capsys.readouterr().out)] == [
        ("A-1", "R")
    ]
    assert main(["unposted", "--history", "--db", str(db)]) == 0
    assert "1 settled" in capsys.readouterr().out


def test_ping_of_an_embedded_backend_has_nothing_to_reach(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ping", "--db", str(tmp_path / "p.db")]) == 0
    assert "engine local: embedded, nothing to reach" in capsys.readouterr().out


class TestNewUser:
    """What a new user meets: no store made behind their back, errors in one line, help."""

    def test_a_command_never_creates_a_store_and_names_where_it_looked(
        self, tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("TAXBRIDGE_DB", raising=False)
        monkeypatch.delenv("TAXBRIDGE_CONFIG", raising=False)
        for argv in (["inquiry", "A-9001"], ["unposted"], ["repost"], ["refresh-rates"]):
            assert main(argv) == 3, argv
            err = capsys.readouterr().err
            assert err.count("\n") == 1, err
            assert "store taxbridge.db: no store here" in err
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize("kind", ["text", "folder", "empty"])
    def test_a_store_that_cannot_be_used_is_one_line_naming_it(
        self, kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = tmp_path / "bad.db"
        if kind == "text":
            path.write_text("not a database\n" * 100)
        elif kind == "folder":
            path.mkdir()
        arg = "" if kind == "empty" else str(path)
        assert main(["unposted", "--db", arg]) == 3
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert "Traceback" not in err
        assert (str(path) if kind != "empty" else "--db: store.path: '' must be") in err

    def test_version_and_help_for_every_argument(self, capsys) -> None:
        from importlib.metadata import version

        from taxbridge.cli import build_parser

        with pytest.raises(SystemExit) as caught:
            main(["--version"])
        assert caught.value.code == 0
        assert capsys.readouterr().out.strip() == f"taxbridge {version('taxbridge')}"
        parser = build_parser()
        assert "operations" in (parser.description or "")
        seen = 0
        parsers = [("taxbridge", parser)]
        while parsers:
            name, each = parsers.pop()
            seen += 1
            assert "3    the config or the store cannot be used" in (each.epilog or ""), name
            for action in each._actions:
                assert action.help, f"{name} {action.dest} has no help"
                if isinstance(action, argparse._SubParsersAction):
                    parsers.extend((f"{name} {n}", p) for n, p in action.choices.items())
        assert seen > 35

    def test_a_log_level_that_does_not_exist_is_refused(self, capsys) -> None:
        with pytest.raises(SystemExit) as caught:
            main(["unposted", "--log-level", "verbose"])
        assert caught.value.code == 2
        assert "invalid choice: 'verbose'" in capsys.readouterr().err

    def test_unposted_reads_as_a_person_would_and_says_what_needs_a_fix(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], time_machine
    ) -> None:
        time_machine.move_to(T0)  # the morning after the demo's day
        db = tmp_path / "demo.db"
        assert main(["demo", "--db", str(db)]) == 0
        capsys.readouterr()
        assert main(["unposted", "--db", str(db)]) == 0
        out = capsys.readouterr().out
        assert "A-9049" in out
        assert "needs a fix (skipped)" in out
        assert "1 unposted, 1 needing a fix: repost skips them until fixed" in out
        assert "+00:00" not in out
        assert main(["purge", "--db", str(db), "--older-than", "90d"]) == 0
        assert capsys.readouterr().out.strip() == (
            "purged 0 settled queue entries older than 90 days"
        )
        time_machine.move_to(T0 + dt.timedelta(days=91))
        assert main(["purge", "--db", str(db), "--older-than", "90d"]) == 0
        assert capsys.readouterr().out.strip() == (
            "purged 4 settled queue entries older than 90 days"
        )

    def test_the_lease_can_be_set(self, tmp_path: Path, capsys) -> None:
        db = tmp_path / "ops.db"
        _two_unposted(db)
        assert main(["repost", "--db", str(db), "--lease", "2m"]) == 0
        with pytest.raises(SystemExit):
            main(["repost", "--db", str(db), "--lease", "0s"])
        assert "is not a lease from 1s to 1d" in capsys.readouterr().err

    def test_read_only_commands_never_call_the_engine(
        self, tmp_path: Path, monkeypatch, capsys
    ) -> None:
        import respx

        db = tmp_path / "t.db"
        _two_unposted(db)
        with SQLiteStore(db) as store:  # an empty offline table, which a bridge would load
            store.replace_reference(ReferenceData(rates=RateTable()))
        path = tmp_path / "taxbridge.toml"
        path.write_text(
            f'[store]\npath = "{db}"\n[backend]\nkind = "avatax"\n'
            'base_url = "https://avatax.unreachable.test"\ntoken = "t0ken"\n'
            '[[companies]]\nerp_company = "01"\ncompany_code = "DEFAULT"\n'
            '[[nexus]]\nregion = "NY"\n'
        )
        with respx.mock(assert_all_called=False) as router:
            route = router.route().respond(500)
            for argv in (
                ["unposted"],
                ["inquiry", "A-1"],
                ["unposted", "--history"],
                ["purge", "--older-than", "1d"],
            ):
                assert main([*argv, "--config", str(path)]) == 0, argv
            assert route.call_count == 0


def test_commands_that_only_read_leave_the_store_file_as_it_was(tmp_path: Path, capsys) -> None:
    db = tmp_path / "demo.db"
    assert main(["demo", "--db", str(db)]) == 0
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    files = sorted(path.name for path in tmp_path.iterdir())
    for argv in (
        ["inquiry", "A-9001"],
        ["unposted"],
        ["workfile", "--period", "2026-11"],
        ["report", "state", "--period", "2026-11"],
        ["reconcile", "gl", "--period", "2026-11"],
        ["journal", "show", "--period", "2026-11"],
    ):
        assert main([*argv, "--db", str(db)]) in (0, 1), argv
    other = tmp_path / "books.db"
    SQLiteStore(other).close()
    theirs = hashlib.sha256(other.read_bytes()).hexdigest()
    assert main(["demo", "--db", str(other)]) == 2  # not a demo store: refused, untouched
    capsys.readouterr()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert hashlib.sha256(other.read_bytes()).hexdigest() == theirs
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([*files, "books.db"])


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_throttled_with_rate_and_silent_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from taxbridge.cli._shared import Progress

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = Progress(4000, "docs", "reposting")
    for _ in range(4000):
        bar.update()
    bar.close()
    shown = terminal.getvalue()
    assert "4000/4000" in shown
    assert "docs/s" in shown
    assert len(shown) < 2_000  # the hand-drawn bar wrote 239 KB for 4,000 documents
    quiet = io.StringIO()
    monkeypatch.setattr(sys, "stderr", quiet)
    bar = Progress(None, "rows", "checking")
    bar.to(5000)
    bar.close()
    assert quiet.getvalue() == ""


def test_a_reader_that_leaves_early_ends_the_command_quietly_with_status_0(tmp_path: Path) -> None:
    """``taxbridge config-example | head -1``: the write meets a closed pipe; no traceback."""
    import subprocess

    process = subprocess.Popen(
        [sys.executable, "-m", "taxbridge", "config-example"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    process.stdout.close()  # the reader is gone before the first line is written
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0
    assert b"Traceback" not in err
