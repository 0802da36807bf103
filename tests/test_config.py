"""Loading the TOML config: good files load; each mistake names file, key and value."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from taxbridge import ConfigError, TaxBridge, UnknownCompanyError, load_config
from taxbridge.config import (
    AddressValidation,
    CanadianRate,
    CompanyMapping,
    ExemptionSettings,
    GLAccount,
    LevyItem,
    NexusRegion,
    PendingRules,
    TaxCodeMap,
    default_config,
)

GOOD = """
[store]
path = "data/tax.db"

[backend]
kind = "local"
rounding = "line"

[[companies]]
erp_company = "01"
company_code = "ACME"

[[companies]]
erp_company = "01"
item_level1 = "PUB2"
company_code = "ACME-PUB2"

[[nexus]]
region = "NY"

[[nexus]]
region = "ca"
company_code = "ACME"

[calculation]
online_at_entry = false

[tax_codes]
default = "P0000000"
by_classification = { CLOTH = "PC040100" }
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "taxbridge.toml"
    path.write_text(text)
    return path


def test_a_full_config_loads(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD))
    assert config.store_settings.path == str(tmp_path / "data" / "tax.db")
    assert config.backend == "local"
    assert config.rounding.value == "line"
    assert not config.online_at_entry
    assert config.company_code_for("01") == "ACME"
    assert config.company_code_for("01", "PUB2") == "ACME-PUB2"
    assert config.company_code_for("01", "OTHER") == "ACME"
    assert config.nexus_regions("ACME") == {"NY", "CA"}
    assert config.nexus_regions("ACME-PUB2") == {"NY"}
    assert config.tax_code_for(None, "CLOTH", False) == "PC040100"
    assert config.tax_code_for(None, "", True) == "FR020100"
    assert config.tax_code_for("NT", "CLOTH", False) == "NT"


def test_from_config_builds_a_working_bridge(tmp_path: Path) -> None:
    with TaxBridge.from_config(_write(tmp_path, GOOD)) as bridge:
        assert bridge.store.offline_rates().regions == {"NY", "CA"}
    assert (tmp_path / "data" / "tax.db").exists()


def test_an_unmapped_company_is_an_unknown_company(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD))
    with pytest.raises(UnknownCompanyError, match="'02'"):
        config.company_code_for("02")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            'region = "NY"',
            "taxbridge.toml: nexus[0].region: 'XX' is not a US state or Canadian province",
        ),
        (
            "[calculation]\nonline_at_entry = false",
            "taxbridge.toml: calculation.online_at_entry: 'no' is not true or false",
        ),
        (
            'kind = "local"',
            "taxbridge.toml: backend.kind: 'avatarx' is not one of 'local', 'offline'",
        ),
        ("[store]", "taxbridge.toml: colour: unknown key"),
        (
            'company_code = "ACME"\n\n[[companies]]',
            "taxbridge.toml: companies[2]: ('01', 'PUB2') maps the same company",
        ),
    ],
)
def test_each_mistake_names_file_key_and_value(tmp_path: Path, change: str, message: str) -> None:
    replacements = {
        'region = "NY"': 'region = "XX"',
        "[calculation]\nonline_at_entry = false": '[calculation]\nonline_at_entry = "no"',
        'kind = "local"': 'kind = "avatarx"',
        "[store]": 'colour = "blue"\n[store]',
        'company_code = "ACME"\n\n[[companies]]': 'company_code = "ACME"\n\n[[companies]]\nerp_company = "01"\nitem_level1 = "PUB2"\ncompany_code = "X"\n\n[[companies]]',
    }
    text = GOOD.replace(change, replacements[change], 1)
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text))
    assert str(caught.value).startswith(message)


def test_missing_companies_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="companies: needs at least one"):
        load_config(_write(tmp_path, "[store]\n"))
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(_write(tmp_path, "[store\n"))
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path / "absent.toml")


def test_config_error_is_outside_the_runtime_error_root() -> None:
    from taxbridge import TaxBridgeError

    assert not issubclass(ConfigError, TaxBridgeError)
    assert issubclass(ConfigError, ValueError)


LEVY = """
[[levy_items]]
region = "CA"
item_code = "LEVY-EWASTE"
tax_code = "NT"
amount = "6.00"
effective = 2026-01-01
expiry = 2026-12-31
"""


def test_overlapping_levy_ranges_are_refused(tmp_path: Path) -> None:
    second = LEVY.replace("2026-01-01", "2026-06-01").replace("2026-12-31", "2027-05-31")
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, GOOD + LEVY + second))
    assert str(caught.value) == (
        "taxbridge.toml: levy_items[1].effective: '2026-06-01' overlaps levy_items[0] "
        "(LEVY-EWASTE in CA)"
    )


def test_adjacent_levy_ranges_load(tmp_path: Path) -> None:
    second = LEVY.replace("2026-01-01", "2027-01-01").replace("2026-12-31", "2027-12-31")
    assert len(load_config(_write(tmp_path, GOOD + LEVY + second)).levy_items) == 2


def test_a_missing_default_tax_code_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace('default = "P0000000"\n', "")
    with pytest.raises(ConfigError, match=r"taxbridge.toml: tax_codes.default: is required"):
        load_config(_write(tmp_path, text))


def test_a_float_amount_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"levy_items\[0\].amount: 6.0 is a float"):
        load_config(_write(tmp_path, GOOD + LEVY.replace('"6.00"', "6.0")))


def test_an_active_list_must_hold_the_mapped_codes(tmp_path: Path) -> None:
    text = GOOD.replace('default = "P0000000"', 'default = "P0000000"\nactive = ["P0000000"]')
    with pytest.raises(
        ConfigError, match=r"tax_codes.freight: 'FR020100' is not in tax_codes.active"
    ):
        load_config(_write(tmp_path, text))


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            '[[canadian_rates]]\nprovince = "NY"\nhst = "0.13"\n',
            "canadian_rates[0].province: 'NY' is not a Canadian province",
        ),
        (
            '[[canadian_rates]]\nprovince = "ON"\nhst = "13"\n',
            "canadian_rates[0].hst: '13' is not a rate below 1",
        ),
        (
            '[[transaction_groups]]\ncode = "US"\ninterface = "yes"\n',
            "transaction_groups[0].interface: 'yes' is not true or false",
        ),
        (
            '[address_validation]\nbypass_programs = ["A"]\nhard_error_programs = ["A"]\n',
            "address_validation.hard_error_programs: 'A' is also in bypass_programs",
        ),
        (
            '[exemptions]\nmode = "certs"\n',
            "exemptions.mode: 'certs' is not one of 'local', 'engine'",
        ),
        (
            '[pending]\norder_checks = ["tax_validation", "credit"]\n',
            "pending.order_checks[1]: 'credit' is not one of",
        ),
        (
            '[[gl_accounts]]\nregion = "NY"\nliability_account = ""\n',
            "gl_accounts[0].liability_account: '' must not be empty",
        ),
        (
            "[pending]\nexpiry_warning_days = 1000000000\n",
            "pending.expiry_warning_days: 1000000000 is not a whole number",
        ),
        (
            "[queue]\nlease_seconds = 0\n",
            "queue.lease_seconds: 0 is not a whole number",
        ),
    ],
)
def test_each_section_names_its_bad_value(tmp_path: Path, section: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, GOOD + section))
    assert str(caught.value).startswith(f"taxbridge.toml: {message}")


def test_the_shipped_example_sets_every_section_and_loads() -> None:
    import tomllib

    from taxbridge.config import _TOP, example_config, example_config_text

    assert set(tomllib.loads(example_config_text())) == _TOP
    config = example_config()
    assert config.levy_items
    assert config.canadian_rates
    assert config.gl_accounts
    assert config.gl_account("NY") == "2310-NY"


class TestBuiltInCode:
    """Config classes built in code are checked as a file is, naming the class field."""

    @pytest.mark.parametrize(
        ("make", "message"),
        [
            (lambda: NexusRegion("XX"), "NexusRegion.region: 'XX' is not a US state"),
            (
                lambda: CanadianRate("ON", hst=Decimal("13")),
                "CanadianRate.hst: '13' is not a rate below 1",
            ),
            (
                lambda: CanadianRate("ON", gst=Decimal("0.05"), hst=Decimal("0.13")),
                "CanadianRate.hst: '0.13' and gst cannot both apply",
            ),
            (
                lambda: CompanyMapping("", "ACME"),
                "CompanyMapping.erp_company: '' must not be empty",
            ),
            (
                lambda: TaxCodeMap(active=frozenset({"P0000000"})),
                "TaxCodeMap.freight: 'FR020100' is not in tax_codes.active",
            ),
            (
                lambda: LevyItem(
                    "CA", "L", "NT", Decimal("1"), dt.date(2026, 2, 1), dt.date(2026, 1, 1)
                ),
                "LevyItem.expiry: '2026-01-01' is before the effective date",
            ),
            (
                lambda: AddressValidation(frozenset({"A"}), frozenset({"A"})),
                "AddressValidation.hard_error_programs: 'A' is also in bypass_programs",
            ),
            (
                lambda: ExemptionSettings(mode="certs"),
                "ExemptionSettings.mode: 'certs' is not one of",
            ),
            (lambda: PendingRules(expiry_warning_days=-1), "PendingRules.expiry_warning_days: -1"),
            (lambda: GLAccount("NY", " "), "GLAccount.liability_account: ' ' must not be empty"),
        ],
    )
    def test_a_section_names_its_field_and_value(self, make, message: str) -> None:
        with pytest.raises(ConfigError) as caught:
            make()
        assert str(caught.value).startswith(message)

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"companies": ()}, "<code>: companies: needs at least one [[companies]] entry"),
            (
                {"nexus": (NexusRegion("NY", company_code="NOPE"),)},
                "<code>: nexus[0].company_code: 'NOPE' is not in the company map",
            ),
            ({"backend": "taxjar"}, "<code>: backend.kind: 'taxjar' is not one of 'local'"),
            ({"store": "oracle"}, "<code>: store.kind: 'oracle' is not one of 'sqlite'"),
            ({"backend": "avatax"}, "<code>: backend_settings: None is not AvaTaxSettings"),
            ({"max_detail_lines": -1}, "<code>: max_detail_lines: -1 is not a whole number"),
            (
                {"gl_accounts": (GLAccount("NY", "1"), GLAccount("NY", "2"))},
                "<code>: gl_accounts[1].region: 'NY' has an account already",
            ),
        ],
    )
    def test_the_whole_config_is_checked_too(self, changes, message: str) -> None:
        with pytest.raises(ConfigError) as caught:
            attrs.evolve(default_config(), **changes)
        assert str(caught.value).startswith(message)

    def test_a_region_is_upper_cased_and_settings_default_by_their_plugin(self) -> None:
        assert NexusRegion("ny").region == "NY"
        config = default_config()
        assert (config.backend, config.backend_settings, config.store) == ("local", None, "sqlite")
        assert config.store_settings.path == "taxbridge.db"
        assert config.with_store_file("x.db").store_settings.path == "x.db"


def test_store_keys_belong_to_the_store_kind(tmp_path: Path) -> None:
    text = GOOD.replace('[store]\npath = "data/tax.db"', '[store]\nkind = "sqlite"\nurl = "x"')
    with pytest.raises(ConfigError, match=r"store\.url: unknown key"):
        load_config(_write(tmp_path, text))
    text = GOOD.replace('[store]\npath = "data/tax.db"', '[store]\nkind = "oracle"')
    with pytest.raises(ConfigError, match=r"store\.kind: 'oracle' is not one of 'sqlite'"):
        load_config(_write(tmp_path, text))
