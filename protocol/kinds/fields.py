"""Field checks shared by the body kinds: the strict side of every schema.

Rule 1: a check accepts only the canonical wire form of a value and returns it typed; it never repairs.
Repairs (trimming, case, sorting, date parsing) happen once, in `protocol.kinds.documents`, and their
output then goes through these same checks. So every body has exactly one encoding, and the friendly path
cannot accept what the wire path refuses.
Rule 2: checks know nothing of paths. They raise `FieldError(message, where)` with `where` the part below
the field ("[2].value"); `Schema.parse` adds "kind.field" and raises a plain `SchemaError`. The happy path
therefore builds no strings.
Rule 3: an empty string or empty list is never a value: the canonical form leaves such a field out.
Rule 4: every limit is a named constant, here or in the kind's module.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

from protocol import indicators
from protocol.codec import Value
from protocol.errors import SchemaError
from protocol.indicators import show
from protocol.kinds.codes import COUNTRY_CODES, country_hint

MAX_LABEL_LEN: Final = 200  # single-line text: titles, organisations, names, descriptions
MAX_TEXT_LEN: Final = 4000  # multi-line text: summaries, notes, commentary
MAX_IDENT_LEN: Final = 64  # vocabulary-like identifiers: metrics, categories, breakdown keys
MAX_LIST_LEN: Final = 256
MAX_DECIMAL_LEN: Final = 40  # characters of a decimal string, sign and point included
MIN_INT: Final = -(2**63)  # signed 64-bit, so every implementation can hold every integer field
MAX_INT: Final = 2**63 - 1
MAX_TIME_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z; times are Unix milliseconds, UTC

# Unicode Cc plus the line and paragraph separators, which break a line as surely as LF does.
_CONTROL_LINE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_TEXT: Final = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# Whole numbers are integers on the wire; a decimal string always has a fraction without trailing zeros.
_DECIMAL_RE: Final = re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]*[1-9]")
_HEX_ID_RE: Final = re.compile(r"[0-9a-f]{64}")
_ASCII_CONTROLS: Final = bytes(range(0x20)) + b"\x7f"

Check = Callable[[Value], Any]


class FieldError(SchemaError):
    """A value is wrong. Internal to protocol.kinds: entry points re-raise it as a plain SchemaError."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def under(self, step: str) -> FieldError:
        return FieldError(self.message, step + self.where)


_TYPE_NAMES: Final[Mapping[type, str]] = {
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "text",
    bytes: "bytes",
    list: "a list",
    tuple: "a list",
    dict: "a map",
    type(None): "null",
}


def wrong_type(expected: str, value: object) -> FieldError:
    got = _TYPE_NAMES.get(type(value), type(value).__name__)
    return FieldError(f"expected {expected}, got {got}")


class Schema:
    """The field table of one kind at one schema version, and the name rules of a record body."""

    __slots__ = ("checks", "kind", "known", "required")

    def __init__(self, kind: str, checks: Mapping[str, Check], required: Collection[str]) -> None:
        self.kind = kind
        self.checks = dict(checks)
        self.known = frozenset(checks)
        self.required = frozenset(required)
        assert self.required <= self.known

    def parse(self, fields: Mapping[str, Value], committed: frozenset[str]) -> dict[str, Any]:
        """Check names and values; return field name -> typed value, None for a redacted field."""
        names = fields.keys()
        if not (committed <= self.known and self.required <= committed and names <= committed):
            raise self._names_error(names, committed)
        values: dict[str, Any] = {}
        if len(committed) != len(names):
            values = dict.fromkeys(committed - names)
        name = ""
        try:
            for name, value in fields.items():
                values[name] = self.checks[name](value)
        except FieldError as exc:
            raise SchemaError(f"{self.kind}.{name}{exc.where}: {exc.message}") from None
        return values

    def unknown_error(self, names: Collection[object]) -> SchemaError | None:
        unknown = sorted(map(show, (name for name in names if name not in self.known)))
        if not unknown:
            return None
        plural = "s" if len(unknown) > 1 else ""
        return SchemaError(
            f"{self.kind}: unknown field{plural} {', '.join(unknown)};"
            f" known fields are {', '.join(sorted(self.known))}"
        )

    def _names_error(self, names: Collection[str], committed: frozenset[str]) -> SchemaError:
        unknown = self.unknown_error(names) or self.unknown_error(committed)
        if unknown is not None:
            return unknown
        uncommitted = sorted(set(names) - committed)
        if uncommitted:
            return SchemaError(f"{self.kind}.{uncommitted[0]}: disclosed but not committed to")
        missing = ", ".join(sorted(self.required - committed))
        return SchemaError(f"{self.kind}: missing required field{'s' if ',' in missing else ''} {missing}")


def text(max_len: int = MAX_LABEL_LEN, *, multiline: bool = False) -> Callable[[Value], str]:
    """Text of 1..max_len characters, trimmed, NFC, without control characters (but LF if multiline)."""
    controls = _CONTROL_TEXT if multiline else _CONTROL_LINE
    ascii_controls = _ASCII_CONTROLS.replace(b"\n", b"") if multiline else _ASCII_CONTROLS

    def check(value: Value) -> str:
        # Fast path for ASCII, most text: deleting control bytes is several times quicker than a regex
        # search, and ASCII is always NFC. Anything else takes the explaining path below.
        if type(value) is str and 0 < len(value) <= max_len and value.isascii():
            raw = value.encode("ascii")
            # Bytes at or below 32 that survive the deletion are blanks (space, or LF if multiline).
            if len(raw.translate(None, ascii_controls)) == len(raw) and raw[0] > 32 and raw[-1] > 32:
                return value
        return slow_check(value)

    def slow_check(value: Value) -> str:
        if type(value) is not str:
            raise wrong_type("text", value)
        if not value:
            raise FieldError("empty text; leave the field out instead")
        if len(value) > max_len:
            raise FieldError(f"{len(value)} characters is over the limit of {max_len}")
        if controls.search(value):
            what = "a line break" if "\n" in value and not multiline else "a control character"
            raise FieldError(f"{show(value)} contains {what}")
        # Trimmed so that " " cannot pass for a value, and "x" and "x " are not two encodings of one.
        if value[0].isspace() or value[-1].isspace():
            raise FieldError(f"{show(value)} has leading or trailing blanks")
        if not value.isascii() and not unicodedata.is_normalized("NFC", value):
            raise FieldError(f"{show(value)} is not in Unicode NFC form")
        return value

    return check


def pattern(regex: re.Pattern[str], what: str, max_len: int = MAX_IDENT_LEN) -> Callable[[Value], str]:
    """Text matching `regex` in full (the regex should be ASCII-only), of at most max_len characters."""

    def check(value: Value) -> str:
        if type(value) is not str:
            raise wrong_type("text", value)
        if len(value) > max_len or not regex.fullmatch(value):
            raise FieldError(f"{show(value)} is not {what}")
        return value

    return check


def choice(vocabulary: frozenset[str]) -> Callable[[Value], str]:
    """One word of a closed vocabulary."""
    listed = ", ".join(sorted(vocabulary))

    def check(value: Value) -> str:
        if type(value) is not str:
            raise wrong_type("text", value)
        if value in vocabulary:
            return value
        raise FieldError(f"{show(value)} is not one of {listed}")

    return check


def sorted_set(
    item: Check, max_items: int = MAX_LIST_LEN, *, vocabulary: frozenset[str] | None = None
) -> Callable[[Value], tuple[Any, ...]]:
    """A list whose order carries no meaning: canonical form is sorted and without duplicates.

    With `vocabulary` (all the values `item` accepts), canonical lists are accepted without calling
    `item` on each element.
    """
    check_list = ordered(item, max_items, unique=False)

    def check(value: Value) -> tuple[Any, ...]:
        if vocabulary is not None and type(value) is list and 0 < len(value) <= max_items:
            try:
                members = set(value)
            except TypeError:  # an unhashable element: let the slow path name it
                members = set()
            if members <= vocabulary and len(members) == len(value) and sorted(members) == value:
                return tuple(value)
        return slow_check(value)

    def slow_check(value: Value) -> tuple[Any, ...]:
        items = check_list(value)
        for index in range(1, len(items)):
            if not items[index - 1] < items[index]:
                problem = "a duplicate" if items[index - 1] == items[index] else "out of order"
                raise FieldError(f"{show(items[index])} is {problem} (canonical form is sorted, unique)")
        return items

    return check


def ordered(
    item: Check,
    max_items: int = MAX_LIST_LEN,
    *,
    unique: bool = True,
    key: Callable[[Any], object] | None = None,
) -> Callable[[Value], tuple[Any, ...]]:
    """A list whose order is the author's (first = preferred); with `unique`, no two items alike.

    `key` picks what must be unique among the checked items; by default the whole item. It should be
    cheap (operator.attrgetter): a dataclass's own __hash__ is Python code.
    """

    def check(value: Value) -> tuple[Any, ...]:
        if type(value) is not list:
            raise wrong_type("a list", value)
        if not value:
            raise FieldError("empty list; leave the field out instead")
        if len(value) > max_items:
            raise FieldError(f"{len(value)} items is over the limit of {max_items}")
        checked = []
        for index, element in enumerate(value):
            try:
                checked.append(item(element))
            except FieldError as exc:
                raise exc.under(f"[{index}]") from None
        if unique and len(checked) > 1:
            seen = set(checked) if key is None else set(map(key, checked))
            if len(seen) != len(checked):
                raise FieldError(f"duplicate item {show(_first_duplicate(checked, key))}")
        return tuple(checked)

    return check


def _first_duplicate(items: list[Any], key: Callable[[Any], object] | None) -> object:
    seen: set[object] = set()
    for element in items:
        marker = element if key is None else key(element)
        if marker in seen:
            return marker
        seen.add(marker)
    return None


def integer(low: int = MIN_INT, high: int = MAX_INT) -> Callable[[Value], int]:
    def check(value: Value) -> int:
        if type(value) is not int:
            raise wrong_type("an integer", value)
        if not low <= value <= high:
            raise FieldError(f"{value} is outside {low}..{high}")
        return value

    return check


time_ms: Final = integer(0, MAX_TIME_MS)


def number(value: Value) -> int | str:
    """An integer, or a decimal as a string ("12.5"), never a float: floats have no exact decimal value."""
    if type(value) is int:
        if not MIN_INT <= value <= MAX_INT:
            raise FieldError(f"{value} is outside {MIN_INT}..{MAX_INT}")
        return value
    if type(value) is not str:
        raise wrong_type("an integer or a decimal string", value)
    if len(value) > MAX_DECIMAL_LEN or not _DECIMAL_RE.fullmatch(value):
        raise FieldError(
            f"{show(value)} is not a canonical decimal (like '12.5': no leading or trailing zeros,"
            f" at most {MAX_DECIMAL_LEN} characters; whole numbers are integers)"
        )
    return value


def country(value: Value) -> str:
    """An officially assigned ISO 3166-1 alpha-2 code, upper case."""
    if type(value) is not str:
        raise wrong_type("a country code", value)
    if value in COUNTRY_CODES:
        return value
    upper = value.upper()
    if upper in COUNTRY_CODES:
        raise FieldError(f"{show(value)} must be upper case: {upper!r}")
    raise FieldError(f"{show(value)} is not an ISO 3166-1 alpha-2 country code{country_hint(upper)}")


def indicator(term_type: str) -> Callable[[Value], str]:
    """An indicator already in the form `protocol.indicators.normalise` gives it."""

    is_canonical = indicators.canonical_check(term_type)

    def check(value: Value) -> str:
        if type(value) is str and is_canonical(value):
            return value
        if type(value) is not str:
            raise wrong_type("text", value)
        canonical = canonical_indicator(term_type, value)
        raise FieldError(f"{show(value)} is not in canonical form (that is {show(canonical)})")

    return check


def canonical_indicator(term_type: str, value: str) -> str:
    """`indicators.normalise`, raising FieldError so that callers get a path."""
    try:
        return indicators.normalise(term_type, value)
    except FieldError:
        raise
    except SchemaError as exc:
        raise FieldError(str(exc)) from None


record_id: Final = pattern(_HEX_ID_RE, "a record id (64 lowercase hex digits)")

RECORD_ID_BYTES: Final = 32


def record_ref(value: Value) -> bytes:
    """A record id as its 32 raw bytes: the `supersedes` link (protocol/SPEC.md §5.1)."""
    if type(value) is not bytes:
        raise wrong_type("bytes (a 32-byte record id)", value)
    if len(value) != RECORD_ID_BYTES:
        raise FieldError(f"{len(value)} bytes; a record id is exactly {RECORD_ID_BYTES}")
    return value


def exact_map(value: Value, keys: frozenset[str]) -> dict[str, Value]:
    """A nested map with exactly `keys`: nested maps are small and have no optional members."""
    if type(value) is not dict:
        raise wrong_type("a map", value)
    if value.keys() != keys:
        unknown = sorted(map(show, value.keys() - keys))
        if unknown:
            raise FieldError(f"unknown key {', '.join(unknown)}; keys are {', '.join(sorted(keys))}")
        raise FieldError(f"missing key {', '.join(sorted(keys - value.keys()))}")
    return value


def record(build: Callable[..., Any], members: Mapping[str, Check]) -> Check:
    """A nested map with exactly the keys of `members`, checked and passed to `build` in that order."""
    keys = frozenset(members)
    pairs = tuple(members.items())

    def check(value: Value) -> Any:
        exact_map(value, keys)
        arguments = []
        for key, member_check in pairs:
            try:
                arguments.append(member_check(value[key]))
            except FieldError as exc:
                raise exc.under(f".{key}") from None
        return build(*arguments)

    if len(pairs) != 2:
        return check
    # Every nested map in schema 1 has two members; spelling that out halves the cost of a canonical one.
    (first_key, first_check), (second_key, second_check) = pairs

    def check_pair(value: Value) -> Any:
        if type(value) is dict and len(value) == 2:
            try:
                return build(first_check(value[first_key]), second_check(value[second_key]))
            except (KeyError, FieldError):
                pass  # the general check says which key and why
        return check(value)

    return check_pair
