"""HTTP plumbing any engine over HTTP shares: the retry loop, the circuit breaker, Retry-After,
and transport failures as typed errors. Nothing here knows AvaTax.

What is retried is decided by the error classes alone (``transient``; ``sent`` for calls that
are not idempotent); this module only decides how often and how long to wait. tenacity is used
here and nowhere else.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import email.utils
import re
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import httpx
import tenacity
from attrs import frozen

from taxbridge.errors import (
    AuthenticationFailed,
    BackendError,
    BackendUnavailable,
    CircuitOpen,
    DeadlinePassed,
)
from taxbridge.logs import get_logger

T = TypeVar("T")

_log = get_logger("taxbridge.http")


@frozen
class RetryBudget:
    """How patiently one call is tried: attempts and seconds, and the backoff between them."""

    max_attempts: int = 3
    """Attempts per call, the first included."""
    max_seconds: float = 20.0
    """The whole call's deadline, timeouts included: an attempt waits at most what is left
    of it, and none starts once it has passed."""
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    """Full-jitter exponential backoff bounds, in seconds; a Retry-After the engine sends wins."""


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


class Circuit:
    """Counts calls in a row that could not reach the engine; opens for a while after too many,
    so an outage fails each call at once instead of waiting out every timeout."""

    def __init__(self, failures: int, reset_seconds: float, clock: Callable[[], float]):
        self._failures = failures
        self._reset = reset_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._count = 0
        self._open_until = 0.0

    def check(self, backend: str, code: str) -> None:
        """Raise :class:`CircuitOpen` while the circuit is open."""
        with self._lock:
            remaining = self._open_until - self._clock()
            count = self._count
        if remaining > 0:
            raise CircuitOpen(
                f"not sent: the engine could not be reached {count} times in a row; "
                f"calls resume in {remaining:.0f} s",
                backend=backend,
                code=code,
                sent=False,
            )

    def success(self) -> None:
        """The engine answered: close the circuit."""
        with self._lock:
            self._count = 0
            self._open_until = 0.0

    def failure(self) -> None:
        """An attempt could not reach the engine (refused, timed out, 5xx): count it, and open
        after too many in a row."""
        with self._lock:
            self._count += 1
            if self._count >= self._failures:
                self._open_until = self._clock() + self._reset


def _retry_now(exc: BaseException) -> bool:
    return isinstance(exc, BackendError) and exc.transient


def _retry_unsent(exc: BaseException) -> bool:
    return isinstance(exc, BackendError) and exc.transient and not exc.sent


_DEADLINE: contextvars.ContextVar[tuple[float, Callable[[], float]] | None] = (
    contextvars.ContextVar("taxbridge_http_deadline", default=None)
)
"""The running call's deadline and clock, read by :func:`request` to shorten its timeouts."""


class Caller:
    """Runs one engine call under a retry budget and a circuit breaker, thread-safe.

    ``sleep`` and ``clock`` are for tests: ``sleep=lambda seconds: None`` makes backoff instant.
    """

    def __init__(
        self,
        name: str,
        budget: RetryBudget,
        circuit: Circuit,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name = name
        self.budget = budget
        self.circuit = circuit
        self._sleep = sleep
        self._clock = clock
        self._backoff = tenacity.wait_random_exponential(
            multiplier=budget.backoff_initial, max=budget.backoff_max
        )

    def call(self, attempt: Callable[[int], T], code: str, *, idempotent: bool = True) -> T:
        """Run ``attempt(number)`` until it returns, or fails for good.

        A transient failure is tried again within the budget; a call that is not idempotent only
        when the failed attempt certainly never left (``sent`` False). The budget is a deadline
        for the whole call: each attempt waits at most what is left of it, and once it has
        passed the last real failure is raised. The error raised says the call was ``sent`` if
        any attempt of it may have reached the engine.
        """
        deadline = self._clock() + self.budget.max_seconds
        token = _DEADLINE.set((deadline, self._clock))
        try:
            # the first attempt needs none of the retry machinery: most calls end here
            self.circuit.check(self.name, code)
            first = attempt(1)
        except BackendError as exc:
            if not isinstance(exc, BackendUnavailable):
                self.circuit.success()
            elif not isinstance(exc, CircuitOpen):
                self.circuit.failure()
            retry = _retry_now if idempotent else _retry_unsent
            if not retry(exc) or self.budget.max_attempts <= 1:
                raise
            first_failure = exc
        else:
            self.circuit.success()
            return first
        finally:
            _DEADLINE.reset(token)
        return self._retry(attempt, code, idempotent, deadline, first_failure)

    def _retry(
        self,
        attempt: Callable[[int], T],
        code: str,
        idempotent: bool,
        deadline: float,
        first_failure: BackendError,
    ) -> T:
        """Attempts 2 and on, after a first attempt that failed transiently."""
        bounded = tenacity.stop_after_attempt(
            self.budget.max_attempts
        ) | tenacity.stop_before_delay(self.budget.max_seconds)

        def stop(state: tenacity.RetryCallState) -> bool:
            return bool(bounded(state)) or self._clock() >= deadline

        retrying = tenacity.Retrying(
            stop=stop,
            wait=self._wait,
            retry=tenacity.retry_if_exception(_retry_now if idempotent else _retry_unsent),
            sleep=self._sleep,
            reraise=True,
            before_sleep=lambda state: self._log_retry(state, code),
        )
        results: list[T] = []
        sent = first_failure.sent
        last: BackendError | None = first_failure
        token = _DEADLINE.set((deadline, self._clock))
        try:
            for trial in retrying:
                with trial:
                    if trial.retry_state.attempt_number == 1:
                        raise first_failure  # made and counted already: it decides the wait
                    try:
                        self.circuit.check(self.name, code)
                        results.append(attempt(trial.retry_state.attempt_number))
                    except DeadlinePassed as exc:
                        # the budget ran out during the backoff: the last real failure stands
                        failure: BackendError = last or exc
                        failure.sent = sent or failure.sent
                        raise failure from None
                    except BackendError as exc:
                        # each attempt that could not reach the engine counts toward opening
                        # the circuit (a refusal by the open circuit itself does not); any
                        # answer at all closes it
                        if not isinstance(exc, BackendUnavailable):
                            self.circuit.success()
                        elif not isinstance(exc, CircuitOpen):
                            self.circuit.failure()
                        # an earlier attempt that may have landed makes the whole call uncertain
                        sent = exc.sent = sent or exc.sent
                        last = exc
                        raise
        finally:
            _DEADLINE.reset(token)
        self.circuit.success()
        return results[-1]

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, (int, float)):
            return float(retry_after)
        return float(self._backoff(state))

    def _log_retry(self, state: tenacity.RetryCallState, code: str) -> None:
        exc = state.outcome.exception() if state.outcome else None
        _log.warning(
            f"taxbridge.{self.name}.retry",
            code=code,
            attempt=state.attempt_number,
            wait_s=round(state.upcoming_sleep, 3),
            error=str(exc),
            backend=self.name,
        )


def _within_deadline(timeout: httpx.Timeout, backend: str, code: str) -> httpx.Timeout:
    """``timeout`` shortened to what is left of the running call's deadline."""
    running = _DEADLINE.get()
    if running is None:
        return timeout
    deadline, clock = running
    left = deadline - clock()
    if left <= 0:
        raise DeadlinePassed(
            "not sent: the call's time budget (max_retry_seconds) is spent",
            backend=backend,
            code=code,
            sent=False,
        )

    def capped(seconds: float | None) -> float:
        return left if seconds is None else min(seconds, left)

    return httpx.Timeout(
        connect=capped(timeout.connect),
        read=capped(timeout.read),
        write=capped(timeout.write),
        pool=capped(timeout.pool),
    )


class ThreadConnections:
    """An engine's connections: one keep-alive connection of its own for each calling thread,
    up to ``limit`` threads, and a shared pool for any thread beyond them. A thread with its own
    connection never waits on a pool's lock nor scans the pool's other connections on each
    request (with 16 threads draining the queue that was a tenth of the client's work). The
    connection of a thread that has ended goes to the next new thread; all share one TLS
    context (loading the CA bundle once)."""

    def __init__(self, limit: int):
        self._tls = httpx.create_ssl_context()
        self._limit = limit
        self._local = threading.local()
        self._lock = threading.Lock()
        self._owned: list[tuple[threading.Thread, httpx.HTTPTransport]] = []
        self.shared = httpx.HTTPTransport(
            verify=self._tls,
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
        )

    def transport(self) -> httpx.BaseTransport:
        """The calling thread's transport."""
        found: httpx.BaseTransport | None = getattr(self._local, "transport", None)
        if found is not None:
            return found
        me = threading.current_thread()
        with self._lock:
            for index, (owner, transport) in enumerate(self._owned):
                if not owner.is_alive():
                    self._owned[index] = (me, transport)
                    found = transport
                    break
            else:
                if len(self._owned) < self._limit:
                    found = httpx.HTTPTransport(
                        verify=self._tls,
                        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                    )
                    self._owned.append((me, found))
                else:
                    found = self.shared
        self._local.transport = found
        return found

    def close(self) -> None:
        """Close every connection."""
        with self._lock:
            owned, self._owned = self._owned, []
        for _, transport in owned:
            transport.close()
        self.shared.close()


def _exchange(
    via: httpx.Client | httpx.BaseTransport,
    method: str,
    url: str | httpx.URL,
    timeout: httpx.Timeout,
    content: bytes | None,
    headers: dict[str, str] | None,
) -> httpx.Response:
    if isinstance(via, httpx.Client):
        return via.request(method, url, timeout=timeout, content=content, headers=headers)
    built = httpx.Request(
        method, url, content=content, headers=headers, extensions={"timeout": timeout.as_dict()}
    )
    response = via.handle_request(built)
    try:
        response.read()
    finally:
        response.close()
    return response


def request(
    via: httpx.Client | httpx.BaseTransport,
    method: str,
    url: str | httpx.URL,
    *,
    backend: str,
    code: str,
    timeout: httpx.Timeout,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One HTTP exchange within the running call's deadline, through a client or straight
    through a transport; a transport failure is :class:`BackendUnavailable`, ``sent`` False
    only when the request certainly never left (connect errors and timeouts, pool timeout).
    No error text carries a header value."""
    timeout = _within_deadline(timeout, backend, code)
    try:
        return _exchange(via, method, url, timeout, content, headers)
    except httpx.ProtocolError as exc:
        # h11 quotes the offending header (an Authorization value) in its message: never shown
        sent = isinstance(exc, httpx.RemoteProtocolError)
        raise BackendUnavailable(
            f"{type(exc).__name__}: the request or its answer broke the HTTP protocol",
            backend=backend,
            code=code,
            sent=sent,
        ) from None
    except UnicodeEncodeError as exc:
        raise AuthenticationFailed(
            f"the request could not be built: a header from the settings is not valid HTTP "
            f"({type(exc).__name__}); fix the settings",
            backend=backend,
            code=code,
            sent=False,
        ) from None
    except httpx.TimeoutException as exc:
        sent = not isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
        raise BackendUnavailable(
            f"{type(exc).__name__}: no answer within the timeout"
            + (" (the request was sent: outcome unknown)" if sent else ""),
            backend=backend,
            code=code,
            sent=sent,
        ) from exc
    except httpx.TransportError as exc:
        sent = not isinstance(exc, httpx.ConnectError)
        raise BackendUnavailable(
            f"{type(exc).__name__}: {exc}", backend=backend, code=code, sent=sent
        ) from exc
