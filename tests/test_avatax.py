"""AvaTaxBackend over HTTP: every call, every error class, retries, idempotent posting, secrets.

HTTP is mocked with respx at the transport; behind it, where a test needs a working AvaTax,
is the contract-following fake (taxbridge.testing.fake_avatax).
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
from collections.abc import Iterator
from decimal import Decimal

import attrs
import httpx
import pytest
import respx
import structlog
from conftest import (
    DAY,
    FAKE_ACCOUNT,
    FAKE_KEY,
    FAKE_URL,
    NYC,
    WAREHOUSE,
    HttpRecording,
    check_bodies_against_the_contract,
    fake_avatax,
    fake_settings,
    invoice,
    order,
)
from structlog.testing import capture_logs

from taxbridge import SQLiteStore, TaxBridge
from taxbridge.backends.avatax import (
    AdjustmentReason,
    AvaTaxBackend,
    AvaTaxSettings,
    RefundType,
    Secret,
)
from taxbridge.backends.avatax.errors import retry_after_seconds
from taxbridge.backends.avatax.mapping import dumps, encode_code, transaction_model
from taxbridge.backends.base import VoidReason
from taxbridge.config import default_config, parse_config_text
from taxbridge.errors import (
    AlreadyCommitted,
    AuthenticationFailed,
    BackendError,
    BackendUnavailable,
    CircuitOpen,
    ConfigError,
    DocumentRejected,
    InvalidFieldError,
    MalformedResponse,
)
from taxbridge.flags import FinalTaxFlag as F
from taxbridge.models import (
    Address,
    DocumentStatus,
    DocumentType,
    JurisdictionType,
    TaxLine,
    TaxRequest,
)
from taxbridge.posting import post_once
from taxbridge.testing.fake_avatax import FakeAvaTax, error_body, serve

INVOICE = DocumentType.SALES_INVOICE


def request(code: str = "A-1", *, commit: bool = True, **kwargs: object) -> TaxRequest:
    """A one-line $100 request to New York (an invoice posting unless told otherwise)."""
    values: dict[str, object] = {
        "code": code,
        "document_type": INVOICE,
        "company_code": "DEFAULT",
        "customer_code": "C001",
        "date": DAY,
        "ship_from": WAREHOUSE,
        "ship_to": NYC,
        "lines": (TaxLine("1", Decimal("100.00"), tax_code="P0000000"),),
        "commit": commit,
    }
    values.update(kwargs)
    return TaxRequest(**values)  # type: ignore[arg-type]


@pytest.fixture
def avatax() -> Iterator[HttpRecording]:
    with fake_avatax() as recording:
        yield recording


@pytest.fixture
def backend(avatax: HttpRecording) -> AvaTaxBackend:
    return avatax.inner  # type: ignore[return-value]


@pytest.fixture
def fake(avatax: HttpRecording) -> FakeAvaTax:
    return avatax.fake


@pytest.fixture
def lone_fake() -> FakeAvaTax:
    """A fake no respx router is wired to yet (the test wires it)."""
    return FakeAvaTax(account_id=FAKE_ACCOUNT, license_key=FAKE_KEY)


def _paths(fake: FakeAvaTax) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests]


class Sleeps(list[float]):
    """A sleep that records its waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def mocked(sleeps: Sleeps) -> Iterator[tuple[respx.MockRouter, AvaTaxBackend]]:
    """A bare respx router (each test sets its routes) and a backend whose sleeps are recorded."""
    with respx.mock(base_url=FAKE_URL, assert_all_called=False) as router:
        backend = AvaTaxBackend(fake_settings(), sleep=sleeps)
        yield router, backend
        backend.close()


CREATE = "/api/v2/transactions/create"


# ---------------------------------------------------------------------------------------------
# Transport: headers, pooling, injected clients, threads


class TestTransport:
    def test_requests_carry_basic_auth_the_client_header_and_a_json_body(
        self, avatax, backend, fake
    ):
        backend.calculate(request(commit=False, document_type=DocumentType.SALES_ORDER))
        sent = fake.requests[-1]
        headers = avatax.router.calls.last.request.headers
        expected = base64.b64encode(f"{FAKE_ACCOUNT}:{FAKE_KEY}".encode()).decode()
        assert headers["authorization"] == f"Basic {expected}"
        app, version, library, library_version, machine = headers["x-avalara-client"].split("; ")
        assert (app, library) == ("taxbridge", "taxbridge")
        assert version == library_version
        assert machine
        assert headers["content-type"] == "application/json"
        assert sent.body["type"] == "SalesOrder"

    def test_a_bearer_token_may_come_from_an_environment_variable(self, monkeypatch) -> None:
        monkeypatch.setenv("AVATAX_TOKEN_TEST", "tok-123")
        settings = AvaTaxSettings(base_url=FAKE_URL, token_env="AVATAX_TOKEN_TEST")
        assert settings.authorization() == "Bearer tok-123"

    def test_a_missing_credential_variable_is_a_config_error_naming_it(self, monkeypatch):
        monkeypatch.delenv("AVATAX_KEY_UNSET", raising=False)
        settings = AvaTaxSettings(
            base_url=FAKE_URL, account_id="1", license_key_env="AVATAX_KEY_UNSET"
        )
        with pytest.raises(ConfigError, match="AVATAX_KEY_UNSET"):
            AvaTaxBackend(settings)

    @pytest.mark.parametrize(
        ("kwargs", "key"),
        [
            ({}, "backend.license_key"),
            ({"license_key": Secret("k")}, "backend.account_id"),
            ({"account_id": "1", "license_key": Secret("k"), "token": Secret("t")}, "token"),
            ({"account_id": "1", "license_key": Secret("k"), "read_timeout": 0}, "read_timeout"),
            ({"account_id": "1", "license_key": Secret("k"), "max_attempts": 0}, "max_attempts"),
            ({"account_id": "1", "license_key": Secret("k"), "base_url": "ftp://x"}, "base_url"),
        ],
    )
    def test_bad_settings_are_refused_naming_the_key(self, kwargs, key) -> None:
        with pytest.raises(ConfigError, match=key):
            AvaTaxSettings(**kwargs)

    def test_the_default_read_timeout_is_short(self) -> None:
        settings = AvaTaxSettings(account_id="1", license_key=Secret("k"))
        assert settings.read_timeout == 15.0
        assert settings.base_url == "https://sandbox-rest.avatax.com"
        assert (
            AvaTaxSettings.for_environment(
                "production", account_id="1", license_key=Secret("k")
            ).base_url
            == "https://rest.avatax.com"
        )

    def test_one_keep_alive_connection_serves_sequential_calls(self) -> None:
        fake = FakeAvaTax(account_id=FAKE_ACCOUNT, license_key=FAKE_KEY)
        with serve(fake) as url:
            settings = AvaTaxSettings(
                base_url=url, account_id=FAKE_ACCOUNT, license_key=Secret(FAKE_KEY)
            )
            with AvaTaxBackend(settings) as backend:
                for n in range(20):
                    backend.calculate(request(f"S-{n}", commit=False))
            assert len(fake.requests) == 20
            assert len(fake.peers) == 1

    def test_close_closes_its_own_client_but_not_an_injected_one(self, lone_fake) -> None:
        own = AvaTaxBackend(fake_settings())
        own.close()
        assert own._client.is_closed
        mine = httpx.Client(transport=httpx.MockTransport(lone_fake.handle))
        injected = AvaTaxBackend(fake_settings(), client=mine)
        assert injected.calculate(request(commit=False)).total_tax == Decimal("8.88")
        injected.close()
        assert not mine.is_closed
        mine.close()

    def test_several_threads_share_one_backend(self, backend, fake) -> None:
        results: dict[str, Decimal] = {}
        errors: list[BaseException] = []

        def work(worker: int) -> None:
            try:
                for n in range(25):
                    code = f"T{worker}-{n}"
                    results[code] = backend.calculate(request(code)).total_tax
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(results) == 200
        assert set(results.values()) == {Decimal("8.88")}
        assert sum(fake.commit_counts.values()) == 200
        assert max(fake.commit_counts.values()) == 1


# ---------------------------------------------------------------------------------------------
# Every call


class TestCalls:
    def test_an_estimate_is_a_sales_order_that_asks_for_lines_and_summary(self, backend, fake):
        result = backend.calculate(request(commit=False, document_type=DocumentType.SALES_ORDER))
        sent = fake.requests[-1]
        assert sent.params["$include"] == "Lines,Summary"
        assert (sent.body["type"], sent.body["commit"]) == ("SalesOrder", False)
        assert result.status is DocumentStatus.TEMPORARY
        assert [j.jurisdiction_type for j in result.summary] == [
            JurisdictionType.STATE,
            JurisdictionType.CITY,
            JurisdictionType.SPECIAL,
        ]
        assert result.lines[0].details == ()
        assert fake.documents == {}

    def test_totals_only_asks_for_lines_only_and_line_details_ask_for_details(
        self, backend, fake
    ) -> None:
        totals = backend.calculate(request(commit=False, include_details=False))
        assert fake.requests[-1].params["$include"] == "LinesOnly"
        assert totals.summary == ()
        assert totals.total_tax == Decimal("8.88")
        detailed = backend.calculate(request("A-2", commit=False, line_details=True))
        assert fake.requests[-1].params["$include"] == "Lines,Details,Summary"
        assert len(detailed.lines[0].details) == 3

    def test_posting_creates_a_committed_sales_invoice(self, avatax, backend, fake) -> None:
        result = backend.calculate(request())
        assert result.status is DocumentStatus.COMMITTED
        assert result.total_tax == Decimal("8.88")
        assert fake.commit_counts["A-1"] == 1
        assert avatax.router.calls.last.response.status_code == 201

    def test_the_request_maps_every_field(self, backend, fake) -> None:
        chicago = Address("233 S Wacker Dr", "Chicago", "IL", "60601", line2="Floor 9")
        sent_request = request(
            lines=(
                TaxLine(
                    "P1-1",
                    Decimal("60.00"),
                    quantity=Decimal(3),
                    item_code="SKU-1",
                    description="Widget",
                    tax_code="P0000000",
                    discounted=True,
                    ref1="PUB1",
                    ref2="R2",
                    ship_to=chicago,
                ),
                TaxLine(
                    "P1-2",
                    Decimal("40.00"),
                    discount=Decimal("4.00"),
                    item_code="SKU-2",
                    exemption_no="LINE-EX",
                    entity_use_code="G",
                ),
                TaxLine("P1-3", Decimal("5.00"), excluded=True),
            ),
            discount=Decimal("6.00"),
            exemption_no="EX-1",
            entity_use_code="R",
            purchase_order_no="PO-9",
            reference_code="ORD-1",
            currency="USD",
            tax_date=dt.date(2026, 10, 1),
            tax_date_reason="credit of A-77",
        )
        body = fake.requests[-1].body if backend.calculate(sent_request) else None
        assert body["companyCode"] == "DEFAULT"
        assert body["customerCode"] == "C001"
        assert body["addresses"]["shipFrom"]["postalCode"] == "19147"
        assert body["discount"] == Decimal("6.00")
        assert (body["exemptionNo"], body["entityUseCode"]) == ("EX-1", "R")
        assert (body["purchaseOrderNo"], body["referenceCode"]) == ("PO-9", "ORD-1")
        assert body["taxOverride"] == {
            "type": "TaxDate",
            "taxDate": "2026-10-01",
            "reason": "credit of A-77",
        }
        first, second = body["lines"]  # the excluded line is not sent
        assert first == {
            "number": "P1-1",
            "quantity": 3,
            "amount": Decimal("60.00"),
            "taxCode": "P0000000",
            "itemCode": "SKU-1",
            "description": "Widget",
            "discounted": True,
            "ref1": "PUB1",
            "ref2": "R2",
            "addresses": {
                "shipTo": {
                    "line1": "233 S Wacker Dr",
                    "line2": "Floor 9",
                    "city": "Chicago",
                    "region": "IL",
                    "country": "US",
                    "postalCode": "60601",
                }
            },
        }
        assert second["amount"] == Decimal("36.00")  # the line's own discount is taken off
        assert (second["exemptionCode"], second["entityUseCode"]) == ("LINE-EX", "G")

    def test_amounts_are_sent_as_exact_json_numbers(self) -> None:
        body = dumps(
            {
                "amount": Decimal("19.99"),
                "rate": Decimal("0.08875"),
                "text": ["a\x00b", "\x00:", ":\x00", "1E+2"],
                "big": Decimal("-1234567890.000001"),
            }
        )
        assert body == (
            b'{"amount":19.99,"rate":0.08875,'
            b'"text":["a\\u0000b","\\u0000:",":\\u0000","1E+2"],"big":-1234567890.000001}'
        )

    def test_excluded_lines_come_back_as_zero_tax_lines_in_order(self, backend) -> None:
        result = backend.calculate(
            request(
                lines=(
                    TaxLine("1", Decimal("10.00"), excluded=True),
                    TaxLine("2", Decimal("100.00")),
                )
            )
        )
        assert [(line.number, line.tax) for line in result.lines] == [
            ("1", Decimal("0.00")),
            ("2", Decimal("8.88")),
        ]
        assert (result.total_amount, result.total_exempt) == (Decimal("110.00"), Decimal("10.00"))

    def test_create_or_adjust_creates_then_adjusts_without_a_second_commit(
        self, avatax, backend, fake
    ):
        first = backend.create_or_adjust(request())
        assert avatax.router.calls.last.response.status_code == 201
        second = backend.create_or_adjust(request())
        assert avatax.router.calls.last.response.status_code == 200
        assert first.status is second.status is DocumentStatus.COMMITTED
        assert (fake.commit_counts["A-1"], fake.adjust_counts["A-1"]) == (1, 1)
        assert "createTransactionModel" in fake.requests[-1].body

    def test_get_by_code_passes_the_document_type_and_none_when_absent(self, backend, fake):
        assert backend.get_document("DEFAULT", "A-9", INVOICE) is None
        backend.calculate(request("A-9"))
        found = backend.get_document("DEFAULT", "A-9", INVOICE)
        assert found is not None
        assert found.status is DocumentStatus.COMMITTED
        assert found.total_tax == Decimal("8.88")
        assert found.summary
        assert fake.requests[-1].params["documentType"] == "SalesInvoice"

    def test_commit_uncommit_and_void(self, backend, fake) -> None:
        saved = backend.calculate(request("A-3", commit=False))
        assert saved.status is DocumentStatus.SAVED
        assert fake.commit_counts["A-3"] == 0
        committed = backend.commit_document("DEFAULT", "A-3", INVOICE)
        assert committed.status is DocumentStatus.COMMITTED
        assert fake.commit_counts["A-3"] == 1
        assert fake.requests[-1].body == {"commit": True}
        uncommitted = backend.uncommit_document("DEFAULT", "A-3", INVOICE)
        assert uncommitted.status is DocumentStatus.SAVED
        voided = backend.void_document("DEFAULT", "A-3", INVOICE, VoidReason.DOC_VOIDED)
        assert voided.status is DocumentStatus.CANCELLED
        assert fake.requests[-1].body == {"code": "DocVoided"}
        with pytest.raises(DocumentRejected, match="already cancelled") as caught:
            backend.void_document("DEFAULT", "A-3", INVOICE, VoidReason.DOC_VOIDED)
        assert caught.value.error_code == "TransactionAlreadyCancelled"

    def test_adjust_replaces_the_document_with_a_reason(self, backend, fake) -> None:
        backend.calculate(request("A-4"))
        bigger = request("A-4", lines=(TaxLine("1", Decimal("200.00")),))
        adjusted = backend.adjust_document(bigger, AdjustmentReason.PRICE_ADJUSTED, "re-priced")
        assert adjusted.total_tax == Decimal("17.75")
        assert fake.requests[-1].body["adjustmentReason"] == "PriceAdjusted"
        assert (fake.commit_counts["A-4"], fake.adjust_counts["A-4"]) == (1, 1)
        with pytest.raises(InvalidFieldError, match="description"):
            backend.adjust_document(bigger, AdjustmentReason.OTHER)

    def test_refund_makes_a_committed_return_invoice_full_or_partial(self, backend, fake):
        backend.calculate(
            request("A-5", lines=(TaxLine("1", Decimal("100.00")), TaxLine("2", Decimal("50.00"))))
        )
        sale = backend.get_document("DEFAULT", "A-5", INVOICE)
        full = backend.refund_document("DEFAULT", "A-5", "B-5", DAY)
        assert full.document_type is DocumentType.RETURN_INVOICE
        assert (full.code, full.total_tax) == ("B-5", -sale.total_tax)
        partial = backend.refund_document(
            "DEFAULT", "A-5", "B-6", DAY, RefundType.PARTIAL, lines=["2"]
        )
        assert partial.total_tax == Decimal("-4.44")
        assert fake.requests[-1].body["refundLines"] == ["2"]
        with pytest.raises(InvalidFieldError, match="lines"):
            backend.refund_document("DEFAULT", "A-5", "B-7", DAY, RefundType.PARTIAL)

    def test_resolve_address_validates_or_rejects_naming_the_part(self, backend) -> None:
        resolved = backend.resolve_address(NYC)
        assert (resolved.region, resolved.postal_code) == ("NY", "10118")
        with pytest.raises(DocumentRejected) as caught:
            backend.resolve_address(Address("1 Main St", "Trenton", "NJ", "10118"))
        assert caught.value.refers_to.startswith("Address")
        assert caught.value.error_code == "AddressNotResolved"

    def test_definitions_nexus_rates_and_ping(self, backend, fake) -> None:
        assert {"P0000000", "FR020100"} <= backend.active_tax_codes()
        assert backend.entity_use_codes()["G"] == "Resale"
        nexus = backend.company_nexus("DEFAULT")
        assert {"NY", "PA", "CA"} <= nexus
        assert "companyCode eq 'DEFAULT'" in fake.requests[-2].params["$filter"]
        rates = backend.tax_rates_by_zip(["NY"], dt.date(2026, 12, 1))
        assert rates.regions == frozenset({"NY"})
        assert fake.requests[-1].path == "/api/v2/taxratesbyzipcode/download/2026-12-01"
        assert fake.requests[-1].params["region"] == "NY"
        ping = backend.ping()
        assert ping.authenticated
        assert ping.version

    def test_nexus_is_the_one_in_force_on_the_day_asked_not_today(self) -> None:
        rows = [
            {"country": "US", "region": "NY", "effectiveDate": "2020-01-01T00:00:00"},
            {"country": "US", "region": "MN", "effectiveDate": "2027-01-01T00:00:00"},
            {
                "country": "US",
                "region": "CO",
                "effectiveDate": "2020-01-01",
                "endDate": "2026-06-30",
            },
        ]
        with respx.mock(base_url=FAKE_URL) as router:
            router.get("/api/v2/companies/7/nexus").mock(
                return_value=httpx.Response(200, json={"value": rows})
            )
            backend = AvaTaxBackend(fake_settings(company_ids={"DEFAULT": 7}), today=lambda: DAY)
            with backend:
                assert backend.company_nexus("DEFAULT") == {"NY"}
                assert backend.company_nexus("DEFAULT", dt.date(2026, 1, 1)) == {"NY", "CO"}
                assert backend.company_nexus("DEFAULT", dt.date(2027, 1, 1)) == {"NY", "MN"}

    def test_configured_company_ids_skip_the_company_lookup(self, lone_fake) -> None:
        lone_fake.companies["DEFAULT"] = 4242
        with fake_avatax(lone_fake, company_ids={"DEFAULT": 4242}) as recording:
            recording.company_nexus("DEFAULT")
        assert _paths(lone_fake) == ["GET /api/v2/companies/4242/nexus"]

    def test_list_calls_page_through_every_record(self, mocked) -> None:
        router, backend = mocked
        pages = [
            [{"taxCode": f"P{n:07d}", "isActive": True} for n in range(1000)],
            [{"taxCode": "PX", "isActive": True}, {"taxCode": "OLD", "isActive": False}],
        ]
        route = router.get("/api/v2/definitions/taxcodes").mock(
            side_effect=[httpx.Response(200, json={"value": page}) for page in pages]
        )
        codes = backend.active_tax_codes()
        assert len(codes) == 1001
        assert "OLD" not in codes
        assert [call.request.url.params["$skip"] for call in route.calls] == ["0", "1000"]

    @pytest.mark.parametrize("links", [True, False], ids=["next-links", "count-only"])
    def test_a_listing_follows_a_server_that_pages_by_fewer_rows_than_asked(
        self, backend, fake, links: bool
    ) -> None:
        for number in range(13):
            backend.calculate(request(f"A-{number:02d}"))
        fake.page_size, fake.next_links = 5, links
        listed = backend.list_documents("DEFAULT", DAY, DAY)
        assert [doc.code for doc in listed] == [f"A-{number:02d}" for number in range(13)]
        pages = [r.params for r in fake.requests if r.path.endswith("/transactions")]
        top = "5" if links else "1000"  # a link carries the server's page size
        assert [(p["$top"], p["$skip"]) for p in pages] == [("1000", "0"), (top, "5"), (top, "10")]
        assert all(p["$filter"] == pages[0]["$filter"] for p in pages)
        assert len(backend.active_tax_codes()) == len(fake.engine.tax_codes.codes)

    def test_a_listing_that_ends_short_of_its_count_is_refused(self, mocked) -> None:
        router, backend = mocked
        rows = [{"taxCode": f"P{n}", "isActive": True} for n in range(3)]
        router.get("/api/v2/definitions/taxcodes").mock(
            side_effect=[
                httpx.Response(200, json={"@recordsetCount": 10, "value": rows}),
                httpx.Response(200, json={"@recordsetCount": 10, "value": []}),
            ]
        )
        with pytest.raises(MalformedResponse, match="ended after 3 of its 10 rows"):
            backend.active_tax_codes()

    def test_a_next_link_to_another_server_is_refused(self, mocked) -> None:
        router, backend = mocked
        page = {"value": [{"taxCode": "P1", "isActive": True}]}
        route = router.get("/api/v2/definitions/taxcodes").mock(
            return_value=httpx.Response(
                200,
                json={**page, "@nextLink": "https://elsewhere.test/api/v2/definitions/taxcodes"},
            )
        )
        with pytest.raises(MalformedResponse, match="another server"):
            backend.active_tax_codes()
        assert route.call_count == 1

    def test_codes_with_reserved_characters_are_encoded_in_paths(
        self, avatax, backend, fake
    ) -> None:
        code = "A/1+2?3%4#5 6"
        assert encode_code(code) == "A_-ava2f-_1_-ava2b-_2_-ava3f-_3_-ava25-_4_-ava23-_5%206"
        backend.calculate(request(code))
        assert backend.get_document("DEFAULT", code, INVOICE) is not None
        raw = avatax.router.calls.last.request.url.raw_path.decode()
        assert raw.startswith(
            "/api/v2/companies/DEFAULT/transactions/A_-ava2f-_1_-ava2b-_2_-ava3f-_3_-ava25-_4"
            "_-ava23-_5%206?"
        )


# ---------------------------------------------------------------------------------------------
# Errors


def _json(status: int, body: object, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


class TestErrors:
    @pytest.mark.parametrize(
        ("response", "kind", "error_code", "retryable"),
        [
            (
                error_body(500, "ServerUnreachable", 500, "down"),
                BackendUnavailable,
                "ServerUnreachable",
                True,
            ),
            (
                httpx.Response(503, text="<html>Service Unavailable</html>"),
                BackendUnavailable,
                "",
                True,
            ),
            (
                error_body(400, "RateLimitExceeded", 4011, "slow down"),
                BackendUnavailable,
                "RateLimitExceeded",
                True,
            ),
            (
                error_body(401, "AuthenticationException", None, "Authentication failed."),
                AuthenticationFailed,
                "AuthenticationException",
                True,
            ),
            (
                error_body(
                    400,
                    "GetTaxError",
                    300,
                    "DocStatus is invalid for this operation.",
                    refers_to="DocStatus",
                ),
                AlreadyCommitted,
                "GetTaxError",
                False,
            ),
            (
                error_body(400, "MissingLine", 311, "no lines"),
                DocumentRejected,
                "MissingLine",
                False,
            ),
            (httpx.Response(404, text="<html>Not Found</html>"), BackendError, "", False),
        ],
    )
    def test_each_answer_becomes_its_typed_error(
        self, mocked, response, kind, error_code, retryable
    ) -> None:
        router, backend = mocked
        router.post(CREATE).mock(return_value=response)
        with pytest.raises(BackendError) as caught:
            backend.calculate(request(commit=False))
        assert type(caught.value) is kind
        assert caught.value.error_code == error_code
        assert caught.value.retryable is retryable
        assert caught.value.status == response.status_code
        assert caught.value.code == "A-1"
        assert caught.value.backend == "avatax"

    def test_the_envelope_is_read_tolerantly(self, mocked) -> None:
        router, backend = mocked
        router.post(CREATE).mock(return_value=_json(400, {"error": {"message": "odd"}}))
        with pytest.raises(DocumentRejected, match="odd") as caught:
            backend.calculate(request(commit=False))
        assert (caught.value.number, caught.value.refers_to) == (None, "")

    def test_a_malformed_json_body_is_a_typed_error(self, mocked) -> None:
        router, backend = mocked
        route = router.post(CREATE).mock(
            return_value=httpx.Response(201, text="{not json", headers={"Content-Type": "x"})
        )
        with pytest.raises(MalformedResponse, match="not JSON"):
            backend.calculate(request(commit=False))
        assert route.call_count == 3  # outcome unknown: retried like a timeout

    def test_json_that_is_not_a_transaction_is_a_typed_error(self, mocked) -> None:
        router, backend = mocked
        router.post(CREATE).mock(return_value=_json(201, {"code": "A-1", "type": "Nope"}))
        with pytest.raises(MalformedResponse, match="TransactionModel"):
            backend.calculate(request(commit=False))

    def test_a_4xx_is_never_retried(self, mocked, sleeps) -> None:
        router, backend = mocked
        route = router.post(CREATE).mock(return_value=error_body(400, "MissingLine", 311, "x"))
        with pytest.raises(DocumentRejected):
            backend.calculate(request(commit=False))
        assert route.call_count == 1
        assert sleeps == []


# ---------------------------------------------------------------------------------------------
# Retries


class TestRetries:
    def test_a_retry_then_success(self, avatax, fake, sleeps) -> None:
        backend = AvaTaxBackend(fake_settings(backoff_initial=0.5, backoff_max=8), sleep=sleeps)
        fake.fail_next = [error_body(503, "ServerUnreachable", 500, "down")] * 2
        result = backend.calculate(request(commit=False))
        assert result.total_tax == Decimal("8.88")
        assert len(fake.requests) == 3
        assert len(sleeps) == 2
        assert all(0 <= wait <= 8 for wait in sleeps)

    def test_429_waits_as_long_as_retry_after_says(self, mocked, sleeps) -> None:
        router, backend = mocked
        route = router.post(CREATE).mock(
            side_effect=[
                httpx.Response(429, text="slow down", headers={"Retry-After": "7"}),
                httpx.Response(201, content=dumps(_temporary())),
            ]
        )
        assert backend.calculate(request(commit=False)).total_tax == Decimal("8.88")
        assert sleeps == [7.0]
        assert route.call_count == 2

    def test_retry_after_as_an_http_date(self) -> None:
        now = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
        assert retry_after_seconds("Sat, 21 Nov 2026 12:00:30 GMT", now) == 30.0
        assert retry_after_seconds("soon", now) is None

    def test_retries_are_bounded_in_attempts_and_in_time(self, mocked, sleeps) -> None:
        router, backend = mocked
        route = router.post(CREATE).mock(return_value=error_body(500, "RemoteServerError", 44, "x"))
        with pytest.raises(BackendUnavailable):
            backend.calculate(request(commit=False))
        assert route.call_count == 3
        route.reset()
        route.mock(return_value=httpx.Response(429, text="x", headers={"Retry-After": "3600"}))
        with pytest.raises(BackendUnavailable) as caught:
            backend.calculate(request(commit=False))
        assert route.call_count == 1  # an hour is past the 20 s budget: give up, queue it
        assert caught.value.retry_after == 3600.0

    def test_the_retry_budget_is_a_deadline_for_the_whole_call_timeouts_included(self) -> None:
        now = [0.0]
        waited: list[float] = []

        def hang(request: httpx.Request) -> httpx.Response:
            read = request.extensions["timeout"]["read"]
            waited.append(read)
            now[0] += read  # the engine never answers: the whole read timeout goes by
            raise httpx.ReadTimeout("no answer", request=request)

        with respx.mock(base_url=FAKE_URL) as router:
            router.post(CREATE).mock(side_effect=hang)
            backend = AvaTaxBackend(
                fake_settings(read_timeout=15, max_retry_seconds=20, circuit_failures=3),
                sleep=lambda seconds: None,
                clock=lambda: now[0],
            )
            with pytest.raises(BackendUnavailable, match="ReadTimeout") as caught:
                backend.calculate(request())
            assert caught.value.sent  # the posting may have landed
            assert (waited, now[0]) == ([15.0, 5.0], 20.0)  # 20 s in all, not 30
            # timed-out attempts count toward the circuit: the third one opens it
            with pytest.raises(CircuitOpen) as caught:
                backend.calculate(request("A-2"))
            assert caught.value.sent
            with pytest.raises(CircuitOpen):
                backend.calculate(request("A-3"))
        assert waited == [15.0, 5.0, 15.0]

    def test_an_adjustment_is_resent_only_when_it_never_left(self, avatax, fake) -> None:
        backend = avatax.inner
        backend.calculate(request("A-8"))
        fake.lose_responses = 1
        with pytest.raises(BackendUnavailable, match="outcome unknown"):
            backend.adjust_document(request("A-8"), AdjustmentReason.PRICE_ADJUSTED)
        assert fake.adjust_counts["A-8"] == 1
        assert _paths(fake)[-1].endswith("/adjust")
        fake.outage = True
        calls = len(fake.requests)
        with pytest.raises(BackendUnavailable):
            backend.adjust_document(request("A-8"), AdjustmentReason.PRICE_ADJUSTED)
        assert len(fake.requests) == calls  # refused at connect: retried, nothing arrived
        fake.outage = False

    def test_the_circuit_opens_after_calls_fail_in_a_row_and_closes_later(self, lone_fake) -> None:
        now = [0.0]
        with respx.mock(base_url=FAKE_URL) as router:
            router.route().mock(side_effect=lone_fake.handle)
            backend = AvaTaxBackend(
                fake_settings(circuit_failures=2, circuit_reset_seconds=30),
                sleep=lambda s: None,
                clock=lambda: now[0],
            )
            lone_fake.outage = True
            for _ in range(2):
                with pytest.raises(BackendUnavailable):
                    backend.calculate(request(commit=False))
            lone_fake.outage = False
            with pytest.raises(CircuitOpen, match="resume in 30 s") as caught:
                backend.calculate(request(commit=False))
            assert caught.value.retryable
            assert not caught.value.sent
            assert lone_fake.requests == []
            now[0] = 31.0
            assert backend.calculate(request(commit=False)).total_tax == Decimal("8.88")


def _temporary() -> dict[str, object]:
    return {
        "code": "A-1",
        "type": "SalesOrder",
        "status": "Temporary",
        "date": "2026-11-20",
        "totalAmount": 100.0,
        "totalTaxable": 100.0,
        "totalExempt": 0.0,
        "totalTax": 8.88,
        "lines": [
            {
                "lineNumber": "1",
                "lineAmount": 100.0,
                "taxableAmount": 100.0,
                "exemptAmount": 0,
                "tax": 8.88,
            }
        ],
    }


# ---------------------------------------------------------------------------------------------
# Posting exactly once


class TestIdempotentPosting:
    def test_a_timeout_after_the_request_went_out_never_commits_twice(self, backend, fake):
        fake.lose_responses = 1  # AvaTax commits A-1, then the answer is lost
        with pytest.raises(AlreadyCommitted):  # the backend sends it again; AvaTax refuses
            backend.calculate(request())
        fake.lose_responses = 1
        posted = post_once(backend, request("A-2"))  # the posting rule asks the question
        assert posted.found
        assert posted.result.status is DocumentStatus.COMMITTED
        assert fake.commit_counts == {"A-1": 1, "A-2": 1}
        assert _paths(fake)[-3:] == [
            f"POST {CREATE}",
            f"POST {CREATE}",
            "GET /api/v2/companies/DEFAULT/transactions/A-2",
        ]

    def test_a_lost_answer_on_every_attempt_leaves_u_and_the_repost_finds_it(
        self, avatax, store
    ) -> None:
        bridge = TaxBridge(default_config(), avatax, store)
        avatax.lose_responses = 1  # every attempt of the posting loses its answer
        doc = bridge.on_invoice(invoice("9001", order()))
        assert doc.flag is F.FAILED
        assert avatax.commit_counts["A-9001"] == 1
        assert bridge.repost().reposted == ("A-9001",)
        assert bridge.inquiry("A-9001").document.flag is F.REPOSTED
        assert avatax.commit_counts["A-9001"] == 1

    def test_a_call_is_uncertain_when_any_attempt_may_have_reached_avatax(self, mocked) -> None:
        router, backend = mocked
        refused = httpx.ConnectError("refused")
        router.post(CREATE).mock(side_effect=[httpx.ReadTimeout("no answer"), refused, refused])
        with pytest.raises(BackendUnavailable) as caught:
            backend.calculate(request())
        assert "ConnectError" in str(caught.value)  # the last attempt never left ...
        assert caught.value.sent  # ... but the first one did: the posting may have landed
        router.post(CREATE).mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(BackendUnavailable) as caught:
            backend.calculate(request())
        assert not caught.value.sent

    def test_a_garbled_answer_to_a_posting_is_looked_up_not_committed_again(
        self, lone_fake, store
    ) -> None:
        def garble(req: httpx.Request) -> httpx.Response:
            answer = lone_fake.handle(req)
            if req.method == "POST":
                return httpx.Response(201, text="<html>proxy error</html>")
            return answer

        with respx.mock(base_url=FAKE_URL) as router:
            router.route().mock(side_effect=garble)
            backend = AvaTaxBackend(fake_settings(), sleep=lambda s: None)
            bridge = TaxBridge(default_config(), backend, store)
            doc = bridge.on_invoice(invoice("9004", order()))
            assert doc.flag is F.FAILED  # every answer garbled: the outcome is unknown
            assert store.queue_entry("A-9004").may_have_landed
            assert bridge.repost().reposted == ("A-9004",)  # looked up first: found
        assert lone_fake.commit_counts["A-9004"] == 1
        assert "found already committed" in bridge.inquiry("A-9004").last_log
        check_bodies_against_the_contract(lone_fake)

    def test_already_committed_is_answered_by_a_lookup(self, avatax, store) -> None:
        # another ERP server (its own store) posted A-9002 already
        avatax.inner.calculate(transaction_model_request := request("A-9002", customer_code="C001"))
        assert transaction_model(transaction_model_request)["code"] == "A-9002"
        bridge = TaxBridge(default_config(), avatax, store)
        doc = bridge.on_invoice(invoice("9002", order()))
        assert doc.flag is F.POSTED
        assert doc.total_tax == Decimal("8.88")
        assert avatax.commit_counts["A-9002"] == 1
        assert [r.method for r in avatax.fake.requests[-2:]] == ["POST", "GET"]
        assert avatax.fake.adjust_counts["A-9002"] == 0

    def test_an_outage_degrades_fast_and_the_queue_posts_it_once(self, avatax, store) -> None:
        bridge = TaxBridge(default_config(), avatax, store)
        avatax.outage = True
        doc = bridge.on_invoice(invoice("9003", order()))
        assert doc.flag is F.FAILED
        assert "ConnectError" in doc.last_log
        avatax.outage = False
        assert bridge.repost().reposted == ("A-9003",)
        assert avatax.commit_counts["A-9003"] == 1


# ---------------------------------------------------------------------------------------------
# Secrets


class TestSecrets:
    def test_credentials_never_reach_logs_errors_or_reprs(self, lone_fake) -> None:
        basic = base64.b64encode(f"{FAKE_ACCOUNT}:{FAKE_KEY}".encode()).decode()
        structlog.reset_defaults()
        seen: list[str] = []
        with capture_logs() as logs, respx.mock(base_url=FAKE_URL) as router:
            router.route().mock(side_effect=lone_fake.handle)
            settings = fake_settings(log_bodies=True)
            backend = AvaTaxBackend(settings, sleep=lambda s: None)
            seen += [repr(settings), str(settings), repr(backend), repr(settings.license_key)]
            backend.calculate(request())
            lone_fake.lose_responses = 1
            post_once(backend, request("A-2"))
            for failing in (
                error_body(401, "AuthenticationException", None, "Authentication failed."),
                error_body(400, "GetTaxError", 300, "Zip is not valid", refers_to="Addresses"),
                httpx.Response(500, text="boom"),
            ):
                lone_fake.fail_next = [failing] * 3
                with pytest.raises(BackendError) as caught:
                    backend.calculate(request("A-3"))
                seen += [repr(caught.value), str(caught.value), repr(caught.value.__cause__)]
            lone_fake.outage = True
            with pytest.raises(BackendUnavailable) as caught:
                backend.calculate(request("A-4"))
            seen += [repr(caught.value), str(caught.value), repr(caught.value.__cause__)]
        seen += [repr(entry) for entry in logs]
        assert any(entry["event"] == "taxbridge.avatax.bodies" for entry in logs)
        for text in seen:
            assert FAKE_KEY not in text, text
            assert basic not in text, text

    def test_bodies_are_logged_only_when_asked(self, backend) -> None:
        structlog.reset_defaults()
        with capture_logs() as logs:
            backend.calculate(request(commit=False))
        assert not any(entry["event"] == "taxbridge.avatax.bodies" for entry in logs)
        assert any(entry["event"] == "taxbridge.avatax.http" for entry in logs)
        assert all(entry["log_level"] == "debug" for entry in logs)


# ---------------------------------------------------------------------------------------------
# Configuration


CONFIG = """
[backend]
kind = "avatax"
base_url = "{url}"
account_id = "{account}"
license_key_env = "TAXBRIDGE_TEST_KEY"
read_timeout = 7.5
company_ids = {{ DEFAULT = 4242 }}

[[companies]]
erp_company = "01"
company_code = "DEFAULT"

[[nexus]]
region = "NY"
"""


class TestConfig:
    def test_a_bridge_from_config_posts_through_avatax(self, lone_fake, tmp_path, monkeypatch):
        monkeypatch.setenv("TAXBRIDGE_TEST_KEY", FAKE_KEY)
        text = CONFIG.format(url=FAKE_URL, account=FAKE_ACCOUNT)
        config = parse_config_text(text, source="t.toml", base=tmp_path)
        assert isinstance(config.backend_settings, AvaTaxSettings)
        assert config.backend_settings.read_timeout == 7.5
        with respx.mock(base_url=FAKE_URL) as router:
            router.route().mock(side_effect=lone_fake.handle)
            with TaxBridge.from_settings(config) as bridge:
                assert isinstance(bridge.backend, AvaTaxBackend)
                assert bridge.on_invoice(invoice("9100", order())).flag is F.POSTED
        assert lone_fake.commit_counts["A-9100"] == 1

    @pytest.mark.parametrize(
        ("backend", "key"),
        [
            ('kind = "local"\naccount_id = "1"', "backend.account_id"),
            (
                'kind = "avatax"\nenvironment = "test"\naccount_id = "1"\nlicense_key = "k"',
                "backend.environment",
            ),
            (
                'kind = "avatax"\nenvironment = "sandbox"\nbase_url = "http://x"\ntoken = "t"',
                "backend.base_url",
            ),
            ('kind = "avatax"\ntoken = "t"\nread_timeout = "15"', "backend.read_timeout"),
            ('kind = "avatax"\ntoken = "t"\ncompany_ids = { A = "x" }', "backend.company_ids.A"),
            ('kind = "avatax"', "backend.license_key"),
            ('kind = "avatax"\ntoken = "t"\napp_name = "Acmé ERP"', "backend.app_name"),
            ('kind = "avatax"\ntoken = "t"\napp_name = "ERP\\r\\nX-Evil: 1"', "backend.app_name"),
            ('kind = "avatax"\ntoken = "t"\nmachine_name = "h\\t1"', "backend.machine_name"),
            ('kind = "avatax"\ntoken = "t"\nread_timeout = nan', "backend.read_timeout"),
            ('kind = "avatax"\ntoken = "t"\nconnect_timeout = inf', "backend.connect_timeout"),
            ('kind = "avatax"\ntoken = "t"\ncompany_ids = 5', "backend.company_ids"),
            ('kind = "avatax"\ntoken = "t"\ncompany_ids = [{}]', "backend.company_ids"),
            ('kind = "avatax"\ntoken = "t"\nmax_attempts = 100000000000', "backend.max_attempts"),
            ('kind = "avatax"\ntoken = "to ken"', "backend.token"),
        ],
    )
    def test_backend_mistakes_name_the_key(self, backend, key) -> None:
        text = f"[backend]\n{backend}\n[[companies]]\nerp_company = '01'\ncompany_code = 'D'\n"
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as caught:
            parse_config_text(text, source="bad.toml")
        assert "bad.toml" in str(caught.value)

    def test_a_config_key_is_never_shown(self) -> None:
        text = (
            '[backend]\nkind = "avatax"\naccount_id = "1"\nlicense_key = "s3cr3t-key"\n'
            "[[companies]]\nerp_company = '01'\ncompany_code = 'D'\n"
        )
        config = parse_config_text(text, source="key.toml")
        assert "s3cr3t-key" not in repr(config)

    def test_taxbridge_ping_reports_whether_the_credentials_are_accepted(
        self, lone_fake, tmp_path, monkeypatch, capsys
    ) -> None:
        from taxbridge.cli import main

        path = tmp_path / "taxbridge.toml"
        path.write_text(CONFIG.format(url=FAKE_URL, account=FAKE_ACCOUNT))
        with respx.mock(base_url=FAKE_URL) as router:
            router.route().mock(side_effect=lone_fake.handle)
            monkeypatch.setenv("TAXBRIDGE_TEST_KEY", FAKE_KEY)
            assert main(["ping", "--config", str(path)]) == 0
            assert "credentials accepted" in capsys.readouterr().out
            monkeypatch.setenv("TAXBRIDGE_TEST_KEY", "wrong")
            assert main(["ping", "--config", str(path)]) == 1
            assert "NOT accepted" in capsys.readouterr().out


def test_a_second_store_on_the_same_engine_never_posts_twice(tmp_path, avatax) -> None:
    first = TaxBridge(default_config(), avatax, SQLiteStore(tmp_path / "a.db"))
    second = TaxBridge(default_config(), avatax, SQLiteStore(tmp_path / "b.db"))
    assert first.on_invoice(invoice("9200", order())).flag is F.POSTED
    assert second.on_invoice(invoice("9200", order())).flag is F.POSTED
    assert avatax.commit_counts["A-9200"] == 1


class TestCertificateService:
    def test_ship_to_zones_are_sent_and_a_change_of_zones_updates_the_card_over_a_socket(
        self,
    ) -> None:
        from taxbridge.models import CustomerCard

        fake = FakeAvaTax(account_id=FAKE_ACCOUNT, license_key=FAKE_KEY)
        fake.companies["DEFAULT"] = 4242
        card = CustomerCard(
            "C100", "DEFAULT", "Exempt Co", "1 Main St", "New York", "NY", "10118",
            exposure_zones=("NY", "PA"),
        )  # fmt: skip
        with serve(fake) as url:
            settings = AvaTaxSettings(
                base_url=url, account_id=FAKE_ACCOUNT, license_key=Secret(FAKE_KEY)
            )
            with AvaTaxBackend(settings) as backend:
                service = backend.certificate_service()
                assert "exposure_zones" in service.kept_fields
                service.push_customer(card, None)
                moved = attrs.evolve(card, exposure_zones=("NY", "NJ"))
                service.push_customer(moved, card)  # UpdateCustomer: a PUT over the socket
        stored = fake.certcapture.customers[(4242, "C100")]
        names = {zone["region"]: zone["name"] for zone in fake.certcapture.zones}
        assert [zone["name"] for zone in stored["exposureZones"]] == [names["NJ"], names["NY"]]
        assert [r.method for r in fake.requests if r.path.endswith("/customers/C100")][-1] == "PUT"
        check_bodies_against_the_contract(fake)

    def test_a_certificate_whose_zone_has_only_a_name_is_read_by_the_name(self, backend) -> None:
        from taxbridge.backends.avatax.certificates import certificate_from_model

        model = {
            "id": 7,
            "signedDate": "2026-01-01",
            "expirationDate": "2027-01-01",
            "exposureZone": {"name": "Pennsylvania"},
            "exemptionReason": {"name": "RESALE"},
            "valid": True,
        }
        service = backend.certificate_service()
        found = certificate_from_model(model, "C100", service._zone_region)
        assert found.regions == ("PA",)
        with pytest.raises(MalformedResponse, match="no exposure zone region"):
            certificate_from_model(model, "C100")
