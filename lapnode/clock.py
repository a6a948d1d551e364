"""Wall-clock time for the node, and the operator's ways of writing a time.

Rule 1: the protocol layer never reads the clock (HOUSE-STYLE); every "now" in lapnode comes from
`now_ms()`, so a test can pass a fixed time to the functions that take `now`.
Rule 2: all times are integer milliseconds since the Unix epoch, UTC. Text shown to operators is
ISO-8601 UTC with a trailing "Z"; text read from operators is a date (`2025-03-01`, the start of that day,
UTC), a date-time with a zone (`2025-03-01T12:00Z`, `...+02:00`) or a duration (`90d`, `12h`).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime
from typing import Final

from lapnode.errors import InputError

_DURATION = re.compile(r"(\d{1,6})\s*([smhdw])", re.IGNORECASE)
_UNIT_MS: Final = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_EXAMPLES: Final = "e.g. 2025-03-01, 2025-03-01T12:00Z, or a duration such as 90d, 12h, 2w"


def now_ms() -> int:
    """The current time in integer milliseconds since the epoch (UTC)."""
    return time.time_ns() // 1_000_000


def format_ms(ms: int) -> str:
    """ISO-8601 UTC text for a millisecond time, e.g. `2025-03-01T12:00:00.250Z` (milliseconds if any)."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    if ms % 1000:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration_ms(text: str) -> int | None:
    """`90d` → milliseconds, or None if `text` is not a duration. Units: s, m, h, d, w."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        return None
    return int(match.group(1)) * _UNIT_MS[match.group(2).lower()]


def parse_instant_ms(text: str) -> int:
    """An ISO date or date-time → milliseconds. A bare date is 00:00 UTC; a date-time needs a zone."""
    stripped = text.strip()
    try:
        if len(stripped) == 10:
            day = date.fromisoformat(stripped)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise InputError(f"{text!r} is not a date or time ({_EXAMPLES})") from None
    if moment.tzinfo is None:
        # Same rule as record documents (protocol/kinds/documents.py): an offset cannot be guessed.
        raise InputError(f"{text!r} has no time zone; add Z for UTC or an offset, e.g. {stripped}Z")
    return int(moment.timestamp() * 1000)


def parse_future_ms(text: str, *, now: int, what: str) -> int:
    """A time that must lie ahead: an ISO date/date-time, or a duration counted from `now`."""
    duration = parse_duration_ms(text)
    moment = now + duration if duration is not None else parse_instant_ms(text)
    if moment <= now:
        raise InputError(f"{what} {text!r} is in the past ({format_ms(moment)}); give a future time")
    return moment


def parse_past_ms(text: str, *, now: int) -> int:
    """A point in time for a query bound: an ISO date/date-time, or a duration meaning "that long ago"."""
    duration = parse_duration_ms(text)
    return now - duration if duration is not None else parse_instant_ms(text)
