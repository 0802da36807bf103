"""The seeds' files against a real store: store -> file -> reader -> the same documents; the U ->
file -> M flow; splitting at the limits; CertCapture customers and ECMS certificates; the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from conftest import NYC, WAREHOUSE, line

from taxbridge import FinalTaxFlag as F
from taxbridge import LocalEngine, RecordingBackend, SQLiteStore, TaxBridge
from taxbridge.cli import main
from taxbridge.config import default_config
from taxbridge.errors import InvalidFieldError, InvalidTransition
from taxbridge.files import CustomerRecord, TaxWriteOff, avatax_template, read
from taxbridge.files import avatax_import as avatax
from taxbridge.files import certcapture as cc
from taxbridge.files.template import letter_index
from taxbridge.models import Address, Customer, Exemption, Invoice, Order

DAY = dt.date(2026, 11, 20)


def sale(number: str, *, lines: int = 2, ship_to: Address = NYC, description: str = "") -> Invoice:
    order = Order(
        number=number,
        company="01",
        customer=Customer("C001", "Acme"),
        order_date=DAY,
        ship_from=WAREHOUSE,
        ship_to=ship_to,
        lines=tuple(
            line(n, f"{10 * n}.00", process=number, description=description or f"Item {n}")
            for n in range(1, lines + 1)
        ),
    )
    return Invoice(number=number, invoice_date=DAY, orders=(order,))


@pytest.fixture
def engine() -> RecordingBackend:
    return RecordingBackend(LocalEngine())


@pytest.fixture
def bridge(engine: RecordingBackend, store: SQLiteStore) -> TaxBridge:
    return TaxBridge(default_config(), engine, store)


def rows_of(path: Path) -> list[list[str]]:
    collected: list[list[str]] = []
    report = read(avatax_template(), path, rows=lambda number, row: collected.append(list(row)))
    assert report.ok, report.problems
    return collected


def test_store_to_file_to_reader_gives_the_same_documents(
    bridge: TaxBridge, tmp_path: Path
) -> None:
    sold = [bridge.on_invoice(sale(f"80{n:02d}", lines=n + 1)) for n in range(3)]
    credit = bridge.on_claim_invoice(bridge.credit_from_invoice("A-8001", number="9001"))
    path = tmp_path / "out.csv"
    [written] = bridge.files.export_avatax(path, [*sold, credit])
    assert written == path
    rows = rows_of(path)
    at = {x: letter_index(x) for x in ("A", "B", "C", "H", "J", "N", "V", "AA", "AP")}
    for document in [*sold, credit]:
        assert document.request is not None
        mine = [row for row in rows if row[at["B"]] == document.code]
        assert [row[at["H"]] for row in mine] == [ln.number for ln in document.request.lines]
        amounts = sum(Decimal(row[at["N"]]) for row in mine)
        assert amounts == sum(ln.amount - ln.discount for ln in document.request.lines)
        assert {row[at["V"]] for row in mine} == {"NY"}
        assert {row[at["AA"]] for row in mine} == {"PA"}
        assert {row[at["A"]] for row in mine} == {"4"}  # posted: written to overwrite itself
        assert not any(row[at["AP"]] for row in mine)
    credit_rows = [row for row in rows if row[at["B"]] == credit.code]
    assert {row[at["C"]] for row in credit_rows} == {"5"}
    assert credit_rows[0][at["J"]] == DAY.isoformat()  # the allocated credit's tax date
    assert all(Decimal(row[at["N"]]) < 0 for row in credit_rows)


def test_process_code_1_keeps_the_tax_the_invoice_carried(
    bridge: TaxBridge, engine: RecordingBackend, tmp_path: Path
) -> None:
    engine.outage = True
    failed = bridge.on_invoice(sale("8101", lines=3))
    engine.outage = False
    rows = rows_of(bridge.files.export_avatax(tmp_path / "u.csv", [failed], process_code=1)[0])
    taxes = [Decimal(row[letter_index("AP")]) for row in rows]
    assert taxes == [line.tax_charged for line in failed.lines]
    assert sum(taxes) == failed.tax_charged


def test_the_u_file_m_flow_marks_exactly_the_files_documents(
    bridge: TaxBridge, engine: RecordingBackend, tmp_path: Path
) -> None:
    engine.outage = True
    bridge.on_invoice(sale("8201"))
    bridge.on_invoice(sale("8202"))
    engine.outage = False
    bridge.on_invoice(sale("8203"))
    documents = bridge.files.avatax_documents(flags=[F.FAILED])
    assert [d.code for d in documents] == ["A-8201", "A-8202"]
    [path] = bridge.files.export_avatax(tmp_path / "u.csv", documents)
    assert bridge.files.validate_avatax(path).ok
    marked = bridge.files.mark_manual_from_file(path, "ops")
    assert [(d.code, d.flag) for d in marked] == [("A-8201", F.MANUAL), ("A-8202", F.MANUAL)]
    assert "imported at AvaTax from u.csv" in marked[0].last_log
    assert bridge.unposted() == []
    with pytest.raises(InvalidTransition, match=r"A-8201 \(M\)"):
        bridge.files.mark_manual_from_file(path, "ops")
    mixed = bridge.files.export_avatax(
        tmp_path / "mixed.csv", bridge.files.avatax_documents(codes=["A-8203"])
    )[0]
    with pytest.raises(InvalidTransition, match=r"A-8203 \(Y\)"):
        bridge.files.mark_manual_from_file(mixed, "ops")


def test_a_file_with_errors_marks_nothing(
    bridge: TaxBridge, engine: RecordingBackend, tmp_path: Path
) -> None:
    engine.outage = True
    failed = bridge.on_invoice(sale("8301"))
    engine.outage = False
    [path] = bridge.files.export_avatax(tmp_path / "u.csv", [failed])
    text = path.read_text().replace("2026-11-20", "2026/11/20")
    path.write_text(text)
    with pytest.raises(InvalidFieldError, match="errors; validate it"):
        bridge.files.mark_manual_from_file(path, "ops")
    assert bridge.store.head("A-8301").flag is F.FAILED  # type: ignore[union-attr]


def test_a_document_posted_at_avatax_needs_an_overwrite_code(
    bridge: TaxBridge, tmp_path: Path
) -> None:
    posted = bridge.on_invoice(sale("8401"))
    [path] = bridge.files.export_avatax(tmp_path / "y.csv", [posted])
    assert bridge.files.validate_avatax(path).ok  # the export writes ProcessCode 4 for it
    path.write_text(path.read_text().replace("\n4,A-8401,", "\n3,A-8401,"))  # by hand
    report = bridge.files.validate_avatax(path)
    assert [(p.letter, p.rule) for p in report.problems] == [
        ("A", "A-8401 is already at AvaTax: overwriting it needs ProcessCode 2, 4 or 6")
    ]


def test_files_split_at_doc_code_borders(
    bridge: TaxBridge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(avatax, "MAX_LINES", 5)
    documents = [bridge.on_invoice(sale(f"85{n:02d}", lines=2)) for n in range(5)]
    written = bridge.files.export_avatax(tmp_path / "big.csv", documents)
    assert [p.name for p in written] == ["big.csv", "big-2.csv", "big-3.csv"]
    counts = [len(rows_of(p)) for p in written]
    assert counts == [4, 4, 2]
    for path in written:
        codes = [row[1] for row in rows_of(path)]
        assert all(codes.count(code) == 2 for code in codes)


def test_formula_text_is_neutralised_but_a_negative_amount_is_a_number(
    bridge: TaxBridge, tmp_path: Path
) -> None:
    sold = bridge.on_invoice(sale("8601", description='=HYPERLINK("http://x")'))
    credit = bridge.on_claim_invoice(bridge.credit_from_invoice("A-8601", number="9601"))
    [path] = bridge.files.export_avatax(tmp_path / "f.csv", [sold, credit])
    raw = list(csv.reader(path.read_text().splitlines()))
    assert raw[1][letter_index("L")].startswith("'=HYPERLINK")
    assert raw[3][letter_index("N")].startswith("-")
    assert not raw[3][letter_index("N")].startswith("'")


def test_an_xlsx_file_keeps_postcodes_as_text_and_round_trips(
    bridge: TaxBridge, tmp_path: Path
) -> None:
    pytest.importorskip("openpyxl")
    newark = Address("1 Gateway Ctr", "Newark", "NJ", "07102")
    sold = bridge.on_invoice(sale("8701", ship_to=newark))
    [path] = bridge.files.export_avatax(tmp_path / "f.xlsx", [sold])
    rows = rows_of(path)
    assert rows[0][letter_index("W")] == "07102"
    assert Decimal(rows[0][letter_index("N")]) == Decimal("10.00")


def test_an_ar_tax_write_off_is_a_process_code_1_return(bridge: TaxBridge, tmp_path: Path) -> None:
    write_off = TaxWriteOff("WO-1", "C001", DAY, Decimal("100.00"), Decimal("8.88"), NYC, WAREHOUSE)
    [path] = bridge.files.export_avatax(tmp_path / "wo.csv", [], write_offs=[write_off])
    [row] = rows_of(path)
    assert (row[0], row[1], row[2]) == ("1", "WO-1", "5")
    assert (row[letter_index("N")], row[letter_index("AP")]) == ("-100.00", "-8.88")
    with pytest.raises(InvalidFieldError, match="tax"):
        TaxWriteOff("WO-2", "C001", DAY, Decimal("1"), Decimal("-1"), NYC, WAREHOUSE)


def customers() -> list[CustomerRecord]:
    annex = CustomerRecord(
        "C001-S1", "Annex", Address("1 Main St", "Reno", "NV", "89501"), email="annex@acme.example"
    )
    return [
        CustomerRecord(
            "C001", "Acme Books", Address("742 Washington St", "San Francisco", "CA", "94108"),
            email="ap@acme.example", ship_to_states=("CA", "NV"), ship_tos=(annex,), business_type=10,
        ),
        CustomerRecord(
            "C002", "Prairie Co", Address("233 S Wacker Dr", "Chicago", "IL", "60601"),
            email="tax@prairie.example", business_type=20, business_type_desc="Bookbinding",
        ),
        CustomerRecord("C003", "Not Exempt", Address("1 Market St", "Philadelphia", "PA", "19103"), exempt=False),
    ]  # fmt: skip


def test_customer_exports_validate_clean_when_read_back(bridge: TaxBridge, tmp_path: Path) -> None:
    [basic] = bridge.files.export_customers(tmp_path / "basic.csv", customers(), full=False)
    report = bridge.files.validate_customers(basic, full=False)
    assert report.errors == 0
    assert report.rows == 3
    assert report.problems == ()  # our own export read back (another file warns: see below)
    [full] = bridge.files.export_customers(tmp_path / "full.csv", customers(), full=True)
    report = bridge.files.validate_customers(full, full=True)
    assert report.errors == 0
    assert report.rows == 2


def test_customer_files_split_at_the_line_and_size_limits(
    bridge: TaxBridge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cc, "MAX_CUSTOMER_LINES", 2)
    written = bridge.files.export_customers(tmp_path / "b.csv", customers(), full=False)
    assert [p.name for p in written] == ["b.csv", "b-2.csv"]
    monkeypatch.setattr(cc, "MAX_CUSTOMER_LINES", 40_000)
    monkeypatch.setattr(cc, "MAX_CUSTOMER_BYTES", 600)
    written = bridge.files.export_customers(tmp_path / "s.csv", customers(), full=False)
    assert len(written) == 2
    monkeypatch.setattr(cc, "MAX_CUSTOMER_BYTES", 100)
    report = bridge.files.validate_customers(tmp_path / "b.csv", full=False)
    assert [p.rule for p in report.problems if p.row == 0] == ["larger than 50 MB"]


def test_the_erp_list_is_the_source_of_truth_for_the_customer_diff(
    bridge: TaxBridge, tmp_path: Path
) -> None:
    [path] = bridge.files.export_customers(tmp_path / "b.csv", customers(), full=False)
    assert bridge.files.customer_diff(path, customers(), full=False).same
    now = customers()
    now[1] = attrs.evolve(now[1], email="new@prairie.example")
    now[0] = attrs.evolve(now[0], exempt=False)
    now.append(
        CustomerRecord(
            "C004", "New", Address("1 A St", "Austin", "TX", "78701"), email="a@b.example"
        )
    )
    diff = bridge.files.customer_diff(path, now, full=False)
    assert (diff.to_add, diff.to_remove, diff.changed) == (("C004",), ("C001",), ("C002",))


def test_a_bad_email_is_refused_in_the_customer_model() -> None:
    with pytest.raises(InvalidFieldError, match="email"):
        CustomerRecord("C9", "X", NYC, email="nope")
    with pytest.raises(InvalidFieldError, match="ship_to_states"):
        CustomerRecord("C9", "X", NYC, ship_to_states=("XX",))


def test_ecms_export_keeps_cert_ids_and_imports_into_a_fresh_store(
    bridge: TaxBridge, tmp_path: Path
) -> None:
    entries = [
        Exemption("C001", "NY", dt.date(2026, 1, 1), exemption_no="EX-1", entity_use_code="G",
                  expiry=dt.date(2027, 12, 31)),
        Exemption("C002", "IL", dt.date(2026, 2, 1), exemption_no="IL-9"),
    ]  # fmt: skip
    for entry in entries:
        bridge.add_exemption(entry)
    by_number = {c.number: c for c in customers()}
    [first] = bridge.files.export_ecms(tmp_path / "e1.csv", by_number)
    assert bridge.files.validate_ecms(first).ok
    bridge.add_exemption(Exemption("C001", "NJ", dt.date(2026, 3, 1), entity_use_code="E"))
    [second] = bridge.files.export_ecms(tmp_path / "e2.csv", by_number)
    ids = {
        row[letter_index("J")] + row[letter_index("D")]: row[0]
        for row in csv.reader(second.read_text().splitlines())
    }
    assert (ids["C001NY"], ids["C002IL"], ids["C001NJ"]) == ("1", "2", "3")
    with SQLiteStore(tmp_path / "fresh.db") as fresh:
        other = TaxBridge(default_config(), LocalEngine(), fresh)
        report, saved = other.files.import_ecms(second)
        assert report.ok
        assert saved == 3
        assert sorted(fresh.exemptions(), key=str) == sorted(bridge.exemptions(), key=str)
        report, saved = other.files.import_ecms(first)  # the same certificates again: fine
        assert report.ok


def test_an_ecms_file_with_an_error_imports_nothing(bridge: TaxBridge, tmp_path: Path) -> None:
    bridge.add_exemption(Exemption("C001", "NY", dt.date(2026, 1, 1), exemption_no="EX-1"))
    [path] = bridge.files.export_ecms(tmp_path / "e.csv", {c.number: c for c in customers()})
    path.write_text(path.read_text().replace("01/01/2026", "2026-01-01"))
    with SQLiteStore(tmp_path / "fresh.db") as fresh:
        report, saved = TaxBridge(default_config(), LocalEngine(), fresh).files.import_ecms(path)
        assert not report.ok
        assert saved == 0
        assert fresh.exemptions() == []


def test_an_ecms_file_with_a_nul_in_an_exemption_number_imports_nothing_on_either_store(
    store_spec: str, tmp_path: Path
) -> None:
    from conftest import open_store
    from test_files_rules import CERT, write

    path = write(tmp_path / "nul.csv", cc.ECMS, [{**CERT, "E": "EX\x00123"}])
    with open_store(store_spec) as target:
        report, saved = TaxBridge(default_config(), LocalEngine(), target).files.import_ecms(path)
        assert not report.ok
        assert saved == 0
        assert target.exemptions() == []
    assert [(p.row, p.letter) for p in report.problems if "control character" in p.rule] == [
        (2, "E")
    ]


def test_a_canada_wide_certificate_covers_every_province(bridge: TaxBridge, tmp_path: Path) -> None:
    from test_files_rules import CERT, write

    path = write(
        tmp_path / "ca.csv",
        cc.ECMS,
        [{**CERT, "C": "CA", "D": "CA", "O": "R", "V": "ON", "X": "CA"}],
    )
    report, saved = bridge.files.import_ecms(path)
    assert report.ok
    assert saved == 13
    assert {e.region for e in bridge.exemptions()} == set(cc.BY_COUNTRY["CA"])


def test_a_single_use_ecms_certificate_is_not_imported_as_an_exemption_for_every_order(
    bridge: TaxBridge, tmp_path: Path
) -> None:
    """The exemption database has no PO: a SINGLE row there would exempt every order."""
    from test_files_rules import CERT, write

    single = {**CERT, "A": "2", "D": "NJ", "K": "SINGLE", "L": "PO 77"}
    path = write(tmp_path / "single.csv", cc.ECMS, [CERT, single])
    report, saved = bridge.files.import_ecms(path)
    assert report.ok
    assert saved == 1
    assert [e.region for e in bridge.exemptions()] == ["NY"]
    assert [(p.row, p.letter, p.rule) for p in report.problems] == [
        (
            3,
            "K",
            "is not imported into the exemption database, where it would exempt every order: "
            "add it as a single-use certificate (taxbridge certificates add C001 --single-use "
            "--po 'PO 77')",
        )
    ]


def test_an_ecms_export_needs_each_customers_business_type(
    bridge: TaxBridge, tmp_path: Path
) -> None:
    bridge.add_exemption(Exemption("C001", "NY", dt.date(2026, 1, 1), exemption_no="EX-1"))
    plain = {"C001": CustomerRecord("C001", "Acme", NYC, email="a@b.example")}
    with pytest.raises(InvalidFieldError, match="business_type"):
        bridge.files.export_ecms(tmp_path / "e.csv", plain)


def test_the_file_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "demo.db")
    assert main(["demo", "--db", db]) == 0
    out = tmp_path / "u.csv"
    assert main(["file", "export", "avatax", "--flag", "U", "--output", str(out), "--db", db]) == 0
    assert main(["file", "validate", "avatax", str(out), "--db", db]) == 0
    assert "0 errors" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text(out.read_text().replace("A-9049", "").replace("2026-11-20", "20.11.2026"))
    assert (
        main(
            [
                "file",
                "validate",
                "avatax",
                str(bad),
                "--format",
                "json",
                "--max-errors",
                "1",
                "--db",
                db,
            ]
        )
        == 1
    )
    body = json.loads(capsys.readouterr().out)
    assert body["errors"] == 4
    assert len([p for p in body["problems"] if p["severity"] == "error"]) == 1
    assert main(["mark-manual", "--from-file", str(out), "--db", db]) == 0
    assert "A-9049: flag M" in capsys.readouterr().out
    people = tmp_path / "customers.json"
    people.write_text(json.dumps([
        {"number": "C001", "name": "Acme", "email": "ap@acme.example", "business_type": 10,
         "address": {"line1": "742 Washington St", "city": "San Francisco", "region": "CA", "postal_code": "94108"}},
    ]))  # fmt: skip
    basic = tmp_path / "basic.csv"
    assert (
        main(
            [
                "file",
                "export",
                "customers-basic",
                "--customers",
                str(people),
                "--output",
                str(basic),
                "--db",
                db,
            ]
        )
        == 0
    )
    assert (
        main(
            ["file", "diff", "customers-basic", str(basic), "--customers", str(people), "--db", db]
        )
        == 0
    )
    assert main(["file", "validate", "customers-basic", str(basic), "--db", db]) == 0
    assert (
        main(
            [
                "file",
                "export",
                "ecms",
                "--customers",
                str(people),
                "--output",
                str(tmp_path / "e.csv"),
                "--db",
                db,
            ]
        )
        == 0
    )
    assert main(["file", "export", "customers-full", "--output", str(basic), "--db", db]) == 2
    assert "--customers" in capsys.readouterr().err


def test_an_ecms_file_naming_an_inactive_entity_use_code_imports_nothing(
    bridge: TaxBridge, tmp_path: Path
) -> None:
    from taxbridge.store.base import ReferenceData

    bridge.add_exemption(Exemption("C001", "NY", dt.date(2026, 1, 1), entity_use_code="E"))
    [path] = bridge.files.export_ecms(tmp_path / "e.csv", {c.number: c for c in customers()})
    with SQLiteStore(tmp_path / "fresh.db") as fresh:
        fresh.replace_reference(ReferenceData(entity_use_codes={"G": "Resale"}))
        other = TaxBridge(default_config(), LocalEngine(), fresh)
        with pytest.raises(InvalidFieldError, match=r"Exemption\.entity_use_code.*'E'"):
            other.files.import_ecms(path)
        assert fresh.exemptions() == []


@pytest.mark.parametrize("process_code", ["3", "1"])
def test_the_demos_own_avatax_export_passes_its_own_validator(
    tmp_path: Path, process_code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every document kind the demo makes — levies, freight, a credit, discounts, lines outside
    nexus, posted and unposted — written by the exporter and read back clean by the validator.
    What AvaTax already has is written to overwrite itself, never to post twice."""
    from taxbridge.cli import main

    db = str(tmp_path / "demo.db")
    assert main(["demo", "--db", db]) == 0
    for extra in ([], ["--period", "2026-11"]):
        out = tmp_path / f"avatax{len(extra)}.csv"
        args = ["--output", str(out), "--process-code", process_code, "--db", db, *extra]
        assert main(["file", "export", "avatax", *args]) == 0
        capsys.readouterr()
        assert main(["file", "validate", "avatax", str(out), "--db", db]) == 0
        assert "0 errors, 0 warnings" in capsys.readouterr().out
        rows = list(csv.reader(out.read_text().splitlines()))[1:]
        codes = {row[letter_index("B")]: row[0] for row in rows}
        assert any("LEVY" in row[letter_index("H")] for row in rows)
        assert any(row[letter_index("B")].startswith("B-") for row in rows)
        overwrite = {"3": "4", "1": "2"}[process_code]
        assert (codes["A-9001"], codes["A-9049"]) == (overwrite, process_code)  # Y, and U


def test_reading_back_the_customer_file_just_exported_warns_of_nothing(
    bridge: TaxBridge, tmp_path: Path
) -> None:
    [first] = bridge.files.export_customers(tmp_path / "c1.csv", customers(), full=False)
    assert bridge.files.validate_customers(first, full=False).problems == ()
    copy = tmp_path / "c2.csv"  # a second file with the same numbers: an overwrite at CertCapture
    copy.write_text(first.read_text().replace("Prairie Co", "Prairie Company"))
    report = bridge.files.validate_customers(copy, full=False)
    assert {p.value for p in report.problems if "exported before" in p.rule} == {"C001", "C002"}


def test_a_file_is_validated_without_a_store_and_says_what_it_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_files_rules import GOOD, write

    from taxbridge.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TAXBRIDGE_DB", raising=False)
    monkeypatch.delenv("TAXBRIDGE_CONFIG", raising=False)
    good = write(tmp_path / "good.csv", avatax.avatax_template(), [GOOD])
    assert main(["file", "validate", "avatax", str(good)]) == 0
    out, err = capsys.readouterr()
    assert "0 errors, 0 warnings" in out
    assert "skipped: a code AvaTax already has" in err
    bad = write(tmp_path / "bad.csv", avatax.avatax_template(), [{**GOOD, "D": "20/11/2026"}])
    assert main(["file", "validate", "avatax", str(bad)]) == 1
    assert "1 errors" in capsys.readouterr().out
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bad.csv", "good.csv"]
