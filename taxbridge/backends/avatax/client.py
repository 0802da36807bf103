"""The AvaTax REST v2 backend: one pooled httpx client, typed errors, retries through the shared
HTTP layer (:mod:`taxbridge.backends._http`).

Postings are sent with ``CreateTransaction`` under their deterministic code (``A-<number>``). A
create of a code AvaTax has already committed is refused (``GetTaxError`` refersTo
``DocStatus``) and raised as :class:`~taxbridge.errors.AlreadyCommitted`; unlike
``CreateOrAdjustTransaction``, a stale retry can never silently adjust a committed document. So
a create may be sent again safely, and this backend never looks a code up on its own: when to
ask is the posting rule's (:mod:`taxbridge.posting`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import httpx

from taxbridge._version import __version__
from taxbridge.backends import _http
from taxbridge.backends.avatax import mapping, paging
from taxbridge.backends.avatax.certificates import AvaTaxCertificates
from taxbridge.backends.avatax.errors import error_from_response
from taxbridge.backends.avatax.mapping import (
    INCLUDE_ALL,
    AdjustmentReason,
    RefundType,
    encode_code,
    include_for,
    result_from_model,
)
from taxbridge.backends.avatax.settings import AvaTaxSettings
from taxbridge.backends.base import Capability, PingResult, VoidReason
from taxbridge.errors import DocumentRejected, MalformedResponse
from taxbridge.logs import get_logger
from taxbridge.models import (
    Address,
    DocumentStatus,
    DocumentType,
    EngineDocument,
    TaxRequest,
    TaxResult,
)
from taxbridge.rates import RateTable, ZipRate

_log = get_logger("taxbridge.avatax")

T = TypeVar("T")

_TRANSACTIONS = "/api/v2/companies/{company}/transactions/{code}"
CREATE = "/api/v2/transactions/create"
CREATE_OR_ADJUST = "/api/v2/transactions/createoradjust"


def _utc_today() -> dt.date:
    """Today's date in UTC: what the bridge's default clock says, whatever the host's zone."""
    return dt.datetime.now(dt.UTC).date()


class AvaTaxBackend:
    """AvaTax REST v2 as a taxbridge backend; thread-safe, one keep-alive connection pool.

    ``client`` lets you bring your own ``httpx.Client`` (proxies, certificates); it is used as
    given and not closed here. ``sleep`` and ``clock`` exist for tests: pass
    ``sleep=lambda seconds: None`` to make backoff instant.
    """

    capabilities = frozenset(
        {
            Capability.POSTING,
            Capability.DOCUMENTS,
            Capability.TAX_CODES,
            Capability.ENTITY_USE_CODES,
            Capability.NEXUS,
            Capability.RATES,
            Capability.ADDRESSES,
            Capability.PING,
            Capability.LISTING,
            Capability.CERTIFICATES,
        }
    )

    def __init__(
        self,
        settings: AvaTaxSettings,
        *,
        client: httpx.Client | None = None,
        name: str = "avatax",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], dt.date] = _utc_today,
    ):
        self.name = name
        self.settings = settings
        self._base = settings.base_url.rstrip("/")
        account = f" account {settings.account_id}" if settings.account_id else ""
        self.books = f"avatax {httpx.URL(self._base).host}{account}"
        self._urls: dict[tuple[str, tuple[tuple[str, str], ...]], httpx.URL] = {}
        self._headers = {
            "Authorization": settings.authorization(),
            "X-Avalara-Client": settings.client_header(__version__),
            "Accept": "application/json",
        }
        self._timeout = httpx.Timeout(
            settings.read_timeout, connect=settings.connect_timeout, pool=settings.connect_timeout
        )
        self._owns_client = client is None
        self._connections: _http.ThreadConnections | None = None
        if client is None:
            # our own transports, called directly: the client's per-request work (cookies,
            # auth and redirect handling, merging URLs) serves nothing here
            self._connections = _http.ThreadConnections(settings.max_connections)
        shared = self._connections.shared if self._connections is not None else None
        self._client = client or httpx.Client(timeout=self._timeout, transport=shared)
        self._today = today
        self._caller = _http.Caller(
            name,
            _http.RetryBudget(
                max_attempts=settings.max_attempts,
                max_seconds=settings.max_retry_seconds,
                backoff_initial=settings.backoff_initial,
                backoff_max=settings.backoff_max,
            ),
            _http.Circuit(settings.circuit_failures, settings.circuit_reset_seconds, clock),
            sleep=sleep,
            clock=clock,
        )
        self._company_ids: dict[str, int] = dict(settings.company_ids)

    def __repr__(self) -> str:
        auth = "bearer" if (self.settings.token or self.settings.token_env) else "basic"
        return f"AvaTaxBackend(name={self.name!r}, base_url={self._base!r}, auth={auth!r})"

    def close(self) -> None:
        """Close the connection pool (a client passed in stays open: it is the caller's)."""
        if self._owns_client:
            self._client.close()
        if self._connections is not None:
            self._connections.close()

    def __enter__(self) -> AvaTaxBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- TaxBackend ----------------------------------------------------------------------------

    def calculate(self, request: TaxRequest) -> TaxResult:
        """Estimate (SalesOrder/ReturnOrder: not saved) or post (an invoice type with commit)."""
        return self.create_transaction(request)

    # -- transactions --------------------------------------------------------------------------

    def create_transaction(self, request: TaxRequest) -> TaxResult:
        """``CreateTransaction``. Sent again after a transient failure even when it is a posting:
        a second create of a committed code is refused as :class:`AlreadyCommitted`."""
        return self._create(CREATE, mapping.transaction_model(request), request)

    def create_or_adjust(self, request: TaxRequest) -> TaxResult:
        """``CreateOrAdjustTransaction``: creates the code, or adjusts the document that has it
        (a committed one gets a new version). Same body, same result, so retries are safe."""
        return self._create(CREATE_OR_ADJUST, mapping.create_or_adjust_model(request), request)

    def get_document(
        self, company_code: str, code: str, document_type: DocumentType
    ) -> TaxResult | None:
        """``GetTransactionByCode`` with ``documentType``; None when AvaTax has no such document."""

        def attempt(number: int) -> TaxResult | None:
            data = self._find(company_code, code, document_type, INCLUDE_ALL)
            return None if data is None else result_from_model(data, backend=self.name)

        return self._call(attempt, code)

    def list_documents(
        self, company_code: str, start: dt.date, end: dt.date, *, page: int = 1000
    ) -> Iterator[EngineDocument]:
        """``ListTransactionsByCompany`` filtered on the date range, up to 1,000 a page (the most
        AvaTax returns), followed to the last page (:meth:`_pages`), each page fetched with
        the usual retries."""
        path = f"/api/v2/companies/{encode_code(company_code)}/transactions"
        query = {"$filter": mapping.date_filter(start, end), "$orderBy": "date ASC, code ASC"}
        for values in self._pages(path, "TransactionModel", query, page):
            for value in values:
                yield mapping.engine_document(value, backend=self.name)

    def commit_document(
        self, company_code: str, code: str, document_type: DocumentType
    ) -> TaxResult:
        """``CommitTransaction``; a retry first checks whether the commit already landed."""
        return self._document_action(
            company_code,
            code,
            document_type,
            "commit",
            mapping.commit_model(),
            done=lambda status: status is DocumentStatus.COMMITTED,
        )

    def uncommit_document(
        self, company_code: str, code: str, document_type: DocumentType
    ) -> TaxResult:
        """``UncommitTransaction``: a committed document back to saved."""
        return self._document_action(
            company_code,
            code,
            document_type,
            "uncommit",
            None,
            done=lambda status: status is DocumentStatus.SAVED,
        )

    def void_document(
        self,
        company_code: str,
        code: str,
        document_type: DocumentType,
        reason: VoidReason,
    ) -> TaxResult:
        """``VoidTransaction`` with a reason code (``DocVoided`` cancels a committed document)."""
        return self._document_action(
            company_code,
            code,
            document_type,
            "void",
            mapping.void_model(reason),
            done=lambda status: status is DocumentStatus.CANCELLED,
        )

    def adjust_document(
        self,
        request: TaxRequest,
        reason: AdjustmentReason,
        description: str = "",
    ) -> TaxResult:
        """``AdjustTransaction``: replace the document ``request.code`` with ``request``.

        An adjustment is not idempotent (each one is a new version), so it is sent again only
        when the failed attempt certainly never reached AvaTax.
        """
        body = mapping.adjust_model(request, reason, description)
        path = self._transaction_path(request.company_code, request.code, "/adjust")
        params = {"documentType": request.document_type.value, "$include": include_for(request)}

        def attempt(number: int) -> TaxResult:
            data = self._send("POST", path, params, body, request.code)
            return result_from_model(data, backend=self.name, request=request)

        return self._call(attempt, request.code, idempotent=False)

    def refund_document(
        self,
        company_code: str,
        code: str,
        refund_code: str,
        refund_date: dt.date,
        refund_type: RefundType = RefundType.FULL,
        *,
        lines: Iterable[str] = (),
        percentage: Any = None,
        reference_code: str = "",
    ) -> TaxResult:
        """``RefundTransaction``: a committed ReturnInvoice ``refund_code`` against sale ``code``.

        Sent again only when the failed attempt certainly never left; after any other failure,
        look ``refund_code`` up (``get_document``) before refunding again.
        """
        body = mapping.refund_model(
            refund_code,
            refund_date,
            refund_type,
            lines=lines,
            percentage=percentage,
            reference_code=reference_code,
        )
        path = self._transaction_path(company_code, code, "/refund")
        params = {"documentType": DocumentType.SALES_INVOICE.value, "$include": INCLUDE_ALL}

        def attempt(number: int) -> TaxResult:
            data = self._send("POST", path, params, body, code)
            return result_from_model(data, backend=self.name)

        return self._call(attempt, refund_code, idempotent=False)

    # -- addresses and definitions -------------------------------------------------------------

    def resolve_address(self, address: Address) -> Address:
        """``ResolveAddressPost``: the validated address, or :class:`DocumentRejected`."""
        body = mapping.address_model(address)

        def attempt(number: int) -> Address:
            data = self._send("POST", "/api/v2/addresses/resolve", None, body, "")
            return mapping.address_from_resolution(data, backend=self.name)

        return self._call(attempt, "")

    def active_tax_codes(self) -> frozenset[str]:
        """``ListTaxCodes``, every page: the codes AvaTax marks active."""
        rows = self._fetch_all("/api/v2/definitions/taxcodes", "TaxCodeModel")
        return frozenset(
            str(row["taxCode"]) for row in rows if row.get("taxCode") and row.get("isActive", True)
        )

    def entity_use_codes(self) -> dict[str, str]:
        """``ListEntityUseCodes``: code -> name."""
        rows = self._fetch_all("/api/v2/definitions/entityusecodes", "EntityUseCodeModel")
        return {str(row["code"]): str(row.get("name") or "") for row in rows if row.get("code")}

    def company_nexus(self, company_code: str, as_of: dt.date | None = None) -> frozenset[str]:
        """``ListNexusByCompany``: the regions where the company has nexus on ``as_of``
        (today, UTC, when None)."""
        company_id = self._company_id(company_code)
        rows = self._fetch_all(f"/api/v2/companies/{company_id}/nexus", "NexusModel")
        return mapping.nexus_regions(rows, as_of or self._today())

    def tax_rates_by_zip(self, regions: Iterable[str], as_of: dt.date | None = None) -> RateTable:
        """``DownloadTaxRatesByZipCode`` for each region (the 14-column CSV), merged."""
        day = (as_of or self._today()).isoformat()
        rates: list[ZipRate] = []
        for region in sorted(set(regions)):

            def attempt(number: int, region: str = region) -> RateTable:
                text = self._send_raw(
                    "GET", f"/api/v2/taxratesbyzipcode/download/{day}", {"region": region}, ""
                )
                try:
                    return RateTable.from_csv(text, source=f"AvaTax rates {region} {day}")
                except ValueError as exc:
                    raise MalformedResponse(
                        f"the rates download is not the 14-column CSV: {exc}", backend=self.name
                    ) from exc

            rates.extend(self._call(attempt, ""))
        return RateTable(rates)

    def ping(self) -> PingResult:
        """``Ping``: reachable, which version, and whether the credentials are accepted."""

        def attempt(number: int) -> PingResult:
            data = self._send("GET", "/api/v2/utilities/ping", None, None, "")
            if not isinstance(data, Mapping):
                raise MalformedResponse("the answer is not a PingResultModel", backend=self.name)
            return PingResult(
                version=str(data.get("version") or ""),
                authenticated=data.get("authenticated") is True,
                authentication_type=str(data.get("authenticationType") or ""),
                where=self._base,
            )

        return self._call(attempt, "")

    # -- posting -------------------------------------------------------------------------------

    def _create(self, path: str, body: Any, request: TaxRequest) -> TaxResult:
        include = include_for(request)

        def attempt(number: int) -> TaxResult:
            data = self._send("POST", path, {"$include": include}, body, request.code)
            return result_from_model(data, backend=self.name, request=request)

        return self._call(attempt, request.code)

    def _document_action(
        self,
        company_code: str,
        code: str,
        document_type: DocumentType,
        action: str,
        body: Any,
        *,
        done: Callable[[DocumentStatus], bool],
    ) -> TaxResult:
        path = self._transaction_path(company_code, code, f"/{action}")
        params = {"documentType": document_type.value, "$include": INCLUDE_ALL}

        def attempt(number: int) -> TaxResult:
            if number > 1:
                found = self._find(company_code, code, document_type, INCLUDE_ALL)
                if found is not None:
                    result = result_from_model(found, backend=self.name)
                    if done(result.status):
                        return result
            data = self._send("POST", path, params, body, code)
            return result_from_model(data, backend=self.name)

        return self._call(attempt, code)

    def _find(self, company_code: str, code: str, document_type: DocumentType, include: str) -> Any:
        """One lookup by code: the raw TransactionModel, or None on 404 EntityNotFoundError."""
        path = self._transaction_path(company_code, code, "")
        params = {"documentType": document_type.value, "$include": include}
        try:
            return self._send("GET", path, params, None, code)
        except DocumentRejected as exc:
            if exc.status == 404:
                return None
            raise

    def certificate_service(self) -> AvaTaxCertificates:
        """CertCapture through this account: customers, certificates, CertExpress requests."""
        return AvaTaxCertificates(self)

    def api(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        idempotent: bool = True,
    ) -> Any:
        """One API call through the retry budget and circuit breaker: the JSON answer, or a
        typed error (for the certificate service, which shares this connection)."""

        def attempt(number: int) -> Any:
            return self._send(method, path, params, body, "")

        return self._call(attempt, "", idempotent=idempotent)

    def fetch_all(
        self, path: str, model: str, params: Mapping[str, str] | None = None
    ) -> list[Mapping[str, Any]]:
        """Every row of a paged list call."""
        return self._fetch_all(path, model, params)

    def company_id(self, company_code: str) -> int:
        """The AvaTax company id of a company code (looked up once)."""
        return self._company_id(company_code)

    # -- transport -----------------------------------------------------------------------------

    def _transaction_path(self, company_code: str, code: str, suffix: str) -> str:
        return (
            _TRANSACTIONS.format(company=encode_code(company_code), code=encode_code(code)) + suffix
        )

    def _company_id(self, company_code: str) -> int:
        found = self._company_ids.get(company_code)
        if found is not None:
            return found
        rows = self._fetch_all(
            "/api/v2/companies",
            "CompanyModel",
            {"$filter": f"companyCode eq '{company_code.replace(chr(39), chr(39) * 2)}'"},
        )
        for row in rows:
            if row.get("companyCode") == company_code and isinstance(row.get("id"), int):
                self._company_ids[company_code] = row["id"]
                return int(row["id"])
        raise DocumentRejected(
            f"company code {company_code!r} is not a company of this AvaTax account",
            backend=self.name,
            error_code="EntityNotFoundError",
            refers_to="companyCode",
        )

    def _fetch_all(
        self, path: str, model: str, params: Mapping[str, str] | None = None
    ) -> list[Mapping[str, Any]]:
        """Every row of a paged list call (:meth:`_pages`)."""
        return [row for values in self._pages(path, model, params or {}) for row in values]

    def _pages(
        self, path: str, model: str, params: Mapping[str, str], page: int = 1000
    ) -> Iterator[list[Mapping[str, Any]]]:
        """The pages of a list call to the last (:func:`paging.pages`), each with retries."""

        def fetch(where: str, query: dict[str, str]) -> Any:
            return self._call(lambda number: self._send("GET", where, query, None, ""), "")

        return paging.pages(fetch, path, model, params, page, base=self._base, backend=self.name)

    def _call(self, attempt: Callable[[int], T], code: str, *, idempotent: bool = True) -> T:
        return self._caller.call(attempt, code, idempotent=idempotent)

    def _send(
        self, method: str, path: str, params: Mapping[str, str] | None, body: Any, code: str
    ) -> Any:
        """One HTTP exchange whose 2xx answer is JSON; any other outcome raises typed."""
        response = self._exchange(method, path, params, body, code)
        try:
            return mapping.loads(response.content)
        except ValueError as exc:
            raise MalformedResponse(
                f"HTTP {response.status_code} with a body that is not JSON",
                backend=self.name,
                code=code,
                status=response.status_code,
            ) from exc

    def _url(self, path: str, params: Mapping[str, str] | None) -> httpx.URL:
        """The full URL, parsed once per path and query: a drain posts thousands of documents
        to the same create URL, and parsing it is a good part of httpx's work per request."""
        key = (path, tuple(sorted(params.items())) if params else ())
        found = self._urls.get(key)
        if found is None:
            if len(self._urls) >= 512:
                self._urls.clear()
            found = self._urls[key] = httpx.URL(self._base + path, params=params)
        return found

    def _send_raw(self, method: str, path: str, params: Mapping[str, str] | None, code: str) -> str:
        return self._exchange(method, path, params, None, code).text

    def _exchange(
        self, method: str, path: str, params: Mapping[str, str] | None, body: Any, code: str
    ) -> httpx.Response:
        content = mapping.dumps(body) if body is not None else None
        headers = dict(self._headers)
        if content is not None:
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        response = _http.request(
            self._connections.transport() if self._connections is not None else self._client,
            method,
            self._url(path, params),
            backend=self.name,
            code=code,
            content=content,
            headers=headers,
            timeout=self._timeout,
        )
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        _log.debug(
            "taxbridge.avatax.http",
            method=method,
            path=path,
            status=response.status_code,
            elapsed_ms=elapsed_ms,
            code=code,
            backend=self.name,
        )
        if self.settings.log_bodies:
            _log.debug(
                "taxbridge.avatax.bodies",
                code=code,
                request_headers={k: v for k, v in headers.items() if k.lower() != "authorization"},
                request_body=content.decode() if content else None,
                response_body=response.text,
            )
        if response.is_success:
            return response
        raise error_from_response(response, backend=self.name, code=code)
