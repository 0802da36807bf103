"""Exempt customers on orders (seed 002) on both certificate services: the local one over the
store and AvaTax's CertCapture through the contract-following fake (every body checked against
the published schemas)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from conftest import DAY, NYC, fake_avatax, fake_settings, invoice, order
from smtp_server import smtp_server

from taxbridge import SQLiteStore, TaxBridge
from taxbridge.config import (
    CertificateServiceKind,
    CertificateSettings,
    ExemptionMode,
    ExemptionSettings,
    SMTPSettings,
    default_config,
)
from taxbridge.errors import (
    AuthenticationFailed,
    BackendUnavailable,
    CertificateNotFoundError,
    DocumentRejected,
    InvalidFieldError,
    NoCertificateService,
)
from taxbridge.models import (
    Address,
    Certificate,
    Contact,
    Coverage,
    Customer,
    CustomerCard,
    Exemption,
    PendCode,
)
from taxbridge.testing.fake_avatax import error_body

PITTSBURGH = Address("600 Grant St", "Pittsburgh", "PA", "15219")
EXEMPT = Customer(
    "C100",
    "Exempt Co",
    addresses=(NYC,),
    email="ap@exempt.example",
    entity_use_code="G",
    contacts=(Contact("TAX", "tax@exempt.example", "Tina Tax"),),
)


@attrs.define
class Service:
    """A bridge on one certificate service, and how a customer's upload arrives there."""

    kind: str
    bridge: TaxBridge
    upload: Callable[..., str]
    fake: Any = None
    reason: str = "G"


def _config(kind: str, port: int) -> Any:
    base = default_config()
    settings = {
        "exemptions": ExemptionSettings(mode=ExemptionMode.ENGINE),
        "certificates": CertificateSettings(
            service=CertificateServiceKind(kind),
            upload_url="https://certs.example/upload?c={customer}",
        ),
        "smtp": SMTPSettings(
            host="127.0.0.1", port=port, starttls=False, sender="tax@seller.example"
        ),
    }
    if kind == "avatax":
        settings.update(backend="avatax", backend_settings=fake_settings())
    return attrs.evolve(base, **settings)


@pytest.fixture(params=["local", "avatax"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    with smtp_server() as (port, inbox), SQLiteStore(tmp_path / "tb.db") as store:
        config = _config(request.param, port)
        if request.param == "local":
            bridge = TaxBridge(config, _local_engine(), store, clock=_clock)

            def upload_local(customer: str, region: str, **kwargs: Any) -> str:
                certificate = Certificate(
                    customer_code=customer,
                    exempt_reason=kwargs.pop("reason", "G"),
                    regions=(region,),
                    **kwargs,
                )
                return bridge.add_certificate(certificate).id

            found = Service("local", bridge, upload_local)
            found.fake = inbox
            yield found
            return
        with fake_avatax() as recording:
            fake = recording.fake
            bridge = TaxBridge(
                config,
                recording,
                store,
                clock=_clock,
                certificates=recording.inner.certificate_service(),
            )

            def upload_avatax(customer: str, region: str, **kwargs: Any) -> str:
                kwargs.setdefault("reason", "RESALE")
                kwargs.setdefault("expiry", None)
                kwargs.pop("effective", None)
                return str(fake.certcapture.upload("DEFAULT", customer, region=region, **kwargs))

            yield Service("avatax", bridge, upload_avatax, fake, reason="RESALE")


def _local_engine() -> Any:
    from taxbridge import LocalEngine, RecordingBackend

    return RecordingBackend(LocalEngine())


def _clock() -> dt.datetime:
    return dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def _exempt_order(number: str = "5001", **kwargs: Any) -> Any:
    kwargs.setdefault("customer", EXEMPT)
    return order(number, **kwargs)


def _reasons(check: Any, code: PendCode) -> list[str]:
    return [reason.message for reason in check.reasons if reason.code is code]


# -- coverage on orders ------------------------------------------------------------------------


def test_exempt_customer_with_a_valid_certificate_pays_no_tax(service: Service) -> None:
    service.upload("C100", "NY", signed=dt.date(2026, 1, 1), expiry=dt.date(2027, 12, 31))
    entered = service.bridge.on_entry(_exempt_order())
    checked = service.bridge.on_pending_check(_exempt_order())
    assert entered.total_tax == Decimal("0.00")
    assert checked.document is not None
    assert checked.document.total_tax == Decimal("0.00")
    assert _reasons(checked, PendCode.EXEMPTION_CERTIFICATE) == []
    posted = service.bridge.on_invoice(invoice("9001", _exempt_order()))
    assert posted.total_tax == Decimal("0.00")


def test_an_expired_certificate_pends_the_order_and_applies_no_exemption(
    service: Service,
) -> None:
    service.upload("C100", "NY", signed=dt.date(2024, 1, 1), expiry=dt.date(2025, 12, 31))
    checked = service.bridge.on_pending_check(_exempt_order())
    assert checked.document is not None
    assert checked.document.total_tax > 0
    (message,) = _reasons(checked, PendCode.EXEMPTION_CERTIFICATE)
    assert "expired on 2025-12-31" in message
    assert checked.document.request is not None
    assert not checked.document.request.exempt


def test_no_certificate_on_file_pends_the_order(service: Service) -> None:
    checked = service.bridge.on_pending_check(_exempt_order())
    assert _reasons(checked, PendCode.EXEMPTION_CERTIFICATE) == [
        "customer C100: no exemption certificate on file"
    ]
    entered = service.bridge.on_entry(_exempt_order("5002"))
    assert "no exemption certificate on file" in entered.last_log


def test_the_example_config_pends_an_order_that_no_certificate_covers(tmp_path: Path) -> None:
    """``taxbridge config-example`` switches the local certificate service on: a config copied
    from it must also pend the order of an exempt customer without a certificate."""
    from taxbridge import LocalEngine
    from taxbridge.config import example_config

    config = example_config(str(tmp_path / "tb.db"))
    assert "exemption_certificate" in {check.value for check in config.pending.order_checks}
    with SQLiteStore(tmp_path / "tb.db") as store:
        bridge = TaxBridge(config, LocalEngine(), store)
        checked = bridge.on_pending_check(_exempt_order())
    assert _reasons(checked, PendCode.EXEMPTION_CERTIFICATE) == [
        "customer C100: no exemption certificate on file"
    ]


def test_a_region_the_certificates_do_not_cover_is_taxed_without_pending(
    service: Service,
) -> None:
    service.upload("C100", "PA", signed=dt.date(2026, 1, 1), expiry=dt.date(2027, 12, 31))
    checked = service.bridge.on_pending_check(_exempt_order())
    assert checked.document is not None
    assert checked.document.total_tax > 0
    assert _reasons(checked, PendCode.EXEMPTION_CERTIFICATE) == []
    pa = service.bridge.on_pending_check(_exempt_order("5003", ship_to=PITTSBURGH))
    assert pa.document is not None
    assert pa.document.total_tax == Decimal("0.00")


def test_a_single_use_certificate_covers_one_order(service: Service) -> None:
    service.upload(
        "C100", "NY", signed=dt.date(2026, 1, 1), expiry=dt.date(2027, 1, 1), single_use=True
    )
    first = service.bridge.on_pending_check(_exempt_order("5001"))
    second = service.bridge.on_pending_check(_exempt_order("5002"))
    assert first.document is not None
    assert second.document is not None
    assert first.document.total_tax == Decimal("0.00")
    assert second.document.total_tax > 0
    (message,) = _reasons(second, PendCode.EXEMPTION_CERTIFICATE)
    assert "went to another order" in message
    again = service.bridge.on_pending_check(_exempt_order("5001"))
    assert again.document is not None
    assert again.document.total_tax == Decimal("0.00")
    assert service.bridge.on_invoice(invoice("9001", _exempt_order("5001"))).total_tax == 0
    assert service.bridge.on_invoice(invoice("9002", _exempt_order("5002"))).total_tax > 0


def test_a_single_use_certificate_for_a_purchase_order_covers_that_order_only(
    service: Service,
) -> None:
    service.upload(
        "C100",
        "NY",
        signed=dt.date(2026, 1, 1),
        expiry=dt.date(2027, 1, 1),
        single_use=True,
        po_numbers=["PO-77"],
    )
    other = service.bridge.on_pending_check(_exempt_order("5001"))
    assert other.document is not None
    assert other.document.total_tax > 0
    assert _reasons(other, PendCode.EXEMPTION_CERTIFICATE) == [
        "customer C100: the single-use certificate for NY is for PO PO-77, and the order has "
        "no PO number"
    ]  # no order holds it: it did not go to another order
    wrong = attrs.evolve(_exempt_order("5003"), purchase_order_no="PO-78")
    assert (
        "and the order has PO PO-78"
        in _reasons(service.bridge.on_pending_check(wrong), PendCode.EXEMPTION_CERTIFICATE)[0]
    )
    named = attrs.evolve(_exempt_order("5002"), purchase_order_no="PO-77")
    assert service.bridge.on_entry(named).total_tax == Decimal("0.00")


def test_a_single_use_certificate_for_several_purchase_orders_covers_an_order_for_any(
    service: Service,
) -> None:
    """AvaTax lists every PO a certificate is for (``poNumbers``); all of them are kept."""
    service.upload(
        "C100",
        "NY",
        signed=dt.date(2026, 1, 1),
        expiry=dt.date(2027, 1, 1),
        single_use=True,
        po_numbers=["PO-77", "PO-78"],
    )
    second = attrs.evolve(_exempt_order("5002"), purchase_order_no="PO-78")
    assert service.bridge.on_entry(second).total_tax == Decimal("0.00")
    (kept,) = service.bridge.certificates("C100")
    assert kept.po_numbers == ("PO-77", "PO-78")
    third = attrs.evolve(_exempt_order("5003"), purchase_order_no="PO-79")
    assert _reasons(service.bridge.on_pending_check(third), PendCode.EXEMPTION_CERTIFICATE) == [
        "customer C100: the single-use certificate for NY is for PO PO-77 or PO-78, and the "
        "order has PO PO-79"
    ]
    first = attrs.evolve(_exempt_order("5004"), purchase_order_no=" PO-77 ")
    assert _reasons(service.bridge.on_pending_check(first), PendCode.EXEMPTION_CERTIFICATE) == [
        "customer C100: the single-use certificate for NY went to another order"
    ]  # still one order: the first that asks with any of its POs


def test_a_customer_not_flagged_exempt_never_reaches_the_service(service: Service) -> None:
    taxed = Customer("C200", "Plain Co", addresses=(NYC,))
    checked = service.bridge.on_pending_check(order("6001", customer=taxed))
    assert checked.reasons == ()
    assert service.bridge.store.customer_card("C200") is None
    if service.fake is not None and service.kind == "avatax":
        assert not [r for r in service.fake.requests if "/customers" in r.path]


def test_the_certificate_data_pulled_back_is_what_the_erp_keeps(service: Service) -> None:
    number = service.upload(
        "C100",
        "NY",
        signed=dt.date(2026, 2, 3),
        expiry=dt.date(2028, 2, 3),
        exemption_no="EX-123",
    )
    service.bridge.on_entry(_exempt_order())
    (stored,) = service.bridge.certificates("C100")
    assert stored.id == number
    assert stored.erp_fields() == {
        "Ex Code": service.reason,
        "Exemption No": "EX-123",
        "Cert Signed": "2026-02-03",
        "Cert Exp Date": "2028-02-03",
        "Ex State": "NY",
    }


def test_a_service_outage_decides_on_the_certificates_pulled_last_time() -> None:
    with fake_avatax() as recording, _avatax_bridge(recording) as bridge:
        recording.fake.certcapture.upload(
            "DEFAULT", "C100", region="NY", signed=dt.date(2026, 1, 1), expiry=None
        )
        assert bridge.on_entry(_exempt_order("5001")).total_tax == 0
        recording.fake.outage = True
        check = bridge.certificate_check(_exempt_order("5002"))
        assert check is not None
        assert check.stale
        assert check.coverage is Coverage.COVERED
        recording.fake.outage = False


# -- the customer card --------------------------------------------------------------------------


class _avatax_bridge:
    """A bridge on the AvaTax fake's certificate service, in a temporary store."""

    def __init__(self, recording: Any, tmp: Path | None = None):
        import tempfile

        self._dir = tempfile.TemporaryDirectory()
        self.store = SQLiteStore(Path(self._dir.name) / "tb.db")
        self.bridge = TaxBridge(
            _config("avatax", 25),
            recording,
            self.store,
            clock=_clock,
            certificates=recording.inner.certificate_service(),
        )

    def __enter__(self) -> TaxBridge:
        return self.bridge

    def __exit__(self, *exc: object) -> None:
        self.store.close()
        self._dir.cleanup()


def _customer_calls(fake: Any) -> list[tuple[str, str]]:
    return [
        (r.method, r.path)
        for r in fake.requests
        if "/customers" in r.path and r.method in ("POST", "PUT") and "certexpress" not in r.path
    ]


def test_the_first_order_creates_the_card_and_later_changes_go_at_the_next_order() -> None:
    with fake_avatax() as recording, _avatax_bridge(recording) as bridge:
        fake = recording.fake
        bridge.on_entry(_exempt_order("5001"))
        bridge.on_pending_check(_exempt_order("5001"))
        bridge.on_entry(_exempt_order("5002"))
        calls = _customer_calls(fake)
        assert [method for method, _ in calls] == ["POST"]
        company = fake.companies["DEFAULT"]
        card = fake.certcapture.customers[(company, "C100")]
        assert (card["name"], card["line1"], card["emailAddress"]) == (
            "Exempt Co",
            "350 5th Ave",
            "tax@exempt.example",
        )
        renamed = attrs.evolve(EXEMPT, name="Exempt Company Inc")
        bridge.on_entry(_exempt_order("5003", customer=renamed))
        assert [method for method, _ in _customer_calls(fake)] == ["POST", "PUT"]
        assert fake.certcapture.customers[(company, "C100")]["name"] == "Exempt Company Inc"
        bridge.on_entry(_exempt_order("5004", customer=renamed))
        assert len(_customer_calls(fake)) == 2


def test_a_ship_to_customer_is_linked_to_its_bill_to_customer() -> None:
    with fake_avatax() as recording, _avatax_bridge(recording) as bridge:
        fake = recording.fake
        bridge.on_entry(_exempt_order("5001"))
        ship_to = Customer(
            "C100-S1", "Exempt Co Store 1", addresses=(PITTSBURGH,), tax_number="X1", bill_to="C100"
        )
        bridge.on_entry(_exempt_order("5002", customer=ship_to, ship_to=PITTSBURGH))
        company = fake.companies["DEFAULT"]
        assert fake.certcapture.links[(company, "C100")] == {"C100-S1"}
        assert fake.certcapture.customers[(company, "C100-S1")]["isShip"] is True
        links = [r for r in fake.requests if r.path.endswith("/shipto/link")]
        assert len(links) == 1
        bridge.on_entry(_exempt_order("5003", customer=ship_to, ship_to=PITTSBURGH))
        assert len([r for r in fake.requests if r.path.endswith("/shipto/link")]) == 1


def test_cards_the_service_missed_in_an_outage_are_sent_by_the_sync() -> None:
    with fake_avatax() as recording, _avatax_bridge(recording) as bridge:
        fake = recording.fake
        fake.outage = True
        bridge.on_entry(_exempt_order("5001"))
        fake.outage = False
        assert [card.customer_code for card, _ in bridge.store.customer_cards(unsynced=True)] == [
            "C100"
        ]
        summary = bridge.sync_customers()
        assert summary.created == ("C100",)
        assert bridge.store.customer_cards(unsynced=True) == []
        assert bridge.sync_customers().created == ()


# -- certificate requests -----------------------------------------------------------------------


def test_a_certificate_request_goes_to_the_tax_contact(service: Service) -> None:
    sent = service.bridge.request_certificate(
        EXEMPT, ["NY", "PA"], [service.reason], company_code="DEFAULT"
    )
    assert sent.recipient == "tax@exempt.example"
    assert service.bridge.store.certificate_requests("C100") == [sent]
    if service.kind == "local":
        (message,) = service.fake.to("tax@exempt.example")
        assert "Exempt" not in message["Subject"] or "C100" in message["Subject"]
        body = message.get_payload(decode=True).decode()
        assert "https://certs.example/upload?c=C100" in body
        assert "New York (NY), Pennsylvania (PA)" in body
        assert sent.link == "https://certs.example/upload?c=C100"
    else:
        (invitation,) = service.fake.certcapture.invitations
        assert invitation["recipient"] == "tax@exempt.example"
        zones = {z["id"]: z["region"] for z in service.fake.certcapture.zones}
        assert [zones[i] for i in invitation["exposureZones"]] == ["NY", "PA"]
        assert invitation["exemptReasons"] == [1]
        assert sent.link == invitation["requestLink"]
        assert sent.status == "Ready"


def test_the_local_request_is_a_letter_from_the_template(tmp_path: Path) -> None:
    """Seed 002's request, as a clerk sends it: a greeting, the customer's and the seller's
    names, regions and reasons by name (not bare codes)."""
    with smtp_server() as (port, inbox), SQLiteStore(tmp_path / "tb.db") as store:
        config = _config("local", port)
        config = attrs.evolve(
            config, certificates=attrs.evolve(config.certificates, seller="Liberty Books Ltd")
        )
        bridge = TaxBridge(config, _local_engine(), store, clock=_clock)
        bridge.request_certificate(EXEMPT, ["NY", "PA"], ["G"], company_code="DEFAULT")
        (message,) = inbox.to("tax@exempt.example")
    subject = " ".join(str(message["Subject"]).split())
    assert subject == f"Tax exemption certificate needed - {EXEMPT.name} (C100)"
    body = message.get_payload(decode=True).decode()
    assert body.startswith(f"Dear {EXEMPT.name},")
    assert "Region(s): New York (NY), Pennsylvania (PA)" in body
    assert "Exempt reason(s): Resale (G)" in body
    assert body.rstrip().endswith("Liberty Books Ltd")


def test_a_tax_contact_with_a_bad_email_falls_back_to_the_ap_email(service: Service) -> None:
    import structlog
    from structlog.testing import capture_logs

    from taxbridge.models import Contact

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(10))

    typo = attrs.evolve(EXEMPT, contacts=(Contact("TAX", email="tax@@exempt.example"),))
    with capture_logs() as logs:
        sent = service.bridge.request_certificate(typo, ["NY"], company_code="DEFAULT")
    assert sent.recipient == "ap@exempt.example"
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "taxbridge.certificates.request_fallback"
    ]


def test_without_a_tax_contact_the_request_goes_to_the_ap_email(service: Service) -> None:
    plain = attrs.evolve(EXEMPT, contacts=())
    service.upload("C100", "NY", signed=dt.date(2026, 1, 1), expiry=None)
    service.bridge.on_entry(_exempt_order(customer=plain))
    sent = service.bridge.request_certificate(plain, ["NY"])
    assert sent.recipient == "ap@exempt.example"


@pytest.mark.parametrize("email", ["", "not-an-address", "two@@example.com"])
def test_a_customer_without_a_valid_email_cannot_be_sent_a_request(
    service: Service, email: str
) -> None:
    nobody = attrs.evolve(EXEMPT, email=email, contacts=())
    with pytest.raises(InvalidFieldError, match=r"Customer\.email.*C100 has no valid e-mail"):
        service.bridge.request_certificate(nobody, ["NY"], company_code="DEFAULT")
    assert service.bridge.store.certificate_requests() == []


def test_a_request_naming_an_unknown_reason_or_region_is_refused(service: Service) -> None:
    with pytest.raises(InvalidFieldError, match="reasons.*'MADE UP'"):
        service.bridge.request_certificate(EXEMPT, ["NY"], ["MADE UP"], company_code="DEFAULT")
    with pytest.raises(InvalidFieldError, match="regions.*'ZZ'"):
        service.bridge.request_certificate(EXEMPT, ["ZZ"], company_code="DEFAULT")
    assert service.bridge.store.certificate_requests() == []


def test_an_smtp_outage_fails_the_local_request_and_records_nothing(tmp_path: Path) -> None:
    from smtp_server import free_port

    from taxbridge.errors import MailError

    with SQLiteStore(tmp_path / "tb.db") as store:
        bridge = TaxBridge(_config("local", free_port()), _local_engine(), store, clock=_clock)
        with pytest.raises(MailError, match="SMTP 127.0.0.1"):
            bridge.request_certificate(EXEMPT, ["NY"])
        assert store.certificate_requests() == []


# -- bad input ----------------------------------------------------------------------------------


def test_a_certificate_expiring_before_it_takes_effect_is_refused() -> None:
    with pytest.raises(InvalidFieldError, match=r"Certificate\.expiry.*'2026-01-01'.*effective"):
        Certificate("C1", "G", ("NY",), signed="2026-02-01", expiry="2026-01-01")
    with pytest.raises(InvalidFieldError, match=r"Certificate\.regions.*'XX'"):
        Certificate("C1", "G", ("XX",), signed="2026-02-01")
    with pytest.raises(InvalidFieldError, match=r"Certificate\.regions.*needs at least one"):
        Certificate("C1", "G", (), signed="2026-02-01")


def test_a_certificates_purchase_orders_are_kept_in_order_without_blanks_or_repeats() -> None:
    one = Certificate("C1", "G", ("NY",), signed="2026-01-01", po_numbers=" PO-1 ")
    many = Certificate("C1", "G", ("NY",), signed="2026-01-01", po_numbers=["B", " ", "A", "B"])
    assert (one.po_numbers, many.po_numbers) == (("PO-1",), ("B", "A"))
    assert many.for_po("A")
    assert not many.for_po("C")
    assert Certificate("C1", "G", ("NY",), signed="2026-01-01").for_po("anything")
    with pytest.raises(
        InvalidFieldError, match=r"Certificate\.po_numbers\[1\]: 7 must be a string"
    ):
        Certificate("C1", "G", ("NY",), signed="2026-01-01", po_numbers=["PO-1", 7])
    with pytest.raises(InvalidFieldError, match=r"Certificate\.po_numbers\[0\].*control"):
        Certificate("C1", "G", ("NY",), signed="2026-01-01", po_numbers=["PO\x00"])
    with pytest.raises(InvalidFieldError, match=r"Certificate\.po_numbers: 7 must be a string or"):
        Certificate("C1", "G", ("NY",), signed="2026-01-01", po_numbers=7)


def test_a_local_certificate_with_an_unknown_reason_is_refused_and_not_stored(
    tmp_path: Path,
) -> None:
    with SQLiteStore(tmp_path / "tb.db") as store:
        bridge = TaxBridge(_config("local", 25), _local_engine(), store, clock=_clock)
        made_up = Certificate("C100", "ZZ", ("NY",), signed=DAY)
        with pytest.raises(InvalidFieldError, match=r"Certificate\.exempt_reason.*'ZZ'"):
            bridge.add_certificate(made_up)
        assert store.certificates() == []


def test_an_exemption_with_a_made_up_entity_use_code_is_refused(bridge: TaxBridge) -> None:
    made_up = Exemption("C100", "NY", DAY, exemption_no="E1", entity_use_code="ZZ")
    with pytest.raises(InvalidFieldError, match=r"Exemption\.entity_use_code.*'ZZ'.*active"):
        bridge.add_exemption(made_up)
    assert bridge.exemptions() == []
    bridge.add_exemption(attrs.evolve(made_up, entity_use_code="G"))
    assert len(bridge.exemptions()) == 1


def test_certificate_features_without_a_service_say_how_to_turn_it_on(bridge: TaxBridge) -> None:
    with pytest.raises(NoCertificateService, match=r"\[certificates\] service"):
        bridge.request_certificate(EXEMPT, ["NY"])
    assert bridge.certificate_check(_exempt_order()) is None


def test_an_unknown_certificate_id_is_a_typed_error() -> None:
    with fake_avatax() as recording:
        certificates = recording.inner.certificate_service()
        with pytest.raises(CertificateNotFoundError, match="'999'"):
            certificates.certificate("DEFAULT", "999")


def test_the_service_status_names_the_valid_certificate(service: Service) -> None:
    number = service.upload("C100", "NY", signed=dt.date(2026, 1, 1), expiry=None)
    service.bridge.on_entry(_exempt_order())
    found = service.bridge.certificate_status("C100", "NY")
    assert found is not None
    assert found.id == number
    assert service.bridge.certificate_status("C100", "PA") is None


@pytest.mark.parametrize(
    ("status", "code", "number", "expected"),
    [
        (400, "CertificatesNotSetup", 1205, DocumentRejected),
        (401, "AuthenticationException", 12, AuthenticationFailed),
        (503, "ServerUnreachable", None, BackendUnavailable),
    ],
)
def test_error_answers_of_certificate_calls_are_typed(
    status: int, code: str, number: int | None, expected: type[Exception]
) -> None:
    with fake_avatax(max_attempts=1) as recording:
        certificates = recording.inner.certificate_service()
        recording.inner.company_id("DEFAULT")
        recording.fake.fail_next = [error_body(status, code, number, f"{code} (recorded shape)")]
        with pytest.raises(expected) as caught:
            certificates.certificates("DEFAULT", "C100")
        assert caught.value.error_code == code  # type: ignore[attr-defined]


def test_a_certificate_call_that_meets_a_503_once_is_retried() -> None:
    with fake_avatax(max_attempts=3) as recording:
        recording.fake.certcapture.upload(
            "DEFAULT", "C100", region="NY", signed=dt.date(2026, 1, 1), expiry=None
        )
        recording.fake.certcapture.customers[(recording.inner.company_id("DEFAULT"), "C100")] = {
            "customerCode": "C100"
        }
        recording.fake.fail_next = [error_body(503, "ServerUnreachable", None, "busy")]
        (found,) = recording.inner.certificate_service().certificates("DEFAULT", "C100")
        assert found.regions == ("NY",)


def test_a_customer_unknown_to_avatax_has_no_certificates_and_a_duplicate_is_updated() -> None:
    with fake_avatax() as recording:
        certificates = recording.inner.certificate_service()
        assert certificates.certificates("DEFAULT", "NOBODY") == []
        card = CustomerCard("C1", "DEFAULT", "Acme", "1 Main St", "New York", "NY", "10118")
        certificates.push_customer(card, None)
        certificates.push_customer(attrs.evolve(card, name="Acme Inc"), None)
        company = recording.fake.companies["DEFAULT"]
        assert recording.fake.certcapture.customers[(company, "C1")]["name"] == "Acme Inc"
