"""The exempt-customer commands against a real SQLite file and a real SMTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import T0, json_lines
from smtp_server import Inbox, smtp_server

from taxbridge.cli import main
from taxbridge.cli.customers import CERTIFICATE_COLUMNS
from taxbridge.config import example_config_text


@pytest.fixture
def setup(tmp_path: Path, time_machine) -> Iterator[tuple[Path, Inbox]]:
    """A config on a demo store, the local certificate service and a loopback SMTP server; the
    commands run the morning after the demo's day."""
    time_machine.move_to(T0)
    with smtp_server() as (port, inbox):
        db = tmp_path / "tb.db"
        assert main(["demo", "--db", str(db)]) == 0
        text = example_config_text()
        text = text.replace('host = ""', 'host = "127.0.0.1"').replace(
            "port = 587", f"port = {port}"
        )
        text = text.replace("starttls = true", "starttls = false")
        lines = []
        for line in text.splitlines():
            lines.append(f'path = "{db}"' if line.startswith("path = ") else line)
        config = tmp_path / "taxbridge.toml"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        customers = tmp_path / "customers.json"
        customers.write_text(
            json.dumps(
                [
                    {
                        "code": "C900",
                        "name": "Museum Shop",
                        "addresses": [
                            {
                                "line1": "350 5th Ave",
                                "city": "New York",
                                "region": "NY",
                                "postal_code": "10118",
                            }
                        ],
                        "email": "ap@museum.example",
                        "entity_use_code": "E",
                        "contacts": [{"role": "TAX", "email": "tax@museum.example"}],
                    },
                    {"code": "C901", "name": "Not Exempt", "email": "x@y.example"},
                ]
            ),
            encoding="utf-8",
        )
        yield config, inbox


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_customers_sync_sends_the_exempt_customers_of_a_file(
    setup: tuple[Path, Inbox], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = setup
    folder = config.parent
    code, out, _ = _run(
        capsys,
        "customers",
        "sync",
        "--config",
        str(config),
        "--from-file",
        str(folder / "customers.json"),
    )
    assert code == 0
    assert "created   C900" in out
    assert "C901" not in out
    assert out.strip().endswith("1 created, 0 updated, 0 unchanged, 0 failed")
    code, out, _ = _run(capsys, "customers", "sync", "--config", str(config))
    assert out.strip() == "0 created, 0 updated, 0 unchanged, 0 failed"


def test_certificates_add_list_and_request(
    setup: tuple[Path, Inbox], capsys: pytest.CaptureFixture[str]
) -> None:
    config, inbox = setup
    args = ("--config", str(config))
    _run(capsys, "customers", "sync", *args, "--from-file", str(config.parent / "customers.json"))
    pdf = config.parent / "cert.pdf"
    pdf.write_bytes(b"%PDF-1.4 fake")
    code, out, _ = _run(
        capsys,
        "certificates",
        "add",
        "C900",
        "--region",
        "NY",
        "--reason",
        "E",
        "--signed",
        "2026-01-01",
        "--expiry",
        "2026-12-01",
        "--exemption-no",
        "NY-77",
        "--pdf",
        str(pdf),
        *args,
    )
    assert code == 0
    assert "stored for C900" in out
    code, out, _ = _run(
        capsys, "certificates", "list", "C900", "--region", "NY", "--format", "json", *args
    )
    (row,) = json_lines(out)
    assert (row["ex_code"], row["exemption_no"], row["ex_state"], row["cert_exp_date"]) == (
        "E",
        "NY-77",
        "NY",
        "2026-12-01",
    )
    assert row["valid_in_region"] is True
    code, out, _ = _run(
        capsys, "certificates", "request", "C900", "--region", "PA", "--reason", "E", *args
    )
    assert code == 0
    assert "sent to tax@museum.example for PA" in out
    assert inbox.to("tax@museum.example")
    code, _, err = _run(
        capsys, "certificates", "request", "C900", "--region", "PA", "--email", "nope", *args
    )
    assert code == 2
    assert "Customer.email: 'nope'" in err
    code, _, err = _run(
        capsys,
        "certificates",
        "add",
        "C900",
        "--region",
        "NY",
        "--reason",
        "ZZ",
        "--signed",
        "2026-01-01",
        *args,
    )
    assert code == 2
    assert "Certificate.exempt_reason: 'ZZ'" in err
    code, out, _ = _run(
        capsys,
        "certificates",
        "add",
        "C900",
        "--region",
        "PA",
        "--reason",
        "E",
        "--signed",
        "2026-01-01",
        "--single-use",
        "--po",
        "PO-1",
        "--po",
        "PO-2",
        *args,
    )
    assert code == 0
    code, out, _ = _run(
        capsys, "certificates", "list", "C900", "--region", "PA", "--format", "json", *args
    )
    rows = json_lines(out)
    assert sorted((row["ex_state"], row["single_use"], row["po_numbers"]) for row in rows) == [
        ("NY", False, []),
        ("PA", True, ["PO-1", "PO-2"]),
    ]
    code, out, _ = _run(capsys, "certificates", "list", "C900", "--format", "csv", *args)
    assert out.splitlines()[0] == ",".join(CERTIFICATE_COLUMNS)
    assert "PO-1; PO-2" in out


def test_reminders_list_send_once_and_dry_run(
    setup: tuple[Path, Inbox], capsys: pytest.CaptureFixture[str]
) -> None:
    config, inbox = setup
    args = ("--config", str(config), "--as-of", "2026-11-20")
    _run(
        capsys,
        "customers",
        "sync",
        "--config",
        str(config),
        "--from-file",
        str(config.parent / "customers.json"),
    )
    _run(
        capsys,
        "certificates",
        "add",
        "C900",
        "--region",
        "NY",
        "--reason",
        "E",
        "--signed",
        "2025-01-01",
        "--expiry",
        "2026-12-01",
        "--config",
        str(config),
    )
    code, out, _ = _run(capsys, "reminders", "--days", "30", *args)
    assert code == 0
    assert "C900         NY  expires 2026-12-01 certificate" in out
    assert "-> tax@museum.example" in out
    assert "C012         TX  expires 2026-12-10 certificate" in out  # the demo's
    assert out.strip().endswith("would send 2 letters (0 failed, 0 skipped)")
    assert inbox.received == []
    code, out, _ = _run(capsys, "reminders", "--days", "30", "--send", "--dry-run", *args)
    assert inbox.received == []
    code, out, _ = _run(capsys, "reminders", "--days", "30", "--send", *args)
    assert code == 0
    assert out.strip().endswith("sent 2 letters (0 failed, 0 skipped)")
    assert len(inbox.to("tax@museum.example")) == 1
    assert len(inbox.to("accounts@stmarys.example")) == 1
    code, out, _ = _run(capsys, "reminders", "--days", "30", "--send", "--format", "json", *args)
    body = json.loads(out)
    assert body["sent"] == []
    assert body["skipped"] == [
        {"customer": "C012", "why": "reminded already on 2026-11-20"},
        {"customer": "C900", "why": "reminded already on 2026-11-20"},
    ]
    assert len(inbox.received) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["reminders", "--as-of", "2026-13-01"],
         "reminders: --as-of '2026-13-01' is not a date like 2026-11-30"),
        (["reminders", "--as-of", "yesterday"],
         "reminders: --as-of 'yesterday' is not a date like 2026-11-30"),
        (["refresh-rates", "--as-of", "2026-02-30"],
         "refresh-rates: --as-of '2026-02-30' is not a date like 2026-11-30"),
        (
            ["certificates", "add", "C900", "--region", "NY", "--reason", "E", "--signed",
             "2026-01-01", "--pdf", "/nonexistent/cert.pdf"],
            "certificates: --pdf /nonexistent/cert.pdf: cannot be read (no such file or "
            "directory)",
        ),
    ],
)  # fmt: skip
def test_a_bad_date_or_file_option_is_one_line_and_exit_2(
    setup: tuple[Path, Inbox], argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = setup
    code, _, err = _run(capsys, *argv, "--config", str(config))
    assert code == 2
    assert err.splitlines() == [f"taxbridge {message}"]


def test_reminders_without_a_certificate_service_write_to_the_customer_file(
    setup: tuple[Path, Inbox], capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed's reminder run on the defaults (service "none"): exemption database customers
    have no card, so the ERP's customer file says where to write."""
    import datetime as dt

    from taxbridge import TaxBridge
    from taxbridge.models import Exemption

    config, inbox = setup
    config.write_text(config.read_text().replace('service = "local"', 'service = "none"'))
    with TaxBridge.from_config(config) as bridge:
        bridge.add_exemption(
            Exemption("C900", "NY", "2025-01-01", exemption_no="NY-9", expiry=dt.date(2026, 12, 1))
        )
    args = ("--config", str(config), "--as-of", "2026-11-21", "--days", "30", "--send")
    code, out, _ = _run(capsys, "reminders", *args)
    assert "C900" in out
    assert "no valid e-mail address" in out
    assert inbox.to("tax@museum.example") == []
    customers = str(config.parent / "customers.json")
    code, out, _ = _run(capsys, "reminders", *args, "--customers", customers)
    assert code == 0
    assert len(inbox.to("tax@museum.example")) == 1
    code, _, err = _run(capsys, "reminders", *args, "--customers", "/nonexistent.json")
    assert code == 2
    assert "--customers /nonexistent.json: cannot be read (no such file or directory)" in err
