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
from collections.abc import Iterable, Sequence
from decimal import Decimal

from attrs import frozen

from taxbridge.errors import StoreError
from taxbridge.models import DocumentKind, TaxDocument
from taxbridge.store.base import BOOKS_KEY, ReferenceData, Store

BATCH = 200
"""Documents written per transaction."""


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


def _fingerprint(store: Store) -> tuple[int, Decimal, tuple[tuple[str, int], ...], int, int]:
    documents = store.documents()
    flags: dict[str, int] = {}
    for document in documents:
        flags[str(document.flag)] = flags.get(str(document.flag), 0) + 1
    total = sum((document.total_tax for document in documents), Decimal("0.00"))
    return (
        len(documents),
        total,
        tuple(sorted(flags.items())),
        len(store.queue()),
        len(store.exemptions()),
    )


def _batches(documents: Sequence[TaxDocument]) -> Iterable[Sequence[TaxDocument]]:
    for start in range(0, len(documents), BATCH):
        yield documents[start : start + BATCH]


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
    for request in source.certificate_requests():
        target.record_certificate_request(request)
    for note in source.customer_notes():
        target.add_customer_note(note)


def copy_store(
    source: Store,
    target: Store,
    *,
    companies: Iterable[str] = (),
    export_kinds: Iterable[str] = (),
) -> CopySummary:
    """Copy ``source`` into the empty ``target`` and check it; StoreError when the target
    holds documents already or the copy does not match. ``companies`` are the engine company
    codes whose nexus is copied; ``export_kinds`` the export registry's kinds."""
    if target.documents():
        raise StoreError("the target store holds documents already: copy into an empty one")
    books = source.get_meta(BOOKS_KEY)
    if books is not None:
        target.set_meta(BOOKS_KEY, books)
    documents = source.documents()
    events = 0
    for batch in _batches(documents):
        logs = [event for document in batch for event in source.events(document.code)]
        events += len(logs)
        target.save(batch, logs)
    for document in documents:
        if document.kind is DocumentKind.CREDIT:
            found = source.allocation(document.code)
            if found is not None:
                target.save([], [], credits=found)
    entries = source.queue()
    for entry in entries:
        target.save([], [], enqueue=entry)
    codes = sorted(set(companies) | {document.company_code for document in documents})
    target.replace_reference(
        ReferenceData(
            tax_codes=source.active_tax_codes(),
            entity_use_codes=source.entity_use_codes(),
            nexus={code: source.nexus(code) for code in codes},
            rates=source.offline_rates(),
        )
    )
    exemptions = source.exemptions()
    target.save_exemptions(exemptions)
    journals = source.journals()
    for listed in journals:
        journal = source.journal(listed.key)
        if journal is not None:
            target.save_journal(journal, expected=None)
    _copy_exempt_customers(source, target)
    for kind in export_kinds:
        registry = source.exports(kind)
        if registry:
            target.record_exports(kind, registry, dt.datetime.now(dt.UTC))
    before, after = _fingerprint(source), _fingerprint(target)
    if before != after:
        raise StoreError(f"the copy does not match its source: {before} != {after}")
    return CopySummary(
        documents=before[0],
        events=events,
        queue_entries=before[3],
        exemptions=before[4],
        journals=len(journals),
        total_tax=before[1],
        by_flag=before[2],
    )
