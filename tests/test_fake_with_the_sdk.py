"""The shipped AvaTax fake, tried by a client nobody here wrote: Avalara's official Python SDK
(``avalara``, over ``requests``) against ``taxbridge.testing.serve(FakeAvaTax())`` on loopback.
Users whose own code calls AvaTax through the SDK can test it against the same fake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from taxbridge.testing.fake_avatax import FakeAvaTax, serve

avalara = pytest.importorskip("avalara", reason="the test extra installs Avalara's SDK")

ACCOUNT, KEY = "1100000000", "sdk-license-key"


@pytest.fixture
def sdk() -> Iterator[tuple[Any, FakeAvaTax, str]]:
    fake = FakeAvaTax(account_id=ACCOUNT, license_key=KEY)
    with serve(fake) as url:
        client = avalara.AvataxClient("taxbridge-tests", "1.0", "ci", url)
        client.add_credentials(ACCOUNT, KEY)
        yield client, fake, url


SALE = {
    "type": "SalesInvoice",
    "code": "SDK-1001",
    "companyCode": "DEFAULT",
    "date": "2026-11-20",
    "customerCode": "C001",
    "commit": True,
    "addresses": {
        "shipFrom": {
            "line1": "822 Reed St",
            "city": "Philadelphia",
            "region": "PA",
            "postalCode": "19147",
            "country": "US",
        },
        "shipTo": {
            "line1": "350 5th Ave",
            "city": "New York",
            "region": "NY",
            "postalCode": "10118",
            "country": "US",
        },
    },
    "lines": [{"number": "1", "quantity": 1, "amount": 100, "itemCode": "SKU-1"}],
}


def test_every_answer_carries_a_correlation_id_the_sdk_reads(sdk: Any) -> None:
    client, _, _ = sdk
    answer = client.ping()  # the SDK reads x-correlation-id on every answer
    assert answer.status_code == 200
    assert answer.headers["x-correlation-id"]
    assert answer.json()["authenticated"] is True


def test_the_sdk_creates_lists_and_voids_a_transaction(sdk: Any) -> None:
    client, fake, _ = sdk
    created = client.create_transaction(SALE)
    assert created.status_code in (200, 201), created.text
    assert created.json()["totalTax"] > 0
    assert fake.commit_counts["SDK-1001"] == 1
    listed = client.list_transactions_by_company("DEFAULT", {"$filter": "date ge '2026-11-01'"})
    assert listed.status_code == 200, listed.text
    assert [row["code"] for row in listed.json()["value"]] == ["SDK-1001"]
    committed = client.list_transactions_by_company(
        "DEFAULT", {"$filter": "date ge '2026-11-01' and status eq Committed"}
    )
    assert [row["code"] for row in committed.json()["value"]] == ["SDK-1001"]
    none = client.list_transactions_by_company("DEFAULT", {"$filter": "date lt '2026-11-20'"})
    assert none.json()["value"] == []
    voided = client.void_transaction("DEFAULT", "SDK-1001", {"code": "DocVoided"})
    assert voided.status_code == 200, voided.text
    assert voided.json()["status"] == "Cancelled"


def test_a_filter_the_fake_cannot_read_is_avatax_s_filter_syntax_error(sdk: Any) -> None:
    client, _, _ = sdk
    answer = client.list_transactions_by_company("DEFAULT", {"$filter": "totalTax gt 5"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "FilterSyntaxError"


def test_the_get_form_of_resolve_address_and_rates_by_postal_code(sdk: Any) -> None:
    client, _, _ = sdk
    resolved = client.resolve_address(
        {
            "line1": "350 5th Ave",
            "city": "New York",
            "region": "NY",
            "postalCode": "10118",
            "country": "US",
        }
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["validatedAddresses"][0]["city"] == "NEW YORK"
    rates = client.tax_rates_by_postal_code({"country": "US", "postalCode": "10118"})
    assert rates.status_code == 200, rates.text
    body = rates.json()
    assert body["totalRate"] > 0
    assert {rate["type"] for rate in body["rates"]} >= {"State"}
    assert abs(sum(rate["rate"] for rate in body["rates"]) - body["totalRate"]) < 1e-9


def test_an_unknown_route_answers_avatax_s_json_error(sdk: Any) -> None:
    _, _, url = sdk
    answer = httpx.get(f"{url}/api/v2/no/such/route", auth=(ACCOUNT, KEY))
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"]["code"] == "EntityNotFoundError"
    assert answer.headers["x-correlation-id"]
