"""Customer quotations (seed 004): their tax, calculated and never saved anywhere."""

from __future__ import annotations

import enum
import time

from attrs import frozen

from taxbridge.context import Route, StageContext
from taxbridge.errors import BackendUnavailable
from taxbridge.logs import get_logger
from taxbridge.models import Quotation, TaxRequest, TaxResult
from taxbridge.rules import Context, quotation_request

_log = get_logger("taxbridge")


class QuoteSource(enum.StrEnum):
    """Where a quotation's tax came from (a ``str``: ``"engine"``, ``"offline"``, ...)."""

    ENGINE = "engine"
    OFFLINE = "offline"
    """The offline table: the engine was unavailable, or the backend is an estimator."""
    EXCLUDED = "excluded"
    """No line ships into a nexus region: zero tax, no engine call."""


@frozen
class Quote:
    """A quotation's tax: the request sent, the result, and where the figure came from."""

    request: TaxRequest
    result: TaxResult
    source: QuoteSource
    note: str = ""


def quote(ctx: StageContext, mapping: Context, quotation: Quotation) -> Quote:
    """The tax of a customer quotation, calculated and never saved: sent as an estimate the
    engine does not keep, and nothing written to the store.

    An engine that cannot be reached gives the offline table's figure (``source`` says which);
    one that rejects the quotation raises :class:`~taxbridge.errors.DocumentRejected`.
    """
    started = time.perf_counter()
    request = quotation_request(ctx.config, quotation, mapping, ctx.clock().date())
    ctx.check_addresses([], None, request=request)  # a ZIP of another state is refused
    note = ""
    route = ctx.route(request, online=True)
    if route is Route.EXCLUDED:
        result, source = ctx.zero_result(request), QuoteSource.EXCLUDED
        note = "excluded: ship-to outside the nexus regions; no engine call"
    elif route is Route.OFFLINE:
        result, note = ctx.offline_estimate(request)
        source = QuoteSource.OFFLINE
    else:
        try:
            result, source = ctx.backend.calculate(request), QuoteSource.ENGINE
        except BackendUnavailable as exc:
            result, offline_note = ctx.offline_estimate(request)
            source, note = QuoteSource.OFFLINE, f"engine unavailable ({exc}){offline_note}"
    _log.info(
        "taxbridge.quote.calculated",
        code=request.code,
        stage="quote",
        source=source.value,
        backend=ctx.backend.name,
        tax=str(result.total_tax),
        elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
    )
    return Quote(request, result, source, note)
