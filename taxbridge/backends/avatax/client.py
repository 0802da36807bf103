"""The AvaTax REST v2 backend: one pooled httpx client, typed errors, retries in one place.

Posting rule (see docs/backends.md, "Posting to AvaTax exactly once"): invoices are posted with
``CreateTransaction`` under their deterministic code (``A-<number>``), never a random one. Every
attempt after the first of a posting is preceded by a lookup of that code; a committed document
found there *is* the answer. A create refused because the code is already committed
(``GetTaxError`` refersTo ``DocStatus``) raises :class:`~taxbridge.errors.AlreadyCommitted`, which
the bridge answers by the same lookup. So a timeout after the request went out never leads to a
second post, and, unlike ``CreateOrAdjustTransaction``, a stale retry cannot silently adjust a
committed document either.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import httpx
import structlog
import tenacity
from attrs import frozen

from taxbridge.backends.avatax import mapping
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
from taxbridge.backends.base import VoidReason
from taxbridge.errors import (
    BackendError,
    BackendUnavailable,
    CircuitOpen,
    DocumentRejected,
    MalformedResponse,
)
from taxbridge.models import Address, DocumentStatus, DocumentType, TaxRequest, TaxResult
from taxbridge.rates import RateTable, ZipRate

_log = structlog.get_logger("taxbridge.avatax")

T = TypeVar("T")

_TRANSACTIONS = "/api/v2/companies/{company}/transactions/{code}"
CREATE = "/api/v2/transactions/create"
CREATE_OR_ADJUST = "/api/v2/transactions/createoradjust"


def _library_version() -> str:
    from taxbridge import __version__

    return __version__


@frozen
class PingResult:
    """What ``/api/v2/utilities/ping`` says: the service version and whether we are known."""

    version: str
    authenticated: bool
    authentication_type: str


class _Circuit:
    """Counts calls in a row that could not reach the engine; opens for a while after too many."""

    def __init__(self, failures: int, reset_seconds: float, clock: Callable[[], float]):
        self._failures = failures
        self._reset = reset_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._count = 0
        self._open_until = 0.0

    def check(self, backend: str, code: str) -> None:
        with self._lock:
            remaining = self._open_until - self._clock()
            count = self._count
        if remaining > 0:
            raise CircuitOpen(
                f"not sent: the engine failed {count} calls in a row; "
                f"calls resume in {remaining:.0f} s",
                backend=backend,
                code=code,
                sent=False,
            )

    def success(self) -> None:
        with self._lock:
            self._count = 0
            self._open_until = 0.0

    def failure(self) -> None:
        with self._lock:
            self._count += 1
            if self._count >= self._failures:
                self._open_until = self._clock() + self._reset


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, BackendUnavailable) and not isinstance(exc, CircuitOpen)


def _unsent(exc: BaseException) -> bool:
    return _transient(exc) and not getattr(exc, "sent", True)


class AvaTaxBackend:
    """AvaTax REST v2 as a taxbridge backend; thread-safe, one keep-alive connection pool.

    ``client`` lets you bring your own ``httpx.Client`` (proxies, certificates); it is used as
    given and not closed here. ``sleep`` and ``clock`` exist for tests: pass
    ``sleep=lambda seconds: None`` to make backoff instant.
    """

    def __init__(
        self,
        settings: AvaTaxSettings,
        *,
        client: httpx.Client | None = None,
        name: str = "avatax",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], dt.date] = dt.date.today,
    ):
        self.name = name
        self.settings = settings
        self._base = settings.base_url.rstrip("/")
        self._headers = {
            "Authorization": settings.authorization(),
            "X-Avalara-Client": settings.client_header(_library_version()),
            "Accept": "application/json",
        }
        self._timeout = httpx.Timeout(
            settings.read_timeout, connect=settings.connect_timeout, pool=settings.connect_timeout
        )
        self._owns_client = client is None
        self._client = client or httpx.Client(
            timeout=self._timeout,
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
            ),
        )
        self._sleep = sleep
        self._today = today
        self._circuit = _Circuit(settings.circuit_failures, settings.circuit_reset_seconds, clock)
        self._company_ids: dict[str, int] = dict(settings.company_ids)

    def __repr__(self) -> str:
        auth = "bearer" if (self.settings.token or self.settings.token_env) else "basic"
        return f"AvaTaxBackend(name={self.name!r}, base_url={self._base!r}, auth={auth!r})"

    def close(self) -> None:
        """Close the connection pool (a client passed in stays open: it is the caller's)."""
        if self._owns_client:
            self._client.close()

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
        """``CreateTransaction``. A posting (saved type with commit) looks its code up before
        every retry; an estimate is simply sent again."""
        posting = request.document_type.is_saved and request.commit
        return self._create(CREATE, mapping.transaction_model(request), request, posting)

    def create_or_adjust(self, request: TaxRequest) -> TaxResult:
        """``CreateOrAdjustTransaction``: creates the code, or adjusts the document that has it
        (a committed one gets a new version). Same body, same result, so retries are safe."""
        return self._create(
            CREATE_OR_ADJUST, mapping.create_or_adjust_model(request), request, False
        )

    def get_document(
        self, company_code: str, code: str, document_type: DocumentType
    ) -> TaxResult | None:
        """``GetTransactionByCode`` with ``documentType``; None when AvaTax has no such document."""

        def attempt(number: int) -> TaxResult | None:
            data = self._find(company_code, code, document_type, INCLUDE_ALL)
            return None if data is None else result_from_model(data, backend=self.name)

        return self._call(attempt, code)

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

        return self._call(attempt, request.code, retry_if=_unsent)

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

        A retry first looks ``refund_code`` up, so a refund is never made twice.
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
            if number > 1:
                found = self._find(
                    company_code, refund_code, DocumentType.RETURN_INVOICE, INCLUDE_ALL
                )
                if found is not None and found.get("status") == DocumentStatus.COMMITTED.value:
                    return result_from_model(found, backend=self.name)
            data = self._send("POST", path, params, body, code)
            return result_from_model(data, backend=self.name)

        return self._call(attempt, refund_code)

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

    def company_nexus(self, company_code: str) -> frozenset[str]:
        """``ListNexusByCompany``: the regions where the company has nexus today."""
        company_id = self._company_id(company_code)
        rows = self._fetch_all(f"/api/v2/companies/{company_id}/nexus", "NexusModel")
        return mapping.nexus_regions(rows, self._today())

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
            )

        return self._call(attempt, "")

    # -- posting -------------------------------------------------------------------------------

    def _create(self, path: str, body: Any, request: TaxRequest, lookup_first: bool) -> TaxResult:
        include = include_for(request)

        def attempt(number: int) -> TaxResult:
            if lookup_first and number > 1:
                found = self._find(
                    request.company_code, request.code, request.document_type, include
                )
                if found is not None and found.get("status") == DocumentStatus.COMMITTED.value:
                    _log.info(
                        "taxbridge.avatax.found_committed",
                        code=request.code,
                        attempt=number,
                        backend=self.name,
                    )
                    return result_from_model(found, backend=self.name, request=request)
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
        """Every row of a paged list call ($top/$skip, 1,000 a page)."""
        rows: list[Mapping[str, Any]] = []
        page = 1000
        while True:
            query = {**(params or {}), "$top": str(page), "$skip": str(len(rows))}

            def attempt(number: int, query: dict[str, str] = query) -> list[Mapping[str, Any]]:
                data = self._send("GET", path, query, None, "")
                return mapping.fetch_values(data, backend=self.name, model=model)

            values = self._call(attempt, "")
            rows.extend(values)
            if len(values) < page:
                return rows

    def _call(
        self,
        attempt: Callable[[int], T],
        code: str,
        *,
        retry_if: Callable[[BaseException], bool] = _transient,
    ) -> T:
        """Run ``attempt`` under the retry policy and the circuit breaker."""
        settings = self.settings
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(settings.max_attempts)
            | tenacity.stop_before_delay(settings.max_retry_seconds),
            wait=self._wait,
            retry=tenacity.retry_if_exception(retry_if),
            sleep=self._sleep,
            reraise=True,
            before_sleep=lambda state: self._log_retry(state, code),
        )
        results: list[T] = []
        sent = False
        try:
            for trial in retrying:
                with trial:
                    try:
                        self._circuit.check(self.name, code)
                        results.append(attempt(trial.retry_state.attempt_number))
                    except BackendUnavailable as exc:
                        # an earlier attempt that may have landed makes the whole call uncertain
                        sent = exc.sent = sent or exc.sent
                        raise
        except CircuitOpen:
            raise
        except BackendUnavailable:
            self._circuit.failure()
            raise
        except BackendError:
            self._circuit.success()
            raise
        self._circuit.success()
        return results[-1]

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, (int, float)):
            return float(retry_after)
        backoff = tenacity.wait_random_exponential(
            multiplier=self.settings.backoff_initial, max=self.settings.backoff_max
        )
        return float(backoff(state))

    def _log_retry(self, state: tenacity.RetryCallState, code: str) -> None:
        exc = state.outcome.exception() if state.outcome else None
        _log.warning(
            "taxbridge.avatax.retry",
            code=code,
            attempt=state.attempt_number,
            wait_s=round(state.upcoming_sleep, 3),
            error=str(exc),
            backend=self.name,
        )

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
        try:
            response = self._client.request(
                method,
                self._base + path,
                params=params,
                content=content,
                headers=headers,
                timeout=self._timeout,
            )
        except httpx.TimeoutException as exc:
            sent = not isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
            raise BackendUnavailable(
                f"{type(exc).__name__}: no answer within the timeout"
                + (" (the request was sent: outcome unknown)" if sent else ""),
                backend=self.name,
                code=code,
                sent=sent,
            ) from exc
        except httpx.TransportError as exc:
            sent = not isinstance(exc, httpx.ConnectError)
            raise BackendUnavailable(
                f"{type(exc).__name__}: {exc}", backend=self.name, code=code, sent=sent
            ) from exc
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
