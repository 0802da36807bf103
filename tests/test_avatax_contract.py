"""AvaTaxBackend against Avalara's published contract and real recorded sandbox traffic.

Reads ../shared/reference/avatax through the ``shared_reference`` fixture (TAXBRIDGE_REFERENCE
overrides the path); skips with the reason when it is absent, as in a user's fresh clone.
Request bodies of every AvaTax test are also checked against the schemas (conftest).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import avatax_contract
import httpx
import pytest
import respx
from conftest import NYC, WAREHOUSE, fake_avatax

from taxbridge.backends.avatax import SANDBOX_URL, AvaTaxBackend, AvaTaxSettings, Secret
from taxbridge.backends.avatax.errors import error_from_response
from taxbridge.backends.avatax.mapping import (
    address_from_resolution,
    create_or_adjust_model,
    result_from_model,
    transaction_model,
)
from taxbridge.backends.base import VoidReason
from taxbridge.errors import (
    AlreadyCommitted,
    AuthenticationFailed,
    BackendUnavailable,
    DocumentRejected,
)
from taxbridge.models import (
    Address,
    DocumentStatus,
    DocumentType,
    JurisdictionType,
    TaxLine,
    TaxRequest,
)

JURISDICTIONS = {"State": "STA", "County": "CTY", "City": "CIT", "Special": "STJ"}


def _examples(folder: Path, name: str) -> list[dict[str, Any]]:
    data = json.loads((folder / "examples" / name).read_text(), parse_float=Decimal)
    return list(data["interactions"])


def _transactions(folder: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for name in (
        "create-transaction-ca-state-county-special.json",
        "create-transaction-ny-state-city-special.json",
        "create-committed-salesinvoice-pa.json",
        "transaction-lifecycle.json",
    ):
        for index, interaction in enumerate(_examples(folder, name)):
            body = interaction["response"]["body"]
            if isinstance(body, dict) and "totalTax" in body:
                yield f"{name}#{index}", interaction


def _number(value: Any) -> Decimal:
    return Decimal(str(value))


def test_every_recorded_transaction_parses_to_the_recorded_figures(shared_reference) -> None:
    seen = 0
    for name, interaction in _transactions(shared_reference):
        body = interaction["response"]["body"]
        result = result_from_model(body, backend="avatax")
        assert result.code == body["code"], name
        assert result.document_type is DocumentType(body["type"]), name
        assert result.status is DocumentStatus(body["status"]), name
        assert result.total_tax == _number(body["totalTax"]), name
        assert result.total_taxable == _number(body["totalTaxable"]), name
        assert result.total_exempt == _number(body["totalExempt"]), name
        assert result.total_amount == _number(body["totalAmount"]) - _number(
            body.get("totalDiscount", 0)
        ), name
        assert [(line.number, line.tax, line.taxable) for line in result.lines] == [
            (row["lineNumber"], _number(row["tax"]), _number(row["taxableAmount"]))
            for row in body["lines"]
        ], name
        for line, row in zip(result.lines, body["lines"], strict=True):
            assert [(d.jurisdiction_type.value, d.name, d.rate, d.tax) for d in line.details] == [
                (d["jurisType"], d["jurisName"], _number(d["rate"]), _number(d["tax"]))
                for d in row.get("details", ())
            ], name
        assert [
            (j.jurisdiction_type.value, j.name, j.region, j.rate, j.taxable, j.tax)
            for j in result.summary
        ] == [
            (JURISDICTIONS[s["jurisType"]], s["jurisName"], s["region"], _number(s["rate"]),
             _number(s["taxable"]), _number(s["tax"]))
            for s in body.get("summary", ())
        ], name  # fmt: skip
        assert sum((j.tax for j in result.summary), Decimal(0)) == result.total_tax, name
        seen += 1
    assert seen == 10


def test_the_san_francisco_breakdown_is_state_county_and_special(shared_reference) -> None:
    (interaction,) = _examples(shared_reference, "create-transaction-ca-state-county-special.json")
    result = result_from_model(interaction["response"]["body"], backend="avatax")
    assert [(j.jurisdiction_type, j.tax) for j in result.summary] == [
        (JurisdictionType.STATE, Decimal("0.60")),
        (JurisdictionType.COUNTY, Decimal("0.03")),
        (JurisdictionType.SPECIAL, Decimal("0.10")),
    ]
    freight = result.lines[1]
    assert (freight.tax, freight.exempt, freight.rate) == (Decimal("0.00"), Decimal("5.00"), 0)
    assert result.summary[0].exempt == Decimal("5.00")  # nonTaxable + exemption


def _request_like(body: dict[str, Any]) -> TaxRequest:
    return TaxRequest(
        code=body["code"],
        document_type=DocumentType(body["type"]),
        company_code="test1",
        customer_code="C",
        date=dt.date.fromisoformat(body["date"]),
        ship_from=WAREHOUSE,
        ship_to=NYC,
        lines=(TaxLine("1", Decimal("10.00")),),
        line_details=True,
    )


@pytest.fixture
def sandbox() -> Iterator[tuple[respx.MockRouter, AvaTaxBackend]]:
    settings = AvaTaxSettings(base_url=SANDBOX_URL, account_id="1", license_key=Secret("k"))
    with respx.mock(base_url=SANDBOX_URL, assert_all_called=False) as router:
        backend = AvaTaxBackend(settings, sleep=lambda seconds: None)
        yield router, backend
        backend.close()


def _replay(router: respx.MockRouter, interaction: dict[str, Any]) -> respx.Route:
    recorded = interaction["request"]
    path = httpx.URL(recorded["uri"]).path
    response = interaction["response"]
    content = json.dumps(response["body"], default=str).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    return router.route(method=recorded["method"], path=path).mock(
        return_value=httpx.Response(response["status"], content=content, headers=headers)
    )


def test_recorded_2xx_answers_of_each_operation_are_accepted(shared_reference, sandbox) -> None:
    router, backend = sandbox
    lifecycle = _examples(shared_reference, "transaction-lifecycle.json")
    statuses = []
    for interaction in lifecycle[:3]:  # createoradjust: 201, 201, then 200 (adjusted)
        router.routes.clear()
        _replay(router, interaction)
        body = interaction["response"]["body"]
        result = backend.create_or_adjust(_request_like(body))
        assert result.total_tax == _number(body["totalTax"])
        statuses.append(interaction["response"]["status"])
    assert statuses == [201, 201, 200]

    router.routes.clear()
    _replay(router, lifecycle[4])
    voided = backend.void_document("test1", "R251928987", DocumentType.SALES_INVOICE,
                                   VoidReason.DOC_VOIDED)  # fmt: skip
    assert voided.status is DocumentStatus.CANCELLED

    _replay(router, lifecycle[6])
    refund = backend.refund_document("test1", "REFUND7482", "REFUND7482-1", dt.date(2019, 9, 20))
    assert (refund.document_type, refund.total_tax) == (
        DocumentType.RETURN_INVOICE, Decimal("-8.80")
    )  # fmt: skip

    _replay(router, lifecycle[7])
    ping = backend.ping()
    assert ping.authenticated
    assert ping.version == "19.9.1"

    (pa,) = _examples(shared_reference, "create-committed-salesinvoice-pa.json")
    _replay(router, pa)
    posted = backend.create_transaction(_request_like(pa["response"]["body"]))
    assert posted.status is DocumentStatus.COMMITTED
    assert posted.total_tax == Decimal("8.80")


EXPECTED_ERRORS = [
    # (recorded error code, exception, HTTP status, number, refersTo)
    ("MissingLine", DocumentRejected, 400, 311, ""),
    ("EntityNotFoundError", DocumentRejected, 404, 4, ""),
    ("EntityNotFoundError", DocumentRejected, 404, 4, ""),
    ("AuthenticationException", AuthenticationFailed, 401, None, ""),
    ("GetTaxError", AlreadyCommitted, 400, 300, "DocStatus"),
    ("JsonFormatError", DocumentRejected, 400, 47, ""),
    ("GetTaxError", DocumentRejected, 400, 300, "Addresses[1]"),
    ("StringLengthError", DocumentRejected, 400, 13, ""),
    ("InvalidAddress", DocumentRejected, 400, 309, ""),
    ("InvalidAddress", DocumentRejected, 400, 309, ""),
    ("EntityNotFoundError", DocumentRejected, 404, 4, ""),
    ("TimeoutRequested", BackendUnavailable, 400, 316, ""),
    ("ModelRequiredException", DocumentRejected, 400, 38, ""),
]


def test_every_recorded_error_becomes_the_right_exception(shared_reference) -> None:
    interactions = _examples(shared_reference, "error-responses.json")
    assert len(interactions) == len(EXPECTED_ERRORS)
    for interaction, expected in zip(interactions, EXPECTED_ERRORS, strict=True):
        code, kind, status, number, refers_to = expected
        recorded = interaction["response"]
        content_type = recorded["headers"].get("Content-Type", ["application/json"])[0]
        response = httpx.Response(
            recorded["status"],
            content=json.dumps(recorded["body"], default=str).encode(),
            headers={"Content-Type": content_type},
        )
        error = error_from_response(response, backend="avatax", code="X-1")
        assert type(error) is kind, code
        assert (error.error_code, error.status, error.number, error.refers_to) == (
            code, status, number, refers_to
        ), code  # fmt: skip
        detail = recorded["body"]["error"]["details"][0]
        assert detail["message"] in error.message
        assert "X-1" in str(error)


def test_a_recorded_404_lookup_means_no_such_document(shared_reference, sandbox) -> None:
    router, backend = sandbox
    interaction = _examples(shared_reference, "error-responses.json")[1]
    _replay(router, interaction)
    assert backend.get_document("test1", "testerror", DocumentType.SALES_INVOICE) is None


def test_a_recorded_forced_timeout_is_retried_and_then_unavailable(
    shared_reference, sandbox
) -> None:
    router, backend = sandbox
    interaction = _examples(shared_reference, "error-responses.json")[11]
    route = _replay(router, interaction)
    with pytest.raises(BackendUnavailable, match="timeout"):
        backend.calculate(_request_like({"code": "T", "type": "SalesOrder", "date": "2019-09-20"}))
    assert route.call_count == 3


def test_recorded_address_resolutions(shared_reference) -> None:
    found = []
    for interaction in _examples(shared_reference, "address-resolve.json"):
        body = interaction["response"]["body"]
        if body.get("resolutionQuality") == "NotCoded":
            with pytest.raises(DocumentRejected) as caught:
                address_from_resolution(body, backend="avatax")
            assert caught.value.refers_to == "Address.Line0"
            assert "street name" in caught.value.message
            found.append("rejected")
        else:
            address = address_from_resolution(body, backend="avatax")
            assert isinstance(address, Address)
            assert address.postal_code == body["validatedAddresses"][0]["postalCode"]
            found.append(address.region)
    assert found == ["NY", "NY", "PA", "rejected"]


def _request(**kwargs: Any) -> TaxRequest:
    values: dict[str, Any] = {
        "code": "A-1",
        "document_type": DocumentType.SALES_INVOICE,
        "company_code": "DEFAULT",
        "customer_code": "C001",
        "date": dt.date(2026, 11, 20),
        "ship_from": WAREHOUSE,
        "ship_to": NYC,
        "lines": (
            TaxLine("1", Decimal("100.00"), tax_code="P0000000", discounted=True,
                    exemption_no="L-1", entity_use_code="G", ref1="a", ref2="b",
                    ship_to=Address("233 S Wacker Dr", "Chicago", "IL", "60601")),
            TaxLine("2", Decimal("5.00"), tax_code="FR020100", item_code="FREIGHT"),
        ),
        "commit": True,
        "discount": Decimal("10.00"),
        "exemption_no": "EX",
        "entity_use_code": "R",
        "tax_date": dt.date(2026, 1, 5),
        "tax_date_reason": "credit of A-7",
        "purchase_order_no": "PO",
        "reference_code": "REF",
    }  # fmt: skip
    values.update(kwargs)
    return TaxRequest(**values)


def test_the_fullest_request_conforms_to_both_published_schemas(shared_reference) -> None:
    assert (
        avatax_contract.problems(
            "CreateTransactionModel", transaction_model(_request()), shared_reference
        )
        == []
    )
    assert (
        avatax_contract.problems(
            "CreateOrAdjustTransactionModel", create_or_adjust_model(_request()), shared_reference
        )
        == []
    )


def test_the_schema_check_catches_a_misspelt_field(shared_reference) -> None:
    body = transaction_model(_request())
    body["lines"][0]["taxcode"] = "P0000000"
    body["commit"] = "yes"
    found = avatax_contract.problems("CreateTransactionModel", body, shared_reference)
    assert any("taxcode is not a property" in problem for problem in found)
    assert any("'yes' is not of type 'boolean'" in problem for problem in found)


def test_the_fakes_answers_conform_to_the_transaction_model(shared_reference) -> None:
    with fake_avatax() as avatax:
        avatax.calculate(_request(line_details=True))
        answer = avatax.router.calls.last.response
    body = json.loads(answer.content, parse_float=Decimal)
    assert avatax_contract.problems("TransactionModel", body, shared_reference) == []
    assert answer.status_code == 201


def test_the_reference_fixture_path_can_be_overridden(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TAXBRIDGE_REFERENCE", str(tmp_path))
    assert avatax_contract.reference_folder() == tmp_path
