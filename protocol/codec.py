"""The canonical msgpack profile (protocol/SPEC.md §2).

Rule 1: one value has exactly one encoding. Maps have string keys sorted by their UTF-8 bytes, integers
use the smallest msgpack form, there are no floats, no extension types and no nil except where a schema
allows it; text is a msgpack str (valid UTF-8), bytes are a msgpack bin.
Rule 2: `decode` accepts only bytes that `encode` would produce for the decoded value. Key order and key
types are checked as maps are built, types and depth by one walk, and integer and length widths by
re-encoding and comparing.
Rule 3: every limit is explicit: total size, nesting depth, container length.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

from protocol.errors import Malformed, NonCanonical

MAX_DEPTH: Final = 16
MAX_CONTAINER_LEN: Final = 4096
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**64 - 1

# A decoded canonical value. Kept as Any for the callers; `_check_value` is what guarantees the shape.
Value = Any


def _refuse_ext(code: int, data: bytes) -> object:
    raise Malformed(f"msgpack extension type {code} is not allowed")


def _sort_key(key: str) -> bytes:
    return key.encode("utf-8")


def _check_container(value: dict[Any, Any] | list[Any] | tuple[Any, ...], depth: int) -> None:
    # `depth` counts the containers around `value`, so the 16th nested container is at depth 15 (§2 rule 5).
    if depth >= MAX_DEPTH:
        raise Malformed(f"nesting deeper than {MAX_DEPTH} containers")
    if len(value) > MAX_CONTAINER_LEN:
        what = "map" if isinstance(value, dict) else "array"
        raise Malformed(f"{what} longer than {MAX_CONTAINER_LEN} entries")


def _canonicalise(value: Value, depth: int = 0) -> Value:
    """Return `value` with every map rebuilt in canonical key order, refusing what the profile forbids."""
    if isinstance(value, dict | list | tuple):
        _check_container(value, depth)
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise Malformed("map keys must be strings")
        return {k: _canonicalise(value[k], depth + 1) for k in sorted(value, key=_sort_key)}
    if isinstance(value, list | tuple):
        return [_canonicalise(item, depth + 1) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | bytes):
        return value
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise Malformed("integer out of range")
        return value
    raise Malformed(f"type {type(value).__name__} is not in the canonical profile")


def encode(value: Value) -> bytes:
    """Encode a value canonically. Raises Malformed for values outside the profile (floats, sets...)."""
    try:
        packed: bytes = msgpack.packb(_canonicalise(value), use_bin_type=True, strict_types=False)
    except UnicodeEncodeError as exc:
        # A str holding a lone surrogate has no UTF-8 form (§2 rule 1).
        raise Malformed("text is not valid Unicode") from exc
    return packed


_SCALARS: Final = frozenset({str, bytes, int, bool, type(None)})


def _check_value(value: Value, depth: int = 0) -> None:
    """Refuse types outside the profile and nesting past MAX_DEPTH in a decoded value.

    Hot path (every record, every frame): dispatch on exact types, since msgpack builds exact
    dict/list/str/bytes/int/bool/None/float objects, and never recurse into a scalar.
    """
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is dict:
        items = value.values()
    elif kind is list:
        items = value
    elif kind is float:
        raise Malformed("floats are not allowed")
    else:
        raise Malformed(f"type {kind.__name__} is not in the canonical profile")
    if depth >= MAX_DEPTH:
        raise Malformed(f"nesting deeper than {MAX_DEPTH} containers")
    for item in items:
        if type(item) not in _SCALARS:
            _check_value(item, depth + 1)


def _checked_map(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """Build a decoded map, refusing non-text keys and keys out of canonical order.

    Python orders str by code point, and UTF-8 preserves code point order, so comparing the decoded
    keys is comparing their UTF-8 bytes (§2 rule 4). Strictly increasing also rules out duplicates.
    """
    previous = None
    for key, _ in pairs:
        if type(key) is not str:
            raise Malformed("map keys must be strings")
        if previous is not None and key <= previous:
            raise NonCanonical("map keys are duplicated or not in canonical order")
        previous = key
    return dict(pairs)


def encode_decoded(value: Value) -> bytes:
    """Encode a value that `decode` returned (or a list of such values), skipping re-canonicalisation.

    Only for values built from decoded parts: their maps are already in canonical order.
    """
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def decode(raw: bytes, *, max_size: int) -> Value:
    """Decode canonical bytes into a value, or raise Malformed / NonCanonical.

    The caller states the size limit because it differs per context (a record, a frame).
    """
    if len(raw) > max_size:
        raise Malformed(f"{len(raw)} bytes is over the limit of {max_size}")
    try:
        value = msgpack.unpackb(
            raw,
            raw=False,
            use_list=True,
            strict_map_key=False,
            object_pairs_hook=_checked_map,
            ext_hook=_refuse_ext,
            max_array_len=MAX_CONTAINER_LEN,
            max_map_len=MAX_CONTAINER_LEN,
        )
    except (NonCanonical, Malformed):
        raise
    except msgpack.ExtraData as exc:
        raise Malformed("trailing bytes after the value") from exc
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        # UnicodeDecodeError is a ValueError: a str that is not UTF-8 lands here too.
        raise Malformed(f"not valid msgpack: {type(exc).__name__}") from exc
    _check_value(value)
    # Maps are known to be in canonical order now, so packing them as they are is the canonical encoding.
    if encode_decoded(value) != raw:
        raise NonCanonical("bytes are not the canonical encoding of their value")
    return value
