"""The public entry point: one method per lifecycle stage, each returning the stored tax document.

:class:`TaxBridge` wires one backend, one store and the config to the modules that do the work
(:mod:`~taxbridge.lifecycle`, :mod:`~taxbridge.posting`, :mod:`~taxbridge.queue`,
:mod:`~taxbridge.claims`, :mod:`~taxbridge.quotations`, :mod:`~taxbridge.exemptions`,
:mod:`~taxbridge.reference`) and delegates to them. No stage lets a backend failure escape:
estimates degrade to the offline table, and a posting that fails is stored with flag U and
queued, so the ERP's invoicing run goes on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path

from taxbridge.accounting import (
    EngineBooks,
    EngineReconciliation,
    GLReconciliation,
    Ledger,
    StateReport,
)
from taxbridge.backends.base import Capabilities, PingResult, TaxBackend
from taxbridge.certificates import (
    CertificateService,
    ExemptCustomers,
    IncidentHook,
    LocalCertificates,
    Mailer,
    ReminderRun,
    Reminders,
    SyncSummary,
    build_service,
)
from taxbridge.claims import Claims
from taxbridge.config import BridgeConfig, load_config
from taxbridge.context import StageContext, utcnow
from taxbridge.errors import NoCertificateService
from taxbridge.exemptions import EntityUseCodes, Exemptions
from taxbridge.factory import build, build_backend
from taxbridge.files import Files
from taxbridge.lifecycle import Inquiry, Lifecycle, PendingCheck
from taxbridge.models import (
    Certificate,
    CertificateCheck,
    CertificateRequest,
    Claim,
    Customer,
    CustomerNote,
    DateRange,
    Exemption,
    Invoice,
    Journal,
    JurisdictionLine,
    Order,
    Quotation,
    Reminder,
    TaxDocument,
    WorkfileLine,
)
from taxbridge.posting import Posting
from taxbridge.queue import (
    RepostSummary,
    RetryPolicy,
    UnpostedDocument,
    UnpostedQueue,
)
from taxbridge.quotations import Quote, quote
from taxbridge.reference import Reference, RefreshSummary
from taxbridge.rules import Context
from taxbridge.store.base import SettledEntry, Store


class TaxBridge:
    """Tax for an ERP's order lifecycle over a pluggable backend and a durable store.

    ``offline`` replaces the offline table the bridge builds from its store; ``certificates``
    the certificate service ``[certificates]`` names, ``mailer`` the SMTP mailer; ``retry`` is
    the unposted queue's schedule. ``clock`` (an aware ``datetime``; the wall clock in UTC by
    default) is the bridge's only "now": every date it fills in itself comes from it (see
    docs/lifecycle.md, "Dates and the clock"), so a test or a replay sets it. A store with no
    offline table yet gets one when the bridge starts (from the engine when it hands out
    rates), unless ``seed_offline`` is off: a bridge that only reads never calls the engine.
    """

    def __init__(
        self,
        config: BridgeConfig,
        backend: TaxBackend,
        store: Store,
        *,
        offline: TaxBackend | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        retry: RetryPolicy | None = None,
        seed_offline: bool = True,
        certificates: CertificateService | None = None,
        mailer: Mailer | None = None,
    ):
        self.config = config
        self.backend = backend
        self.store = store
        self.clock = clock
        self.retry = retry or RetryPolicy()
        self.reference = Reference(
            config, backend, store, offline=offline, seed=seed_offline, clock=clock
        )
        entity_use_codes = EntityUseCodes(store, Capabilities(backend).entity_use_codes)
        self.exemption_db = Exemptions(config, store, clock, entity_use_codes)
        self.mailer = mailer or Mailer(config.smtp)
        """Outgoing mail (``[smtp]``): local certificate requests and reminder letters."""
        service = certificates or build_service(
            config, backend, store, self.mailer, clock=clock, reasons=entity_use_codes
        )
        self.exempt_customers = ExemptCustomers(config, store, service, clock, entity_use_codes)
        """Exempt customers' certificates (``[certificates] service``)."""
        self.reminders = Reminders(config, store, self.exempt_customers, self.mailer, clock)
        mapping = Context(
            nexus=self.reference.nexus_for,
            exemptions=self.exemption_db.evidence_for,
            zip_states=self.reference.zip_states,
            certificate=self.exempt_customers.evidence,
        )
        ctx = StageContext(config, backend, store, self.reference, clock)
        self.lifecycle = Lifecycle(ctx, self.exemption_db, mapping, self.exempt_customers)
        self.posting = Posting(ctx, self.retry, mapping, lease=config.lease)
        self.claims = Claims(ctx, self.lifecycle, self.posting, self.exemption_db, mapping)
        self.queue = UnpostedQueue(ctx, self.posting)
        self.ledger = Ledger(config, store, clock)
        self.engine_books = EngineBooks(ctx, self.posting, self.retry)
        self.files = Files(store, clock, self.queue.mark_manual, entity_use_codes.check)
        """The seeds' files: AvaTax import, CertCapture customers and ECMS certificates."""
        self._ctx = ctx
        self._mapping = mapping

    @classmethod
    def from_config(cls, path: str | Path) -> TaxBridge:
        """Build a bridge from a TOML file: its backend and its store."""
        return cls.from_settings(load_config(path))

    @classmethod
    def from_settings(
        cls, config: BridgeConfig, *, create: bool = True, read_only: bool = False
    ) -> TaxBridge:
        """Build a bridge, its backend and its store from a config object. Without ``create``
        the store must exist already; ``read_only`` never calls the engine while starting."""
        backend, store = build(config, create=create)
        return cls(config, backend, store, seed_offline=not read_only)

    @staticmethod
    def ping_engine(config: BridgeConfig) -> tuple[str, PingResult | None]:
        """The backend's name and whether it answers and knows our credentials (None: a
        backend with nothing to reach); no store is opened."""
        backend = build_backend(config)
        try:
            pingable = Capabilities(backend).ping
            return backend.name, pingable.ping() if pingable is not None else None
        finally:
            backend.close()

    def close(self) -> None:
        """Close the certificate service, the backend and the store."""
        if self.exempt_customers.service is not None:
            self.exempt_customers.service.close()
        self.backend.close()
        self.store.close()

    def __enter__(self) -> TaxBridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- stages --------------------------------------------------------------------------------

    def on_entry(self, order: Order, *, program: str | None = None) -> TaxDocument:
        """Order entry: the engine if online-at-entry is on (N), else the offline table (blank).

        With ``program`` (the ERP program calling), addresses are validated per
        TMSCRM/AV-DFN2 (bypass) and AV-DFN3 (hard error); other programs get a warning.
        """
        return self.lifecycle.on_entry(order, program=program)

    def on_pending_check(self, order: Order, *, program: str | None = None) -> PendingCheck:
        """Pending check: recalculate and say why the order must pend."""
        return self.lifecycle.on_pending_check(order, program=program)

    def on_pick(self, order: Order, *, program: str | None = None) -> TaxDocument:
        """Pick confirmation: recalculate (short picks change quantities)."""
        return self.lifecycle.on_pick(order, program=program)

    def on_despatch(self, order: Order, *, program: str | None = None) -> TaxDocument:
        """Despatch confirmation: recalculate."""
        return self.lifecycle.on_despatch(order, program=program)

    def on_invoice(self, invoice: Invoice, *, program: str | None = None) -> TaxDocument:
        """Invoicing, the final call: post ``A-<number>`` (Y), or store it U and queue it."""
        return self.posting.on_invoice(invoice, program=program)

    def recalculate(self, code: str) -> TaxDocument:
        """Recal: calculate a blank or N document again with the engine."""
        return self.lifecycle.recalculate(code)

    def inquiry(self, code: str) -> Inquiry:
        """Transaction inquiry: the document with its breakdown, flag and log."""
        return self.lifecycle.inquiry(code)

    # -- claims and quotations -----------------------------------------------------------------

    def on_claim_pending(
        self, claim: Claim, *, update: bool = False, program: str | None = None
    ) -> PendingCheck:
        """Claims pending check (BNO155B; with ``update``, BNO155BC stores its tax)."""
        return self.claims.on_claim_pending(claim, update=update, program=program)

    def claim_inquiry(self, claim: Claim) -> Inquiry:
        """Claims inquiry: calculate the claim's tax now (never posts)."""
        return self.claims.claim_inquiry(claim)

    def on_claim_invoice(self, claim: Claim, *, program: str | None = None) -> TaxDocument:
        """Claims invoicing: post the credit as a ReturnInvoice ``B-<number>``, or U and queue."""
        return self.claims.on_claim_invoice(claim, program=program)

    def credit_from_invoice(
        self,
        invoice_code: str,
        lines: Sequence[str] | None = None,
        *,
        number: str | None = None,
        claim_date: dt.date | None = None,
    ) -> Claim:
        """Credit from invoice (BNO155F): a claim crediting what is left of a stored invoice,
        dated ``claim_date`` or, when None, today by the bridge's clock."""
        return self.claims.credit_from_invoice(
            invoice_code, lines, number=number, claim_date=claim_date
        )

    def quote(self, quotation: Quotation) -> Quote:
        """The tax of a customer quotation (seed 004), calculated and never saved."""
        return quote(self._ctx, self._mapping, quotation)

    # -- the unposted queue --------------------------------------------------------------------

    def unposted(self) -> list[TaxDocument]:
        """Documents with flag U, in code order."""
        return [found.document for found in self.queue.unposted()]

    def unposted_entries(self, *, needs_fix: bool | None = None) -> list[UnpostedDocument]:
        """U documents with their queue entries (attempts, next try, last error, needs fix)."""
        return self.queue.unposted(needs_fix=needs_fix)

    def repost(
        self,
        code: str | None = None,
        *,
        limit: int | None = None,
        concurrency: int = 1,
        dry_run: bool = False,
        worker: str | None = None,
        lease: dt.timedelta | None = None,
        progress: Callable[[str, str], None] | None = None,
    ) -> RepostSummary:
        """The scheduled job: repost due U documents (or just ``code``): U -> R, or stay U.
        Each claim lasts ``lease`` (default ``[queue] lease_seconds``)."""
        return self.queue.repost(
            code,
            limit=limit,
            concurrency=concurrency,
            dry_run=dry_run,
            worker=worker,
            lease=lease or self.config.lease,
            progress=progress,
        )

    def due(self) -> int:
        """How many U documents a repost run would take now (the bridge's clock)."""
        return self.queue.due()

    def settled(self) -> list[SettledEntry]:
        """Queue history: documents settled R or M, oldest first, until purged."""
        return self.queue.settled()

    def purge(self, older_than: dt.timedelta) -> int:
        """Delete queue history settled more than ``older_than`` before the bridge's clock; U
        entries always stay."""
        return self.queue.purge(older_than)

    def mark_manual(self, code: str, reason: str, user: str) -> TaxDocument:
        """A U document was posted by hand outside the ERP: U -> M, with who and why logged."""
        return self.queue.mark_manual(code, reason, user)

    # -- accounting: month-end -----------------------------------------------------------------

    def workfile(
        self, period: DateRange | str, company: str | None = None
    ) -> Iterator[WorkfileLine]:
        """The tax workfile (BNO155G): posted invoice and credit lines of a period (``YYYY-MM``
        or a DateRange), of one ERP company or all, streamed."""
        return self.ledger.workfile(DateRange.of(period), company)

    def workfile_jurisdictions(
        self, period: DateRange | str, company: str | None = None
    ) -> Iterator[JurisdictionLine]:
        """The jurisdiction breakdown of the workfile's documents, streamed."""
        return self.ledger.jurisdictions(DateRange.of(period), company)

    def state_report(self, period: DateRange | str, company: str | None = None) -> StateReport:
        """Sales tax by state: amount, not taxed, taxable and tax per company and region."""
        return self.ledger.state_report(DateRange.of(period), company)

    def generate_journal(self, period: DateRange | str, company: str | None = None) -> Journal:
        """Generate (or regenerate, while unposted) the GL tax journal of a period (BNO010),
        stamped ``generated_at`` by the bridge's clock."""
        return self.ledger.generate_journal(DateRange.of(period), company)

    def post_journal(
        self, period: DateRange | str, company: str | None = None, *, user: str
    ) -> Journal:
        """Post a generated journal to the GL: locked from then on (``posted_at`` by the
        bridge's clock)."""
        return self.ledger.post_journal(DateRange.of(period), company, user=user)

    def journal(self, period: DateRange | str, company: str | None = None) -> Journal:
        """The stored journal of a period, with its lines."""
        return self.ledger.journal(DateRange.of(period), company)

    def reconcile_gl(
        self,
        period: DateRange | str,
        company: str | None = None,
        *,
        differences_only: bool = False,
        tolerance: Decimal = Decimal("0.00"),
    ) -> GLReconciliation:
        """Sales versus GL tax by process number (BNI010A); Show Diff with
        ``differences_only``."""
        return self.ledger.reconcile_gl(
            DateRange.of(period), company, differences_only=differences_only, tolerance=tolerance
        )

    def reconcile_engine(
        self,
        period: DateRange | str,
        company: str | None = None,
        *,
        fix: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> EngineReconciliation:
        """The engine's documents of a period against the store; ``fix`` takes each finding's
        safe action (adopt, requeue, record a void)."""
        return self.engine_books.reconcile(
            DateRange.of(period), company, fix=fix, progress=progress
        )

    def use_engine(self) -> tuple[str | None, str]:
        """Record this bridge's engine books as the store's, on purpose (a sandbox-to-production
        switch): what the store had on record (None: nothing) and what it has now."""
        return self._ctx.move_books()

    def void(self, code: str, reason: str) -> TaxDocument:
        """Void a posted invoice or credit at the engine and record it (reports leave it out)."""
        return self.engine_books.void(code, reason)

    # -- reference data, exemptions, the engine ------------------------------------------------

    def refresh(self, as_of: dt.date | None = None) -> RefreshSummary:
        """End-of-day refresh from the backend in one transaction (tax codes, entity use codes,
        nexus and offline rates in force on ``as_of``, else today by the bridge's clock); a
        failure raises and keeps yesterday's tables."""
        return self.reference.refresh(as_of or self.clock().date())

    def add_exemption(self, exemption: Exemption) -> None:
        """Add (or replace) a customer exemption for a region and period (BNW150)."""
        self.exemption_db.add(exemption)

    def remove_exemption(self, customer_code: str, region: str, effective: dt.date) -> bool:
        """Remove a customer exemption; False when there was none."""
        return self.exemption_db.remove(customer_code, region, effective)

    def exemptions(self, customer_code: str | None = None) -> list[Exemption]:
        """The exemption database, for one customer or all."""
        return self.exemption_db.entries(customer_code)

    # -- exempt customers and certificates (seeds 000, 002, 003) ---------------------------------

    def certificate_check(self, order: Order) -> CertificateCheck | None:
        """Does a certificate cover this exempt customer's order (ship-to region, order date)?
        Syncs the customer card and pulls certificates back first; None: not an exempt
        customer, or no certificate service."""
        return self.exempt_customers.check(order)

    def certificate_status(
        self, customer_code: str, region: str, *, company_code: str | None = None
    ) -> Certificate | None:
        """The service's answer for today: the certificate exempting the customer in the
        region, if any (AvaTax ListValidCertificatesForCustomer)."""
        service = self.exempt_customers.service
        if service is None:
            raise NoCertificateService("a certificate status")
        company = company_code or self.exempt_customers.company_of(customer_code)
        return service.valid_certificate(company, customer_code, region.strip().upper())

    def request_certificate(
        self,
        customer: Customer,
        regions: Sequence[str],
        reasons: Sequence[str] = (),
        *,
        company_code: str | None = None,
    ) -> CertificateRequest:
        """Send the customer a certificate request (CertExpress invitation, or an e-mail with
        the upload link) to its TAX contact, else its A/P e-mail."""
        return self.exempt_customers.request(customer, regions, reasons, company_code=company_code)

    def certificates(
        self, customer_code: str, *, pull: bool = False, company_code: str | None = None
    ) -> list[Certificate]:
        """The customer's certificates as the store has them; ``pull`` asks the service first."""
        if pull:
            company = company_code or self.exempt_customers.company_of(customer_code)
            self.exempt_customers.pull(company, customer_code)
        return self.store.certificates(customer_code)

    def add_certificate(self, certificate: Certificate) -> Certificate:
        """Store a certificate the customer uploaded (local certificate service only: AvaTax's
        come back through CertExpress and are pulled on the next order)."""
        service = self.exempt_customers.service
        if not isinstance(service, LocalCertificates):
            raise NoCertificateService("adding a certificate by hand (local service)")
        return service.add(certificate)

    def sync_customers(
        self, customers: Iterable[Customer] = (), *, company_code: str | None = None
    ) -> SyncSummary:
        """Send the certificate service every customer card it lacks or has out of date, after
        recording the cards of ``customers`` (the exempt ones; ``company_code``: their engine
        company, default the first mapped)."""
        company = company_code or self.config.companies[0].company_code
        self.exempt_customers.want(customers, company)
        return self.exempt_customers.sync_pending()

    def exemption_reminders(
        self, as_of: dt.date | None = None, days: int | None = None
    ) -> list[Reminder]:
        """Exemption entries and certificates expired or expiring within ``days`` (default:
        ``[reminders] days``, else the pending check's horizon) of ``as_of`` (default: today
        by the bridge's clock)."""
        return self.reminders.due(as_of or self.clock().date(), days)

    def send_reminders(
        self,
        as_of: dt.date | None = None,
        days: int | None = None,
        *,
        dry_run: bool = False,
        customers: Mapping[str, Customer] | None = None,
        incident: IncidentHook | None = None,
    ) -> ReminderRun:
        """Render the reminder letters of ``as_of`` (default: today by the bridge's clock) and,
        unless ``dry_run``, mail them, recording each as a TXEEXP note once a day and handing it
        to ``incident`` (CH-TEEX)."""
        return self.reminders.run(
            as_of or self.clock().date(),
            days,
            send=not dry_run,
            customers=customers,
            incident=incident,
        )

    def customer_notes(self, customer_code: str | None = None) -> list[CustomerNote]:
        """Customer-history notes (TXEEXP reminders), oldest first."""
        return self.store.customer_notes(customer_code)

    def ping(self) -> PingResult | None:
        """Ask the engine whether it answers and knows our credentials; None for a backend
        with nothing to reach (the embedded ones)."""
        pingable = Capabilities(self.backend).ping
        return pingable.ping() if pingable is not None else None
