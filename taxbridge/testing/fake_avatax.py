"""A stand-in AvaTax that follows the REST v2 contract, calculating with the local engine.

For tests and benchmarks, yours and ours: plug :meth:`FakeAvaTax.handle` into respx or an
``httpx.MockTransport``, or serve it on 127.0.0.1 with :func:`serve`. It keeps documents by
company, code and type as AvaTax does (estimates are never saved; a committed code is refused by
``CreateTransaction`` with ``400 GetTaxError refersTo DocStatus``; ``CreateOrAdjustTransaction``
adjusts it to a new version), answers with the recorded status codes (create 201, adjust 200),
the ``{"error": ...}`` envelope and ``$include``, and counts commits per code so a test can
prove that nothing was posted twice. Switches rehearse failures: ``outage`` (connection
refused), ``lose_responses`` (the call is carried out, then the answer is lost), ``fail_next``
(canned answers such as a 503 or a 429), ``latency`` (seconds before each answer).
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import operator
import re
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import httpx

from taxbridge.backends.avatax.mapping import dumps, loads
from taxbridge.backends.local import LocalEngine
from taxbridge.errors import DocumentRejected, InvalidFieldError
from taxbridge.models import (
    Address,
    DocumentStatus,
    DocumentType,
    JurisdictionTax,
    TaxLine,
    TaxRequest,
    TaxResult,
)
from taxbridge.money import ZERO, round_money
from taxbridge.testing.fake_certcapture import FakeCertCapture, Refusal

_DECODE = (
    ("%20", " "),
    ("_-ava2f-_", "/"),
    ("_-ava2b-_", "+"),
    ("_-ava3f-_", "?"),
    ("_-ava23-_", "#"),
    ("_-ava25-_", "%"),
)
_SUMMARY_TYPES = {
    "STA": "State",
    "CTY": "County",
    "CIT": "City",
    "STJ": "Special",
    "CNT": "Country",
}
_ESTIMATE = {
    DocumentType.SALES_INVOICE: DocumentType.SALES_ORDER,
    DocumentType.RETURN_INVOICE: DocumentType.RETURN_ORDER,
}


class _Refused(Exception):
    """An AvaTax error answer, raised inside a handler."""

    def __init__(
        self,
        status: int,
        code: str,
        number: int,
        message: str,
        *,
        description: str = "",
        refers_to: str = "",
        target: str = "Unknown",
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.number = number
        self.message = message
        self.description = description
        self.refers_to = refers_to
        self.target = target


def error_body(
    status: int,
    code: str,
    number: int | None,
    message: str,
    *,
    description: str = "",
    refers_to: str = "",
    target: str = "Unknown",
) -> httpx.Response:
    """An answer in AvaTax's error envelope."""
    detail: dict[str, Any] = {
        "code": code,
        "message": message,
        "faultCode": "Client",
        "helpLink": f"http://developer.avalara.com/avatax/errors/{code}",
        "severity": "Error",
    }
    if number is not None:
        detail["number"] = number
    if description:
        detail["description"] = description
    if refers_to:
        detail["refersTo"] = refers_to
    body = {"error": {"code": code, "message": message, "target": target, "details": [detail]}}
    return httpx.Response(
        status, content=dumps(body), headers={"Content-Type": "application/json; charset=utf-8"}
    )


@attrs.define
class _Stored:
    request: TaxRequest
    result: TaxResult
    status: DocumentStatus
    version: int
    id: int
    adjustment_reason: str = "NotAdjusted"
    locked: bool = False


@attrs.frozen
class Recorded:
    """One request the fake received (the body parsed, Decimal numbers)."""

    method: str
    path: str
    params: Mapping[str, str]
    body: Any
    headers: Mapping[str, str]


class FakeAvaTax:
    """AvaTax REST v2 over the local engine. Thread-safe."""

    def __init__(
        self,
        engine: LocalEngine | None = None,
        *,
        account_id: str = "1100000000",
        license_key: str = "fake-license-key",
        latency: float = 0.0,
    ):
        self.engine = engine or LocalEngine()
        self.account_id = account_id
        self._credentials = "Basic " + base64.b64encode(
            f"{account_id}:{license_key}".encode()
        ).decode("ascii")
        self.latency = latency
        self.documents: dict[tuple[str, str, DocumentType], _Stored] = {}
        self.companies: dict[str, int] = {}
        self.commit_counts: Counter[str] = Counter()
        """Commits per code: a create with commit=true, a commit call, a committed refund."""
        self.adjust_counts: Counter[str] = Counter()
        """Adjustments per code (a new version of a document)."""
        self.requests: list[Recorded] = []
        self.peers: set[tuple[str, int]] = set()
        """Client addresses seen by :func:`serve`: one per TCP connection."""
        self.outage = False
        """While True, every call is refused at connect time (nothing reaches the fake)."""
        self.lose_responses = 0
        """The next N calls are carried out, then their answers are lost (a read timeout)."""
        self.after_commit: Callable[[str], None] | None = None
        """Called with the code right after a commit, before the answer leaves (a crash test
        kills the client there: committed at the engine, not yet recorded by the client)."""
        self.fail_next: list[httpx.Response] = []
        """Canned answers given (in order) instead of handling the next calls."""
        self.page_size = 1000
        """The most rows a list call answers, whatever its ``$top`` asks (AvaTax: 1,000)."""
        self.next_links = True
        """A page that is not the last links to the next with ``@nextLink``; False plays a
        server that only gives ``@recordsetCount``."""
        self._listing = ""
        self._lock = threading.RLock()
        self._ids = itertools.count(10_000_000_001)
        self.certcapture = FakeCertCapture(self._company_id)
        """Customers, certificates and CertExpress invitations (``upload`` adds a certificate
        as a customer completing an invitation would)."""

    # -- entry point ---------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request, as AvaTax would."""
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            if self.outage:
                raise httpx.ConnectError("connection refused (fake outage)", request=request)
            body = self._body(request)
            self.requests.append(
                Recorded(
                    request.method,
                    request.url.path,
                    dict(request.url.params),
                    body,
                    {k: v for k, v in request.headers.items() if k != "authorization"},
                )
            )
            if self.fail_next:
                return _correlated(self.fail_next.pop(0))
            response = self._route(request, body)
            if self.lose_responses > 0:
                self.lose_responses -= 1
                raise httpx.ReadTimeout("the answer was lost (fake)", request=request)
            return _correlated(response)

    def _committed(self, code: str) -> None:
        if self.after_commit is not None:
            self.after_commit(code)

    def lock(
        self, company: str, code: str, kind: DocumentType = DocumentType.SALES_INVOICE
    ) -> None:
        """Lock a document, as filing a return that reports it does."""
        with self._lock:
            self.documents[(company, code, kind)].locked = True

    def committed(self, company: str, code: str, kind: DocumentType) -> bool:
        """Whether that document is committed here."""
        with self._lock:
            stored = self.documents.get((company, code, kind))
            return stored is not None and stored.status is DocumentStatus.COMMITTED

    # -- routing -------------------------------------------------------------------------------

    @staticmethod
    def _body(request: httpx.Request) -> Any:
        content = request.content
        if not content:
            return None
        try:
            return loads(content)
        except ValueError:
            return _INVALID_JSON

    def _route(self, request: httpx.Request, body: Any) -> httpx.Response:
        raw = request.url.raw_path.split(b"?")[0].decode()
        self._listing = raw
        # route on the encoded path: a decoded code may hold "/"
        path = re.sub(
            r"^/api/v2/companies/[^/]+/transactions/[^/]+",
            "/api/v2/companies/{company}/transactions/{code}",
            raw,
        )
        found = re.search(r"/companies/([^/]+)/transactions/([^/]+)", raw)
        company, code = (_decode(found.group(1)), _decode(found.group(2))) if found else ("", "")
        params = request.url.params
        if path == "/api/v2/utilities/ping":
            return self._ping(request)
        if request.headers.get("authorization") != self._credentials:
            return _unauthenticated()
        include = _Include(params.get("$include"))
        method = request.method
        try:
            if body is _INVALID_JSON:
                raise _Refused(
                    400,
                    "JsonFormatError",
                    47,
                    "The request body did not contain valid JSON.",
                    target="HttpRequest",
                )
            if method == "POST" and path == "/api/v2/transactions/create":
                return self._create(_model(body), include, adjust=False)
            if method == "POST" and path == "/api/v2/transactions/createoradjust":
                inner = body.get("createTransactionModel") if isinstance(body, dict) else None
                return self._create(_model(inner), include, adjust=True)
            if method == "POST" and path == "/api/v2/addresses/resolve":
                return self._resolve(_model(body))
            if method == "GET" and path == "/api/v2/addresses/resolve":
                return self._resolve(dict(params))
            if method == "GET" and path == "/api/v2/taxrates/bypostalcode":
                return self._rates_by_postal_code(params)
            if method == "GET" and path == "/api/v2/definitions/taxcodes":
                rows = [
                    {
                        "taxCode": rule_code,
                        "description": self._describe(rule_code),
                        "isActive": True,
                        "taxCodeTypeId": "P",
                    }
                    for rule_code in sorted(self.engine.tax_codes.codes)
                ]
                return self._page(rows, params)
            if method == "GET" and path == "/api/v2/definitions/entityusecodes":
                rows = [
                    {"code": code, "name": name, "validCountries": ["US"]}
                    for code, name in sorted(self.engine.entity_use_codes().items())
                ]
                return self._page(rows, params)
            if method == "GET" and path == "/api/v2/companies":
                return self._page(self._companies(params.get("$filter", "")), params)
            answered = self.certcapture.route(method, raw, params, body)
            if answered is not None:
                status, data = answered
                if method == "GET" and isinstance(data, list):
                    return self._page(data, params)
                return httpx.Response(
                    status, content=dumps(data), headers={"Content-Type": "application/json"}
                )
            match = re.fullmatch(r"/api/v2/companies/(\d+)/nexus", path)
            if method == "GET" and match:
                return self._page(self._nexus(int(match.group(1))), params)
            match = re.fullmatch(r"/api/v2/taxratesbyzipcode/download/([^/]+)", path)
            if method == "GET" and match:
                regions = [params["region"]] if "region" in params else None
                table = self.engine.rates if regions is None else self.engine.rates.only(regions)
                return httpx.Response(
                    200, text=table.to_csv(), headers={"Content-Type": "text/csv"}
                )
            match = re.fullmatch(r"/api/v2/companies/([^/]+)/transactions", raw)
            if method == "GET" and match:
                return self._list(_decode(match.group(1)), params)
            match = re.fullmatch(
                r"/api/v2/companies/\{company\}/transactions/\{code\}(/\w+)?", path
            )
            if match:
                action = match.group(1) or ""
                kind = _document_type(params.get("documentType", "SalesInvoice"))
                return self._transaction(method, action, company, code, kind, body, include)
        except Refusal as refused:
            return error_body(
                refused.status,
                refused.code,
                refused.number,
                refused.message,
                refers_to=refused.refers_to,
            )
        except _Refused as refused:
            return error_body(
                refused.status,
                refused.code,
                refused.number,
                refused.message,
                description=refused.description,
                refers_to=refused.refers_to,
                target=refused.target,
            )
        return error_body(
            404,
            "EntityNotFoundError",
            4,
            f"No AvaTax API answers {method} {raw}.",
            target="HttpRequest",
        )

    # -- transactions --------------------------------------------------------------------------

    def _create(
        self, model: Mapping[str, Any], include: _Include, *, adjust: bool
    ) -> httpx.Response:
        request = _request_from_model(model)
        kind = request.document_type
        result = self._calculate(request)
        if not kind.is_saved:
            return self._answer(201, request, result, DocumentStatus.TEMPORARY, 1, 0, include)
        key = (request.company_code, request.code, kind)
        existing = self.documents.get(key)
        committed = existing is not None and existing.status is DocumentStatus.COMMITTED
        if committed and not adjust:
            raise _committed_already()
        status = DocumentStatus.COMMITTED if request.commit or committed else DocumentStatus.SAVED
        if status is DocumentStatus.COMMITTED and not committed:
            self.commit_counts[request.code] += 1
            self._committed(request.code)
        if existing is not None and existing.status is not DocumentStatus.CANCELLED and adjust:
            self.adjust_counts[request.code] += 1
            stored = _Stored(
                request, result, status, existing.version + 1, next(self._ids), "Other"
            )
            self.documents[key] = stored
            return self._answer(
                200, request, result, status, stored.version, stored.id, include, "Other"
            )
        stored = _Stored(request, result, status, 1, next(self._ids))
        self.documents[key] = stored
        return self._answer(201, request, result, status, 1, stored.id, include)

    def _transaction(
        self,
        method: str,
        action: str,
        company: str,
        code: str,
        kind: DocumentType,
        body: Any,
        include: _Include,
    ) -> httpx.Response:
        stored = self.documents.get((company, code, kind))
        if stored is None:
            raise _Refused(
                404,
                "EntityNotFoundError",
                4,
                "Transaction not found.",
                description=f"The Transaction with code '{company}:{code}' was not found.",
                target="HttpRequest",
            )
        status = stored.status
        if method == "GET" and not action:
            return self._answer_stored(200, stored, include)
        if method != "POST":
            return httpx.Response(405, text="Method Not Allowed")
        if stored.locked and action in ("/void", "/adjust", "/uncommit"):
            raise _Refused(
                400,
                "CannotModifyLockedTransaction",
                1100,
                "Modifying a locked document is not allowed.",
                description=f"Document {code} is locked. Modification is not allowed.",
                target="Unknown",
            )
        if action == "/commit":
            if status is DocumentStatus.COMMITTED:
                raise _Refused(
                    400,
                    "TransactionIsCommitted",
                    1313,
                    "Committed transactions cannot be modified by this API.",
                )
            if status is DocumentStatus.CANCELLED:
                raise _Refused(400, "InvalidDocumentStatus", 1314, "The document is cancelled.")
            stored.status = DocumentStatus.COMMITTED
            self.commit_counts[code] += 1
            self._committed(code)
        elif action == "/uncommit":
            if status is not DocumentStatus.COMMITTED:
                raise _Refused(400, "DocumentNotCommitted", 313, "The document is not committed.")
            stored.status = DocumentStatus.SAVED
        elif action == "/void":
            reason = _model(body).get("code")
            if reason not in (
                "Unspecified",
                "PostFailed",
                "DocDeleted",
                "DocVoided",
                "AdjustmentCancelled",
            ):
                raise _Refused(
                    400,
                    "JsonFormatError",
                    47,
                    "The request body did not contain valid JSON.",
                    description=f"Error converting value {reason!r} to VoidReasonCode. Path 'code'",
                )
            if status is DocumentStatus.CANCELLED:
                raise _Refused(
                    400, "TransactionAlreadyCancelled", 198, "The transaction is already cancelled."
                )
            stored.status = DocumentStatus.CANCELLED
        elif action == "/adjust":
            model = _model(body)
            reason = model.get("adjustmentReason")
            if not reason or (reason == "Other" and not model.get("adjustmentDescription")):
                raise _Refused(
                    400,
                    "JsonFormatError",
                    47,
                    "The request body did not contain valid JSON.",
                    description="adjustmentReason (and a description for Other) is required",
                )
            if status is DocumentStatus.CANCELLED:
                raise _Refused(400, "InvalidDocumentStatus", 1314, "The document is cancelled.")
            request = _request_from_model(_model(model.get("newTransaction")))
            request = attrs.evolve(request, code=code, company_code=company)
            stored.request, stored.result = request, self._calculate(request)
            stored.version += 1
            stored.adjustment_reason = str(reason)
            if request.commit and status is not DocumentStatus.COMMITTED:
                stored.status = DocumentStatus.COMMITTED
                self.commit_counts[code] += 1
                self._committed(code)
            self.adjust_counts[code] += 1
        elif action == "/refund":
            return self._refund(stored, _model(body), include)
        else:
            return httpx.Response(404, text="Not Found")
        return self._answer_stored(200, stored, include)

    def _page(self, rows: list[dict[str, Any]], params: httpx.QueryParams) -> httpx.Response:
        """One page of a list call: at most ``page_size`` rows whatever ``$top`` asks, with the
        total count and, unless it is the last, a relative ``@nextLink`` to the next page."""
        top = min(int(params.get("$top") or 1000), self.page_size)
        skip = int(params.get("$skip") or 0)
        body: dict[str, Any] = {"@recordsetCount": len(rows), "value": rows[skip : skip + top]}
        if self.next_links and skip + top < len(rows):
            query = {**dict(params), "$top": str(top), "$skip": str(skip + top)}
            body["@nextLink"] = str(httpx.URL(self._listing, params=query))
        return httpx.Response(
            200, content=dumps(body), headers={"Content-Type": "application/json"}
        )

    def _list(self, company: str, params: httpx.QueryParams) -> httpx.Response:
        """``ListTransactionsByCompany``: documents of every status by date; only the date
        filter forms a client sends are understood (without one: the past 30 days)."""
        text = params.get("$filter", "").strip()
        if text:
            keep = _filter(text)
        else:
            end = dt.date.today()
            start = end - dt.timedelta(days=30)

            def keep(day: dt.date, status: str) -> bool:
                return start <= day <= end

        rows = []
        for (owner, _, _), stored in sorted(
            self.documents.items(), key=lambda item: (item[1].request.date, item[0][1])
        ):
            if owner != company or not keep(stored.request.date, stored.status.value):
                continue
            body = transaction_body(
                stored.request,
                stored.result,
                stored.status,
                version=stored.version,
                doc_id=stored.id,
                company_id=self._company_id(company),
                adjustment_reason=stored.adjustment_reason,
            )
            body["locked"] = stored.locked
            rows.append(body)
        return self._page(rows, params)

    def _refund(
        self, original: _Stored, model: Mapping[str, Any], include: _Include
    ) -> httpx.Response:
        if original.status is not DocumentStatus.COMMITTED:
            raise _Refused(400, "DocumentNotCommitted", 313, "The document is not committed.")
        refund_code = str(model.get("refundTransactionCode") or f"{original.request.code}-1")
        kind = str(model.get("refundType") or "Full")
        wanted = set(model.get("refundLines") or ())
        if kind == "Partial" and not wanted:
            raise _Refused(400, "RefundLinesRequired", 1306, "Refund lines are required.")
        if kind not in ("Full", "Partial", "Percentage"):
            raise _Refused(
                400,
                "InvalidDocumentTypeForRefund",
                1305,
                f"Refund type {kind!r} is not supported by this fake.",
            )
        share = (
            Decimal(model.get("refundPercentage") or 100) / 100
            if kind == "Percentage"
            else Decimal(1)
        )
        lines = tuple(
            attrs.evolve(line, amount=-round_money(line.amount * share))
            for line in original.request.lines
            if kind != "Partial" or line.number in wanted
        )
        refund_date = _date(model.get("refundDate"), "refundDate")
        request = attrs.evolve(
            original.request,
            code=refund_code,
            document_type=DocumentType.RETURN_INVOICE,
            lines=lines,
            commit=True,
            discount=ZERO,
            tax_date=original.request.date,
            tax_date_reason=f"refund of {original.request.code}",
            date=refund_date,
            reference_code=str(model.get("referenceCode") or original.request.code),
        )
        key = (request.company_code, refund_code, DocumentType.RETURN_INVOICE)
        existing = self.documents.get(key)
        if existing is not None and existing.status is DocumentStatus.COMMITTED:
            raise _committed_already()
        result = self._calculate(request)
        stored = _Stored(request, result, DocumentStatus.COMMITTED, 1, next(self._ids))
        self.documents[key] = stored
        self.commit_counts[refund_code] += 1
        self._committed(refund_code)
        return self._answer_stored(201, stored, include)

    def _calculate(self, request: TaxRequest) -> TaxResult:
        estimate = attrs.evolve(
            request,
            document_type=_ESTIMATE.get(request.document_type, request.document_type),
            commit=False,
            include_details=True,
            line_details=True,
        )
        try:
            return self.engine.calculate(estimate)
        except DocumentRejected as exc:
            raise _Refused(
                400,
                exc.error_code or "GetTaxError",
                300,
                f"Tax calculation cannot be determined. {exc.message}",
                refers_to=exc.refers_to,
            ) from exc

    # -- other calls ---------------------------------------------------------------------------

    def _ping(self, request: httpx.Request) -> httpx.Response:
        known = request.headers.get("authorization") == self._credentials
        body: dict[str, Any] = {
            "version": "26.6.0",
            "authenticated": known,
            "authenticationType": "AccountIdLicenseKey" if known else "None",
        }
        if known:
            body["authenticatedAccountId"] = int(self.account_id)
        return httpx.Response(
            200, content=dumps(body), headers={"Content-Type": "application/json"}
        )

    def _resolve(self, model: Mapping[str, Any]) -> httpx.Response:
        if not model.get("postalCode") and not (model.get("city") and model.get("region")):
            raise _incomplete_address()
        try:
            address = _address(model)
            self.engine.resolve_address(address)
        except (InvalidFieldError, DocumentRejected) as exc:
            message = exc.message if isinstance(exc, DocumentRejected) else str(exc)
            body = {
                "address": dict(model),
                "validatedAddresses": [dict(model)],
                "resolutionQuality": "NotCoded",
                "messages": [
                    {
                        "summary": message,
                        "details": message,
                        "refersTo": "Address.PostalCode",
                        "severity": "Error",
                        "source": "Avalara.AvaTax.Services.Address",
                    }
                ],
            }
            return httpx.Response(
                200, content=dumps(body), headers={"Content-Type": "application/json"}
            )
        validated = {
            "addressType": "StreetOrResidentialAddress",
            "line1": address.line1.upper(),
            "line2": address.line2.upper(),
            "line3": "",
            "city": address.city.upper(),
            "region": address.region,
            "country": address.country,
            "postalCode": address.postal_code,
        }
        body = {
            "address": dict(model),
            "validatedAddresses": [validated],
            "resolutionQuality": "Intersection",
        }
        return httpx.Response(
            200, content=dumps(body), headers={"Content-Type": "application/json"}
        )

    def _rates_by_postal_code(self, params: httpx.QueryParams) -> httpx.Response:
        """``TaxRatesByPostalCode``: the general sales tax rate of a US ZIP code and its parts."""
        zip5 = (params.get("postalCode") or "")[:5]
        if params.get("country", "US").upper() not in ("US", "USA") or not zip5:
            raise _incomplete_address()
        states = sorted(self.engine.rates.states_of(zip5))
        row = self.engine.rates.find(zip5, states[0]) if states else None
        if row is None:
            raise _Refused(404, "EntityNotFoundError", 4, f"No rates for postal code {zip5}.")
        kinds = {"STA": "State", "CTY": "County", "CIT": "City"}
        body = {
            "totalRate": float(row.total_rate),
            "rates": [
                {"rate": float(rate), "name": name, "type": kinds.get(kind.value, "Special")}
                for _, kind, name, _, rate in row.jurisdictions
            ],
        }
        return httpx.Response(
            200, content=dumps(body), headers={"Content-Type": "application/json"}
        )

    def _describe(self, code: str) -> str:
        rule = self.engine.tax_codes.get(code)
        return rule.description if rule else ""

    def _company_id(self, company: str) -> int:
        if company not in self.companies:
            self.companies[company] = 70_000 + len(self.companies) + 1
        return self.companies[company]

    def _companies(self, query: str) -> list[dict[str, Any]]:
        match = re.fullmatch(r"\s*companyCode\s+eq\s+'((?:[^']|'')*)'\s*", query)
        if not match:
            return [{"id": cid, "companyCode": code} for code, cid in self.companies.items()]
        code = match.group(1).replace("''", "'")
        return [{"id": self._company_id(code), "companyCode": code}]

    def _nexus(self, company_id: int) -> list[dict[str, Any]]:
        code = next((c for c, cid in self.companies.items() if cid == company_id), None)
        if code is None:
            raise _Refused(404, "EntityNotFoundError", 4, "Company not found.")
        return [
            {
                "id": n,
                "companyId": company_id,
                "country": "US",
                "region": region,
                "jurisTypeId": "STA",
                "jurisCode": region,
                "jurisName": region,
                "effectiveDate": "2000-01-01T00:00:00",
                "endDate": None,
            }
            for n, region in enumerate(sorted(self.engine.company_nexus(code)), 1)
        ]

    # -- answers -------------------------------------------------------------------------------

    def _answer_stored(self, status: int, stored: _Stored, include: _Include) -> httpx.Response:
        return self._answer(
            status,
            stored.request,
            stored.result,
            stored.status,
            stored.version,
            stored.id,
            include,
            stored.adjustment_reason,
        )

    def _answer(
        self,
        http_status: int,
        request: TaxRequest,
        result: TaxResult,
        status: DocumentStatus,
        version: int,
        doc_id: int,
        include: _Include,
        adjustment_reason: str = "NotAdjusted",
    ) -> httpx.Response:
        company_id = self._company_id(request.company_code)
        body = transaction_body(
            request,
            result,
            status,
            version=version,
            doc_id=doc_id,
            company_id=company_id,
            include=include,
            adjustment_reason=adjustment_reason,
        )
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if http_status == 201:
            headers["Location"] = f"/api/v2/companies/{company_id}/transactions/{doc_id}"
        return httpx.Response(http_status, content=dumps(body), headers=headers)


_INVALID_JSON = object()

_AUTH_HELP = "http://developer.avalara.com/avatax/errors/AuthenticationException"


def _unauthenticated() -> httpx.Response:
    """The 401 as recorded in 2024: no target, number or severity; plain application/json."""
    message = "Authentication failed."
    detail = {
        "code": "AuthenticationException",
        "message": message,
        "description": "Missing authentication or unable to authenticate the user or the account.",
        "faultCode": "Client",
        "helpLink": _AUTH_HELP,
    }
    body = {"error": {"code": "AuthenticationException", "message": message, "details": [detail]}}
    return httpx.Response(401, content=dumps(body), headers={"Content-Type": "application/json"})


class _Include:
    """``$include`` as AvaTax reads it: Summary implies Details implies Lines; the default is
    ``Summary,Addresses``."""

    def __init__(self, value: str | None):
        words = {w.strip().lower() for w in (value or "Summary,Addresses").split(",")}
        lines_only, summary_only = "linesonly" in words, "summaryonly" in words
        self.lines = not summary_only
        self.summary = ("summary" in words or summary_only) and not lines_only
        self.details = ("details" in words or self.summary) and not lines_only and self.lines


def _committed_already() -> _Refused:
    """What AvaTax answers to a create on a committed code (recorded: GetTaxError, DocStatus)."""
    return _Refused(
        400,
        "GetTaxError",
        300,
        "DocStatus is invalid for this operation.",
        description="Expected Saved|Posted",
        refers_to="DocStatus",
    )


def _incomplete_address() -> _Refused:
    """AvaTax's refusal of an address without a postal code (or city and region)."""
    return _Refused(
        400, "InvalidAddress", 309, "The address value was incomplete.", target="IncorrectData"
    )


def _correlated(response: httpx.Response) -> httpx.Response:
    """Every AvaTax answer carries an ``x-correlation-id`` (Avalara's SDK reads it)."""
    response.headers.setdefault("x-correlation-id", str(uuid.uuid4()))
    return response


_CONDITION = re.compile(r"(date|status)\s+(eq|ne|ge|gt|le|lt)\s+'?([\w-]+)'?", re.IGNORECASE)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "ge": operator.ge,
    "gt": operator.gt,
    "le": operator.le,
    "lt": operator.lt,
}


def _filter(text: str) -> Callable[[dt.date, str], bool]:
    """A listing's ``$filter``: conditions on ``date`` and ``status`` joined by ``and``, as
    clients write them (``date ge '2026-11-01'``, ``status eq Committed``); anything else is
    AvaTax's FilterSyntaxError."""
    checks: list[tuple[str, Callable[[Any, Any], bool], Any]] = []
    for part in re.split(r"\s+and\s+", text, flags=re.IGNORECASE):
        found = _CONDITION.fullmatch(part.strip())
        if found is None:
            raise _Refused(
                400, "FilterSyntaxError", 400, f"The filter {text!r} could not be parsed."
            )
        field, op, value = found.group(1).lower(), found.group(2).lower(), found.group(3)
        wanted = _date(value, "$filter") if field == "date" else value.lower()
        checks.append((field, _COMPARE[op], wanted))

    def keep(day: dt.date, status: str) -> bool:
        return all(
            compare(day if field == "date" else status.lower(), wanted)
            for field, compare, wanted in checks
        )

    return keep


def _decode(segment: str) -> str:
    for escape, char in _DECODE:
        segment = segment.replace(escape, char)
    return urllib.parse.unquote(segment)


def _model(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise _Refused(
            400,
            "ModelRequiredException",
            38,
            "A required model was not provided.",
            target="IncorrectData",
        )
    return body


def _document_type(value: str) -> DocumentType:
    try:
        return DocumentType(value)
    except ValueError:
        raise _Refused(
            400, "JsonFormatError", 47, f"{value!r} is not a DocumentType", refers_to="documentType"
        ) from None


def _date(value: Any, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise _Refused(
            400, "JsonFormatError", 47, f"{name} {value!r} is not a date", refers_to=name
        ) from None


def _address(model: Mapping[str, Any]) -> Address:
    return Address(
        line1=str(model.get("line1") or ""),
        line2=str(model.get("line2") or ""),
        line3=str(model.get("line3") or ""),
        city=str(model.get("city") or ""),
        region=str(model.get("region") or ""),
        postal_code=str(model.get("postalCode") or ""),
        country=str(model.get("country") or "US"),
    )


def _request_from_model(model: Mapping[str, Any]) -> TaxRequest:
    """The server side of the mapping: a CreateTransactionModel as a request for the engine."""
    lines = model.get("lines")
    if not isinstance(lines, list) or not lines:
        raise _Refused(
            400,
            "MissingLine",
            311,
            "Transactions must have at least one line.",
            target="HttpRequestHeaders",
        )
    addresses = model.get("addresses") or {}
    try:
        ship_from = _address(addresses.get("shipFrom") or addresses.get("singleLocation") or {})
        ship_to = _address(addresses.get("shipTo") or addresses.get("singleLocation") or {})
        tax_lines: list[TaxLine] = []
        for line in lines:
            line_to = (line.get("addresses") or {}).get("shipTo")
            line_override = line.get("taxOverride") or {}
            tax_amount = (
                line_override.get("taxAmount") if line_override.get("type") == "TaxAmount" else None
            )
            tax_lines.append(
                TaxLine(
                    number=str(line.get("number") or len(tax_lines) + 1),
                    amount=line.get("amount", ZERO),
                    quantity=line.get("quantity", 1),
                    item_code=str(line.get("itemCode") or ""),
                    description=str(line.get("description") or ""),
                    tax_code=str(line.get("taxCode") or ""),
                    discounted=bool(line.get("discounted")),
                    exemption_no=line.get("exemptionCode") or None,
                    entity_use_code=line.get("entityUseCode") or None,
                    ref1=str(line.get("ref1") or ""),
                    ref2=str(line.get("ref2") or ""),
                    ship_to=_address(line_to) if line_to else None,
                    tax_override=tax_amount,
                )
            )
        override = model.get("taxOverride") or {}
        tax_date = override.get("taxDate") if override.get("type") == "TaxDate" else None
        return TaxRequest(
            code=str(model.get("code") or f"fake-{time.time_ns()}"),
            document_type=_document_type(str(model.get("type") or "SalesOrder")),
            company_code=str(model.get("companyCode") or "DEFAULT"),
            customer_code=str(model.get("customerCode") or ""),
            date=_date(model.get("date"), "date"),
            ship_from=ship_from,
            ship_to=ship_to,
            lines=tuple(tax_lines),
            commit=bool(model.get("commit")),
            currency=str(model.get("currencyCode") or "USD"),
            exemption_no=model.get("exemptionNo") or None,
            entity_use_code=model.get("entityUseCode") or None,
            tax_date=_date(tax_date, "taxOverride.taxDate") if tax_date else None,
            tax_date_reason=str(override.get("reason") or ""),
            discount=model.get("discount") or ZERO,
            reference_code=str(model.get("referenceCode") or ""),
            purchase_order_no=str(model.get("purchaseOrderNo") or ""),
            business_identification_no=model.get("businessIdentificationNo") or None,
            line_details=True,
        )
    except (InvalidFieldError, AttributeError, TypeError) as exc:
        raise _Refused(400, "ModelStateInvalid", 70, str(exc), target="IncorrectData") from exc


def _detail_body(detail: JurisdictionTax) -> dict[str, Any]:
    kind = detail.jurisdiction_type.value
    return {
        "country": "US",
        "region": detail.region,
        "jurisType": kind,
        "jurisdictionType": _SUMMARY_TYPES[kind],
        "jurisName": detail.name,
        "rate": detail.rate,
        "tax": detail.tax,
        "taxCalculated": detail.tax,
        "taxableAmount": detail.taxable,
        "nonTaxableAmount": detail.exempt,
        "exemptAmount": ZERO,
        "taxType": "Sales",
        "taxName": f"{detail.region} {kind} TAX",
        "rateType": "General",
    }


def transaction_body(
    request: TaxRequest,
    result: TaxResult,
    status: DocumentStatus,
    *,
    version: int = 1,
    doc_id: int = 0,
    company_id: int = 0,
    include: _Include | None = None,
    adjustment_reason: str = "NotAdjusted",
) -> dict[str, Any]:
    """The ``TransactionModel`` AvaTax would answer for ``request`` calculated as ``result``."""
    include = include or _Include(None)
    shares = request.discount_shares()
    tax_date = (result.tax_date or request.date).isoformat()
    body: dict[str, Any] = {
        "id": doc_id,
        "code": request.code,
        "companyId": company_id,
        "date": request.date.isoformat(),
        "status": status.value,
        "type": request.document_type.value,
        "currencyCode": request.currency,
        "customerVendorCode": request.customer_code,
        "customerCode": request.customer_code,
        "exemptNo": request.exemption_no or "",
        "entityUseCode": request.entity_use_code or "",
        "purchaseOrderNo": request.purchase_order_no,
        "referenceCode": request.reference_code,
        "totalAmount": sum((line.amount for line in request.lines), ZERO),
        "totalExempt": result.total_exempt,
        "totalDiscount": request.discount,
        "totalTax": result.total_tax,
        "totalTaxable": result.total_taxable,
        "totalTaxCalculated": result.total_tax,
        "adjustmentReason": adjustment_reason,
        "locked": False,
        "version": version,
        "taxDate": tax_date,
    }
    if include.lines:
        lines = []
        for line, tax, share in zip(request.lines, result.lines, shares, strict=True):
            row: dict[str, Any] = {
                "id": 0,
                "transactionId": doc_id,
                "lineNumber": line.number,
                "description": line.description,
                "discountAmount": share,
                "exemptAmount": tax.exempt,
                "isItemTaxable": tax.taxable != 0,
                "itemCode": line.item_code,
                "lineAmount": line.amount,
                "quantity": line.quantity,
                "ref1": line.ref1,
                "ref2": line.ref2,
                "tax": tax.tax,
                "taxableAmount": tax.taxable,
                "taxCalculated": tax.tax,
                "taxCode": line.tax_code or "P0000000",
                "taxDate": tax_date,
                "taxIncluded": False,
            }
            if include.details:
                row["details"] = [_detail_body(detail) for detail in tax.details]
            lines.append(row)
        body["lines"] = lines
    if include.summary:
        body["summary"] = [
            {
                "country": "US",
                "region": row.region,
                "jurisType": _SUMMARY_TYPES[row.jurisdiction_type.value],
                "jurisName": row.name,
                "taxType": "Sales",
                "rateType": "General",
                "taxable": row.taxable,
                "rate": row.rate,
                "tax": row.tax,
                "taxCalculated": row.tax,
                "nonTaxable": row.exempt,
                "exemption": ZERO,
            }
            for row in result.summary
        ]
    return body


# ---------------------------------------------------------------------------------------------
# A real socket, for benchmarks and cross-process tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = -1  # headers and body leave in one write
    fake: FakeAvaTax

    def _serve(self) -> None:
        self.fake.peers.add(self.client_address[:2])
        length = int(self.headers.get("Content-Length") or 0)
        content = self.rfile.read(length) if length else b""
        host = self.headers.get("Host", "127.0.0.1")
        request = httpx.Request(
            self.command,
            f"http://{host}{self.path}",
            headers=dict(self.headers.items()),
            content=content,
        )
        try:
            response = self.fake.handle(request)
        except httpx.ConnectError:
            self.close_connection = True
            return
        except httpx.ReadTimeout:
            self.close_connection = True
            return
        payload = response.content
        self.send_response(response.status_code)
        for name, value in response.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a benchmark makes thousands of requests."""


class _Server(ThreadingHTTPServer):
    """Quiet about clients that vanish mid-answer (a crash test kills them on purpose)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, OSError)):
            super().handle_error(request, client_address)


@contextmanager
def serve(fake: FakeAvaTax, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``fake`` over HTTP on a thread; yields its base URL."""
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = _Server((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fake-avatax", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
