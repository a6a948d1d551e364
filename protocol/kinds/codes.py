"""Code tables the body schemas check against: ISO 3166-1 alpha-2 countries and ISO 4217 minor units.

Rule 1: data only, no logic beyond lookups. A table changes only with the standard, and a change is a
schema change: a code added here is accepted at once, a code removed would make old records unparsable,
so codes are never removed (withdrawn ones get a hint instead).
Rule 2: the country list is the 249 officially assigned ISO 3166-1 alpha-2 codes; exceptionally reserved
and user-assigned codes ("UK", "EL", "EU", "XK") are refused, with a hint where a member is likely to
type one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# One string, split: 249 quoted literals would be one per line after formatting, and unreadable.
COUNTRY_CODES: Final = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV
    BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES
    ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE
    IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU
    NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM
    SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE
    VG VI VN VU WF WS YE YT ZA ZM ZW
    """.split()  # noqa: SIM905
)

# Codes members will plausibly type, and what to say instead of a bare "unknown".
COUNTRY_HINTS: Final[Mapping[str, str]] = {
    "UK": "the United Kingdom is 'GB'",
    "EL": "Greece is 'GR' (EL is the EU's own abbreviation)",
    "EU": "the EU is not a country; list the member states",
    "XK": "XK (Kosovo) is user-assigned, not an official ISO 3166-1 code",
    "AN": "the Netherlands Antilles were split in 2010 into 'BQ', 'CW' and 'SX'",
}

# ISO 4217 minor units for the active currencies that do not have two; every other code is taken to have
# two. Only documents use this (to turn "1250.50" into minor units); the wire carries minor units, so a
# gap here misreads an operator's amount but never a received record.
CURRENCY_MINOR_UNITS: Final[Mapping[str, int]] = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0),  # noqa: SIM905
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),  # noqa: SIM905
    "CLF": 4,
    "UYW": 4,
}
DEFAULT_MINOR_UNITS: Final = 2


def country_hint(code: str) -> str:
    """A short suffix for an error about `code`, or "" when there is nothing useful to add."""
    hint = COUNTRY_HINTS.get(code)
    return f"; {hint}" if hint else ""
