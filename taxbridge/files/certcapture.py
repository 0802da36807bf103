"""The CertCapture templates (seed 000): the Basic (A..Q) and Full (A..AG) customer imports and
the ECMS certificate import (A..Z), with their rules and their rows from the ERP's customers
and exemption database.

Header texts are the seed's, exactly ("don't modify column titles"). A customer number already
exported is overwritten at import: the validator warns when it is told which ones were.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping

import attrs
from attrs import field, frozen

from taxbridge.errors import InvalidFieldError
from taxbridge.files.template import (
    Column,
    FileRule,
    Kind,
    Problem,
    Row,
    RowRule,
    Template,
    letter_index,
)
from taxbridge.models import Address, Exemption
from taxbridge.models import _fields as _f
from taxbridge.regions import BY_COUNTRY

MAX_CUSTOMER_LINES = 40_000
"""Import files with more than 40,000 lines can't be imported."""
MAX_CUSTOMER_BYTES = 50 * 1024 * 1024
"""Import files larger than 50 MB can't be imported."""
NAME_LIMIT = 100
"""Name 2 is merged into Name 1; a merged name longer than this is warned about (the ECMS
template's Customer Name holds 100)."""
COUNTRIES = ("US", "CA")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_T, _D, _I = Kind.TEXT, Kind.DATE, Kind.INTEGER

_BILLING = (
    Column("A", "Billing Customer Number", _T, 50, required=True),
    Column("B", "Billing Customer Alternate ID"),
    Column("C", "Billing Customer FEIN"),
    Column("D", "Billing Customer Name 1", required=True),
    Column("E", "Billing Customer Name 2"),
    Column("F", "Billing Customer Attn Name"),
    Column("G", "Billing Customer Address 1", required=True),
    Column("H", "Billing Customer Address 2"),
    Column("I", "Billing Customer City", required=True),
    Column("J", "Billing Customer State", _T, 2, required=True),
    Column("K", "Billing Customer Country", _T, 2, required=True, allowed=COUNTRIES),
    Column("L", "Billing Customer Zip", required=True, keep_text=True),
    Column("M", "Billing Customer Phone"),
    Column("N", "Billing Customer Fax"),
    Column("O", "Billing Customer Email", required=True),
    Column("P", "Billing Customer Contact"),
)
_SHIPPING = (
    Column("Q", "Shipping Customer Number", _T, 50, required=True),
    Column("R", "Shipping Customer Alternate ID"),
    Column("S", "Shipping Customer FEIN"),
    Column("T", "Shipping Customer Name 1", required=True),
    Column("U", "Shipping Customer Name 2"),
    Column("V", "Shipping Customer Attn Name"),
    Column("W", "Shipping Customer Address 1", required=True),
    Column("X", "Shipping Customer Address 2"),
    Column("Y", "Shipping Customer City", required=True),
    Column("Z", "Shipping Customer State", _T, 2, required=True),
    Column("AA", "Shipping Customer Country", _T, 2, required=True, allowed=COUNTRIES),
    Column("AB", "Shipping Customer Zip", required=True, keep_text=True),
    Column("AC", "Shipping Customer Phone"),
    Column("AD", "Shipping Customer Fax"),
    Column("AE", "Shipping Customer Email", required=True),
    Column("AF", "Shipping Customer Contact"),
    Column("AG", "Last Transaction Date", _D),
)

# -- the ERP's customers ------------------------------------------------------------------------


def _email(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value and not _EMAIL.match(value):
        raise InvalidFieldError(type(instance).__name__, attribute.name, value, "is not an e-mail")


@frozen
class CustomerRecord:
    """A customer of the ERP's master as CertCapture takes it: a billing customer with its
    ship-to states (Basic) or its shipping customers, each a record of its own (Full)."""

    number: str = field(converter=_f.required_text)
    name: str = field(converter=_f.required_text)
    address: Address = field(validator=_f.instance_of(Address))
    email: str = field(default="", converter=_f.text, validator=_email)
    name2: str = field(default="", converter=_f.text)
    alternate_id: str = field(default="", converter=_f.text)
    fein: str = field(default="", converter=_f.text)
    attn_name: str = field(default="", converter=_f.text)
    phone: str = field(default="", converter=_f.text)
    fax: str = field(default="", converter=_f.text)
    contact: str = field(default="", converter=_f.text)
    ship_to_states: tuple[str, ...] = field(default=(), converter=_f.as_tuple)
    ship_tos: tuple[CustomerRecord, ...] = field(default=(), converter=_f.as_tuple)
    last_transaction: dt.date | None = field(default=None, converter=_f.optional_date)
    business_type: int | None = None
    """ECMS Business Type 1..20 (20: other, with ``business_type_desc``)."""
    business_type_desc: str = field(default="", converter=_f.text)
    exempt: bool = True

    def __attrs_post_init__(self) -> None:
        if self.address.country not in COUNTRIES:
            raise InvalidFieldError(
                "CustomerRecord", "address.country", self.address.country, "is not US or CA"
            )
        for state in self.ship_to_states:
            if state not in BY_COUNTRY["US"] | BY_COUNTRY["CA"]:
                raise InvalidFieldError(
                    "CustomerRecord", "ship_to_states", state, "is not a state or province"
                )


def billing_cells(row: list[str], customer: CustomerRecord, offset: int = 0) -> None:
    """A customer's sixteen cells (number .. contact) from ``offset`` (A, or Q for a shipping
    customer in the Full template)."""
    a = customer.address
    values = (
        customer.number, customer.alternate_id, customer.fein, customer.name, customer.name2,
        customer.attn_name, a.line1, a.line2, a.city, a.region, a.country, a.postal_code,
        customer.phone, customer.fax, customer.email, customer.contact,
    )  # fmt: skip
    row[offset : offset + len(values)] = values


def basic_rows(customers: Iterable[CustomerRecord]) -> Iterator[list[str]]:
    """Basic template: a row per (billing customer, ship-to state); a customer with none is
    shipped to its own state."""
    for customer in customers:
        for state in customer.ship_to_states or (customer.address.region,):
            row = [""] * BASIC.width
            billing_cells(row, customer)
            row[letter_index("Q")] = state
            yield row


def full_rows(customers: Iterable[CustomerRecord]) -> Iterator[list[str]]:
    """Full template: a row per (billing customer, shipping customer); a customer with none
    ships to itself."""
    for customer in customers:
        for ship_to in customer.ship_tos or (customer,):
            row = [""] * FULL.width
            billing_cells(row, customer)
            billing_cells(row, ship_to, letter_index("Q"))
            last = ship_to.last_transaction or customer.last_transaction
            row[letter_index("AG")] = last.isoformat() if last else ""
            yield row


# -- customer rules -----------------------------------------------------------------------------


def _customer_rules(template: Template, *, full: bool) -> tuple[RowRule, ...]:
    p = template.problem
    sides = [("A", "D", "E", "J", "K", "O")]
    if full:
        sides.append(("Q", "T", "U", "Z", "AA", "AE"))
    ship_state = None if full else letter_index("Q")

    def rules(number: int, row: Row) -> list[Problem]:
        found: list[Problem] = []
        for _, name1, name2, state, country, email in sides:
            n1, n2 = row[letter_index(name1)], row[letter_index(name2)]
            if n2 and len(f"{n1} {n2}") > NAME_LIMIT:
                found.append(
                    p(
                        number,
                        name2,
                        n2,
                        f"is merged into Name 1; together longer than {NAME_LIMIT} characters",
                        warning=True,
                    )
                )
            found.extend(_state(template, number, row, state, country))
            mail = row[letter_index(email)]
            if mail and not _EMAIL.match(mail):
                found.append(p(number, email, mail, "is not an e-mail address"))
        if ship_state is not None:
            found.extend(_state(template, number, row, "Q", None))
        return found

    return (rules,)


def _state(
    template: Template, number: int, row: Row, letter: str, country: str | None
) -> list[Problem]:
    value = row[letter_index(letter)]
    if not value:
        return []
    nation = row[letter_index(country)] if country else ""
    known = BY_COUNTRY.get(nation) if nation else BY_COUNTRY["US"] | BY_COUNTRY["CA"]
    if len(value) != 2 or not value.isalpha() or not value.isupper():
        return [template.problem(number, letter, value, "is not one two-letter state")]
    if known is not None and value not in known:
        where = f"of {nation}" if nation else "of the US or Canada"
        return [template.problem(number, letter, value, f"is not a state or province {where}")]
    return []


class _Customers(FileRule):
    """One row per (billing, ship-to) pair; numbers already exported are overwritten."""

    def __init__(self, template: Template, numbers: tuple[str, ...], exported: frozenset[str]):
        self.template = template
        self.numbers = tuple((letter, letter_index(letter)) for letter in numbers)
        self.exported = exported
        self.pairs: set[tuple[str, str]] = set()
        self.warned: set[str] = set()

    def feed(self, number: int, row: Row) -> list[Problem]:
        found: list[Problem] = []
        pair = (row[0], row[_SECOND])
        if pair in self.pairs:
            found.append(
                self.template.problem(
                    number, "Q", pair[1], f"repeats customer {pair[0]} with the same ship-to"
                )
            )
        self.pairs.add(pair)
        for letter, index in self.numbers:
            value = row[index]
            if value in self.exported and value not in self.warned:
                self.warned.add(value)
                found.append(
                    self.template.problem(
                        number,
                        letter,
                        value,
                        "was exported before: importing it overwrites that customer at CertCapture",
                        warning=True,
                    )
                )
        return found


_SECOND = letter_index("Q")
"""Basic: the ship-to state; Full: the shipping customer number."""


def _customer_template(
    name: str, columns: tuple[Column, ...], *, full: bool, exported: frozenset[str]
) -> Template:
    base = Template(name, columns, max_rows=MAX_CUSTOMER_LINES)
    numbers = ("A", "Q") if full else ("A",)
    return attrs.evolve(
        base,
        row_rules=_customer_rules(base, full=full),
        file_rules=lambda: (_Customers(base, numbers, exported),),
    )


BASIC = _customer_template(
    "CertCapture customers (Basic)",
    (*_BILLING, Column("Q", "Shipping Customer State", _T, 2, required=True)),
    full=False,
    exported=frozenset(),
)
FULL = _customer_template(
    "CertCapture customers (Full)", (*_BILLING, *_SHIPPING), full=True, exported=frozenset()
)


def customers_knowing(template: Template, exported: Iterable[str]) -> Template:
    """A customer template that warns on customer numbers exported before."""
    full = template.name == FULL.name
    return _customer_template(
        template.name, template.columns, full=full, exported=frozenset(exported)
    )


# -- ECMS ---------------------------------------------------------------------------------------

EXEMPT_REASONS: Mapping[str, tuple[str, str, str | None]] = {
    "A": ("Federal government", "A", "US"),
    "B": ("State government", "B", "US"),
    "C": ("Tribe / Status Indian / Indian Band", "C", None),
    "D": ("Foreign diplomat", "D", None),
    "E": ("Charitable or benevolent org", "E", None),
    "F": ("Religious org", "F", None),
    "G": ("Resale", "G", None),
    "H": ("Commercial agricultural production", "H", None),
    "I": ("Industrial production / manufacturer", "I", None),
    "J": ("Direct pay permit", "J", "US"),
    "K": ("Direct mail", "K", "US"),
    "L": ("Other", "L", None),
    "M": ("Educational org", "M", None),
    "N": ("Local government", "N", "US"),
    "P": ("Commercial aquaculture", "P", "CA"),
    "Q": ("Commercial fishery", "Q", "CA"),
    "R": ("Non-resident", "R", "CA"),
}
"""ECMS exemption reason letter -> (description, entity use code, the one country it applies
in or None for both): the one table between the template and the exemption database."""
ENTITY_USE_TO_REASON = {code: letter for letter, (_, code, _) in EXEMPT_REASONS.items()}
ECMS_DATES = ("%m/%d/%Y",)

ECMS_COLUMNS = (
    Column("A", "ECMS Cert ID", _I, required=True),
    Column("B", "AvaCertid", _I),
    Column("C", "Issuing Country", _T, 2, required=True),
    Column("D", "Issuing Region", _T, 2, required=True),
    Column("E", "ExemptionNo", _T, 50, required=True),
    Column("F", "ExemptionNo Type", _T, 50, allowed=("TIN", "FEIN", "DLN", "FDN")),
    Column("G", "EffDate", _D, 10, required=True, dates=ECMS_DATES),
    Column("H", "EndDate", _D, 10, dates=ECMS_DATES),
    Column("I", "CompanyCode"),
    Column("J", "CustomerCode", _T, 50, required=True),
    Column("K", "CertType", _T, 50, required=True, allowed=("BLANKET", "SINGLE")),
    Column("L", "Invoice/PO No", _T, 50),
    Column("M", "Business Type", _I, required=True, allowed=tuple(str(n) for n in range(1, 21))),
    Column("N", "Business Type Desc", _T, 255),
    Column("O", "Exemption Reason", _T, 1, required=True, allowed=tuple(EXEMPT_REASONS)),
    Column("P", "Exempt Reason Desc", _T, 255),
    Column("Q", "Customer Name", _T, 100, required=True),
    Column("R", "Address 1", _T, 50, required=True),
    Column("S", "Address 2", _T, 50),
    Column("T", "Address 3", _T, 50, ignored="is merged into Address 2 at import"),
    Column("U", "City", _T, 50, required=True),
    Column("V", "Region", _T, 3, required=True),
    Column("W", "Postal Code", _T, 10, required=True, keep_text=True),
    Column("X", "Country", _T, 2),
    Column("Y", "CertStatus", _T, required=True, allowed=("ACTIVE", "REVOKED")),
    Column("Z", "ReviewStatus", _T, required=True, allowed=("ACCEPTED",)),
)


def _ecms_rules(template: Template) -> tuple[RowRule, ...]:
    p = template.problem
    at = {letter: letter_index(letter) for letter in "ABCDGHIJKLMNOPUVXY"}

    def rules(number: int, row: Row) -> list[Problem]:
        found: list[Problem] = []
        for letter, why in (("B", "AvaCertid"), ("I", "CompanyCode")):
            if row[at[letter]]:
                found.append(p(number, letter, row[at[letter]], f"{why}: leave this column blank"))
        country, region = row[at["C"]], row[at["D"]]
        if country and country in BY_COUNTRY and region:
            canada_wide = country == "CA" and region == "CA"
            if not canada_wide and region not in BY_COUNTRY[country]:
                found.append(
                    p(number, "D", region, f"is not a region of {country} (CA: Canada-wide GST)")
                )
        start = _ecms_date(row[at["G"]])
        end = _ecms_date(row[at["H"]])
        if start and end and start > end:
            found.append(p(number, "G", row[at["G"]], f"is later than the EndDate {row[at['H']]}"))
        if not row[at["H"]]:
            found.append(
                p(number, "H", "", "is blank: the certificate never expires", warning=True)
            )
        single = row[at["K"]] == "SINGLE"
        if single != bool(row[at["L"]]):
            rule = "is required for a SINGLE certificate" if single else "is only for SINGLE"
            found.append(p(number, "L", row[at["L"]], rule))
        elif single and row[at["Y"]] == "ACTIVE":
            customer, po = shlex.quote(row[at["J"]]), shlex.quote(row[at["L"]])
            found.append(
                p(
                    number,
                    "K",
                    "SINGLE",
                    f"is not imported into the exemption database, where it would exempt every "
                    f"order: add it as a single-use certificate (taxbridge certificates add "
                    f"{customer} --single-use --po {po})",
                    warning=True,
                )
            )
        other = row[at["M"]] == "20"
        if other != bool(row[at["N"]]):
            rule = "is required when Business Type is 20" if other else "is only for type 20"
            found.append(p(number, "N", row[at["N"]], rule))
        reason = row[at["O"]]
        if (reason == "L") != bool(row[at["P"]]):
            rule = "is required when the reason is L" if reason == "L" else "is only for reason L"
            found.append(p(number, "P", row[at["P"]], rule))
        only = EXEMPT_REASONS.get(reason, ("", "", None))[2]
        if only and country and country != only:
            where = "the United States" if only == "US" else "Canada"
            found.append(p(number, "O", reason, f"applies in {where} only"))
        return found

    return (rules,)


def _ecms_date(text: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(text, "%m/%d/%Y").date() if text else None
    except ValueError:
        return None


class _CertIds(FileRule):
    """ECMS Cert IDs unique in the file and across earlier imports (the store's registry)."""

    def __init__(self, template: Template, known: Mapping[str, str], overwrite: bool):
        self.template = template
        self.known = known
        self.overwrite = overwrite
        self.seen: set[str] = set()

    def feed(self, number: int, row: Row) -> list[Problem]:
        cert_id = row[0]
        if not cert_id:
            return []
        found: list[Problem] = []
        if cert_id in self.seen:
            found.append(self.template.problem(number, "A", cert_id, "is used twice in this file"))
        self.seen.add(cert_id)
        owner = self.known.get(cert_id)
        if owner is not None and owner != ecms_key(row) and not self.overwrite:
            found.append(
                self.template.problem(
                    number,
                    "A",
                    cert_id,
                    f"was used by an earlier import ({owner}): reusing it "
                    "overwrites that certificate (allow it with overwrite)",
                )
            )
        return found


def ecms_key(row: Row) -> str:
    """What a Cert ID stands for: customer, issuing region and effective date."""
    effective = _ecms_date(row[letter_index("G")])
    day = effective.isoformat() if effective else row[letter_index("G")]
    return f"{row[letter_index('J')]}/{row[letter_index('D')]}/{day}"


def ecms_template(known: Mapping[str, str] | None = None, *, overwrite: bool = False) -> Template:
    """The ECMS template, checking Cert IDs against ``known`` (id -> what it stood for)."""
    registry = dict(known or {})
    base = Template("ECMS certificates", ECMS_COLUMNS, width=letter_index("AD") + 1)
    return attrs.evolve(
        base,
        row_rules=_ecms_rules(base),
        file_rules=lambda: (_CertIds(base, registry, overwrite),),
    )


ECMS = ecms_template()


def ecms_row(cert_id: int, exemption: Exemption, customer: CustomerRecord) -> list[str]:
    """The ECMS row of an exemption database entry, for ``customer``."""
    if customer.business_type is None:
        raise InvalidFieldError(
            "CustomerRecord", "business_type", None, f"is needed for ECMS ({customer.number})"
        )
    country = "CA" if exemption.region in BY_COUNTRY["CA"] else "US"
    reason = ENTITY_USE_TO_REASON.get(exemption.entity_use_code or "", "L")
    row = [""] * ECMS.width
    a = customer.address
    values = {
        "A": str(cert_id),
        "C": country,
        "D": exemption.region,
        "E": exemption.exemption_no or exemption.entity_use_code or "",
        "F": "TIN" if exemption.exemption_no else "",
        "G": exemption.effective.strftime("%m/%d/%Y"),
        "H": exemption.expiry.strftime("%m/%d/%Y") if exemption.expiry else "",
        "J": exemption.customer_code,
        "K": "BLANKET",
        "M": str(customer.business_type),
        "N": customer.business_type_desc if customer.business_type == 20 else "",
        "O": reason,
        "P": "exemption number on file in the ERP" if reason == "L" else "",
        "Q": f"{customer.name} {customer.name2}".strip()[:100],
        "R": a.line1,
        "S": a.line2,
        "T": a.line3,
        "U": a.city,
        "V": a.region,
        "W": a.postal_code,
        "X": a.country,
        "Y": "ACTIVE",
        "Z": "ACCEPTED",
    }
    for letter, value in values.items():
        row[letter_index(letter)] = value
    return row


def exemptions_of(row: Row) -> list[Exemption]:
    """The exemption database entries an ACTIVE ECMS row stands for: one for its issuing
    region, or one per province for a Canada-wide (``CA``/``CA``) certificate; none for a
    REVOKED or SINGLE one (an entry has no PO: it would exempt every order)."""
    if row[letter_index("Y")] != "ACTIVE" or row[letter_index("K")] == "SINGLE":
        return []
    letter = row[letter_index("O")]
    reason = EXEMPT_REASONS.get(letter)
    effective = _ecms_date(row[letter_index("G")])
    if effective is None:  # the template requires it: a row read without validation
        raise InvalidFieldError("ECMS", "EffDate", row[letter_index("G")], "is not mm/dd/yyyy")
    number = row[letter_index("E")]
    if not row[letter_index("F")] and reason is not None and number == reason[1]:
        number = ""  # an entry with only a reason: its code stood in for the required number
    country, region = row[letter_index("C")], row[letter_index("D")]
    regions = sorted(BY_COUNTRY["CA"]) if (country, region) == ("CA", "CA") else [region]
    return [
        Exemption(
            customer_code=row[letter_index("J")],
            region=each,
            effective=effective,
            exemption_no=number or None,
            entity_use_code=reason[1] if reason is not None and letter != "L" else None,
            expiry=_ecms_date(row[letter_index("H")]),
        )
        for each in regions
    ]
