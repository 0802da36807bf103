"""Expiry reminders (BNW150 "Customer Tax Exemption - Reminder"; TMSAR/CH-TYPD TXEEXP;
TMSCRM/CH-IF CH-TEEX): which customers' exemption entries or certificates have expired or
expire within the horizon, one letter per customer from the replaceable templates, sent by
SMTP, each recorded once a day as a TXEEXP customer-history note and handed to the incident
hook for the ERP's CRM.

A letter is recorded only after the server took it: an SMTP outage leaves it unsent and
unrecorded, and the next run sends it. A re-run the same day finds the note and sends nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence

import attrs

from taxbridge.certificates.customers import ExemptCustomers
from taxbridge.certificates.mail import Mailer, Message
from taxbridge.config import BridgeConfig
from taxbridge.errors import BackendError, MailError
from taxbridge.logs import get_logger
from taxbridge.models import (
    REMINDER_INCIDENT,
    REMINDER_NOTE,
    CertificateStatus,
    Customer,
    CustomerNote,
    Incident,
    Reminder,
    valid_email,
)
from taxbridge.store.base import Store

_log = get_logger("taxbridge")

DB = "exemption database"
CERTIFICATE = "certificate"
"""A reminder's sources."""

IncidentHook = Callable[[Incident], None]
"""Receives each reminder note as a CRM incident (template CH-TEEX)."""


@attrs.frozen
class ReminderLetter:
    """One customer's letter: who gets it and what it says."""

    customer_code: str
    name: str
    recipient: str
    subject: str
    body: str
    reminders: tuple[Reminder, ...]


@attrs.frozen
class ReminderRun:
    """What a reminder run did: letters rendered, sent, skipped (with why) and failed."""

    as_of: dt.date
    letters: tuple[ReminderLetter, ...]
    due: tuple[Reminder, ...] = ()
    """Everything due, letter or not (a customer without an e-mail address gets none)."""
    sent: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    failed: tuple[tuple[str, str], ...] = ()
    dry_run: bool = False


def _latest(
    entries: Sequence[tuple[str, str, dt.date | None, str, str]],
) -> dict[tuple[str, str], tuple[dt.date | None, str, str]]:
    """Per (customer, region): the furthest expiry (None: open-ended), its reference and its
    source, whichever source it comes from."""
    latest: dict[tuple[str, str], tuple[dt.date | None, str, str]] = {}
    for customer, region, expiry, reference, source in entries:
        key = (customer, region)
        if key not in latest:
            latest[key] = (expiry, reference, source)
            continue
        known = latest[key][0]
        if known is not None and (expiry is None or expiry > known):
            latest[key] = (expiry, reference, source)
    return latest


class Reminders:
    """The reminder run of one bridge."""

    def __init__(
        self,
        config: BridgeConfig,
        store: Store,
        customers: ExemptCustomers,
        mailer: Mailer,
        clock: Callable[[], dt.datetime],
    ):
        self._config = config
        self._store = store
        self._customers = customers
        self._mailer = mailer
        self._clock = clock

    def horizon(self, days: int | None) -> int:
        """Days ahead: as given, else ``[reminders] days``, else the pending check's."""
        if days is not None:
            return days
        configured = self._config.reminders.days
        return configured if configured is not None else self._config.pending.expiry_warning_days

    def due(self, as_of: dt.date, days: int | None = None, *, pull: bool = True) -> list[Reminder]:
        """Exemption entries and certificates expired, or expiring within the horizon, whose
        customer has nothing valid beyond it for that region. ``pull`` refreshes the engine's
        certificates of the customers it knows first (an outage keeps the last ones)."""
        horizon = as_of + dt.timedelta(days=self.horizon(days))
        service = self._customers.service
        if pull and service is not None and service.remote:
            for card, _sent in self._store.customer_cards():
                try:
                    self._customers.pull(card.company_code, card.customer_code)
                except BackendError as exc:
                    _log.warning(
                        "taxbridge.reminders.pull_failed",
                        customer=card.customer_code,
                        error=str(exc),
                    )
        database = [
            (e.customer_code, e.region, e.expiry, e.exemption_no or e.entity_use_code or "", DB)
            for e in self._store.exemptions()
        ]
        certificates = [
            (c.customer_code, region, c.expiry, c.exemption_no or c.id, CERTIFICATE)
            for c in self._store.certificates()
            if not c.single_use and c.status is CertificateStatus.VALID
            for region in c.regions
        ]  # a revoked or pending certificate exempts nothing, so it cannot hide an expiry
        found = [
            Reminder(customer, region, expiry, source, reference)
            for (customer, region), (expiry, reference, source) in _latest(
                [*database, *certificates]
            ).items()
            if expiry is not None and expiry <= horizon
        ]  # decided per customer and region over both sources: one valid beyond is enough
        return sorted(found, key=lambda r: (r.customer_code, r.region, r.source))

    def run(
        self,
        as_of: dt.date,
        days: int | None = None,
        *,
        send: bool = False,
        customers: Mapping[str, Customer] | None = None,
        incident: IncidentHook | None = None,
        pull: bool = True,
    ) -> ReminderRun:
        """Render a letter per customer; with ``send``, mail each one not sent today, record
        its TXEEXP note and raise its CH-TEEX incident. Without it (a dry run) nothing is sent
        or recorded."""
        reminders = self.due(as_of, days, pull=pull)
        by_customer: dict[str, list[Reminder]] = {}
        for reminder in reminders:
            by_customer.setdefault(reminder.customer_code, []).append(reminder)
        letters: list[ReminderLetter] = []
        skipped: list[tuple[str, str]] = []
        noted = {
            n.customer_code
            for n in self._store.customer_notes(note_type=REMINDER_NOTE)
            if n.day == as_of
        }
        last = self._store.reminded()
        again = dt.timedelta(days=self._config.reminders.again_after_days)
        for code, items in by_customer.items():
            fresh = [
                r
                for r in items
                if (code, r.region) not in last or as_of >= last[(code, r.region)] + again
            ]
            if not fresh:
                latest = max(last[(code, r.region)] for r in items)
                skipped.append((code, f"reminded already on {latest.isoformat()}"))
                continue
            name, recipient = self._addressee(code, customers)
            if not valid_email(recipient):
                skipped.append((code, f"no valid e-mail address ({recipient!r})"))
                continue
            letter = self._letter(code, name, recipient, tuple(fresh), as_of)
            if send and code in noted:
                skipped.append((code, f"reminded already on {as_of.isoformat()}"))
                continue
            letters.append(letter)
        if not send:
            return ReminderRun(
                as_of, tuple(letters), tuple(reminders), skipped=tuple(skipped), dry_run=True
            )
        sent: list[str] = []
        failed: list[tuple[str, str]] = []
        for letter in letters:
            try:
                self._mailer.send([Message(letter.recipient, letter.subject, letter.body)])
            except MailError as exc:
                failed.append((letter.customer_code, str(exc)))
                _log.warning(
                    "taxbridge.reminders.unsent", customer=letter.customer_code, error=str(exc)
                )
                continue
            note = CustomerNote(
                letter.customer_code, REMINDER_NOTE, as_of, self._note_text(letter), self._clock()
            )
            if not self._store.add_customer_note(note):
                skipped.append((letter.customer_code, "another run recorded it first"))
                continue
            self._store.record_reminded(
                letter.customer_code, [r.region for r in letter.reminders], as_of
            )
            sent.append(letter.customer_code)
            _log.info(
                "taxbridge.reminders.sent",
                customer=letter.customer_code,
                regions=[r.region for r in letter.reminders],
            )
            if incident is not None:
                incident(Incident(REMINDER_INCIDENT, note, letter.recipient, letter.reminders))
        return ReminderRun(
            as_of, tuple(letters), tuple(reminders), tuple(sent), tuple(skipped), tuple(failed)
        )

    def _addressee(self, code: str, customers: Mapping[str, Customer] | None) -> tuple[str, str]:
        customer = (customers or {}).get(code)
        if customer is not None:
            return customer.name or code, customer.certificate_email
        found = self._store.customer_card(code)
        if found is not None:
            return found[0].name, found[0].email
        return code, ""

    def _letter(
        self, code: str, name: str, recipient: str, items: tuple[Reminder, ...], as_of: dt.date
    ) -> ReminderLetter:
        ended = [r.expired_on(as_of) for r in items]
        status = (
            "has expired"
            if all(ended)
            else ("has expired or expires soon" if any(ended) else "expires soon")
        )
        lines = []
        for reminder in sorted(items, key=lambda r: (not r.expired_on(as_of), r.expiry)):
            state = "expired on" if reminder.expired_on(as_of) else "expires on"
            what = (
                f"certificate {reminder.reference}"
                if reminder.source == "certificate"
                else (f"exemption {reminder.reference}" if reminder.reference else "exemption")
            )
            lines.append(f"  {reminder.region}: {what} {state} {reminder.expiry.isoformat()}")
        values = {
            "customer": code,
            "name": name,
            "status": status,
            "regions": "\n".join(lines),
            "link": self._config.certificates.link_for(code)
            or "(reply with the certificate attached)",
            "expiry": min(r.expiry for r in items).isoformat(),
            "as_of": as_of.isoformat(),
        }
        settings = self._config.reminders
        return ReminderLetter(
            code,
            name,
            recipient,
            settings.subject.format_map(values),
            settings.body.format_map(values),
            items,
        )

    @staticmethod
    def _note_text(letter: ReminderLetter) -> str:
        regions = ", ".join(f"{r.region} {r.expiry.isoformat()}" for r in letter.reminders)
        return f"exemption reminder sent to {letter.recipient}: {regions}"
