"""The regions an address may name: US states, DC, territories and military post offices,
and Canadian provinces and territories, by their postal abbreviations."""

from __future__ import annotations

from collections.abc import Mapping

US_STATES: Mapping[str, str] = {
    "AL": "ALABAMA", "AK": "ALASKA", "AZ": "ARIZONA", "AR": "ARKANSAS", "CA": "CALIFORNIA",
    "CO": "COLORADO", "CT": "CONNECTICUT", "DE": "DELAWARE", "DC": "DISTRICT OF COLUMBIA",
    "FL": "FLORIDA", "GA": "GEORGIA", "HI": "HAWAII", "ID": "IDAHO", "IL": "ILLINOIS",
    "IN": "INDIANA", "IA": "IOWA", "KS": "KANSAS", "KY": "KENTUCKY", "LA": "LOUISIANA",
    "ME": "MAINE", "MD": "MARYLAND", "MA": "MASSACHUSETTS", "MI": "MICHIGAN", "MN": "MINNESOTA",
    "MS": "MISSISSIPPI", "MO": "MISSOURI", "MT": "MONTANA", "NE": "NEBRASKA", "NV": "NEVADA",
    "NH": "NEW HAMPSHIRE", "NJ": "NEW JERSEY", "NM": "NEW MEXICO", "NY": "NEW YORK",
    "NC": "NORTH CAROLINA", "ND": "NORTH DAKOTA", "OH": "OHIO", "OK": "OKLAHOMA", "OR": "OREGON",
    "PA": "PENNSYLVANIA", "RI": "RHODE ISLAND", "SC": "SOUTH CAROLINA", "SD": "SOUTH DAKOTA",
    "TN": "TENNESSEE", "TX": "TEXAS", "UT": "UTAH", "VT": "VERMONT", "VA": "VIRGINIA",
    "WA": "WASHINGTON", "WV": "WEST VIRGINIA", "WI": "WISCONSIN", "WY": "WYOMING",
    "PR": "PUERTO RICO",
}  # fmt: skip
"""US states, DC and Puerto Rico: the regions a company may have nexus in."""

US_TERRITORIES: Mapping[str, str] = {
    "AS": "AMERICAN SAMOA", "GU": "GUAM", "MP": "NORTHERN MARIANA ISLANDS",
    "VI": "U.S. VIRGIN ISLANDS", "AA": "ARMED FORCES AMERICAS", "AE": "ARMED FORCES EUROPE",
    "AP": "ARMED FORCES PACIFIC",
}  # fmt: skip
"""Other US postal regions an address may name: territories and military post offices."""

CANADIAN_PROVINCES: Mapping[str, str] = {
    "AB": "ALBERTA", "BC": "BRITISH COLUMBIA", "MB": "MANITOBA", "NB": "NEW BRUNSWICK",
    "NL": "NEWFOUNDLAND AND LABRADOR", "NS": "NOVA SCOTIA", "NT": "NORTHWEST TERRITORIES",
    "NU": "NUNAVUT", "ON": "ONTARIO", "PE": "PRINCE EDWARD ISLAND", "QC": "QUEBEC",
    "SK": "SASKATCHEWAN", "YT": "YUKON",
}  # fmt: skip
"""Canadian provinces and territories."""

BY_COUNTRY: Mapping[str, frozenset[str]] = {
    "US": frozenset(US_STATES) | frozenset(US_TERRITORIES),
    "CA": frozenset(CANADIAN_PROVINCES),
}
"""The regions of the countries whose regions are checked; others only by their shape."""
