"""The lifecycle obeys each control file, on the real local engine and a real SQLite file."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs
import pytest
from conftest import DAY, NYC, WAREHOUSE, invoice, line, order

from taxbridge import (
    Address,
    BackendUnavailable,
    Customer,
    FinalTaxFlag,
    LocalEngine,
    PendCode,
    RecordingBackend,
    SQLiteStore,
    TaxBridge,
)
from taxbridge.config import (
    AddressValidation,
    CanadianRate,
    ExemptionMode,
    ExemptionSettings,
    LevyItem,
    NexusRegion,
    PendingRules,
    TaxCodeMap,
    TransactionGroup,
    default_config,
)
from taxbridge.errors import InvalidAddressError, InvalidFieldError, UnknownTransactionGroupError
from taxbridge.models import Exemption

F = FinalTaxFlag
LA = Address("200 N Spring St", "Los Angeles", "CA", "90012")
TORONTO = Address("100 Queen St W", "Toronto", "ON", "M5H 2N2", country="CA")
BAD_ZIP = Address("1 Main St", "Schenectady", "NY", "12345")  # a ZIP the engine cannot resolve


def _bridge(store, engine=None, **changes) -> TaxBridge:
    config = attrs.evolve(default_config(), **changes)
    return TaxBridge(config, engine or RecordingBackend(LocalEngine()), store)


class TestNexusAndCompanies:
    def test_only_nexus_regions_are_loaded_into_the_offline_table(self, store) -> None:
        engine = RecordingBackend(LocalEngine(nexus={"DEFAULT": {"NY"}}))
        bridge = _bridge(store, engine, nexus=(NexusRegion("CA"),))
        assert store.offline_rates().regions == {"CA"}
        bridge.refresh()
        assert store.offline_rates().regions == {"CA", "NY"}

    def test_a_new_nexus_region_joins_the_offline_table_on_the_next_refresh(self, store) -> None:
        local = LocalEngine(nexus={"DEFAULT": {"NY"}})
        bridge = _bridge(store, RecordingBackend(local), nexus=(NexusRegion("NY"),))
        assert bridge.on_entry(order(ship_to=LA)).flag is F.EXCLUDED
        local.set_nexus("DEFAULT", {"NY", "CA"})
        summary = bridge.refresh(dt.date(2026, 11, 21))
        assert summary.nexus == {"DEFAULT": ("CA", "NY")}
        assert "CA" in store.offline_rates().regions
        assert bridge.on_entry(order("2", ship_to=LA)).flag is F.CALCULATED


class TestTransactionGroups:
    def test_a_group_that_does_not_interface_is_offline_and_never_posted(self, store) -> None:
        engine = RecordingBackend(LocalEngine())
        groups = (TransactionGroup("US"), TransactionGroup("EXPORT", interface=False))
        bridge = _bridge(store, engine, transaction_groups=groups)
        export = attrs.evolve(order(), transaction_group="EXPORT")
        assert bridge.on_entry(export).flag is F.OFFLINE
        invoiced = bridge.on_invoice(invoice("1", export))
        assert invoiced.flag is F.OFFLINE
        assert "not interfaced" in invoiced.last_log
        assert invoiced.total_tax == Decimal("8.88")
        assert engine.calls == 0
        assert store.queue() == []
        assert (
            bridge.on_entry(attrs.evolve(order("2"), transaction_group="US")).flag is F.CALCULATED
        )

    def test_an_undefined_group_is_an_error_naming_it(self, store) -> None:
        bridge = _bridge(store, transaction_groups=(TransactionGroup("US"),))
        with pytest.raises(UnknownTransactionGroupError, match="'EU'"):
            bridge.on_entry(attrs.evolve(order(), transaction_group="EU"))
        assert store.get("O-1001") is None


class TestTaxCodes:
    def test_override_then_classification_then_default_then_freight(self, bridge, engine) -> None:
        bridge.on_entry(
            order(
                lines=(
                    line(1, tax_code="NT", item_classification="CLOTH"),
                    line(2, item_classification="CLOTH"),
                    line(3, item_classification="UNMAPPED"),
                    line(4, freight=True),
                )
            )
        )
        assert [ln.tax_code for ln in engine.requests[0].lines] == [
            "NT",
            "PC040100",
            "P0000000",
            "FR020100",
        ]

    def test_a_code_missing_from_the_configured_active_list_pends(self, store) -> None:
        codes = TaxCodeMap(active=frozenset({"P0000000", "FR020100"}))
        bridge = _bridge(store, tax_codes=codes)
        check = bridge.on_pending_check(order(lines=(line(1), line(2, tax_code="PC040100"))))
        assert [(r.code, r.line) for r in check.reasons] == [(PendCode.OBSOLETE_TAX_CODE, "P1-2")]

    def test_the_refreshed_active_list_wins_over_the_configured_one(self, store) -> None:
        bridge = _bridge(store, tax_codes=TaxCodeMap(active=frozenset({"P0000000", "FR020100"})))
        bridge.refresh()
        assert not bridge.on_pending_check(order(lines=(line(1, tax_code="PC040100"),))).pends


class TestLevyItems:
    LEVY = LevyItem(
        region="CA",
        item_code="LEVY-EWASTE",
        tax_code="NT",
        amount=Decimal("6.00"),
        effective=dt.date(2026, 1, 1),
        expiry=dt.date(2026, 12, 31),
    )

    def test_a_levy_is_added_inside_its_region_and_dates(self, store, engine) -> None:
        bridge = _bridge(store, engine, levy_items=(self.LEVY,))
        doc = bridge.on_entry(order(ship_to=LA))
        assert [ln.number for ln in doc.lines] == ["P1-1", "1001-LEVY-EWASTE"]
        assert doc.lines[1].amount == Decimal("6.00")
        assert doc.total_amount == Decimal("106.00")

    @pytest.mark.parametrize(
        ("ship_to", "day"),
        [(NYC, DAY), (LA, dt.date(2025, 12, 31)), (LA, dt.date(2027, 1, 1))],
        ids=["other region", "before effective", "after expiry"],
    )
    def test_no_levy_outside_its_region_or_dates(self, store, ship_to, day) -> None:
        bridge = _bridge(store, levy_items=(self.LEVY,))
        doc = bridge.on_entry(attrs.evolve(order(ship_to=ship_to), order_date=day))
        assert [ln.number for ln in doc.lines] == ["P1-1"]


class TestCanadianRates:
    def test_a_canadian_ship_to_is_calculated_offline_with_the_province_default(
        self, store
    ) -> None:
        bridge = _bridge(
            store,
            nexus=(NexusRegion("ON"), NexusRegion("NY")),
            canadian_rates=(CanadianRate("ON", hst=Decimal("0.13")),),
        )
        doc = bridge.on_entry(order(ship_to=TORONTO))
        assert doc.flag is F.OFFLINE  # the local engine does not calculate Canada
        assert doc.total_tax == Decimal("13.00")
        assert [(j.jurisdiction_type.value, j.name) for j in doc.breakdown] == [("STA", "ON HST")]

    def test_gst_and_pst_are_separate_jurisdictions(self, store) -> None:
        bridge = _bridge(
            store,
            nexus=(NexusRegion("BC"),),
            canadian_rates=(CanadianRate("BC", gst=Decimal("0.05"), pst=Decimal("0.07")),),
        )
        vancouver = Address("1 Main", "Vancouver", "BC", "V6B 1A1", country="CA")
        doc = bridge.on_entry(order(ship_to=vancouver))
        assert {j.name: j.tax for j in doc.breakdown} == {
            "CANADA GST": Decimal("5.00"),
            "BC PST": Decimal("7.00"),
        }


class TestMaxDetailLines:
    def test_maxdl_active_gives_totals_only_at_or_above_the_limit(self, store) -> None:
        bridge = _bridge(store, max_detail_lines=3)
        small = bridge.on_entry(order("1", lines=(line(1), line(2))))
        assert small.breakdown
        big = bridge.on_entry(order("2", lines=(line(1), line(2), line(3))))
        assert big.breakdown == ()
        assert big.total_tax == Decimal("26.63")
        note = bridge.inquiry("O-2").breakdown_note
        assert "not calculated" in note
        assert "MAXDL" in note

    def test_maxdl_off_always_gives_the_breakdown(self, bridge) -> None:
        doc = bridge.on_entry(order(lines=tuple(line(n) for n in range(1, 30))))
        assert doc.breakdown
        assert bridge.inquiry("O-1001").breakdown_note == ""


class TestFreightSplit:
    def _order(self):
        return order(
            lines=(
                line(1, "300.00", item_level1="PUB1"),
                line(2, "100.00", item_level1="PUB2"),
                line(3, "10.00", freight=True),
            )
        )

    def test_freight_is_split_by_item_level_1_to_the_cent(self, store, engine) -> None:
        bridge = _bridge(store, engine, freight_split=True)
        doc = bridge.on_entry(self._order())
        freight = {ln.number: ln.amount for ln in doc.lines if ln.number.startswith("P1-3")}
        assert freight == {"P1-3-PUB1": Decimal("7.50"), "P1-3-PUB2": Decimal("2.50")}
        assert [ln.ref1 for ln in engine.requests[0].lines] == ["PUB1", "PUB2", "PUB1", "PUB2"]

    def test_without_the_switch_freight_stays_whole(self, store) -> None:
        doc = _bridge(store).on_entry(self._order())
        assert [ln.number for ln in doc.lines] == ["P1-1", "P1-2", "P1-3"]


class TestAddressValidation:
    RULES = AddressValidation(
        bypass_programs=frozenset({"BNW150"}), hard_error_programs=frozenset({"DSO010"})
    )

    def test_a_bypass_program_skips_validation(self, store, engine) -> None:
        bridge = _bridge(store, engine, address_validation=self.RULES)
        doc = bridge.on_entry(order(ship_to=BAD_ZIP), program="BNW150")
        assert "address" not in doc.last_log.split("engine")[0]

    def test_a_hard_error_program_refuses_and_stores_nothing(self, store) -> None:
        bridge = _bridge(store, address_validation=self.RULES)
        with pytest.raises(InvalidAddressError, match="DSO010") as caught:
            bridge.on_entry(order(ship_to=BAD_ZIP), program="DSO010")
        assert "ship_to" in caught.value.field
        assert store.get("O-1001") is None

    def test_another_program_warns_and_continues_with_an_override_in_the_log(self, store) -> None:
        bridge = _bridge(store, address_validation=self.RULES)
        doc = bridge.on_entry(order(ship_to=BAD_ZIP), program="DSO500")
        assert doc.last_log.startswith("address warning (DSO500)")
        assert "temporary override" in doc.last_log
        assert "temporary override" in bridge.inquiry("O-1001").events[-1].message

    def test_a_zip_of_another_state_follows_the_program_list_av_dfn3(self, store) -> None:
        """Seed 003, AV-DFN3: a program not in the control file goes on with a warning and a
        temporary override; a listed one gets a hard error; a bypass program is not checked;
        a library call without a program still refuses the mistyped state."""
        wrong_state = Address("1 Main St", "New York", "NJ", "10118")  # 10118 is NYC's
        bridge = _bridge(store, address_validation=self.RULES)
        doc = bridge.on_entry(order("1001", ship_to=wrong_state), program="DSO500")
        assert doc.last_log.startswith("address warning (DSO500)")
        assert "postal_code is not a ZIP of NJ" in doc.last_log
        assert "temporary override" in doc.last_log
        assert bridge.on_entry(order("1002", ship_to=wrong_state), program="BNW150").flag
        with pytest.raises(InvalidAddressError, match="DSO010") as caught:
            bridge.on_entry(order("1003", ship_to=wrong_state), program="DSO010")
        assert "is not a ZIP of NJ" in str(caught.value)
        with pytest.raises(InvalidFieldError, match="is not a ZIP of NJ"):
            bridge.on_entry(order("1004", ship_to=wrong_state))
        assert [doc.code for doc in store.documents()] == ["O-1001", "O-1002"]
        with pytest.raises(InvalidFieldError, match="Address.region: 'ZZ'"):
            Address("1 Main St", "Nowhere", "ZZ", "10118")  # a region that does not exist

    def test_a_valid_address_passes_every_program(self, store) -> None:
        bridge = _bridge(store, address_validation=self.RULES)
        assert bridge.on_entry(order(), program="DSO010").flag is F.CALCULATED


class TestExemptions:
    NY_EXEMPT = Exemption(
        customer_code="C001",
        region="NY",
        effective=dt.date(2026, 1, 1),
        expiry=dt.date(2027, 6, 30),
        exemption_no="NY-RESALE-1",
        entity_use_code="G",
    )

    def test_the_database_exempts_in_its_region_and_dates(self, bridge, engine) -> None:
        bridge.add_exemption(self.NY_EXEMPT)
        doc = bridge.on_entry(order())
        assert doc.total_tax == 0
        assert engine.requests[-1].exemption_no == "NY-RESALE-1"
        assert (
            bridge.on_entry(
                order("2", ship_to=Address("1 Main", "Chicago", "IL", "60601"))
            ).total_tax
            > 0
        )
        before = attrs.evolve(order("3"), order_date=dt.date(2025, 12, 31))
        assert bridge.on_entry(before).total_tax > 0

    def test_the_customer_master_tax_number_takes_precedence(self, bridge, engine) -> None:
        bridge.add_exemption(self.NY_EXEMPT)
        master = Customer("C001", tax_number="MASTER-9", entity_use_code="E")
        bridge.on_entry(order(customer=master))
        assert (engine.requests[-1].exemption_no, engine.requests[-1].entity_use_code) == (
            "MASTER-9",
            "E",
        )

    def test_overseas_residents_are_exempt_by_classification(self, store, engine) -> None:
        settings = ExemptionSettings(overseas={"OVERSEAS": "R"})
        bridge = _bridge(store, engine, exemptions=settings)
        doc = bridge.on_entry(order(customer=Customer("C7", classification="OVERSEAS")))
        assert doc.total_tax == 0
        assert engine.requests[-1].entity_use_code == "R"

    def test_engine_mode_sends_no_local_evidence(self, store, engine) -> None:
        bridge = _bridge(store, engine, exemptions=ExemptionSettings(mode=ExemptionMode.ENGINE))
        bridge.add_exemption(self.NY_EXEMPT)
        bridge.on_entry(order(customer=Customer("C001", tax_number="MASTER-9")))
        assert engine.requests[-1].exemption_no is None
        assert engine.requests[-1].entity_use_code is None


class TestPendingRules:
    def _bridge(self, store, today: dt.date, **changes) -> TaxBridge:
        clock = lambda: dt.datetime.combine(today, dt.time(9), tzinfo=dt.UTC)  # noqa: E731
        config = attrs.evolve(default_config(), **changes)
        return TaxBridge(config, RecordingBackend(LocalEngine()), store, clock=clock)

    def test_an_exemption_expiring_within_the_warning_days_pends_naming_the_customer(
        self, store
    ) -> None:
        bridge = self._bridge(store, dt.date(2027, 6, 10))
        bridge.add_exemption(TestExemptions.NY_EXEMPT)
        check = bridge.on_pending_check(order())
        assert [(r.code, r.customer) for r in check.reasons] == [
            (PendCode.EXEMPTION_EXPIRY, "C001")
        ]
        assert "expires on 2027-06-30" in check.reasons[0].message

    def test_an_expired_exemption_pends(self, store) -> None:
        bridge = self._bridge(store, dt.date(2027, 8, 1))
        bridge.add_exemption(TestExemptions.NY_EXEMPT)
        check = bridge.on_pending_check(order())
        assert "expired on 2027-06-30" in check.reasons[0].message

    def test_an_exemption_far_from_expiry_does_not_pend(self, store) -> None:
        bridge = self._bridge(store, dt.date(2027, 1, 1))
        bridge.add_exemption(TestExemptions.NY_EXEMPT)
        assert not bridge.on_pending_check(order()).pends

    def test_only_the_configured_checks_run(self, store) -> None:
        rules = PendingRules(order_checks=frozenset({PendCode.OBSOLETE_TAX_CODE}))
        bridge = self._bridge(store, dt.date(2027, 8, 1), pending=rules)
        bridge.add_exemption(TestExemptions.NY_EXEMPT)
        check = bridge.on_pending_check(order(ship_to=BAD_ZIP, lines=(line(1, tax_code="OLD1"),)))
        assert [r.code for r in check.reasons] == [PendCode.OBSOLETE_TAX_CODE]


class TestRefresh:
    def test_refresh_loads_codes_entity_use_codes_nexus_and_rates(self, bridge, store) -> None:
        summary = bridge.refresh(dt.date(2026, 11, 21))
        assert summary.tax_codes == 6
        assert summary.entity_use_codes == 17
        assert store.active_tax_codes() >= {"P0000000", "NT"}
        assert store.entity_use_codes()["G"] == "Resale"
        assert store.get_meta("refreshed_as_of") == "2026-11-21"

    def test_a_failed_refresh_keeps_yesterdays_tables(self, store) -> None:
        class FailsOnRates(RecordingBackend):
            def tax_rates_by_zip(self, regions, as_of=None):
                raise BackendUnavailable("download timed out", backend="local")

        local = LocalEngine(nexus={"DEFAULT": {"NY"}})
        bridge = _bridge(store, RecordingBackend(local), nexus=(NexusRegion("NY"),))
        bridge.refresh(dt.date(2026, 11, 21))
        before = (
            store.offline_rates().to_csv(),
            store.nexus("DEFAULT"),
            store.get_meta("refreshed_as_of"),
        )
        local.set_nexus("DEFAULT", {"NY", "CA", "TX"})
        failing = TaxBridge(bridge.config, FailsOnRates(local), store)
        with pytest.raises(BackendUnavailable):
            failing.refresh(dt.date(2026, 11, 22))
        after = (
            store.offline_rates().to_csv(),
            store.nexus("DEFAULT"),
            store.get_meta("refreshed_as_of"),
        )
        assert after == before


def test_unknown_company_is_not_interfaced_and_says_why(bridge, engine) -> None:
    from taxbridge import UnknownCompanyError

    with pytest.raises(UnknownCompanyError, match="no engine company code"):
        bridge.on_entry(order(company="77"))
    assert engine.calls == 0


def test_ship_from_is_the_warehouse(bridge, engine) -> None:
    bridge.on_entry(order())
    assert engine.requests[0].ship_from == WAREHOUSE


def test_the_store_file_of_a_second_bridge_sees_refreshed_data(tmp_path) -> None:
    path = tmp_path / "shared.db"
    first = TaxBridge(default_config(), LocalEngine(), SQLiteStore(path))
    first.refresh()
    second_store = SQLiteStore(path)
    assert second_store.active_tax_codes() == first.store.active_tax_codes()
