"""``taxbridge file``: export, validate, import and compare the seeds' file formats (the AvaTax
transaction import, CertCapture customers, ECMS certificates)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxbridge.cli._shared import (
    FINDINGS,
    OK,
    Progress,
    UsageError,
    command,
    format_option,
    month,
    open_bridge,
    print_json,
    print_rows,
    read_json_list,
)

if TYPE_CHECKING:
    from taxbridge.files import CustomerRecord, Report

KINDS = ("avatax", "customers-basic", "customers-full", "ecms")


def load_customers(path: str) -> list[CustomerRecord]:
    """The ERP's customers from a JSON file: a list of objects with CustomerRecord's fields,
    ``address`` (and each ship-to's) an object with Address's fields."""
    return [
        _customer(item, f"--customers {path}, customer {index + 1}")
        for index, item in enumerate(read_json_list(path, "--customers"))
    ]


def _customer(item: Any, where: str) -> CustomerRecord:
    from taxbridge.errors import InvalidFieldError
    from taxbridge.files import CustomerRecord
    from taxbridge.models import Address

    if not isinstance(item, dict) or not isinstance(item.get("address"), dict):
        raise UsageError(f"{where}: needs an address object")
    fields = dict(item)
    try:
        fields["address"] = Address(**fields["address"])
        fields["ship_tos"] = tuple(
            _customer(ship_to, f"{where}, ship-to {n + 1}")
            for n, ship_to in enumerate(fields.get("ship_tos", ()))
        )
        return CustomerRecord(**fields)
    except (TypeError, InvalidFieldError) as exc:
        raise UsageError(f"{where}: {exc}") from None


def _print_report(report: Report, path: str, fmt: str) -> int:
    if fmt == "json":
        print_json(
            {
                "file": path,
                "template": report.template,
                "rows": report.rows,
                "errors": report.errors,
                "warnings": report.warnings,
                "problems": [problem.as_dict() for problem in report.problems],
            }
        )
    else:
        for p in report.problems:
            where = f"row {p.row} {p.letter} {p.header}".rstrip() if p.row else "file"
            shown = f" {p.value!r}" if p.value else ""
            print(f"{p.severity.value:<7} {where}:{shown} {p.rule}")
        listed = len([p for p in report.problems if p.severity.value == "error"])
        more = f" ({report.errors - listed} more not shown)" if report.errors > listed else ""
        print(
            f"{path}: {report.rows} rows, {report.errors} errors{more}, "
            f"{report.warnings} warnings ({report.template})"
        )
    return OK if report.ok else FINDINGS


def _validate(args: argparse.Namespace) -> int:
    from taxbridge.errors import StoreError
    from taxbridge.files.service import STORE_RULES, validate_alone

    bar = Progress(None, "rows", f"checking {Path(args.file).name}")
    try:
        try:
            bridge = open_bridge(args, read_only=True)
        except StoreError as exc:  # a file can be checked without a store: its rules wait
            report = validate_alone(
                args.kind,
                args.file,
                max_errors=args.max_errors,
                sst=args.sst,
                overwrite=args.overwrite,
                progress=bar.to,
            )
            bar.close()
            print(
                f"taxbridge: no store to check against ({exc}); skipped: {STORE_RULES[args.kind]}",
                file=sys.stderr,
            )
            return _print_report(report, args.file, args.format)
        with bridge:
            files = bridge.files
            if args.kind == "avatax":
                report = files.validate_avatax(
                    args.file, max_errors=args.max_errors, sst=args.sst, progress=bar.to
                )
            elif args.kind == "ecms":
                report = files.validate_ecms(
                    args.file, overwrite=args.overwrite, max_errors=args.max_errors, progress=bar.to
                )
            else:
                report = files.validate_customers(
                    args.file,
                    full=args.kind == "customers-full",
                    max_errors=args.max_errors,
                    progress=bar.to,
                )
    finally:
        bar.close()
    return _print_report(report, args.file, args.format)


def _export(args: argparse.Namespace) -> int:
    from taxbridge.flags import FinalTaxFlag
    from taxbridge.models import DateRange

    output = Path(args.output)
    if args.xlsx and output.suffix.lower() != ".xlsx":
        output = output.with_suffix(".xlsx")
    with open_bridge(args, read_only=True) as bridge:
        files = bridge.files
        if args.kind == "avatax":
            period = DateRange.period(args.period) if args.period else None
            flags = [FinalTaxFlag(flag) for flag in args.flag] if args.flag else None
            documents = files.avatax_documents(codes=args.code, flags=flags, period=period)
            written = files.export_avatax(output, documents, process_code=args.process_code)
            what = f"{len(documents)} documents"
        else:
            if not args.customers:
                raise UsageError(
                    f"{args.kind} is written from the ERP's customers: --customers FILE.json"
                )
            customers = load_customers(args.customers)
            if args.kind == "ecms":
                written = files.export_ecms(output, {c.number: c for c in customers})
                what = "the exemption database"
            else:
                full = args.kind == "customers-full"
                written = files.export_customers(output, customers, full=full)
                what = f"{sum(1 for c in customers if c.exempt)} exempt customers"
    if args.format == "json":
        print_json({"kind": args.kind, "wrote": what, "files": [str(p) for p in written]})
    else:
        print(f"wrote {what} to {', '.join(str(path) for path in written)}")
    return OK


def _import(args: argparse.Namespace) -> int:
    with open_bridge(args, read_only=True) as bridge:
        report, saved = bridge.files.import_ecms(args.file, overwrite=args.overwrite)
    if args.format == "json":
        print_json(
            {
                "file": args.file,
                "imported": saved,
                "errors": report.errors,
                "warnings": report.warnings,
                "problems": [problem.as_dict() for problem in report.problems],
            }
        )
        return OK if report.ok else FINDINGS
    code = _print_report(report, args.file, "table")
    if code == OK:
        print(f"imported {saved} exemption entries into the exemption database")
    else:
        print("nothing imported: fix the errors first", file=sys.stderr)
    return code


def _diff(args: argparse.Namespace) -> int:
    with open_bridge(args, read_only=True) as bridge:
        diff = bridge.files.customer_diff(
            args.file, load_customers(args.customers), full=args.kind == "customers-full"
        )
    rows = [
        {"change": label, "customer": code}
        for label, codes in (
            ("add", diff.to_add),
            ("remove", diff.to_remove),
            ("update", diff.changed),
        )
        for code in codes
    ]

    def table() -> None:
        for row in rows:
            print(f"{row['change']:<7} {row['customer']}")
        print("the file matches the ERP's exempt customers" if diff.same else "differences found")

    print_rows(args, ("change", "customer"), rows, table)
    return OK if diff.same else FINDINGS


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """``taxbridge file`` and its subcommands."""
    file = command(
        commands,
        "file",
        None,
        help="the files other systems read: the AvaTax transaction import, CertCapture "
        "customers, ECMS certificates",
    )
    actions = file.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="export, validate, import or diff"
    )

    export = command(actions, "export", _export, parents=[common], help="write a template file")
    export.add_argument("kind", choices=KINDS, help="which template")
    export.add_argument("--output", required=True, metavar="FILE", help="the file (.csv or .xlsx)")
    export.add_argument("--xlsx", action="store_true", help="write XLSX (taxbridge[xlsx])")
    export.add_argument(
        "--flag", action="append", metavar="F", help="avatax: the documents with flag F (e.g. U)"
    )
    export.add_argument("--code", action="append", metavar="CODE", help="avatax: this document")
    export.add_argument(
        "--period", type=month, metavar="YYYY-MM", help="avatax: the documents dated in it"
    )
    export.add_argument(
        "--process-code",
        type=int,
        choices=(1, 3),
        default=3,
        help="avatax: 3, AvaTax calculates (default); 1, keep the tax the invoice carried",
    )
    export.add_argument(
        "--customers", metavar="FILE.json", help="customers and ecms: the ERP's customers"
    )
    format_option(export, "table", "json")

    validate = command(
        actions,
        "validate",
        _validate,
        parents=[common],
        help="check a file and list every problem; exit 1 when it has an error",
    )
    validate.add_argument("kind", choices=KINDS, help="which template")
    validate.add_argument("file", help="the CSV or XLSX file")
    validate.add_argument("--max-errors", type=int, metavar="N", help="show at most N errors")
    validate.add_argument("--sst", action="store_true", help="avatax: the seller is in SST")
    validate.add_argument("--overwrite", action="store_true", help="ecms: Cert IDs may be reused")
    format_option(validate, "table", "json")

    imported = command(
        actions,
        "import",
        _import,
        parents=[common],
        help="import an ECMS file into the exemption database: all of it, or nothing",
    )
    imported.add_argument("kind", choices=("ecms",), help="which template")
    imported.add_argument("file", help="the CSV or XLSX file")
    imported.add_argument("--overwrite", action="store_true", help="Cert IDs may be reused")
    format_option(imported, "table", "json")

    diff = command(
        actions,
        "diff",
        _diff,
        parents=[common],
        help="the ERP's exempt customers against a customer file; exit 1 when they differ",
    )
    diff.add_argument("kind", choices=("customers-basic", "customers-full"), help="which template")
    diff.add_argument("file", help="the exported file")
    diff.add_argument("--customers", required=True, metavar="FILE.json", help="the ERP's customers")
    format_option(diff, "table", "csv", "json")
