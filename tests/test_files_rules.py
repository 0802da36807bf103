"""Every rule of the seeds' templates: a good file passes, and each broken rule is reported once
with its row, column letter and rule (seed 001: AvaTax import; seed 000: CertCapture)."""

from __future__ import annotations

import csv
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taxbridge.errors import FileFormatError
from taxbridge.files import BASIC, ECMS, FULL, Severity, avatax_template, ecms_template, read
from taxbridge.files import avatax_import as avatax
from taxbridge.files.avatax_import import knowing
from taxbridge.files.certcapture import customers_knowing
from taxbridge.files.template import Report, Template, _Screen, letter_index

GOOD = {
    "A": "3", "B": "A-1001", "C": "1", "D": "2026-11-20", "E": "DEFAULT", "F": "C001",
    "H": "1001-1", "I": "P0000000", "K": "SKU-1", "L": "Atlas", "M": "1", "N": "100.00",
    "T": "350 5th Ave", "U": "New York", "V": "NY", "W": "10118", "X": "US",
    "Y": "822 Reed St", "Z": "Philadelphia", "AA": "PA", "AB": "19147", "AC": "US",
    "AG": "USD",
}  # fmt: skip


def write(path: Path, template: Template, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(template.headers)
        for values in rows:
            row = [""] * template.width
            for letter, value in values.items():
                row[letter_index(letter)] = value
            out.writerow(row)
    return path


def errors(report: Report) -> list[tuple[int, str, str]]:
    return [(p.row, p.letter, p.rule) for p in report.problems if p.severity is Severity.ERROR]


def warnings(report: Report) -> list[tuple[int, str, str]]:
    return [(p.row, p.letter, p.rule) for p in report.problems if p.severity is Severity.WARNING]


def check(tmp_path: Path, rows: list[dict[str, str]], template: Template | None = None) -> Report:
    template = template or avatax_template()
    return read(template, write(tmp_path / "file.csv", template, rows))


def line(**changes: str) -> dict[str, str]:
    return {**GOOD, **changes}


# -- seed 001: the AvaTax transaction import ----------------------------------------------------


def test_a_good_import_file_passes(tmp_path: Path) -> None:
    rows = [line(), line(H="1001-2", N="5.00"), line(B="B-7", C="5", H="1", N="-20.00")]
    report = check(tmp_path, rows)
    assert (report.rows, report.errors, report.warnings) == (3, 0, 0)


def test_unnamed_letters_are_blank_columns_so_each_named_one_sits_at_its_letter() -> None:
    headers = avatax_template().headers
    assert headers[letter_index("AO")] == ""
    assert headers[letter_index("BX")] == ""
    assert all(headers[letter_index(x)] == "" for x in ("AQ", "BA", "BV"))
    assert headers[letter_index("AP")] == "TotalTax"
    assert headers[letter_index("CI")] == "Email address for the buyer"
    assert len(headers) == letter_index("CI") + 1


@pytest.mark.parametrize("letter", ["A", "B", "C", "D", "F", "H", "N"])
def test_a_column_required_in_every_row(tmp_path: Path, letter: str) -> None:
    report = check(tmp_path, [line(**{letter: ""})])
    assert (2, letter, "is required") in errors(report)
    assert len([e for e in errors(report) if e[1] == letter]) == 1


@pytest.mark.parametrize("letter", ["V", "W", "AA", "AB"])
def test_us_and_canada_need_regions_and_postcodes(tmp_path: Path, letter: str) -> None:
    report = check(tmp_path, [line(**{letter: ""})])
    assert errors(report) == [(2, letter, "is required for US and Canadian transactions")]


def test_an_international_destination_needs_its_country_not_a_us_region(tmp_path: Path) -> None:
    report = check(tmp_path, [line(X="GB", V="", W="SW1A 1AA", U="London")])
    assert errors(report) == []


def test_a_region_must_belong_to_its_country(tmp_path: Path) -> None:
    report = check(tmp_path, [line(V="ON")])
    assert errors(report) == [(2, "V", "is not a state or province of US")]


def test_a_location_code_in_dest_address_leaves_the_rest_blank(tmp_path: Path) -> None:
    assert errors(check(tmp_path, [line(T="STORE-12", U="", V="", W="", X="")])) == []
    report = check(tmp_path, [line(T="350 5th Ave", U="", V="NY", W="", X="")])
    assert errors(report) == [(2, "W", "is required for US and Canadian transactions")]


def test_a_location_code_in_ad_leaves_dest_city_blank(tmp_path: Path) -> None:
    report = check(tmp_path, [line(AD="AMAZON")])
    assert errors(report) == [(2, "U", "must be blank when LocationCode (AD) is set")]


@pytest.mark.parametrize("code", ["7", "8", "11", "x"])
def test_process_codes_are_the_seeds(tmp_path: Path, code: str) -> None:
    found = errors(check(tmp_path, [line(A=code)]))
    assert (2, "A", "is not one of 0, 1, 2, 3, 4, 5, 6, 9, 10") in found


def test_sst_sellers_use_five_codes_no_entity_use_code_and_the_sst_columns(tmp_path: Path) -> None:
    sst = avatax_template(sst=True)
    assert errors(check(tmp_path, [line()], sst)) == []
    assert errors(check(tmp_path, [line(A="1", AP="1.00")], sst)) == [
        (2, "A", "SST sellers use only codes 0, 3, 4, 9 and 10")
    ]
    assert errors(check(tmp_path, [line(G="G")], sst)) == [
        (2, "G", "SST sellers can't use entity use codes")
    ]
    assert (2, "L", "is required for SST sellers") in errors(check(tmp_path, [line(L="")], sst))


def test_doc_types_are_0_to_11_and_orders_are_not_saved(tmp_path: Path) -> None:
    assert (2, "C", "is not one of 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11") in errors(
        check(tmp_path, [line(C="12")])
    )
    report = check(tmp_path, [line(C="0")])
    assert errors(report) == []
    assert warnings(report)[0][:2] == (2, "C")
    assert "aren't saved" in warnings(report)[0][2]


def test_doc_codes_of_one_doc_type_are_contiguous(tmp_path: Path) -> None:
    rows = [line(), line(B="A-1002", H="1002-1"), line(H="1001-2")]
    assert errors(check(tmp_path, rows)) == [
        (4, "B", "appears again after another document: document codes with the same DocType "
         "must be contiguous"),
    ]  # fmt: skip
    same_code_other_type = [line(), line(C="5", N="-1.00")]
    assert errors(check(tmp_path, same_code_other_type)) == []


def test_overwriting_a_document_at_avatax_needs_process_code_2_4_or_6(tmp_path: Path) -> None:
    template = knowing(avatax_template(), {"A-1001"})
    assert errors(check(tmp_path, [line()], template)) == [
        (2, "A", "A-1001 is already at AvaTax: overwriting it needs ProcessCode 2, 4 or 6")
    ]
    assert errors(check(tmp_path, [line(A="4")], template)) == []


def test_lines_of_one_doc_code_are_in_order(tmp_path: Path) -> None:
    rows = [line(H="1001-2"), line(H="1001-10"), line(H="1001-3")]
    assert errors(check(tmp_path, rows)) == [
        (4, "H", "lines of one DocCode must be in order (and not repeated)")
    ]


def test_a_doc_code_holds_at_most_15000_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(avatax, "MAX_DOCUMENT_LINES", 2)
    rows = [line(H=f"1001-{n}") for n in range(1, 4)]
    assert errors(check(tmp_path, rows)) == [
        (4, "B", "a single DocCode can't exceed 15,000 line items")
    ]


def test_a_file_holds_at_most_100000_lines(tmp_path: Path) -> None:
    small = attrs.evolve(avatax_template(), max_rows=2)
    rows = [line(H=f"1001-{n}") for n in range(1, 4)]
    assert errors(check(tmp_path, rows, small)) == [(0, "", "more than 2 lines in one file")]
    assert avatax_template().max_rows == 100_000


def test_reading_stops_at_the_line_limit_and_max_errors_bounds_warnings_too(
    tmp_path: Path,
) -> None:
    """A file far past the limit is not read to its end, and a header of a million unknown
    columns does not list a million warnings."""
    small = attrs.evolve(avatax_template(), max_rows=2)
    path = write(tmp_path / "long.csv", small, [line(H=f"1001-{n}") for n in range(1, 2001)])
    seen: list[int] = []
    report = read(small, path, rows=lambda number, row: seen.append(number))
    assert (report.rows, len(seen)) == (3, 2)  # the third line is where it stopped
    assert errors(report) == [(0, "", "more than 2 lines in one file")]
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join([*avatax_template().headers, *(f"X{n}" for n in range(5000))]) + "\n")
    report = read(avatax_template(), wide, max_errors=5)
    assert report.warnings == 5000
    assert len(warnings(report)) == 5


def test_an_xlsx_that_would_unpack_like_a_zip_bomb_is_refused_unread(tmp_path: Path) -> None:
    import zipfile

    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/sharedStrings.xml", "<sst>" + "A" * 20_000_000 + "</sst>")
    assert bomb.stat().st_size < 100_000
    with pytest.raises(FileFormatError, match=r"xl/sharedStrings.xml unpacks [\d,]+ times"):
        read(avatax_template(), bomb)


@pytest.mark.parametrize(
    ("letter", "value"), [("D", "2026/11/20"), ("J", "20-11-2026"), ("AI", "x")]
)
def test_dates_are_yyyy_mm_dd_or_mm_dd_yyyy(tmp_path: Path, letter: str, value: str) -> None:
    assert errors(check(tmp_path, [line(**{letter: value})])) == [
        (2, letter, "is not a date yyyy-mm-dd or mm/dd/yyyy")
    ]
    assert errors(check(tmp_path, [line(**{letter: "11/20/2026"})])) == []


@pytest.mark.parametrize("qty", ["0", "-1", "1.23456"])
def test_qty_is_positive_with_at_most_four_decimals(tmp_path: Path, qty: str) -> None:
    assert errors(check(tmp_path, [line(M=qty)])) == [
        (2, "M", "must be a positive number with at most 4 decimals")
    ]
    assert errors(check(tmp_path, [line(M="2.5678")])) == []
    assert errors(check(tmp_path, [line(M="")])) == []  # blank is 1


def test_a_return_invoice_amount_is_negative(tmp_path: Path) -> None:
    assert errors(check(tmp_path, [line(C="5")])) == [
        (2, "N", "must be negative for a return invoice (DocType 5)")
    ]


def test_a_discount_has_the_sign_of_its_amount(tmp_path: Path) -> None:
    assert errors(check(tmp_path, [line(O="-5.00")])) == [
        (2, "O", "the sign of the discount must match the line amount")
    ]
    assert errors(check(tmp_path, [line(C="5", N="-20.00", O="-2.00")])) == []


def test_total_tax_is_a_lump_sum_or_on_every_line(tmp_path: Path) -> None:
    def doc(*totals: str) -> list[dict[str, str]]:
        return [line(A="1", H=f"1001-{n}", AP=t) for n, t in enumerate(totals, start=1)]

    assert errors(check(tmp_path, doc("9.00", "", ""))) == []
    assert errors(check(tmp_path, doc("9.00", "0", "1.00"))) == []
    mixed = errors(check(tmp_path, doc("9.00", "1.00", "")))
    assert len(mixed) == 1
    assert mixed[0][:2] == (2, "AP")
    assert "lump sum" in mixed[0][2]
    assert errors(check(tmp_path, doc("", "", ""))) == [
        (2, "AP", "a tax override (ProcessCode 1, 2, 5, 6, 9, 10) needs TotalTax")
    ]
    report = check(tmp_path, [line(AP="8.88")])
    assert warnings(report) == [(2, "AP", "TotalTax is not used for ProcessCode 0, 3 or 4")]


def test_tax_included_is_blank_0_or_1(tmp_path: Path) -> None:
    assert errors(check(tmp_path, [line(AK="2")])) == [(2, "AK", "is not one of 0, 1")]


@pytest.mark.parametrize("letter", avatax.BOOLEAN_LETTERS)
def test_true_false_columns_refuse_0_and_1_with_a_hint(tmp_path: Path, letter: str) -> None:
    assert errors(check(tmp_path, [line(**{letter: "1"})])) == [
        (2, letter, "is not True or False (write True or False, not 0 or 1)")
    ]
    assert errors(check(tmp_path, [line(**{letter: "True"})])) == []


LENGTHS = {
    "B": 50, "E": 25, "F": 50, "G": 25, "H": 50, "I": 25, "K": 50, "L": 255, "P": 50, "Q": 50,
    "R": 25, "S": 50, "T": 50, "U": 50, "X": 2, "Y": 50, "Z": 35, "AA": 2, "AC": 2, "AD": 50,
    "AE": 25, "AF": 50, "AG": 30, "AL": 10, "AM": 10, "BW": 50, "CH": 5,
}  # fmt: skip


@pytest.mark.parametrize(("letter", "limit"), sorted(LENGTHS.items()))
def test_character_limits(tmp_path: Path, letter: str, limit: int) -> None:
    report = check(tmp_path, [line(**{letter: "A" * (limit + 1)})])
    rule = f"longer than {limit} characters"
    assert [e for e in errors(report) if e[2] == rule] == [(2, letter, rule)]
    assert not [e for e in errors(check(tmp_path, [line(**{letter: "A" * limit})])) if e[2] == rule]


@pytest.mark.parametrize(
    ("letter", "why"),
    [("AN", "is ignored on import"), ("AJ", "is reserved"), ("AM", "is reserved")],
)
def test_ignored_and_reserved_columns_warn(tmp_path: Path, letter: str, why: str) -> None:
    value = "11/20/2026" if letter == "AJ" else "1"
    report = check(tmp_path, [line(**{letter: value})])
    assert errors(report) == []
    assert [w[:2] for w in warnings(report)] == [(2, letter)]
    assert why in warnings(report)[0][2]


def test_an_avatax_export_reads_with_taxable_filled(tmp_path: Path) -> None:
    report = check(tmp_path, [line(AN="100.00", AP="8.88")], avatax_template(export=True))
    assert errors(report) == []
    assert [w[1] for w in warnings(report)] == ["AP"]


def test_columns_are_mapped_by_header_and_a_missing_one_is_named(tmp_path: Path) -> None:
    path = tmp_path / "reordered.csv"
    headers = ["DocCode", "ProcessCode", "DocType", "DocDate", "CustomerCode", "LineNo", "Amount"]
    headers += ["DestRegion", "DestPostCode", "OrigRegion", "OrigPostCode"]
    path.write_text(",".join(headers) + "\nA-1,3,1,2026-11-20,C1,1,10.00,NY,10118,PA,19147\n")
    assert errors(read(avatax_template(), path)) == []
    path.write_text("ProcessCode,DocCode\n3,A-1\n")
    found = errors(read(avatax_template(), path))
    assert (1, "N", "required column is missing") in found


def test_every_problem_is_counted_and_max_errors_caps_the_list(tmp_path: Path) -> None:
    rows = [line(H=f"1001-{n}", N="x") for n in range(1, 11)]
    report = read(
        avatax_template(), write(tmp_path / "f.csv", avatax_template(), rows), max_errors=3
    )
    assert report.errors == 10
    assert len(errors(report)) == 3


def test_an_empty_or_unreadable_file_is_a_typed_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(FileFormatError, match="no header row"):
        read(avatax_template(), empty)
    binary = tmp_path / "bad.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(FileFormatError, match="cannot be read as CSV"):
        read(avatax_template(), binary)


# -- seed 000: CertCapture customer templates ----------------------------------------------------

BILLING = {
    "A": "C001", "D": "Golden Gate Books", "G": "742 Washington St", "I": "San Francisco",
    "J": "CA", "K": "US", "L": "94108", "O": "ap@goldengate.example",
}  # fmt: skip
SHIPPING = {
    "Q": "C001-S1", "T": "Golden Gate Books Annex", "W": "1 Main St", "Y": "Reno", "Z": "NV",
    "AA": "US", "AB": "89501", "AE": "annex@goldengate.example", "AG": "2026-11-20",
}  # fmt: skip


def test_good_basic_and_full_files_pass(tmp_path: Path) -> None:
    basic = [{**BILLING, "Q": "CA"}, {**BILLING, "Q": "NV"}]
    assert check(tmp_path, basic, BASIC).errors == 0
    full = [{**BILLING, **SHIPPING}]
    report = check(tmp_path, full, FULL)
    assert (report.errors, report.warnings) == (0, 0)
    assert BASIC.headers[letter_index("Q")] == "Shipping Customer State"
    assert FULL.headers[letter_index("Q")] == "Shipping Customer Number"
    assert FULL.headers[-1] == "Last Transaction Date"


@pytest.mark.parametrize("letter", ["A", "D", "G", "I", "J", "K", "L", "O", "Q"])
def test_basic_required_columns(tmp_path: Path, letter: str) -> None:
    row = {**BILLING, "Q": "CA", letter: ""}
    assert errors(check(tmp_path, [row], BASIC)) == [(2, letter, "is required")]


@pytest.mark.parametrize("letter", ["Q", "T", "W", "Y", "Z", "AA", "AB", "AE"])
def test_full_required_columns(tmp_path: Path, letter: str) -> None:
    row = {**BILLING, **SHIPPING, letter: ""}
    assert (2, letter, "is required") in errors(check(tmp_path, [row], FULL))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"J": "Calif"}, ("J", "longer than 2 characters")),
        ({"J": "ZZ"}, ("J", "is not a state or province of US")),
        ({"K": "MX"}, ("K", "is not one of US, CA")),
        ({"O": "not-an-email"}, ("O", "is not an e-mail address")),
        ({"Q": "CA,NV"}, ("Q", "longer than 2 characters")),
    ],
)
def test_basic_rules(tmp_path: Path, changes: dict[str, str], expected: tuple[str, str]) -> None:
    found = errors(check(tmp_path, [{**BILLING, "Q": "CA", **changes}], BASIC))
    assert (2, *expected) in found


def test_full_last_transaction_date_is_yyyy_mm_dd(tmp_path: Path) -> None:
    found = errors(check(tmp_path, [{**BILLING, **SHIPPING, "AG": "11/20/2026"}], FULL))
    assert found == [(2, "AG", "is not a date yyyy-mm-dd")]


def test_one_row_per_billing_and_ship_to(tmp_path: Path) -> None:
    rows = [{**BILLING, "Q": "CA"}, {**BILLING, "Q": "CA"}]
    assert errors(check(tmp_path, rows, BASIC)) == [
        (3, "Q", "repeats customer C001 with the same ship-to")
    ]


def test_a_long_name_2_is_warned_about(tmp_path: Path) -> None:
    report = check(tmp_path, [{**BILLING, "Q": "CA", "E": "x" * 90}], BASIC)
    assert warnings(report)[0][:2] == (2, "E")
    assert "merged into Name 1" in warnings(report)[0][2]


def test_a_customer_exported_before_is_warned_about_once(tmp_path: Path) -> None:
    template = customers_knowing(BASIC, {"C001"})
    report = check(tmp_path, [{**BILLING, "Q": "CA"}, {**BILLING, "Q": "NV"}], template)
    assert report.errors == 0
    assert warnings(report) == [
        (2, "A", "was exported before: importing it overwrites that customer at CertCapture")
    ]


def test_a_customer_file_holds_at_most_40000_lines(tmp_path: Path) -> None:
    assert BASIC.max_rows == FULL.max_rows == 40_000
    small = attrs.evolve(BASIC, max_rows=1)
    rows = [{**BILLING, "Q": "CA"}, {**BILLING, "Q": "NV"}]
    assert errors(check(tmp_path, rows, small)) == [(0, "", "more than 1 lines in one file")]


# -- seed 000: the ECMS certificate template -------------------------------------------------------

CERT = {
    "A": "1", "C": "US", "D": "NY", "E": "EX-123", "F": "TIN", "G": "01/01/2026",
    "H": "12/31/2027", "J": "C001", "K": "BLANKET", "M": "10", "O": "G", "Q": "Golden Gate Books",
    "R": "742 Washington St", "U": "San Francisco", "V": "CA", "W": "94108", "X": "US",
    "Y": "ACTIVE", "Z": "ACCEPTED",
}  # fmt: skip


def ecms(
    tmp_path: Path, template: Template | None = None, **changes: str
) -> list[tuple[int, str, str]]:
    return errors(check(tmp_path, [{**CERT, **changes}], template or ECMS))


def test_a_good_ecms_file_passes(tmp_path: Path) -> None:
    report = check(tmp_path, [CERT, {**CERT, "A": "2", "D": "CA", "C": "CA", "O": "R"}], ECMS)
    assert (report.errors, report.warnings) == (0, 0)
    assert ECMS.width == letter_index("AD") + 1


@pytest.mark.parametrize(
    "letter", ["A", "C", "D", "E", "G", "J", "K", "M", "O", "Q", "R", "U", "V", "W", "Y", "Z"]
)
def test_ecms_required_columns(tmp_path: Path, letter: str) -> None:
    assert (2, letter, "is required") in ecms(tmp_path, **{letter: ""})


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"A": "12a"}, ("A", "is not a whole number")),
        ({"B": "77"}, ("B", "AvaCertid: leave this column blank")),
        ({"I": "DEFAULT"}, ("I", "CompanyCode: leave this column blank")),
        ({"D": "ON"}, ("D", "is not a region of US (CA: Canada-wide GST)")),
        ({"F": "SSN"}, ("F", "is not one of TIN, FEIN, DLN, FDN")),
        ({"G": "2026-01-01"}, ("G", "is not a date mm/dd/yyyy")),
        ({"G": "01/01/2028"}, ("G", "is later than the EndDate 12/31/2027")),
        ({"K": "MULTI"}, ("K", "is not one of BLANKET, SINGLE")),
        ({"K": "SINGLE"}, ("L", "is required for a SINGLE certificate")),
        ({"L": "PO-1"}, ("L", "is only for SINGLE")),
        (
            {"M": "21"},
            (
                "M",
                "is not one of 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20",
            ),
        ),
        ({"M": "20"}, ("N", "is required when Business Type is 20")),
        ({"O": "O"}, ("O", "is not one of A, B, C, D, E, F, G, H, I, J, K, L, M, N, P, Q, R")),
        ({"O": "P"}, ("O", "applies in Canada only")),
        ({"C": "CA", "D": "ON", "O": "A"}, ("O", "applies in the United States only")),
        ({"O": "L"}, ("P", "is required when the reason is L")),
        ({"Q": "x" * 101}, ("Q", "longer than 100 characters")),
        ({"V": "CALI"}, ("V", "longer than 3 characters")),
        ({"W": "12345678901"}, ("W", "longer than 10 characters")),
        ({"E": "x" * 51}, ("E", "longer than 50 characters")),
        ({"Y": "INACTIVE"}, ("Y", "is not one of ACTIVE, REVOKED")),
        ({"Z": "PENDING"}, ("Z", "is not one of ACCEPTED")),
    ],
)
def test_ecms_rules(tmp_path: Path, changes: dict[str, str], expected: tuple[str, str]) -> None:
    assert ecms(tmp_path, **changes) == [(2, *expected)]


def test_a_blank_end_date_never_expires_and_address_3_is_merged(tmp_path: Path) -> None:
    report = check(tmp_path, [{**CERT, "H": "", "T": "Suite 4"}], ECMS)
    assert report.errors == 0
    assert sorted(w[1] for w in warnings(report)) == ["H", "T"]


def test_cert_ids_are_unique_across_every_import(tmp_path: Path) -> None:
    rows = [CERT, {**CERT, "D": "NJ"}]
    assert errors(check(tmp_path, rows, ECMS)) == [(3, "A", "is used twice in this file")]
    earlier = ecms_template({"1": "C009/NY/2025-01-01"})
    assert ecms(tmp_path, earlier) == [
        (2, "A", "was used by an earlier import (C009/NY/2025-01-01): reusing it overwrites "
         "that certificate (allow it with overwrite)")
    ]  # fmt: skip
    assert ecms(tmp_path, ecms_template({"1": "C009/NY/2025-01-01"}, overwrite=True)) == []
    assert ecms(tmp_path, ecms_template({"1": "C001/NY/2026-01-01"})) == []  # the same cert


def test_line_numbers_of_any_shape_are_ordered_without_failing(tmp_path: Path) -> None:
    rows = [line(H="1001-1"), line(H="1001-FRT"), line(H="1001-2")]
    assert errors(check(tmp_path, rows)) == [
        (4, "H", "lines of one DocCode must be in order (and not repeated)")
    ]
    assert errors(check(tmp_path, [line(H="1001-9"), line(H="1001-10"), line(H="1001-10a")])) == []


def test_the_files_page_shows_each_template_as_declared() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "files.md").read_text()
    for template in (avatax_template(), BASIC, FULL, ECMS):
        for column in template.columns:
            required = "yes" if column.required else ""
            start = f"| {column.letter} | {column.header} | {column.kind.value} | {column.length or ''} | {required} |"
            assert start in page, start


SCREEN = _Screen(avatax_template())


@given(
    st.dictionaries(
        st.sampled_from([c.letter for c in avatax_template().columns]),
        st.one_of(
            st.sampled_from(["", "1", "-1.5", "2026-11-20", "11/20/2026", "True", "0", "1e5"]),
            st.text(max_size=60),
        ),
        max_size=8,
    )
)
@settings(max_examples=150, deadline=None)
def test_a_row_the_screen_lets_through_breaks_no_cell_rule(changes: dict[str, str]) -> None:
    from taxbridge.files.template import _cell_check

    template = avatax_template()
    row = [""] * template.width
    for letter, value in {**GOOD, **changes}.items():
        row[letter_index(letter)] = value
    if SCREEN.suspect(row):
        return
    for column in template.columns:
        value = row[column.index]
        assert value or not column.required
        if value:
            assert _cell_check(template, column)(2, value) == []


def test_reading_a_big_file_reports_its_progress_every_thousand_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "big.csv", ECMS, [{**CERT, "A": str(n)} for n in range(1, 2501)])
    seen: list[int] = []
    report = read(ECMS, path, progress=seen.append)
    assert report.rows == 2500
    assert seen == [1000, 2000, 2500]
