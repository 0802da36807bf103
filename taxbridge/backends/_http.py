"""HTTP plumbing any engine over HTTP shares: the retry loop, the circuit breaker, Retry-After,
and transport failures as typed errors. Nothing here knows AvaTax.

What is retried is decided by the error classes alone (``transient``; ``sent`` for calls that
are not idempotent); this module only decides how often and how long to wait. tenacity is used
here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import tenacity
from attrs import frozen

from taxbridge.errors import BackendError, BackendUnavailable, CircuitOpen
from taxbridge.logs import get_logger

T = TypeVar("T")

_log = get_logger("taxbridge.http")


@frozen
class RetryBudget:
    """How patiently one call is tried: attempts and seconds, and the backoff between them."""

    max_attempts: int = 3
    """Attempts per call, the first included."""
    max_seconds: float = 20.0
    """No new attempt once this much time has gone by since the first."""
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
                f"not sent: the engine failed {count} calls in a row; "
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
        """The engine could not be reached: count it, and open after too many in a row."""
        with self._lock:
            self._count += 1
            if self._count >= self._failures:
                self._open_until = self._clock() + self._reset


def _retry_now(exc: BaseException) -> bool:
    return isinstance(exc, BackendError) and exc.transient


def _retry_unsent(exc: BaseException) -> bool:
    return isinstance(exc, BackendError) and exc.transient and not exc.sent


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
    ):
        self.name = name
        self.budget = budget
        self.circuit = circuit
        self._sleep = sleep
        self._backoff = tenacity.wait_random_exponential(
            multiplier=budget.backoff_initial, max=budget.backoff_max
        )

    def call(self, attempt: Callable[[int], T], code: str, *, idempotent: bool = True) -> T:
        """Run ``attempt(number)`` until it returns, or fails for good.

        A transient failure is tried again within the budget; a call that is not idempotent only
        when the failed attempt certainly never left (``sent`` False). The error raised says the
        call was ``sent`` if any attempt of it may have reached the engine.
        """
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.budget.max_attempts)
            | tenacity.stop_before_delay(self.budget.max_seconds),
            wait=self._wait,
            retry=tenacity.retry_if_exception(_retry_now if idempotent else _retry_unsent),
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
                        self.circuit.check(self.name, code)
                        results.append(attempt(trial.retry_state.attempt_number))
                    except BackendError as exc:
                        # an earlier attempt that may have landed makes the whole call uncertain
                        sent = exc.sent = sent or exc.sent
                        raise
        except CircuitOpen:
            raise
        except BackendUnavailable:
            self.circuit.failure()
            raise
        except BackendError:
            self.circuit.success()
            raise
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


def request(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    backend: str,
    code: str,
    **kwargs: Any,
) -> httpx.Response:
    """One HTTP exchange; a transport failure is :class:`BackendUnavailable`, ``sent`` False
    only when the request certainly never left (connect errors and timeouts, pool timeout)."""
    try:
        return client.request(method, url, **kwargs)
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
