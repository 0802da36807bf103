"""Copying one store into another through the store protocols alone — the path from one ERP
server on SQLite to several on PostgreSQL — and checking the copy.

The books the documents were posted through go first; then documents with their lines,
breakdown, request and log, in batches of one transaction each; then credit allocations, open
queue entries (unclaimed: leases start afresh), reference data, the exemption database, exempt
customers (certificates, single-use orders, customer cards, certificate requests, TXEEXP notes),
journals and the export registry. Queue history (entries settled R or M) stays behind: it is
operational history, kept until purged, and each settled document's log says how it settled.
The target must hold no document yet.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal

from attrs import frozen

from taxbridge.errors import StoreError
from taxbridge.flags import FinalTaxFlag
from taxbridge.models import DocumentKind
from taxbridge.store.base import BOOKS_KEY, COPY_KEY, ReferenceData, Store, Write

BATCH = 200
"""Documents read and written per transaction."""


@frozen
class CopySummary:
    """What was copied, and the checks it passed (counts and tax totals equal on both sides)."""

    documents: int
    events: int
    queue_entries: int
    exemptions: int
    journals: int
    total_tax: Decimal
    by_flag: tuple[tuple[str, int], ...]
    resumed: bool = False
    """The target was an unfinished copy, finished by this run."""


Progress = Callable[[int, int], None]
"""Told (documents copied so far, documents in all) after each batch."""


def _batches(codes: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(codes), BATCH):
        yield codes[start : start + BATCH]


def _fingerprint(store: Store) -> tuple[int, Decimal, tuple[tuple[str, int], ...], int, int]:
    """Documents, tax, documents by flag, open queue entries and exemptions, read a batch of
    documents at a time."""
    codes = store.document_codes()
    flags: dict[str, int] = {}
    total = Decimal("0.00")
    for batch in _batches(codes):
        for document in store.get_many(batch).values():
            flags[str(document.flag)] = flags.get(str(document.flag), 0) + 1
            total += document.total_tax
    return (
        len(codes),
        total,
        tuple(sorted(flags.items())),
        len(store.queue()),
        len(store.exemptions()),
    )


def _steps(marker: str) -> list[str]:
    """The steps an unfinished copy's marker says are done."""
    try:
        found = json.loads(marker).get("done", [])
    except (ValueError, AttributeError):
        return []
    return [str(step) for step in found] if isinstance(found, list) else []


def copy_store(
    source: Store,
    target: Store,
    *,
    companies: Iterable[str] = (),
    export_kinds: Iterable[str] = (),
    source_name: str = "",
    target_name: str = "",
    progress: Progress | None = None,
) -> CopySummary:
    """Copy ``source`` into the empty ``target`` and check it; StoreError (naming the target)
    when the target holds documents already or the copy does not match. ``companies`` are the
    engine company codes whose nexus is copied; ``export_kinds`` the export registry's kinds.

    The target is marked an unfinished copy (:data:`COPY_KEY`) before anything is written and
    until the final check passes, so no bridge opens it meanwhile. A copy that was
    interrupted (killed, Ctrl-C, a lost connection) is finished by running it again: each
    document was written with its log and queue entry in one transaction, so those already
    there are skipped, and each later step says in the marker when it is done. Documents are
    read and written a batch at a time: memory stays flat whatever the store's size.
    """
    marker = target.get_meta(COPY_KEY)
    if not marker and target.document_codes():
        raise StoreError(
            "holds documents already and is no unfinished copy: copy into an empty store",
            path=target_name,
        )
    state: dict[str, object] = {"from": source_name or "another store"}
    done = _steps(marker) if marker else []

    def step(name: str) -> bool:
        """Whether step ``name`` is still to do."""
        return name not in done

    def finished(name: str) -> None:
        done.append(name)
        target.set_meta(COPY_KEY, json.dumps({**state, "done": done}))

    target.set_meta(COPY_KEY, json.dumps({**state, "done": done}))
    books = source.get_meta(BOOKS_KEY)
    if books is not None:
        target.set_meta(BOOKS_KEY, books)
    codes = source.document_codes()
    events = _copy_documents(source, target, codes, resuming=bool(marker), progress=progress)
    if step("credits"):
        for batch in _batches(codes):
            for document in source.get_many(batch).values():
                if document.kind is DocumentKind.CREDIT:
                    found = source.allocation(document.code)
                    if found is not None:
                        target.save([], [], credits=found)
        finished("credits")
    if step("reference"):
        companies_listed = sorted(set(companies) | _companies(source, codes))
        target.replace_reference(
            ReferenceData(
                tax_codes=source.active_tax_codes(),
                entity_use_codes=source.entity_use_codes(),
                nexus={code: source.nexus(code) for code in companies_listed},
                rates=source.offline_rates(),
            )
        )
        target.save_exemptions(source.exemptions())
        finished("reference")
    journals = source.journals()
    if step("journals"):
        for listed in journals:
            journal = source.journal(listed.key)
            if journal is not None and target.journal(listed.key) is None:
                target.save_journal(journal, expected=None)
        finished("journals")
    if step("customers"):
        _copy_exempt_customers(source, target)
        finished("customers")
    if step("exports"):
        for kind in export_kinds:
            registry = source.exports(kind)
            if registry:
                target.record_exports(kind, registry, dt.datetime.now(dt.UTC))
        finished("exports")
    before, after = _fingerprint(source), _fingerprint(target)
    if before != after:
        raise StoreError(
            f"the copy does not match its source: {before} != {after}; it stays marked unfinished",
            path=target_name,
        )
    target.set_meta(COPY_KEY, "")
    return CopySummary(
        documents=before[0],
        events=events,
        queue_entries=before[3],
        exemptions=before[4],
        journals=len(journals),
        total_tax=before[1],
        by_flag=before[2],
        resumed=bool(marker),
    )


def _copy_documents(
    source: Store,
    target: Store,
    codes: Sequence[str],
    *,
    resuming: bool,
    progress: Progress | None,
) -> int:
    """Each document with its log and open queue entry in one write (all or nothing), a batch
    per store call; those a resumed copy finds there already are skipped. How many log
    entries were written."""
    events = 0
    copied = 0
    for batch in _batches(codes):
        present = set(target.get_many(batch)) if resuming else set()
        found = source.get_many(batch)
        writes = []
        for code in batch:
            document = found.get(code)
            if document is None or code in present:
                continue
            logs = tuple(source.events(code))
            events += len(logs)
            entry = source.queue_entry(code) if document.flag is FinalTaxFlag.FAILED else None
            writes.append(Write((document,), logs, enqueue=entry))
        refused = [r for r in target.save_all(writes) if r is not None]
        if refused:
            raise StoreError(f"a document could not be copied: {refused[0]}")
        copied += len(batch)
        if progress is not None:
            progress(copied, len(codes))
    return events


def _companies(source: Store, codes: Sequence[str]) -> set[str]:
    """The engine companies of the source's documents."""
    found: set[str] = set()
    for batch in _batches(codes):
        found.update(document.company_code for document in source.get_many(batch).values())
    return found


def _copy_exempt_customers(source: Store, target: Store) -> None:
    now = dt.datetime.now(dt.UTC)
    certificates = source.certificates()
    if certificates:
        target.save_certificates(certificates, service="copied", at=now)
    for certificate_id, order_number in source.certificate_uses().items():
        target.use_certificate(certificate_id, order_number, now)
    for wanted, sent in source.customer_cards():
        if sent is not None:
            target.save_customer_card(sent, now, sent=True)
        target.save_customer_card(wanted, now, sent=sent == wanted)
    requests = set(target.certificate_requests())  # a copy finished again adds none twice
    for request in source.certificate_requests():
        if request not in requests:
            target.record_certificate_request(request)
    notes = set(target.customer_notes())
    for note in source.customer_notes():
        if note not in notes:
            target.add_customer_note(note)
    for (customer, region), day in source.reminded().items():
        target.record_reminded(customer, [region], day)
