"""The seeds' files against the store: export documents for the AvaTax import, mark the
documents of an imported file M, export customers and certificates for CertCapture, import an
ECMS file into the exemption database, and compare the ERP's exempt customers with a file.

Writers split a file where the template's limits say (100,000 lines at a DocCode border; 40,000
lines or 50 MB for customers), never inside a document.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from attrs import frozen

from taxbridge.errors import InvalidFieldError, InvalidTransition
from taxbridge.files import avatax_import as avatax
from taxbridge.files import certcapture as cc
from taxbridge.files.template import (
    Problem,
    Report,
    Row,
    Template,
    Writer,
    letter_index,
    read,
)
from taxbridge.flags import FinalTaxFlag
from taxbridge.models import DateRange, DocumentKind, Exemption, TaxDocument
from taxbridge.store.base import Store

ALL_TIME = DateRange(dt.date(1900, 1, 1), dt.date(9999, 12, 31))
CUSTOMERS = "certcapture-customer"
"""The export registry's kind for customer numbers sent to CertCapture."""
ECMS_IDS = "ecms-cert-id"
"""The export registry's kind for ECMS Cert IDs (value: customer/region/effective date)."""
CUSTOMER_FILES = "certcapture-customer-file"
"""The export registry's kind for the customer files written (key: the file's SHA-256), so
that reading one of them back is not taken for a second export."""

EXPORT_KINDS = (CUSTOMERS, ECMS_IDS, CUSTOMER_FILES)
"""Every registry of the files written and read: a store copy carries them all."""
STORE_RULES = {
    "avatax": "a code AvaTax already has (stored Y, R or M) needs an overwrite ProcessCode",
    "customers-basic": "a customer number exported before is a warning",
    "customers-full": "a customer number exported before is a warning",
    "ecms": "a Cert ID imported before for another certificate",
}
"""What each validation checks against the store, skipped when there is none."""


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def validate_alone(
    kind: str,
    path: str | Path,
    *,
    max_errors: int | None = None,
    sst: bool = False,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Validate a file with every rule that needs no store (``STORE_RULES[kind]`` is skipped):
    a file can be checked anywhere, before any store exists; ``progress`` gets the rows read."""
    if kind == "avatax":
        template = avatax.avatax_template(sst=sst)
    elif kind == "ecms":
        template = cc.ecms_template({}, overwrite=overwrite)
    else:
        template = cc.customers_knowing(cc.FULL if kind == "customers-full" else cc.BASIC, {})
    return read(template, path, max_errors=max_errors, progress=progress)


def split_paths(path: Path, count: int) -> Path:
    """The ``count``-th file of a split: ``out.csv``, ``out-2.csv``, ``out-3.csv`` ..."""
    return path if count == 1 else path.with_name(f"{path.stem}-{count}{path.suffix}")


def write_split(
    template: Template,
    groups: Iterable[Sequence[list[str]]],
    path: Path,
    *,
    max_rows: int,
    max_bytes: int | None = None,
) -> list[Path]:
    """Write groups of rows (a document's lines, a customer's rows) into as many files as the
    limits need, never splitting a group. A group alone over a limit is an error."""
    written: list[Path] = []
    writer: Writer | None = None
    size = 0
    try:
        for group in groups:
            group_size = sum(sum(len(cell) + 1 for cell in row) + 1 for row in group)
            if len(group) > max_rows or (max_bytes is not None and group_size > max_bytes):
                raise InvalidFieldError(
                    "file", "rows", len(group), f"of one group exceed the limit of {max_rows}"
                )
            full = writer is not None and (
                writer.rows + len(group) > max_rows
                or (max_bytes is not None and size + group_size > max_bytes)
            )
            if writer is None or full:
                if writer is not None:
                    writer.close()
                target = split_paths(path, len(written) + 1)
                writer = Writer(template, target)
                written.append(target)
                size = sum(len(h) + 1 for h in template.headers) + 1
            for row in group:
                writer.write(row)
            size += group_size
        if writer is None:
            writer = Writer(template, path)
            written.append(path)
    finally:
        if writer is not None:
            writer.close()
    return written


@frozen
class CustomerDiff:
    """The ERP's exempt customers (the source of truth) against an exported customer file."""

    to_add: tuple[str, ...]
    """Exempt in the ERP, not in the file."""
    to_remove: tuple[str, ...]
    """In the file, not an exempt customer of the ERP any more."""
    changed: tuple[str, ...]
    """In both, with another name, address or e-mail."""

    @property
    def same(self) -> bool:
        """Nothing to add, remove or change."""
        return not (self.to_add or self.to_remove or self.changed)


class Files:
    """The seeds' file formats over one store."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], dt.datetime],
        mark_manual: Callable[[str, str, str], TaxDocument],
        check_entity_use_code: Callable[[str, str | None], None] = lambda owner, code: None,
    ):
        self._store = store
        self._clock = clock
        self._mark_manual = mark_manual
        self._check_entity_use_code = check_entity_use_code

    # -- AvaTax transaction import (seed 001) --------------------------------------------------

    def avatax_documents(
        self,
        *,
        codes: Sequence[str] | None = None,
        flags: Sequence[FinalTaxFlag] | None = None,
        period: DateRange | None = None,
    ) -> list[TaxDocument]:
        """Stored invoices and credits by code, flag (e.g. all U) or document date."""
        if codes is not None:
            found = []
            for code in codes:
                document = self._store.get(code)
                if document is None or document.kind is DocumentKind.ORDER:
                    raise InvalidFieldError("avatax export", "code", code, "is no stored invoice")
                found.append(document)
            return found
        return [
            document
            for document in self._store.documents(flags=flags)
            if document.kind is not DocumentKind.ORDER
            and (period is None or document.document_date in period)
            and document.voided_at is None
        ]

    def export_avatax(
        self,
        path: str | Path,
        documents: Iterable[TaxDocument],
        *,
        process_code: int = 3,
        write_offs: Iterable[avatax.TaxWriteOff] = (),
    ) -> list[Path]:
        """Write documents (and AR tax write-offs) as AvaTax import files, split at 100,000
        lines at a DocCode border; returns the files written."""
        groups: Iterator[Sequence[list[str]]] = (
            list(avatax.document_rows(document, process_code=process_code))
            for document in documents
        )
        offs = ([avatax.write_off_rows(item)] for item in write_offs)
        return write_split(
            avatax.avatax_template(),
            _chain(groups, offs),
            Path(path),
            max_rows=avatax.MAX_LINES,
        )

    def validate_avatax(
        self,
        path: str | Path,
        *,
        max_errors: int | None = None,
        sst: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> Report:
        """Validate an import file; a new document with a code the store holds as posted
        (Y, R, M: AvaTax has it) is an error unless its ProcessCode overwrites."""
        at_engine = [
            head.code
            for head in self._store.posted_documents(ALL_TIME)
            if head.flag is not FinalTaxFlag.FAILED
        ]
        template = avatax.knowing(avatax.avatax_template(sst=sst), at_engine)
        return read(template, path, max_errors=max_errors, progress=progress)

    def mark_manual_from_file(self, path: str | Path, user: str) -> list[TaxDocument]:
        """The operator imported ``path`` at AvaTax: mark exactly its invoices and credits M.
        The file must validate, and each of its documents must be stored U; otherwise nothing
        is marked."""
        codes: dict[str, None] = {}

        def collect(number: int, row: Row) -> None:
            if row[letter_index("C")] in ("1", "5"):
                codes[row[letter_index("B")]] = None

        report = read(avatax.avatax_template(), path, rows=collect)
        if not report.ok:
            raise InvalidFieldError(
                "mark-manual", "file", str(path), f"has {report.errors} errors; validate it"
            )
        wrong = []
        for code in codes:
            head = self._store.head(code)
            if head is None or head.flag is not FinalTaxFlag.FAILED:
                wrong.append(f"{code} ({'not stored' if head is None else head.flag})")
        if wrong or not codes:
            reason = "every document of the file must be a stored U document: "
            raise InvalidTransition(
                FinalTaxFlag.FAILED,
                FinalTaxFlag.MANUAL,
                action="mark manual from file",
                reason=reason + (", ".join(wrong) or "the file has no invoice or credit"),
            )
        why = f"imported at AvaTax from {Path(path).name}"
        return [self._mark_manual(code, why, user) for code in codes]

    # -- CertCapture customers and certificates (seed 000) --------------------------------------

    def export_customers(
        self, path: str | Path, customers: Iterable[cc.CustomerRecord], *, full: bool
    ) -> list[Path]:
        """The exempt customers as a Basic or Full customer import, split at 40,000 lines or
        50 MB; the numbers exported are remembered (a later file warns on them)."""
        exported: dict[str, str] = {}
        rows_of = cc.full_rows if full else cc.basic_rows

        def groups() -> Iterator[list[list[str]]]:
            for customer in customers:
                if not customer.exempt:
                    continue
                exported[customer.number] = customer.name
                for ship_to in customer.ship_tos if full else ():
                    exported[ship_to.number] = ship_to.name
                yield list(rows_of([customer]))

        written = write_split(
            cc.FULL if full else cc.BASIC,
            groups(),
            Path(path),
            max_rows=cc.MAX_CUSTOMER_LINES,
            max_bytes=cc.MAX_CUSTOMER_BYTES,
        )
        self._store.record_exports(CUSTOMERS, exported, self._clock())
        files = {file_digest(written_path): str(written_path) for written_path in written}
        self._store.record_exports(CUSTOMER_FILES, files, self._clock())
        return written

    def validate_customers(
        self,
        path: str | Path,
        *,
        full: bool,
        max_errors: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Report:
        """Validate a customer import, warning on numbers exported before."""
        source = Path(path)
        ours = source.is_file() and file_digest(source) in self._store.exports(CUSTOMER_FILES)
        known = {} if ours else self._store.exports(CUSTOMERS)  # our own export read back
        template = cc.customers_knowing(cc.FULL if full else cc.BASIC, known)
        report = read(template, source, max_errors=max_errors, progress=progress)
        if source.exists() and source.stat().st_size > cc.MAX_CUSTOMER_BYTES:
            big = Problem(0, "", "", f"{source.stat().st_size:,} bytes", "larger than 50 MB")
            return Report(
                report.template,
                report.rows,
                report.errors + 1,
                report.warnings,
                (*report.problems, big),
            )
        return report

    def customer_diff(
        self, path: str | Path, customers: Iterable[cc.CustomerRecord], *, full: bool
    ) -> CustomerDiff:
        """The ERP's exempt customers against the billing customers of an exported file."""
        in_file: dict[str, tuple[str, ...]] = {}

        def collect(number: int, row: Row) -> None:
            in_file[row[0]] = _identity(row)

        read(cc.FULL if full else cc.BASIC, path, rows=collect)
        erp: dict[str, tuple[str, ...]] = {}
        for customer in customers:
            if customer.exempt:
                row = [""] * cc.BASIC.width
                cc.billing_cells(row, customer)
                erp[customer.number] = _identity(row)
        return CustomerDiff(
            tuple(sorted(set(erp) - set(in_file))),
            tuple(sorted(set(in_file) - set(erp))),
            tuple(sorted(n for n in set(erp) & set(in_file) if erp[n] != in_file[n])),
        )

    def export_ecms(
        self,
        path: str | Path,
        customers: Mapping[str, cc.CustomerRecord],
        exemptions: Iterable[Exemption] | None = None,
    ) -> list[Path]:
        """The exemption database as an ECMS certificate import. A certificate exported before
        keeps its Cert ID; a new one gets the next unused ID; the registry remembers them."""
        known = self._store.exports(ECMS_IDS)
        by_key = {value: int(key) for key, value in known.items()}
        next_id = max((int(key) for key in known), default=0) + 1
        assigned: dict[str, str] = {}
        rows: list[list[list[str]]] = []
        for exemption in exemptions if exemptions is not None else self._store.exemptions():
            customer = customers.get(exemption.customer_code)
            if customer is None:
                raise InvalidFieldError(
                    "ecms export", "customer", exemption.customer_code, "is not in the customers"
                )
            key = f"{exemption.customer_code}/{exemption.region}/{exemption.effective}"
            cert_id = by_key.get(key)
            if cert_id is None:
                cert_id, next_id = next_id, next_id + 1
            assigned[str(cert_id)] = key
            rows.append([cc.ecms_row(cert_id, exemption, customer)])
        written = write_split(cc.ECMS, rows, Path(path), max_rows=cc.MAX_CUSTOMER_LINES)
        self._store.record_exports(ECMS_IDS, assigned, self._clock())
        return written

    def validate_ecms(
        self,
        path: str | Path,
        *,
        overwrite: bool = False,
        max_errors: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Report:
        """Validate an ECMS file, its Cert IDs against every earlier import."""
        template = cc.ecms_template(self._store.exports(ECMS_IDS), overwrite=overwrite)
        return read(template, path, max_errors=max_errors, progress=progress)

    def import_ecms(self, path: str | Path, *, overwrite: bool = False) -> tuple[Report, int]:
        """Import an ECMS file into the exemption database: all of it, or nothing when it has
        an error or an entity use code that is not active. Returns the report and how many
        entries were saved."""
        report = self.validate_ecms(path, overwrite=overwrite)
        if not report.ok:
            return report, 0
        entries: list[Exemption] = []
        ids: dict[str, str] = {}

        def collect(number: int, row: Row) -> None:
            entries.extend(cc.exemptions_of(row))
            ids[row[0]] = cc.ecms_key(row)

        read(cc.ECMS, path, rows=collect)
        for entry in entries:  # every code active (AV-EX1) before anything is saved
            self._check_entity_use_code("Exemption", entry.entity_use_code)
        self._store.save_exemptions(entries)
        self._store.record_exports(ECMS_IDS, ids, self._clock())
        return report, len(entries)


def _identity(row: Row) -> tuple[str, ...]:
    """Name, address and e-mail of a billing customer's row."""
    return tuple(row[letter_index(letter)] for letter in ("D", "G", "I", "J", "K", "L", "O"))


def _chain(*parts: Iterable[Sequence[list[str]]]) -> Iterator[Sequence[list[str]]]:
    for part in parts:
        yield from part
