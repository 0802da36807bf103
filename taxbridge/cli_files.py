"""The ``taxbridge file`` commands: export, validate and import the seeds' file formats, and
``mark-manual --from-file``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from taxbridge.bridge import TaxBridge
from taxbridge.errors import InvalidFieldError, StoreError
from taxbridge.files import CustomerRecord, Report
from taxbridge.files.service import STORE_RULES, validate_alone
from taxbridge.flags import FinalTaxFlag
from taxbridge.models import Address, DateRange

Opener = Callable[..., TaxBridge]
KINDS = ("avatax", "customers-basic", "customers-full", "ecms")


def load_customers(path: str) -> list[CustomerRecord]:
    """The ERP's customers from a JSON file: a list of objects with CustomerRecord's fields,
    ``address`` (and each ship-to's) an object with Address's fields."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidFieldError("--customers", "file", path, f"cannot be read: {exc}") from exc
    if not isinstance(data, list):
        raise InvalidFieldError("--customers", "file", path, "is not a JSON list of customers")
    return [_customer(item, f"{path}[{index}]") for index, item in enumerate(data)]


def _customer(item: Any, where: str) -> CustomerRecord:
    if not isinstance(item, dict) or not isinstance(item.get("address"), dict):
        raise InvalidFieldError("--customers", where, item, "needs an address object")
    fields = dict(item)
    fields["address"] = Address(**fields["address"])
    fields["ship_tos"] = tuple(
        _customer(ship_to, f"{where}.ship_tos[{n}]")
        for n, ship_to in enumerate(fields.get("ship_tos", ()))
    )
    try:
        return CustomerRecord(**fields)
    except TypeError as exc:
        raise InvalidFieldError("--customers", where, item, str(exc)) from exc


def _print_report(report: Report, path: str, fmt: str) -> int:
    if fmt == "json":
        body = {
            "file": path,
            "template": report.template,
            "rows": report.rows,
            "errors": report.errors,
            "warnings": report.warnings,
            "problems": [problem.as_dict() for problem in report.problems],
        }
        print(json.dumps(body, indent=2))
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
    return 0 if report.ok else 1


def _validate(args: argparse.Namespace, open_bridge: Opener) -> int:
    try:
        bridge = open_bridge(args, read_only=True)
    except StoreError as exc:  # a file can be checked without a store: the store's rules wait
        report = validate_alone(
            args.kind,
            args.file,
            max_errors=args.max_errors,
            sst=args.sst,
            overwrite=args.overwrite,
        )
        print(
            f"taxbridge: no store to check against ({exc}); skipped: {STORE_RULES[args.kind]}",
            file=sys.stderr,
        )
        return _print_report(report, args.file, args.format)
    with bridge:
        files = bridge.files
        if args.kind == "avatax":
            report = files.validate_avatax(args.file, max_errors=args.max_errors, sst=args.sst)
        elif args.kind == "ecms":
            report = files.validate_ecms(
                args.file, overwrite=args.overwrite, max_errors=args.max_errors
            )
        else:
            report = files.validate_customers(
                args.file, full=args.kind == "customers-full", max_errors=args.max_errors
            )
    return _print_report(report, args.file, args.format)


def _export(args: argparse.Namespace, open_bridge: Opener) -> int:
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
                raise InvalidFieldError("command line", "--customers", None, "is needed")
            customers = load_customers(args.customers)
            if args.kind == "ecms":
                written = files.export_ecms(output, {c.number: c for c in customers})
                what = "the exemption database"
            else:
                full = args.kind == "customers-full"
                written = files.export_customers(output, customers, full=full)
                what = f"{sum(1 for c in customers if c.exempt)} exempt customers"
    print(f"wrote {what} to {', '.join(str(path) for path in written)}")
    return 0


def _import(args: argparse.Namespace, open_bridge: Opener) -> int:
    with open_bridge(args, read_only=True) as bridge:
        report, saved = bridge.files.import_ecms(args.file, overwrite=args.overwrite)
    code = _print_report(report, args.file, "table")
    if code == 0:
        print(f"imported {saved} exemption entries into the exemption database")
    else:
        print("nothing imported: fix the errors first", file=sys.stderr)
    return code


def _diff(args: argparse.Namespace, open_bridge: Opener) -> int:
    with open_bridge(args, read_only=True) as bridge:
        diff = bridge.files.customer_diff(
            args.file, load_customers(args.customers), full=args.kind == "customers-full"
        )
    for label, codes in (
        ("add", diff.to_add),
        ("remove", diff.to_remove),
        ("update", diff.changed),
    ):
        for code in codes:
            print(f"{label:<7} {code}")
    print("the file matches the ERP's exempt customers" if diff.same else "differences found")
    return 0 if diff.same else 1


def mark_manual_from_file(args: argparse.Namespace, open_bridge: Opener) -> int:
    """``taxbridge mark-manual --from-file FILE``."""
    with open_bridge(args, read_only=True) as bridge:
        marked = bridge.files.mark_manual_from_file(args.from_file, args.user)
    for doc in marked:
        print(f"{doc.code}: flag {doc.flag.value}  {doc.last_log}")
    print(f"marked {len(marked)} documents M")
    return 0


def add_commands(commands: Any, common: argparse.ArgumentParser, open_bridge: Opener) -> None:
    """Add ``taxbridge file`` and its subcommands."""

    def bind(run: Callable[[argparse.Namespace, Opener], int]) -> Callable[..., int]:
        return lambda args: run(args, open_bridge)

    file = commands.add_parser(
        "file",
        help="the seeds' file formats: AvaTax import, CertCapture customers, ECMS certificates",
    )
    actions = file.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="export, validate, import or diff"
    )

    export = actions.add_parser("export", parents=[common], help="write a template file")
    export.add_argument("kind", choices=KINDS, help="which template")
    export.add_argument("--output", required=True, metavar="FILE", help="the file (.csv or .xlsx)")
    export.add_argument("--xlsx", action="store_true", help="write XLSX (taxbridge[xlsx])")
    export.add_argument(
        "--flag", action="append", metavar="F", help="avatax: documents with flag F (e.g. U)"
    )
    export.add_argument("--code", action="append", metavar="CODE", help="avatax: this document")
    export.add_argument("--period", metavar="YYYY-MM", help="avatax: documents dated in it")
    export.add_argument(
        "--process-code",
        type=int,
        choices=(1, 3),
        default=3,
        help="avatax: 3, AvaTax calculates (default); 1, keep the tax the invoice carried",
    )
    export.add_argument(
        "--customers", metavar="FILE.json", help="customers/ecms: the ERP's customers"
    )
    export.set_defaults(run=bind(_export))

    validate = actions.add_parser("validate", parents=[common], help="check a file, every problem")
    validate.add_argument("kind", choices=KINDS, help="which template")
    validate.add_argument("file", help="the CSV or XLSX file")
    validate.add_argument("--format", choices=("table", "json"), default="table")
    validate.add_argument("--max-errors", type=int, metavar="N", help="show at most N errors")
    validate.add_argument("--sst", action="store_true", help="avatax: the seller is in SST")
    validate.add_argument("--overwrite", action="store_true", help="ecms: Cert IDs may be reused")
    validate.set_defaults(run=bind(_validate))

    imported = actions.add_parser(
        "import", parents=[common], help="import an ECMS file into the exemption database"
    )
    imported.add_argument("kind", choices=("ecms",), help="which template")
    imported.add_argument("file", help="the CSV or XLSX file")
    imported.add_argument("--overwrite", action="store_true", help="Cert IDs may be reused")
    imported.set_defaults(run=bind(_import))

    diff = actions.add_parser(
        "diff", parents=[common], help="the ERP's exempt customers against a customer file"
    )
    diff.add_argument("kind", choices=("customers-basic", "customers-full"), help="which template")
    diff.add_argument("file", help="the exported file")
    diff.add_argument("--customers", required=True, metavar="FILE.json", help="the ERP's customers")
    diff.set_defaults(run=bind(_diff))
