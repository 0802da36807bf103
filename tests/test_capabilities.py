"""Capabilities are declared, never sniffed: a wrapper that declares its inner backend's
capabilities behaves exactly like the bare backend, whichever backend it wraps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
import respx
from conftest import (
    CHICAGO,
    FAKE_ACCOUNT,
    FAKE_KEY,
    FAKE_URL,
    WAREHOUSE,
    fake_settings,
    invoice,
    line,
    order,
)

from taxbridge import (
    Capability,
    LocalEngine,
    OfflineTable,
    Quotation,
    QuotationLine,
    RecordingBackend,
    SQLiteStore,
    TaxBridge,
)
from taxbridge.backends.avatax import AvaTaxBackend
from taxbridge.backends.base import Capabilities, TaxBackend
from taxbridge.config import QuotationSettings, default_config
from taxbridge.models import DocumentType
from taxbridge.rates import shipped_rates
from taxbridge.testing.fake_avatax import FakeAvaTax


@contextmanager
def _avatax() -> Iterator[TaxBackend]:
    fake = FakeAvaTax(account_id=FAKE_ACCOUNT, license_key=FAKE_KEY)
    with respx.mock(base_url=FAKE_URL, assert_all_called=False) as router:
        router.route().mock(side_effect=fake.handle)
        backend = AvaTaxBackend(fake_settings(), sleep=lambda seconds: None)
        try:
            yield backend
        finally:
            backend.close()


@contextmanager
def _plain(make: Callable[[], TaxBackend]) -> Iterator[TaxBackend]:
    yield make()


BACKENDS: dict[str, Callable[[], Any]] = {
    "local": lambda: _plain(LocalEngine),
    "offline": lambda: _plain(lambda: OfflineTable(shipped_rates())),
    "avatax": _avatax,
}


def _scenario(backend: TaxBackend, store_path: Path) -> list[object]:
    """A day in small: what the ERP would see at each step."""
    seen: list[object] = []
    with SQLiteStore(store_path) as store:
        config = attrs.evolve(default_config(), quotations=QuotationSettings(org_address=WAREHOUSE))
        bridge = TaxBridge(config, backend, store)
        plain = order("1001")
        obsolete = order("1002", lines=(line(1, tax_code="SV000000"),))
        entry = bridge.on_entry(plain)
        seen.append(("entry", entry.flag, entry.total_tax))
        for checked in (plain, obsolete):
            check = bridge.on_pending_check(checked)
            assert check.document is not None
            seen.append(("pending", check.document.flag, [(r.code, r.line) for r in check.reasons]))
        posted = bridge.on_invoice(invoice("9001", plain))
        seen.append(("invoice", posted.flag, posted.total_tax, store.queue_entry(posted.code)))
        quoted = bridge.quote(
            Quotation(
                "Q-1",
                (QuotationLine(1, Decimal(1), Decimal("50.00")),),
                prospect_company="Prospect",
                prospect_address=CHICAGO,
            )
        )
        seen.append(("quote", quoted.source, quoted.result.total_tax))
        summary = bridge.refresh(dt.date(2026, 11, 21))
        seen.append(("refresh", summary.tax_codes, summary.entity_use_codes, summary.rate_rows))
        seen.append(("ping", bridge.ping() is None))
    return seen


@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_the_same_day_gives_the_same_results_bare_and_wrapped(kind: str, tmp_path: Path) -> None:
    with BACKENDS[kind]() as bare:
        expected = _scenario(bare, tmp_path / "bare.db")
    with BACKENDS[kind]() as inner:
        wrapped = RecordingBackend(inner)
        assert wrapped.capabilities == inner.capabilities
        assert _scenario(wrapped, tmp_path / "wrapped.db") == expected


def test_the_reported_offline_table_case_is_blank_without_a_pend_bare_and_wrapped(
    tmp_path: Path,
) -> None:
    for name, backend in (
        ("bare", OfflineTable(shipped_rates())),
        ("wrapped", RecordingBackend(OfflineTable(shipped_rates()))),
    ):
        with SQLiteStore(tmp_path / f"{name}.db") as store:
            check = TaxBridge(default_config(), backend, store).on_pending_check(order())
        assert check.document is not None
        assert (name, check.document.flag.value, check.reasons) == (name, "", ())


def test_a_wrapper_refuses_what_its_inner_backend_cannot_do() -> None:
    wrapped = RecordingBackend(OfflineTable(shipped_rates()))
    assert wrapped.capabilities == frozenset()
    assert Capabilities(wrapped).documents is None
    with pytest.raises(TypeError, match="offline does not offer documents"):
        wrapped.get_document("DEFAULT", "A-1", DocumentType.SALES_INVOICE)


def test_each_backend_declares_what_it_can_do() -> None:
    assert LocalEngine.capabilities == frozenset(Capability) - {
        Capability.PING,
        Capability.CERTIFICATES,
    }
    assert OfflineTable.capabilities == frozenset()
    assert AvaTaxBackend.capabilities == frozenset(Capability)
    assert Capabilities(LocalEngine()).posts
    assert not Capabilities(OfflineTable(shipped_rates())).posts
