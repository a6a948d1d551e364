"""Operator documents (parsed JSON or TOML) to canonical wire fields, and wire values back for display.

Rule 1: this is the only place where friendly input is repaired. Its output always goes on through the
kind's strict parser (see `protocol.kinds.body_from_document`), so no document yields a body that a peer
would refuse.
Rule 2: the conventions, the same for every kind:
- Times are integer milliseconds since 1970-01-01T00:00Z on the wire. A document gives an ISO-8601 date
  ("2026-11-01"), a datetime with an explicit offset ("2026-11-01T10:00:00Z", "...+02:00"), a TOML date
  or offset datetime, or the integer milliseconds. A date means 00:00 UTC that day, except as the end of
  a period: periods are half-open on the wire, and "2026-01-01 to 2026-01-31" means all of January, so
  an end date means the midnight after it. A datetime without an offset is refused (the offset cannot be
  guessed); digits below the millisecond are dropped.
- Numbers are integers, or decimals written as strings ("12.5"). A float anywhere is refused: a binary
  fraction is not the decimal the author read, and floats have no canonical msgpack form.
- Money is given in major units, an integer or a decimal string ("1250.50"), and carried in integer minor
  units of its ISO 4217 currency ("EUR 1250.50" -> 125050).
- null, "", [] and {} mean "not given" and the field is dropped: form tools emit them, and the wire has one
  way to say "not given", which is to leave the field out. A required field still has to be given.
- A record id (`supersedes`) is written as 64 hex digits and carried as its 32 raw bytes.
- Text is trimmed, put in NFC, CR LF made LF; vocabulary words are lower-cased and codes upper-cased;
  lists whose order means nothing are sorted and de-duplicated; indicators are normalised.
Rule 3: display is the inverse: a time at 00:00 UTC shows as a date, others as "YYYY-MM-DDTHH:MM:SSZ"
(with ".mmm" when there are milliseconds), a period end at a midnight as the inclusive date before it,
money as a decimal string. Feeding a displayed document back in gives the same wire fields.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from protocol.codec import Value
from protocol.errors import SchemaError
from protocol.indicators import show
from protocol.kinds import fields
from protocol.kinds.codes import CURRENCY_MINOR_UNITS, DEFAULT_MINOR_UNITS
from protocol.kinds.fields import FieldError, Schema, wrong_type

DAY_MS: Final = 86_400_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME_RE: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_DECIMAL_IN: Final = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")
_AMOUNT_IN: Final = re.compile(r"([0-9]+)(?:\.([0-9]+))?")

Convert = Callable[[object], Value]


def convert(schema: Schema, converters: Mapping[str, Convert], document: object) -> dict[str, Value]:
    """Turn a document into wire fields with the kind's converters; not yet checked by the parser."""
    if not isinstance(document, Mapping):
        raise SchemaError(f"{schema.kind}: expected a map of fields, got {type(document).__name__}")
    unknown = schema.unknown_error(document.keys())
    if unknown is not None:
        raise unknown
    result: dict[str, Value] = {}
    for name, raw in document.items():
        try:
            _refuse_floats(raw)
            value = None if _blank(raw) else converters[name](raw)
        except FieldError as exc:
            raise SchemaError(f"{schema.kind}.{name}{exc.where}: {exc.message}") from None
        if value is not None:
            result[name] = value
    return result


def _blank(value: object) -> bool:
    return value is None or value == [] or value == {} or (isinstance(value, str) and not value.strip())


def _refuse_floats(value: object) -> None:
    if isinstance(value, float):
        raise FieldError(f'{value!r} is a float; write an integer, or a decimal as a string like "12.5"')
    if isinstance(value, Mapping):
        for key, item in value.items():
            try:
                _refuse_floats(item)
            except FieldError as exc:
                raise exc.under(f".{key}") from None
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            try:
                _refuse_floats(item)
            except FieldError as exc:
                raise exc.under(f"[{index}]") from None


def text(value: object) -> str | None:
    if not isinstance(value, str):
        raise wrong_type("text", value)
    cleaned = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n").strip())
    return cleaned or None


def word(value: object) -> str:
    """A vocabulary word: case and surrounding blanks are not significant."""
    if not isinstance(value, str):
        raise wrong_type("text", value)
    return value.strip().lower()


def code(value: object) -> str:
    """A country or currency code: upper case."""
    if not isinstance(value, str):
        raise wrong_type("a code", value)
    return value.strip().upper()


def each(item: Convert) -> Callable[[object], list[Value]]:
    def convert_list(value: object) -> list[Value]:
        if not isinstance(value, list | tuple):
            raise wrong_type("a list", value)
        result = []
        for index, element in enumerate(value):
            try:
                result.append(item(element))
            except FieldError as exc:
                raise exc.under(f"[{index}]") from None
        return result

    return convert_list


def set_of(item: Convert) -> Callable[[object], list[Value]]:
    """A list whose order means nothing: sorted, without duplicates."""
    convert_list = each(item)
    return lambda value: sorted(set(convert_list(value)))


def indicator(term_type: str) -> Convert:
    def convert_indicator(value: object) -> str:
        if not isinstance(value, str):
            raise wrong_type("text", value)
        return fields.canonical_indicator(term_type, value)

    return convert_indicator


def record_ref(value: object) -> bytes:
    """A record id written as 64 hex digits (as `lapnode show` prints it) -> its 32 raw bytes."""
    if not isinstance(value, str):
        raise wrong_type("a record id (64 hex digits)", value)
    cleaned = value.strip().lower()
    if len(cleaned) != 2 * fields.RECORD_ID_BYTES or not all(c in "0123456789abcdef" for c in cleaned):
        raise FieldError(f"{show(value)} is not a record id (64 hex digits)")
    return bytes.fromhex(cleaned)


def same(value: object) -> Value:
    """No repair: integers, and values whose only check is the strict one."""
    return value


def table(converters: Mapping[str, Convert]) -> Callable[[object], dict[str, Value]]:
    """A nested map (a TOML inline table, a JSON object); missing keys are left for the parser."""

    def convert_table(value: object) -> dict[str, Value]:
        if not isinstance(value, Mapping):
            raise wrong_type("a map", value)
        result: dict[str, Value] = {}
        for key, item in value.items():
            if key not in converters:
                raise FieldError(f"unknown key {show(key)}; keys are {', '.join(sorted(converters))}")
            try:
                result[key] = converters[key](item)
            except FieldError as exc:
                raise exc.under(f".{key}") from None
        return result

    return convert_table


def time(value: object, *, end: bool = False) -> int:
    """A document time as Unix milliseconds; `end` makes a bare date mean the midnight after it."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        stripped = value.strip()
        try:
            if _DATE_RE.fullmatch(stripped):
                value = date.fromisoformat(stripped)
            elif _DATETIME_RE.fullmatch(stripped):
                value = datetime.fromisoformat(stripped.upper())
            else:
                raise ValueError
        except ValueError:
            raise FieldError(
                f"{show(value)} is not an ISO-8601 date or a datetime with an offset,"
                " like '2026-11-01' or '2026-11-01T10:00:00Z'"
            ) from None
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise FieldError(f"{value.isoformat()!r} has no UTC offset; add 'Z' or one like '+01:00'")
        try:
            return (value - _EPOCH) // _MS
        except OverflowError:
            raise FieldError(f"{value.isoformat()!r} is out of range") from None
    if isinstance(value, date):
        days = (value - _EPOCH.date()).days + (1 if end else 0)
        return days * DAY_MS
    raise wrong_type("a date or datetime", value)


def period_end(value: object) -> int:
    return time(value, end=True)


def decimal(value: object) -> int | str:
    """An integer or a decimal string, in the wire's canonical form ("012.50" -> "12.5", "3.0" -> 3)."""
    if type(value) is int:
        return value
    if not isinstance(value, str):
        raise wrong_type("an integer or a decimal string", value)
    match = _DECIMAL_IN.fullmatch(value.strip())
    if match is None or len(value) > fields.MAX_DECIMAL_LEN:
        raise FieldError(f"{show(value)} is not an integer or a decimal like '12.5'")
    sign, whole, fraction = match[1], match[2].lstrip("0") or "0", (match[3] or "").rstrip("0")
    if not fraction:
        return int(sign + whole)
    return f"{sign}{whole}.{fraction}"


def amount(value: object, currency: str) -> int:
    """An amount in major units of `currency` as integer minor units."""
    places = CURRENCY_MINOR_UNITS.get(currency, DEFAULT_MINOR_UNITS)
    if type(value) is int:
        if value < 0:
            raise FieldError(f"{value} is negative")
        scale: int = 10**places
        return value * scale
    if not isinstance(value, str):
        raise wrong_type("an integer or a decimal string", value)
    match = _AMOUNT_IN.fullmatch(value.strip())
    if match is None or len(value) > fields.MAX_DECIMAL_LEN:
        raise FieldError(f"{show(value)} is not an amount like '1250' or '1250.50'")
    fraction = match[2] or ""
    if fraction[places:].strip("0"):
        raise FieldError(f"{show(value)} has more decimals than {currency}'s {places}")
    return int(match[1] + fraction[:places].ljust(places, "0"))


def render_time(ms: int, *, end: bool = False) -> str:
    if ms % DAY_MS == 0:
        return (_EPOCH + (ms - (DAY_MS if end else 0)) * _MS).date().isoformat()
    moment = _EPOCH + ms * _MS
    spec = "%Y-%m-%dT%H:%M:%S" + (f".{ms % 1000:03d}" if ms % 1000 else "")
    return moment.strftime(spec) + "Z"


def render_amount(minor: int, currency: str) -> str:
    places = CURRENCY_MINOR_UNITS.get(currency, DEFAULT_MINOR_UNITS)
    if places == 0:
        return str(minor)
    whole, part = divmod(minor, 10**places)
    return f"{whole}.{part:0{places}d}"


def render(value: Any) -> object:
    """Default display form: tuples become lists, nested bodies become maps, the rest stays."""
    if isinstance(value, tuple):
        return [render(item) for item in value]
    if hasattr(value, "__dataclass_fields__"):
        return {name: render(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, bytes):
        return value.hex()  # a record id (`supersedes`), shown as `lapnode show` takes it
    return value
