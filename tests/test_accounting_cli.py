"""The month-end commands on the demo's store: workfile, journal, reconcile, report, void, in
every format; bad input exits 2 with one line naming the value."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest

from taxbridge.cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("books") / "demo.db"
    assert main(["demo", "--db", str(db)]) == 0
    return db


def one_error(err: str) -> str:
    """The one line of a refusal, after at most the line naming what a changing command uses."""
    *before, last = err.splitlines()
    assert len(before) <= 1
    assert all(line.startswith("taxbridge: config ") for line in before)
    return last


@pytest.fixture
def config(demo: Path, tmp_path: Path) -> list[str]:
    """The example config (it has GL accounts for the nine states) on a copy of the store."""
    import shutil

    from taxbridge.config import example_config_text

    db = tmp_path / "books.db"
    shutil.copy(demo, db)
    shutil.copy(demo.with_name("demo-engine.db"), tmp_path / "books-engine.db")
    path = tmp_path / "taxbridge.toml"
    path.write_text(example_config_text())
    return ["--config", str(path), "--db", str(db)]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of a command (argparse's refusals exit by SystemExit)."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = int(stop.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_demo_ends_its_day_with_a_balanced_month(demo: Path, capsys) -> None:
    assert main(["demo", "--db", str(demo)]) == 0
    out = capsys.readouterr().out
    assert "sales versus GL: sales 666.94, GL 666.94, differences 0" in out
    assert "engine versus store: 46 documents here, 45 at the engine, findings 0" in out
    assert "total                   46  9983.62    2194.86  7788.76  666.94       666.94" in out


def test_workfile_csv_and_json_carry_the_same_lines_and_tax(demo: Path, capsys) -> None:
    code, out, _ = run(
        ["workfile", "--period", "2026-11", "--db", str(demo), "--format", "csv"], capsys
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    code, out, _ = run(
        [
            "workfile",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--db",
            str(demo),
            "--format",
            "json",
        ],
        capsys,
    )
    records = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == len(records) > 100
    assert sum(Decimal(r["tax"]) for r in rows) == Decimal("666.94")
    assert sum(Decimal(r["tax"]) for r in records) == Decimal("666.94")
    assert {r["flag"] for r in rows} == {"Y", "R", "U"}  # U with the tax it carried


def test_jurisdictions_sum_to_the_documents_tax(demo: Path, capsys) -> None:
    code, out, _ = run(
        [
            "workfile",
            "--jurisdictions",
            "--period",
            "2026-11",
            "--db",
            str(demo),
            "--format",
            "csv",
        ],
        capsys,
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["type"] for r in rows} >= {"STA", "CTY"}
    assert sum(Decimal(r["tax"]) for r in rows) == Decimal("666.94")


def test_a_journal_is_generated_posted_and_then_refused(config: list[str], capsys) -> None:
    code, out, _ = run(["journal", "generate", "--period", "2026-11", *config], capsys)
    assert code == 0
    assert "Tax journal *:2026-11 v2 (generated)" in out
    assert "debits 666.94  credits 666.94  tax 666.94" in out
    code, out, _ = run(["journal", "post", "--period", "2026-11", "--user", "cfo", *config], capsys)
    assert code == 0
    assert out == (
        "posted journal *:2026-11 version 2 as cfo: 18 lines, debits 666.94, credits 666.94\n"
    )
    code, out, _ = run(["journal", "show", "--period", "2026-11", *config], capsys)
    assert "(posted) posted" in out
    assert "by cfo" in out
    code, _, err = run(["journal", "generate", "--period", "2026-11", *config], capsys)
    assert code == 2
    assert one_error(err).endswith("it is locked")


def test_the_journal_as_an_excel_report(config: list[str], tmp_path: Path, capsys) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = tmp_path / "journal.xlsx"
    argv = ["journal", "show", "--period", "2026-11", "--format", "xlsx", "--output", str(book)]
    code, _, err = run([*argv, *config], capsys)
    assert code == 0
    assert f"wrote {book}" in err
    sheet = openpyxl.load_workbook(book)["Journal"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Tax journal *:2026-11 v1 (generated)"
    assert rows[1] == (
        "journal", "version", "status", "posted_by", "posted_at",
        "company", "region", "account", "debit", "credit",
    )  # fmt: skip
    assert rows[2][:3] == ("*:2026-11", 1, "generated")
    assert round(sum(row[8] for row in rows[2:-1]), 2) == 666.94
    assert rows[-1][0] == "total"
    assert rows[-1][8] == f"=SUM(I3:I{len(rows) - 1})"
    code, _, err = run([*argv[:-2], *config], capsys)
    assert code == 2
    assert "--output" in err


def test_the_state_report_in_excel_is_what_an_accountant_accepts(
    config: list[str], tmp_path: Path, capsys
) -> None:
    """A title row, bold frozen headers with filters, widths, SUM totals under the data and the
    notes on a sheet of their own; the CSV carries the rows only."""
    openpyxl = pytest.importorskip("openpyxl")
    book = tmp_path / "state.xlsx"
    argv = ["report", "state", "--period", "2026-11", "--format", "xlsx", "--output", str(book)]
    assert run([*argv, *config], capsys)[0] == 0
    workbook = openpyxl.load_workbook(book)
    assert workbook.sheetnames == ["Sales tax by state", "Notes"]
    sheet = workbook["Sales tax by state"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Sales tax by state 2026-11 (company *)"
    assert rows[1][:3] == ("company", "region", "documents")
    assert all(cell.font.bold for cell in sheet[2])
    assert sheet.freeze_panes == "A3"
    assert sheet.auto_filter.ref == f"A2:H{len(rows) - 1}"
    assert sheet.column_dimensions["A"].width >= 9
    data, total = rows[2:-1], rows[-1]
    assert len(data) == 9  # the nine states, no total or note among them
    assert total[:3] == ("total", None, 46)  # a document counts once in the total
    assert total[6] == f"=SUM(G3:G{len(rows) - 1})"
    assert round(sum(row[6] for row in data), 2) == 666.94
    assert "what the invoices carried" in workbook["Notes"]["B2"].value
    code, out, _ = run(
        ["report", "state", "--period", "2026-11", "--format", "csv", *config], capsys
    )
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 10
    assert not any(line.startswith("total") for line in lines)


def test_the_workfile_has_a_total_and_the_journal_json_carries_its_key(
    config: list[str], capsys
) -> None:
    code, out, _ = run(["workfile", "--period", "2026-11", *config], capsys)
    assert code == 0
    total = out.splitlines()[-1].split()
    assert total[0] == "total"
    assert "666.94" in total
    run(["journal", "post", "--period", "2026-11", "--user", "cfo", *config], capsys)
    code, out, _ = run(
        ["journal", "show", "--period", "2026-11", "--format", "json", *config], capsys
    )
    first = json.loads(out.splitlines()[0])
    assert (first["journal"], first["version"], first["status"], first["posted_by"]) == (
        "*:2026-11",
        1,
        "posted",
        "cfo",
    )


def test_reconcile_gl_shows_differences_and_exits_1(config: list[str], capsys) -> None:
    assert run(["reconcile", "gl", "--period", "2026-11", "--diff", *config], capsys)[0] == 0
    code, out, _ = run(["void", "A-9002", "--reason", "raised in error", *config], capsys)
    assert code == 0
    assert "A-9002: voided" in out
    assert "flag stays Y" in out
    code, out, _ = run(["inquiry", "A-9002", *config], capsys)
    assert "Voided" in out
    assert "raised in error" in out
    assert "Tax charged" in out
    code, out, _ = run(["reconcile", "gl", "--period", "2026-11", "--diff", *config], capsys)
    assert code == 1
    assert "A-9002" in out
    assert "in a journal, not in sales" in out
    assert "differences 1" in out
    code, out, _ = run(
        ["reconcile", "gl", "--period", "2026-11", "--tolerance", "100", *config], capsys
    )
    assert code == 0
    assert "differences 0" in out


def test_reconcile_engine_fixes_a_void_made_at_the_engine(config: list[str], capsys) -> None:
    from taxbridge.backends._register import FileRegister
    from taxbridge.backends.base import VoidReason
    from taxbridge.backends.local import LocalEngine
    from taxbridge.models import DocumentType

    register = Path(config[3]).with_name("books-engine.db")
    engine = LocalEngine(register=FileRegister(register))
    engine.void_document("DEFAULT", "A-9003", DocumentType.SALES_INVOICE, VoidReason.DOC_VOIDED)
    engine.close()
    code, out, _ = run(["reconcile", "engine", "--period", "2026-11", *config], capsys)
    assert code == 1
    assert "voided at the engine, posted here" in out
    assert "report only" not in out
    code, out, _ = run(
        ["reconcile", "engine", "--period", "2026-11", "--fix", "--format", "json", *config], capsys
    )
    assert code == 0
    [finding] = [json.loads(line) for line in out.splitlines()]
    assert finding["code"] == "A-9003"
    assert finding["result"].startswith("Y: voided at the engine")
    assert run(["reconcile", "engine", "--period", "2026-11", *config], capsys)[0] == 0


def test_report_state_for_one_company(config: list[str], capsys) -> None:
    code, out, _ = run(
        ["report", "state", "--period", "2026-11", "--company", "01", *config], capsys
    )
    assert code == 0
    assert "company 01" in out
    code, out, _ = run(
        ["report", "state", "--period", "2026-11", "--company", "99", *config], capsys
    )
    assert code == 0
    assert "total                    0" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["workfile", "--period", "2026-13"], "--period: '2026-13' is not a month like 2026-11"),
        (["workfile", "--from", "2026-11-31"], "--from: '2026-11-31' is not a date like"),
        (["workfile"], "taxbridge workfile: say which dates: --period YYYY-MM, or both --from"),
        (
            ["workfile", "--period", "2026-11", "--from", "2026-11-01"],
            "taxbridge workfile: give --period, or --from and --to, not both",
        ),
        (
            ["report", "state", "--from", "2026-11-30", "--to", "2026-11-01"],
            "taxbridge report: --from 2026-11-30 is after --to 2026-11-01",
        ),
        (
            ["report", "state", "--period", "2026-11", "--format", "csv", "--output", "/no/s.csv"],
            "taxbridge report: --output /no/s.csv: cannot be written (no such file or directory)",
        ),
        (
            ["report", "state", "--period", "2026-11", "--format", "xlsx", "--output", "/tmp"],
            "taxbridge report: --output /tmp: cannot be written (is a directory)",
        ),
        (
            ["report", "state", "--period", "2026-11", "--format", "xlsx"],
            "--format xlsx writes a file: name it with --output FILE.xlsx",
        ),
        (["void", "A-9049", "--reason", "x"], "only a posted document (Y, R, M) can be voided"),
        (["journal", "show", "--period", "2026-10"], "journal *:2026-10: no journal"),
    ],
)
def test_bad_input_exits_2_with_one_line(demo: Path, argv: list[str], message: str, capsys) -> None:
    code, _, err = run([*argv, "--db", str(demo)], capsys)
    assert code == 2
    assert message in err.splitlines()[-1]
    assert "Traceback" not in err


def test_a_missing_gl_account_is_named_and_exits_3(demo: Path, capsys) -> None:
    """The embedded defaults name no GL account (the demo's config does, beside its store)."""
    code, _, err = run(["journal", "generate", "--period", "2026-11", "--db", str(demo)], capsys)
    assert code == 3
    assert "no liability_account for company '01', region 'CA'" in err
