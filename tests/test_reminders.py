"""Expiry reminders (BNW150 reminder, TXEEXP, CH-TEEX) against a real SMTP server (aiosmtpd on
loopback): who is reminded, what the letter says, once a day, and nothing recorded that the
server did not take."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from conftest import DAY, NYC, order
from smtp_server import free_port, smtp_server

from taxbridge import LocalEngine, RecordingBackend, SQLiteStore, TaxBridge
from taxbridge.config import (
    CertificateServiceKind,
    CertificateSettings,
    ReminderSettings,
    SMTPSettings,
    default_config,
    parse_config_text,
)
from taxbridge.errors import ConfigError
from taxbridge.models import (
    REMINDER_INCIDENT,
    REMINDER_NOTE,
    Certificate,
    Customer,
    Exemption,
    Incident,
)

ACME = Customer("C100", "Exempt Co", addresses=(NYC,), email="ap@exempt.example", tax_number="T1")
BETA = Customer("C300", "Beta Stores", addresses=(NYC,), email="books@beta.example")


def _clock() -> dt.datetime:
    return dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def _bridge(store: SQLiteStore, port: int, **reminders: Any) -> TaxBridge:
    config = attrs.evolve(
        default_config(),
        certificates=CertificateSettings(
            service=CertificateServiceKind.LOCAL, upload_url="https://up.example/{customer}"
        ),
        smtp=SMTPSettings(host="127.0.0.1", port=port, starttls=False, sender="tax@seller.example"),
        reminders=ReminderSettings(**reminders),
    )
    return TaxBridge(config, RecordingBackend(LocalEngine()), store, clock=_clock)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "tb.db") as opened:
        yield opened


def _due_soon(bridge: TaxBridge) -> None:
    """C100: a certificate for NY that expired five days ago (its card comes from an order);
    C300: an exemption database entry for NY expiring in ten days."""
    bridge.on_entry(order("7001", customer=ACME))
    bridge.add_certificate(
        Certificate("C100", "G", ("NY",), signed="2025-01-01", expiry=DAY - dt.timedelta(days=5))
    )
    bridge.add_exemption(
        Exemption("C300", "NY", "2025-01-01", exemption_no="NY-9", expiry=DAY + dt.timedelta(10))
    )


def test_reminders_list_what_expired_or_expires_within_the_horizon(store: SQLiteStore) -> None:
    bridge = _bridge(store, 25)
    _due_soon(bridge)
    bridge.add_exemption(
        Exemption("C400", "PA", "2025-01-01", exemption_no="PA-1", expiry=DAY + dt.timedelta(90))
    )
    due = bridge.exemption_reminders(DAY, 30)
    assert [(r.customer_code, r.region, r.expiry, r.source) for r in due] == [
        ("C100", "NY", DAY - dt.timedelta(days=5), "certificate"),
        ("C300", "NY", DAY + dt.timedelta(days=10), "exemption database"),
    ]
    assert [r.customer_code for r in bridge.exemption_reminders(DAY, 5)] == ["C100"]
    assert [r.customer_code for r in bridge.exemption_reminders(DAY, 95)] == [
        "C100",
        "C300",
        "C400",
    ]


def test_a_renewed_certificate_silences_the_reminder(store: SQLiteStore) -> None:
    bridge = _bridge(store, 25)
    _due_soon(bridge)
    bridge.add_certificate(
        Certificate("C100", "G", ("NY",), signed="2026-11-01", expiry="2028-11-01")
    )
    assert [r.customer_code for r in bridge.exemption_reminders(DAY, 30)] == ["C300"]


def test_the_horizon_defaults_to_the_pending_checks(store: SQLiteStore) -> None:
    bridge = _bridge(store, 25)
    assert bridge.reminders.horizon(None) == bridge.config.pending.expiry_warning_days
    assert _bridge(store, 25, days=7).reminders.horizon(None) == 7


def test_each_customer_gets_one_letter_a_txeexp_note_and_a_ch_teex_incident(
    store: SQLiteStore,
) -> None:
    incidents: list[Incident] = []
    with smtp_server() as (port, inbox):
        bridge = _bridge(store, port)
        _due_soon(bridge)
        run = bridge.send_reminders(DAY, 30, customers={"C300": BETA}, incident=incidents.append)
        assert run.sent == ("C100", "C300")
        assert run.failed == ()
        (acme,) = inbox.to("ap@exempt.example")
        (beta,) = inbox.to("books@beta.example")
        assert acme["Subject"] == "Tax exemption certificate has expired - Exempt Co (C100)"
        assert acme["From"] == "tax@seller.example"
        body = acme.get_payload(decode=True).decode()
        assert "NY: certificate L-" in body
        assert "expired on 2026-11-15" in body
        assert "https://up.example/C100" in body
        assert beta["Subject"] == "Tax exemption certificate expires soon - Beta Stores (C300)"
        assert "NY: exemption NY-9 expires on 2026-11-30" in beta.get_payload(decode=True).decode()
        notes = bridge.customer_notes()
        assert [(n.customer_code, n.note_type, n.day) for n in notes] == [
            ("C100", REMINDER_NOTE, DAY),
            ("C300", REMINDER_NOTE, DAY),
        ]
        assert [(i.template, i.note.customer_code) for i in incidents] == [
            (REMINDER_INCIDENT, "C100"),
            (REMINDER_INCIDENT, "C300"),
        ]

        again = bridge.send_reminders(DAY, 30, customers={"C300": BETA}, incident=incidents.append)
        assert again.sent == ()
        assert [code for code, _ in again.skipped] == ["C100", "C300"]
        assert len(inbox.received) == 2
        assert len(incidents) == 2
        tomorrow = bridge.send_reminders(DAY + dt.timedelta(days=1), 30, customers={"C300": BETA})
        assert tomorrow.sent == ()  # [reminders] again_after_days: 7 by default
        assert set(tomorrow.skipped) == {
            ("C100", "reminded already on 2026-11-20"),
            ("C300", "reminded already on 2026-11-20"),
        }
        week = bridge.send_reminders(DAY + dt.timedelta(days=7), 30, customers={"C300": BETA})
        assert week.sent == ("C100", "C300")


def test_a_line_break_in_a_customers_name_stops_no_one_and_adds_no_header(
    store: SQLiteStore,
) -> None:
    """Dirty master data: a CR/LF in a name put into a subject raised a raw ValueError, and
    every customer after it got nothing, every day."""
    dirty = attrs.evolve(BETA, name="Beta\r\nBcc: evil@mallory.example\r\nStores")
    with smtp_server() as (port, inbox):
        bridge = _bridge(store, port)
        _due_soon(bridge)
        run = bridge.send_reminders(DAY, 30, customers={"C300": dirty})
        assert (run.sent, run.failed) == (("C100", "C300"), ())
        (beta,) = inbox.to("books@beta.example")
        subject = " ".join(str(beta["Subject"]).split())  # a long header is folded
        assert subject == (
            "Tax exemption certificate expires soon - Beta Bcc: evil@mallory.example Stores (C300)"
        )
        assert beta["Bcc"] is None
        assert not inbox.to("evil@mallory.example")
        assert len(inbox.received) == 2


def test_a_customer_without_an_email_is_skipped_and_named(store: SQLiteStore) -> None:
    with smtp_server() as (port, inbox):
        bridge = _bridge(store, port)
        _due_soon(bridge)
        run = bridge.send_reminders(DAY, 30)
        assert run.sent == ("C100",)
        assert run.skipped == (("C300", "no valid e-mail address ('')"),)
        assert len(inbox.received) == 1


def test_an_smtp_outage_leaves_reminders_unsent_and_unrecorded(store: SQLiteStore) -> None:
    down = _bridge(store, free_port())
    _due_soon(down)
    run = down.send_reminders(DAY, 30, customers={"C300": BETA})
    assert run.sent == ()
    assert [code for code, _ in run.failed] == ["C100", "C300"]
    assert "SMTP 127.0.0.1" in run.failed[0][1]
    assert down.customer_notes() == []
    with smtp_server() as (port, inbox):
        back = _bridge(store, port)
        assert back.send_reminders(DAY, 30, customers={"C300": BETA}).sent == ("C100", "C300")
        assert len(inbox.received) == 2


def test_a_dry_run_renders_and_sends_or_records_nothing(store: SQLiteStore) -> None:
    with smtp_server() as (port, inbox):
        bridge = _bridge(store, port)
        _due_soon(bridge)
        run = bridge.send_reminders(DAY, 30, dry_run=True, customers={"C300": BETA})
        assert run.dry_run
        assert [letter.recipient for letter in run.letters] == [
            "ap@exempt.example",
            "books@beta.example",
        ]
        assert inbox.received == []
        assert bridge.customer_notes() == []


def test_the_letter_comes_from_the_users_template(store: SQLiteStore) -> None:
    with smtp_server() as (port, inbox):
        bridge = _bridge(
            store,
            port,
            subject="Certificate {status}: {customer}",
            body="Hello {name},\n{regions}\nUpload: {link}\nAs of {as_of}, earliest {expiry}.\n",
        )
        _due_soon(bridge)
        bridge.send_reminders(DAY, 30)
        (message,) = inbox.to("ap@exempt.example")
        assert message["Subject"] == "Certificate has expired: C100"
        body = message.get_payload(decode=True).decode().replace("\r\n", "\n")
        assert body.startswith("Hello Exempt Co,\n  NY: certificate L-")
        assert "As of 2026-11-20, earliest 2026-11-15." in body


def test_a_template_file_replaces_the_body(tmp_path: Path) -> None:
    (tmp_path / "letter.txt").write_text("Dear {name}: {regions}\n", encoding="utf-8")
    text = (
        '[[companies]]\nerp_company = "01"\ncompany_code = "DEFAULT"\n'
        '[reminders]\ndays = 14\nbody_file = "letter.txt"\n'
    )
    config = parse_config_text(text, source="t.toml", base=tmp_path)
    assert config.reminders.body == "Dear {name}: {regions}\n"
    assert config.reminders.days == 14


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ('[reminders]\nsubject = "Hi {nobody}"', r"reminders\.subject.*\{nobody\}"),
        ('[reminders]\nbody_file = "missing.txt"', r"reminders\.body_file.*cannot be read"),
        ("[reminders]\ndays = -1", r"reminders\.days"),
        ("[reminders]\nagain_after_days = 5000", r"reminders\.again_after_days"),
        ('[certificates]\nrequest_subject = "{who}"', r"certificates\.request_subject.*\{who\}"),
        ('[smtp]\nhost = "mail"\nusername = "u"', r"smtp\.password_env.*required"),
        ("[smtp]\nport = 0", r"smtp\.port"),
        ('[certificates]\nservice = "paper"', r"certificates\.service.*'paper'"),
        ('[certificates]\nupload_url = "https://x/{id}"', r"certificates\.upload_url.*\{id\}"),
        ('[certificates]\nservice = "avatax"', r"certificates\.service.*needs the avatax backend"),
    ],
)
def test_bad_certificate_smtp_and_reminder_settings_name_the_key(
    tmp_path: Path, section: str, match: str
) -> None:
    text = f'[[companies]]\nerp_company = "01"\ncompany_code = "DEFAULT"\n{section}\n'
    with pytest.raises(ConfigError, match=match):
        parse_config_text(text, source="t.toml", base=tmp_path)


def _login_bridge(store: SQLiteStore, port: int, environ: dict[str, str]) -> TaxBridge:
    from taxbridge.certificates import Mailer

    smtp = SMTPSettings(
        host="127.0.0.1",
        port=port,
        starttls=False,
        username="taxbridge",
        password_env="TB_SMTP_PASSWORD",
        sender="tax@seller.example",
        timeout=2,  # aiosmtpd stalls a refused login until the client gives up
    )
    config = attrs.evolve(
        default_config(),
        certificates=CertificateSettings(service=CertificateServiceKind.LOCAL),
        smtp=smtp,
    )
    mailer = Mailer(smtp, environ=environ)
    return TaxBridge(config, RecordingBackend(LocalEngine()), store, clock=_clock, mailer=mailer)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # loopback only
def test_the_smtp_login_uses_the_password_from_the_environment(store: SQLiteStore) -> None:
    with smtp_server(login=("taxbridge", "s3cret")) as (port, inbox):
        bridge = _login_bridge(store, port, {"TB_SMTP_PASSWORD": "s3cret"})
        _due_soon(bridge)
        assert bridge.send_reminders(DAY, 30).sent == ("C100",)
        assert len(inbox.received) == 1
        wrong = _login_bridge(store, port, {"TB_SMTP_PASSWORD": "guess"})
        run = wrong.send_reminders(DAY + dt.timedelta(days=7), 30)  # due again
        assert run.sent == ()
        assert "guess" not in run.failed[0][1]
        assert len(inbox.received) == 1


def test_a_missing_password_variable_is_named_and_nothing_is_recorded(store: SQLiteStore) -> None:
    bridge = _login_bridge(store, 25, {})
    _due_soon(bridge)
    run = bridge.send_reminders(DAY, 30)
    assert run.failed == (
        ("C100", "the SMTP password's environment variable TB_SMTP_PASSWORD is not set"),
    )
    assert bridge.customer_notes() == []


def _card(bridge: TaxBridge) -> None:
    bridge.on_entry(order("7001", customer=ACME))  # C100's card, so certificates can be added


def test_a_region_valid_beyond_the_horizon_in_either_source_is_not_reminded(
    store: SQLiteStore,
) -> None:
    """Decided per customer and region across the exemption database and the certificates."""
    bridge = _bridge(store, 25)
    _card(bridge)
    soon, later = DAY + dt.timedelta(days=10), DAY + dt.timedelta(days=400)
    bridge.add_exemption(Exemption("C100", "NY", "2025-01-01", exemption_no="NY-1", expiry=soon))
    bridge.add_certificate(
        Certificate("C100", "G", ("NY",), signed="2025-01-01", expiry=later, exemption_no="NY-2")
    )
    bridge.add_exemption(Exemption("C100", "PA", "2025-01-01", exemption_no="PA-1", expiry=later))
    bridge.add_certificate(
        Certificate("C100", "G", ("PA",), signed="2025-01-01", expiry=soon, exemption_no="PA-2")
    )
    assert bridge.exemption_reminders(DAY, 30) == []


@pytest.mark.parametrize("status", ["revoked", "pending"])
def test_a_certificate_that_exempts_nothing_hides_no_expiring_one(
    store: SQLiteStore, status: str
) -> None:
    bridge = _bridge(store, 25)
    _card(bridge)
    soon, later = DAY + dt.timedelta(days=10), DAY + dt.timedelta(days=400)
    bridge.add_certificate(
        Certificate("C100", "G", ("NY",), signed="2025-01-01", expiry=soon, exemption_no="NY-OLD")
    )
    bridge.add_certificate(
        Certificate(
            "C100", "G", ("NY",), signed="2025-01-01", expiry=later, exemption_no="NY-NEW",
            status=status,
        )
    )  # fmt: skip
    (due,) = bridge.exemption_reminders(DAY, 30)
    assert (due.region, due.expiry, due.reference) == ("NY", soon, "NY-OLD")


def test_the_letter_names_the_exemption_number_and_what_expired_first(
    store: SQLiteStore,
) -> None:
    with smtp_server() as (port, inbox):
        bridge = _bridge(store, port)
        _card(bridge)
        bridge.add_certificate(
            Certificate(
                "C100", "G", ("PA",), signed="2025-01-01", expiry=DAY + dt.timedelta(days=9),
                exemption_no="PA-77",
            )
        )  # fmt: skip
        bridge.add_certificate(
            Certificate(
                "C100", "G", ("NY",), signed="2025-01-01", expiry=DAY - dt.timedelta(days=5),
                exemption_no="NY-55",
            )
        )  # fmt: skip
        assert bridge.send_reminders(DAY, 30).sent == ("C100",)
        (letter,) = inbox.to("ap@exempt.example")
    assert " ".join(str(letter["Subject"]).split()) == (
        "Tax exemption certificate has expired or expires soon - Exempt Co (C100)"
    )
    body = letter.get_payload(decode=True).decode()
    assert "NY: certificate NY-55 expired on 2026-11-15" in body
    assert "PA: certificate PA-77 expires on 2026-11-29" in body
    assert body.index("NY-55") < body.index("PA-77")
    assert "L-" not in body


def test_a_region_is_reminded_again_only_after_the_set_days_each_on_its_own(
    store: SQLiteStore,
) -> None:
    with smtp_server() as (port, inbox):
        bridge = _bridge(store, port, again_after_days=10)
        _card(bridge)
        bridge.add_certificate(
            Certificate("C100", "G", ("NY",), signed="2025-01-01", expiry=DAY, exemption_no="NY-1")
        )
        assert bridge.send_reminders(DAY, 30).sent == ("C100",)
        later = DAY + dt.timedelta(days=25)
        bridge.add_certificate(
            Certificate(
                "C100", "G", ("PA",), signed="2025-01-01", expiry=later, exemption_no="PA-1"
            )
        )
        third = DAY + dt.timedelta(days=3)
        assert bridge.send_reminders(third, 30).sent == ("C100",)  # PA is new: only PA
        assert bridge.send_reminders(third + dt.timedelta(days=1), 30).sent == ()
        assert bridge.send_reminders(DAY + dt.timedelta(days=10), 30).sent == ("C100",)  # NY
        letters = [m.get_payload(decode=True).decode() for m in inbox.to("ap@exempt.example")]
    assert ["NY-1" in body for body in letters] == [True, False, True]
    assert ["PA-1" in body for body in letters] == [False, True, False]
    assert store.reminded() == {
        ("C100", "NY"): DAY + dt.timedelta(days=10),
        ("C100", "PA"): DAY + dt.timedelta(days=3),
    }
