"""Exempt customers on orders (seed 002): the customer card synced with the certificate service
(created on the first order, changes sent at the next one, ship-tos linked to their bill-to),
certificates pulled back into the store, the coverage of an order's ship-to region on its date,
single-use certificates given to one order, and certificate requests.

The store keeps what the service last said, so pick, despatch and invoicing decide without a
call, and an order still gets an answer (``stale``) while the service is down."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import attrs

from taxbridge.certificates.base import CertificateService
from taxbridge.config import BridgeConfig
from taxbridge.errors import BackendError, InvalidFieldError, NoCertificateService
from taxbridge.logs import get_logger
from taxbridge.models import (
    Address,
    Certificate,
    CertificateCheck,
    CertificateRequest,
    Coverage,
    Customer,
    CustomerCard,
    Order,
    valid_email,
)
from taxbridge.models.exempt import TAX_CONTACT_ROLE, check_region
from taxbridge.store.base import Store

_log = get_logger("taxbridge")


@attrs.frozen
class SyncSummary:
    """What a customer sync did: cards created, updated, unchanged and failed (with why)."""

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: int = 0
    failed: tuple[tuple[str, str], ...] = ()


class ExemptCustomers:
    """The certificate workflow of one bridge (``[certificates] service``)."""

    def __init__(
        self,
        config: BridgeConfig,
        store: Store,
        service: CertificateService | None,
        clock: Callable[[], dt.datetime],
        entity_use_codes: Callable[[], Mapping[str, str]],
    ):
        self._config = config
        self._store = store
        self.service = service
        self._clock = clock
        self._entity_use_codes = entity_use_codes

    @property
    def active(self) -> bool:
        """True when exempt customers go through a certificate service."""
        return self.service is not None

    def _require(self, action: str) -> CertificateService:
        if self.service is None:
            raise NoCertificateService(action)
        return self.service

    # -- the customer card ---------------------------------------------------------------------

    def card_for(
        self, customer: Customer, company_code: str, order: Order | None = None
    ) -> CustomerCard:
        """The card the ERP's data gives now: the customer's first address (else the order's
        ship-to), its ship-to zones, and its active certificates today."""
        address = (
            customer.addresses[0] if customer.addresses else (order.ship_to if order else None)
        )
        if address is None:
            raise InvalidFieldError(
                "Customer", "addresses", customer.code, "has no address for the certificate card"
            )
        today = self._clock().date()
        active = sum(1 for c in self._store.certificates(customer.code) if c.valid_on(today))
        zones = {a.region for a in customer.addresses} or {address.region}
        return CustomerCard(
            customer_code=customer.code,
            company_code=company_code,
            name=customer.name or customer.code,
            line1=address.line1,
            line2=address.line2,
            city=address.city,
            region=address.region,
            postal_code=address.postal_code,
            country=address.country,
            email=customer.certificate_email,
            bill_to=customer.bill_to,
            exposure_zones=tuple(zones),
            active_certificates=active,
        )

    def sync_card(self, card: CustomerCard) -> str:
        """Send the card if the service lacks it or it changed in a field the service keeps:
        ``created``, ``updated`` or ``unchanged``. The store keeps what was sent."""
        service = self._require("syncing a customer")
        found = self._store.customer_card(card.customer_code)
        sent = found[1] if found is not None else None
        changed = [name for name in card.differences(sent) if name in service.kept_fields]
        if sent is not None and not changed:
            if found is not None and found[0] != card:
                self._store.save_customer_card(card, self._clock(), sent=True)
            return "unchanged"
        self._store.save_customer_card(card, self._clock(), sent=False)
        started = time.perf_counter()
        service.push_customer(card, sent)
        if card.bill_to and (sent is None or sent.bill_to != card.bill_to):
            service.link_ship_tos(card.company_code, card.bill_to, [card.customer_code])
        self._store.save_customer_card(card, self._clock(), sent=True)
        outcome = "created" if sent is None else "updated"
        _log.info(
            "taxbridge.certificates.customer",
            customer=card.customer_code,
            outcome=outcome,
            fields=sorted(changed),
            service=service.name,
            elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return outcome

    def known_customer(self, customer_code: str, email: str = "") -> Customer:
        """The customer as its stored card knows it (name, address, e-mail), for a request made
        without the ERP's master data at hand; ``email`` overrides the card's."""
        found = self._store.customer_card(customer_code)
        card = found[0] if found else None
        if card is None:
            return Customer(customer_code, addresses=(), email=email)
        address = Address(card.line1, card.city, card.region, card.postal_code, card.country)
        return Customer(customer_code, card.name, addresses=(address,), email=email or card.email)

    def holders(self) -> dict[str, str]:
        """Which order took each single-use certificate (certificate id -> order number)."""
        return self._store.certificate_uses()

    def want(self, customers: Iterable[Customer], company_code: str) -> int:
        """Record the card each exempt customer's master data gives now, to be sent by the next
        :meth:`sync_pending` (the ERP's customer file of ``taxbridge customers sync
        --from-file``); returns how many were recorded."""
        count = 0
        for customer in customers:
            if customer.is_exempt:
                self._store.save_customer_card(
                    self.card_for(customer, company_code), self._clock(), sent=False
                )
                count += 1
        return count

    def sync_pending(self) -> SyncSummary:
        """Send every card the service does not have as the store wants it (after an outage
        or a bulk change): ``taxbridge customers sync``."""
        created: list[str] = []
        updated: list[str] = []
        failed: list[tuple[str, str]] = []
        unchanged = 0
        for wanted, _sent in self._store.customer_cards(unsynced=True):
            try:
                outcome = self.sync_card(wanted)
            except BackendError as exc:
                failed.append((wanted.customer_code, str(exc)))
                continue
            if outcome == "created":
                created.append(wanted.customer_code)
            elif outcome == "updated":
                updated.append(wanted.customer_code)
            else:
                unchanged += 1
        return SyncSummary(tuple(created), tuple(updated), unchanged, tuple(failed))

    def pull(self, company_code: str, customer_code: str) -> list[Certificate]:
        """The customer's certificates from the service, kept in the store (Ex Code,
        Exemption No, Cert Signed, Cert Exp Date, Ex State and what decides coverage)."""
        service = self._require("pulling certificates")
        found = service.certificates(company_code, customer_code)
        if service.remote:
            self._store.save_certificates(
                found, service=service.name, at=self._clock(), replace_customer=customer_code
            )
        return found

    # -- orders --------------------------------------------------------------------------------

    def check(self, order: Order) -> CertificateCheck | None:
        """On entry and pending check of an exempt customer's order: sync the card, pull the
        certificates back, and say whether one covers the ship-to region on the order date
        (None: not an exempt customer, or no certificate service)."""
        customer = order.customer
        if self.service is None or not customer.is_exempt:
            return None
        company_code = self._config.company_code_for(order.company, order.item_level1)
        stale = False
        try:
            self.sync_card(self.card_for(customer, company_code, order))
            self.pull(company_code, customer.code)
        except BackendError as exc:
            stale = True
            _log.warning(
                "taxbridge.certificates.unavailable",
                customer=customer.code,
                error=str(exc),
                service=self.service.name,
            )
        checked = self.coverage(
            customer.code,
            order.ship_to.region,
            order.order_date,
            order_number=order.number,
            po_number=order.purchase_order_no,
        )
        return attrs.evolve(checked, stale=stale) if stale else checked

    def coverage(
        self,
        customer_code: str,
        region: str,
        day: dt.date,
        *,
        order_number: str = "",
        po_number: str = "",
    ) -> CertificateCheck:
        """Coverage from the certificates in the store. A single-use certificate goes to the
        first order that asks (with its PO number, if it names one) and covers only that one."""
        certificates = self._store.certificates(customer_code)
        check = CertificateCheck
        if not certificates:
            return check(
                customer_code,
                region,
                day,
                Coverage.MISSING,
                None,
                f"customer {customer_code}: no exemption certificate on file",
            )
        in_region = [c for c in certificates if region in c.regions]
        if not in_region:
            return check(
                customer_code,
                region,
                day,
                Coverage.NOT_COVERED,
                None,
                f"customer {customer_code}: no certificate covers {region}; taxed",
            )
        valid = [c for c in in_region if c.valid_on(day)]
        other_po: list[str] = []
        for certificate in sorted(valid, key=lambda c: (c.single_use, c.id)):
            if not certificate.single_use:
                return check(
                    customer_code,
                    region,
                    day,
                    Coverage.COVERED,
                    certificate,
                    f"certificate {certificate.id} covers {region}",
                )
            if not certificate.for_po(po_number):
                other_po.append(" or ".join(certificate.po_numbers))
                continue
            if order_number:
                holder = self._store.use_certificate(certificate.id, order_number, self._clock())
            else:
                holder = self._store.certificate_uses().get(certificate.id, "")
            if holder == order_number and order_number:
                return check(
                    customer_code,
                    region,
                    day,
                    Coverage.COVERED,
                    certificate,
                    f"single-use certificate {certificate.id} covers order {holder}",
                )
        if valid:
            asked = f"PO {po_number}" if po_number else "no PO number"
            why = (
                f"is for PO {', '.join(sorted(other_po))}, and the order has {asked}"
                if len(other_po) == len(valid)
                else "went to another order"
            )
            return check(
                customer_code,
                region,
                day,
                Coverage.USED,
                valid[0],
                f"customer {customer_code}: the single-use certificate for {region} {why}",
            )
        latest = max(in_region, key=lambda c: c.expiry or dt.date.max)
        ended = latest.expiry.isoformat() if latest.expiry else "not valid"
        why = (
            "expired on " + ended
            if latest.expiry and latest.expiry < day
            else f"is {latest.status.value}, not valid on {day.isoformat()}"
        )
        return check(
            customer_code,
            region,
            day,
            Coverage.EXPIRED,
            latest,
            f"customer {customer_code}: certificate {latest.id} for {region} {why}",
        )

    def evidence(
        self, customer_code: str, region: str, day: dt.date, order_number: str, po_number: str
    ) -> tuple[str, str | None] | None:
        """(exemption number, entity use code) of the certificate covering the document, for
        the request mapping; None when none does."""
        checked = self.coverage(
            customer_code, region, day, order_number=order_number, po_number=po_number
        )
        certificate = checked.certificate
        if checked.coverage is not Coverage.COVERED or certificate is None:
            return None
        codes = self._entity_use_codes()
        reason = certificate.exempt_reason if certificate.exempt_reason in codes else None
        return (certificate.exemption_no or f"CERT {certificate.id}")[:25], reason

    # -- requests ------------------------------------------------------------------------------

    def request(
        self,
        customer: Customer,
        regions: Sequence[str],
        reasons: Sequence[str] = (),
        *,
        company_code: str | None = None,
    ) -> CertificateRequest:
        """Send a certificate request to the customer's TAX contact, else its A/P e-mail.
        A bad address, region or reason raises :class:`InvalidFieldError`; nothing is sent
        or stored then."""
        service = self._require("a certificate request")
        recipient = customer.certificate_email
        if recipient == customer.email and any(
            contact.role == TAX_CONTACT_ROLE and contact.email for contact in customer.contacts
        ):
            _log.warning(
                "taxbridge.certificates.request_fallback",
                customer=customer.code,
                reason="the TAX contact's e-mail is not valid; sent to the A/P e-mail",
            )
        if not valid_email(recipient):
            raise InvalidFieldError(
                "Customer",
                "email",
                recipient,
                f"customer {customer.code} has no valid e-mail address (TAX contact or A/P)",
            )
        if not regions:
            raise InvalidFieldError("CertificateRequest", "regions", "", "needs a region")
        for region in regions:
            check_region("CertificateRequest", "regions", region.strip().upper())
        known = service.exempt_reasons()
        for reason in reasons:
            if reason not in known:
                raise InvalidFieldError(
                    "CertificateRequest",
                    "reasons",
                    reason,
                    f"is not an exempt reason of the {service.name} service",
                )
        company = company_code or self.company_of(customer.code)
        if customer.addresses:
            self.sync_card(self.card_for(customer, company))  # the service needs the customer
        asked = CertificateRequest(
            customer.code, recipient, tuple(regions), tuple(reasons), name=customer.name
        )
        sent = service.request(company, asked, self._config.certificates.cover_letter)
        if sent.sent_at is None:  # a remote service: sent now, by the bridge's clock
            sent = attrs.evolve(sent, sent_at=self._clock())
        self._store.record_certificate_request(sent)
        _log.info(
            "taxbridge.certificates.request",
            customer=customer.code,
            regions=list(sent.regions),
            service=service.name,
            status=sent.status,
        )
        return sent

    def company_of(self, customer_code: str) -> str:
        """The engine company of a customer's card (else the first company's)."""
        found = self._store.customer_card(customer_code)
        if found is not None:
            return found[0].company_code
        return self._config.companies[0].company_code
