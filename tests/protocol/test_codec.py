"""The canonical msgpack profile (protocol/SPEC.md §2): exact bytes for every form, and every way to break it.

Each table row is one rule. The byte strings are written out by hand so that a table row, not the
implementation, says what the canonical form is.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import codec
from protocol.codec import INT_MAX, INT_MIN, MAX_CONTAINER_LEN, MAX_DEPTH
from protocol.errors import Malformed, NonCanonical, ProtocolError

LIMIT = 1 << 20  # a max_size comfortably above every table entry


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def strict_equal(a: Any, b: Any) -> bool:
    """Equality that tells True from 1 and a list from a tuple (== alone does not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def sorted_maps(value: Any) -> Any:
    """`value` with every map in canonical key order: what decode(encode(value)) must return."""
    if isinstance(value, dict):
        return {k: sorted_maps(value[k]) for k in sorted(value, key=lambda k: k.encode())}
    if isinstance(value, list):
        return [sorted_maps(v) for v in value]
    return value


def nested(levels: int, inner: Any) -> Any:
    value = inner
    for _ in range(levels):
        value = [value]
    return value


def keys(n: int) -> dict[str, Any]:
    """A map of `n` entries whose keys already sort in canonical order."""
    return {f"k{i:05d}": i % 2 == 0 for i in range(n)}


def keys_bytes(n: int) -> bytes:
    """The entries of `keys(n)` as bytes, written out by hand."""
    return b"".join(b"\xa6k%05d" % i + (b"\xc3" if i % 2 == 0 else b"\xc2") for i in range(n))


# --- round trips: (label, value, canonical bytes) -------------------------------------------------------

SCALARS: list[tuple[str, Any, bytes]] = [
    ("nil", None, h("c0")),
    ("false", False, h("c2")),
    ("true", True, h("c3")),
    ("fixint 0", 0, h("00")),
    ("fixint 127", 127, h("7f")),
    ("uint8 128", 128, h("cc 80")),
    ("uint8 255", 255, h("cc ff")),
    ("uint16 256", 256, h("cd 0100")),
    ("uint16 max", 0xFFFF, h("cd ffff")),
    ("uint32 min", 0x10000, h("ce 00010000")),
    ("uint32 max", 0xFFFFFFFF, h("ce ffffffff")),
    ("uint64 min", 0x100000000, h("cf 0000000100000000")),
    ("uint64 max", INT_MAX, h("cf ffffffffffffffff")),
    ("negative fixint -1", -1, h("ff")),
    ("negative fixint -32", -32, h("e0")),
    ("int8 -33", -33, h("d0 df")),
    ("int8 min", -128, h("d0 80")),
    ("int16 -129", -129, h("d1 ff7f")),
    ("int16 min", -(2**15), h("d1 8000")),
    ("int32 -32769", -(2**15) - 1, h("d2 ffff7fff")),
    ("int32 min", -(2**31), h("d2 80000000")),
    ("int64 -2^31-1", -(2**31) - 1, h("d3 ffffffff7fffffff")),
    ("int64 min", INT_MIN, h("d3 8000000000000000")),
    ("fixstr empty", "", h("a0")),
    ("fixstr 31", "x" * 31, h("bf") + b"x" * 31),
    ("str8 32", "x" * 32, h("d9 20") + b"x" * 32),
    ("str8 255", "x" * 255, h("d9 ff") + b"x" * 255),
    ("str16 256", "x" * 256, h("da 0100") + b"x" * 256),
    ("str16 max", "x" * 0xFFFF, h("da ffff") + b"x" * 0xFFFF),
    ("str32 min", "x" * 0x10000, h("db 00010000") + b"x" * 0x10000),
    ("str length counts UTF-8 bytes", "é" * 16, h("d9 20") + "é".encode() * 16),
    ("str 4-byte UTF-8", "\U0001f600", h("a4 f09f9880")),
    ("str NUL", "\x00", h("a1 00")),
    ("bin8 empty", b"", h("c4 00")),
    ("bin8 255", b"\xab" * 255, h("c4 ff") + b"\xab" * 255),
    ("bin16 256", b"\xab" * 256, h("c5 0100") + b"\xab" * 256),
    ("bin16 max", b"\xab" * 0xFFFF, h("c5 ffff") + b"\xab" * 0xFFFF),
    ("bin32 min", b"\xab" * 0x10000, h("c6 00010000") + b"\xab" * 0x10000),
]

CONTAINERS: list[tuple[str, Any, bytes]] = [
    ("fixarray empty", [], h("90")),
    ("fixarray 15", [0] * 15, h("9f") + b"\x00" * 15),
    ("array16 16", [0] * 16, h("dc 0010") + b"\x00" * 16),
    ("array16 at the limit", [None] * MAX_CONTAINER_LEN, h("dc 1000") + b"\xc0" * MAX_CONTAINER_LEN),
    ("fixmap empty", {}, h("80")),
    ("fixmap 15", keys(15), h("8f") + keys_bytes(15)),
    ("map16 16", keys(16), h("de 0010") + keys_bytes(16)),
    ("map16 at the limit", keys(MAX_CONTAINER_LEN), h("de 1000") + keys_bytes(MAX_CONTAINER_LEN)),
    ("keys sorted bytewise", {"b": 1, "a": 2, "B": 3}, h("83 a142 03 a161 02 a162 01")),
    ("shorter key first on a common prefix", {"ab": 1, "a": 2}, h("82 a161 02 a26162 01")),
    (
        "keys sorted by UTF-8 bytes",
        {"é": 1, "z": 2, "\U0001f600": 3},
        h("83 a17a 02 a2c3a9 01 a4f09f9880 03"),
    ),
    ("mixed nesting", {"a": [1, {"b": b"\x00"}], "c": None}, h("82 a161 92 01 81 a162 c40100 a163 c0")),
    ("16 nested arrays", nested(15, []), h("91") * 15 + h("90")),
    ("16 nested arrays around a scalar", nested(16, 7), h("91") * 16 + h("07")),
    ("16 nested maps", {"a": nested(14, {})}, h("81 a161") + h("91") * 14 + h("80")),
]
ROUND_TRIPS = SCALARS + CONTAINERS


@pytest.mark.parametrize(("label", "value", "raw"), ROUND_TRIPS, ids=[row[0] for row in ROUND_TRIPS])
def test_round_trip(label: str, value: Any, raw: bytes) -> None:
    assert codec.encode(value) == raw, label
    decoded = codec.decode(raw, max_size=LIMIT)
    assert strict_equal(decoded, sorted_maps(value)), label


def test_tuples_encode_as_arrays() -> None:
    assert codec.encode((1, (2, "x"))) == codec.encode([1, [2, "x"]]) == h("92 01 92 02 a178")


def test_encoding_does_not_depend_on_insertion_order() -> None:
    forward = {f"k{i}": i for i in range(40)}
    backward = dict(reversed(list(forward.items())))
    assert codec.encode(forward) == codec.encode(backward)


def test_size_limit_is_inclusive() -> None:
    raw = codec.encode("x" * 100)
    assert codec.decode(raw, max_size=len(raw)) == "x" * 100
    with pytest.raises(Malformed, match="over the limit"):
        codec.decode(raw, max_size=len(raw) - 1)


def test_size_limit_is_checked_before_parsing() -> None:
    # Garbage over the limit is refused as over-size, without looking inside.
    with pytest.raises(Malformed, match="over the limit"):
        codec.decode(b"\xc1" * 65, max_size=64)


# --- rejections: (label, bytes, error class) --------------------------------------------------------------

FLOATS_AND_EXTENSIONS: list[tuple[str, bytes, type[ProtocolError]]] = [
    ("float32", h("ca 3f800000"), Malformed),
    ("float32 zero", h("ca 00000000"), Malformed),
    ("float64", h("cb 3ff0000000000000"), Malformed),
    ("float64 inside an array", h("91 cb 0000000000000000"), Malformed),
    ("float64 as a map value", h("81 a161 cb 0000000000000000"), Malformed),
    ("float64 as a map key", h("81 cb 0000000000000000 01"), Malformed),
    ("fixext1", h("d4 01 00"), Malformed),
    ("fixext2", h("d5 01 0000"), Malformed),
    ("fixext4", h("d6 01 00000000"), Malformed),
    ("fixext8", h("d7 01 0000000000000000"), Malformed),
    ("fixext16", h("d8 01") + bytes(16), Malformed),
    ("ext8", h("c7 01 01 00"), Malformed),
    ("ext16", h("c8 0001 01 00"), Malformed),
    ("ext32", h("c9 00000001 01 00"), Malformed),
    ("ext with a negative type", h("d4 80 00"), Malformed),
    ("timestamp32 (ext -1)", h("d6 ff 00000001"), Malformed),
    ("timestamp64 (ext -1)", h("d7 ff 0000000000000001"), Malformed),
    ("timestamp96 (ext -1)", h("c7 0c ff") + bytes(11) + b"\x01", Malformed),
    ("timestamp with a bad length", h("d5 ff 0000"), Malformed),
    ("never-used byte 0xc1", h("c1"), Malformed),
]

NON_SHORTEST: list[tuple[str, bytes, type[ProtocolError]]] = [
    ("uint8 holding a fixint", h("cc 01"), NonCanonical),
    ("uint8 holding 127", h("cc 7f"), NonCanonical),
    ("uint16 holding a uint8", h("cd 00ff"), NonCanonical),
    ("uint16 holding a fixint", h("cd 0001"), NonCanonical),
    ("uint32 holding a uint16", h("ce 0000ffff"), NonCanonical),
    ("uint64 holding a uint32", h("cf 00000000ffffffff"), NonCanonical),
    ("int8 holding a positive fixint", h("d0 01"), NonCanonical),
    ("int8 holding a negative fixint", h("d0 ff"), NonCanonical),
    ("int16 holding an int8", h("d1 ff80"), NonCanonical),
    ("int16 holding a positive value", h("d1 0080"), NonCanonical),
    ("int32 holding an int16", h("d2 ffff8000"), NonCanonical),
    ("int64 holding an int32", h("d3 ffffffff80000000"), NonCanonical),
    ("int64 holding a positive value", h("d3 0000000000000001"), NonCanonical),
    ("str8 holding a fixstr", h("d9 01 61"), NonCanonical),
    ("str8 holding the empty string", h("d9 00"), NonCanonical),
    ("str16 holding a fixstr", h("da 0001 61"), NonCanonical),
    ("str16 holding a str8", h("da 00ff") + b"x" * 255, NonCanonical),
    ("str32 holding a fixstr", h("db 00000001 61"), NonCanonical),
    ("bin16 holding a bin8", h("c5 0001 61"), NonCanonical),
    ("bin32 holding a bin8", h("c6 00000001 61"), NonCanonical),
    ("array16 holding a fixarray", h("dc 0001 01"), NonCanonical),
    ("array16 empty", h("dc 0000"), NonCanonical),
    ("array32 holding a fixarray", h("dd 00000001 01"), NonCanonical),
    ("map16 holding a fixmap", h("de 0001 a161 01"), NonCanonical),
    ("map16 empty", h("de 0000"), NonCanonical),
    ("map32 holding a fixmap", h("df 00000001 a161 01"), NonCanonical),
    ("non-shortest int nested in a map", h("81 a161 cc 01"), NonCanonical),
]

MAP_KEYS: list[tuple[str, bytes, type[ProtocolError]]] = [
    ("unsorted keys", h("82 a162 01 a161 02"), NonCanonical),
    ("longer key before its prefix", h("82 a26162 01 a161 02"), NonCanonical),
    ("unsorted keys in a nested map", h("91 82 a162 01 a161 02"), NonCanonical),
    ("duplicate keys", h("82 a161 01 a161 01"), NonCanonical),
    ("duplicate keys with different values", h("82 a161 01 a161 02"), NonCanonical),
    ("integer key", h("81 01 02"), Malformed),
    ("bin key", h("81 c40161 01"), Malformed),
    ("nil key", h("81 c0 01"), Malformed),
    ("boolean key", h("81 c3 01"), Malformed),
    ("array key", h("81 90 01"), Malformed),
    ("map key", h("81 80 01"), Malformed),
]

TEXT_AND_FRAMING: list[tuple[str, bytes, type[ProtocolError]]] = [
    ("invalid UTF-8 byte", h("a1 ff"), Malformed),
    ("truncated UTF-8 sequence", h("a1 c3"), Malformed),
    ("overlong UTF-8 encoding", h("a2 c080"), Malformed),
    ("UTF-8-encoded surrogate", h("a3 eda080"), Malformed),
    ("invalid UTF-8 in a map key", h("81 a1ff 01"), Malformed),
    ("empty input", b"", Malformed),
    ("trailing byte", h("00 00"), Malformed),
    ("trailing byte after a map", h("81 a161 01 c0"), Malformed),
    ("two values", h("a161 a162"), Malformed),
    ("declared length past the end", h("c4 05 0102"), Malformed),
    ("array shorter than declared", h("93 01 02"), Malformed),
]

LIMITS: list[tuple[str, bytes, type[ProtocolError]]] = [
    ("17 nested arrays", h("91") * 16 + h("90"), Malformed),
    ("17 nested arrays around a scalar", h("91") * 17 + h("01"), Malformed),
    ("17 nested maps", h("81 a161") * 16 + h("80"), Malformed),
    ("deep nesting far past the limit", h("91") * 5000 + h("90"), Malformed),
    ("array over the length limit", h("dc 1001") + b"\xc0" * (MAX_CONTAINER_LEN + 1), Malformed),
    (
        "map over the length limit",
        h("de 1001") + b"".join(b"\xa6k%05d\xc0" % i for i in range(MAX_CONTAINER_LEN + 1)),
        Malformed,
    ),
    ("array32 declaring 2^32-1 entries", h("dd ffffffff"), Malformed),
    ("map32 declaring 2^32-1 entries", h("df ffffffff"), Malformed),
    ("str32 declaring 4 GiB", h("db ffffffff"), Malformed),
    ("bin32 declaring 4 GiB", h("c6 ffffffff"), Malformed),
]

REJECTED = FLOATS_AND_EXTENSIONS + NON_SHORTEST + MAP_KEYS + TEXT_AND_FRAMING + LIMITS


@pytest.mark.parametrize(("label", "raw", "error"), REJECTED, ids=[row[0] for row in REJECTED])
def test_decode_rejects(label: str, raw: bytes, error: type[ProtocolError]) -> None:
    with pytest.raises(error):
        codec.decode(raw, max_size=LIMIT)


SAMPLE: Any = {
    "bin": b"\x00\x01\x02",
    "false": False,
    "int": [0, 127, 128, 256, 65536, 2**32, INT_MAX, -1, -33, -129, -32769, -(2**31) - 1, INT_MIN],
    "map": {"": None, "k": "v"},
    "str": "héllo",
    "str8": "x" * 40,
    "true": True,
}


def test_sample_is_canonical() -> None:
    raw = codec.encode(SAMPLE)
    assert codec.decode(raw, max_size=LIMIT) == SAMPLE


@pytest.mark.parametrize("cut", range(len(codec.encode(SAMPLE))))
def test_every_truncation_is_rejected(cut: int) -> None:
    with pytest.raises(Malformed):
        codec.decode(codec.encode(SAMPLE)[:cut], max_size=LIMIT)


# --- what encode refuses ----------------------------------------------------------------------------------

NOT_ENCODABLE: list[tuple[str, Any]] = [
    ("float", 1.0),
    ("float in a list", [0.5]),
    ("float as a map value", {"a": float("nan")}),
    ("set", {1, 2}),
    ("frozenset", frozenset()),
    ("bytearray", bytearray(b"x")),
    ("memoryview", memoryview(b"x")),
    ("object", object()),
    ("integer above uint64", INT_MAX + 1),
    ("integer below int64", INT_MIN - 1),
    ("integer key", {1: "a"}),
    ("bytes key", {b"a": 1}),
    ("tuple key", {("a",): 1}),
    ("lone surrogate", "\ud800"),
    ("lone surrogate in a key", {"\udfff": 1}),
    ("17 nested arrays", nested(17, None)),
    ("17 nested empty arrays", nested(16, [])),
    ("17 nested maps", {"a": nested(15, {})}),
    ("array over the length limit", [None] * (MAX_CONTAINER_LEN + 1)),
    ("map over the length limit", keys(MAX_CONTAINER_LEN + 1)),
]


@pytest.mark.parametrize(("label", "value"), NOT_ENCODABLE, ids=[row[0] for row in NOT_ENCODABLE])
def test_encode_refuses(label: str, value: Any) -> None:
    with pytest.raises(Malformed):
        codec.encode(value)


def test_depth_limit_is_the_spec_number() -> None:
    # §2 rule 5: at most 16 containers, whatever is (or is not) inside the innermost one.
    assert MAX_DEPTH == 16
    for innermost in ([], {}, [None], {"a": 1}):
        at_limit = nested(MAX_DEPTH - 1, innermost)
        assert codec.decode(codec.encode(at_limit), max_size=LIMIT) == at_limit
        with pytest.raises(Malformed):
            codec.encode([at_limit])
        with pytest.raises(Malformed):
            codec.decode(b"\x91" + codec.encode(at_limit), max_size=LIMIT)


# --- properties -----------------------------------------------------------------------------------------

SCALAR_VALUES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=INT_MIN, max_value=INT_MAX)
    | st.text(max_size=40)
    | st.binary(max_size=40)
)
VALUES = st.recursive(
    SCALAR_VALUES,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=24,
)
PROPERTY = settings(max_examples=300, deadline=None, database=None)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


@PROPERTY
@given(VALUES)
def test_property_round_trip_and_determinism(value: Any) -> None:
    if depth(value) > MAX_DEPTH:
        with pytest.raises(Malformed):
            codec.encode(value)
        return
    raw = codec.encode(value)
    assert codec.encode(value) == raw
    decoded = codec.decode(raw, max_size=LIMIT)
    assert strict_equal(decoded, sorted_maps(value))
    assert codec.encode(decoded) == raw


def _decode_or_refuse(raw: bytes) -> None:
    """The decoder's whole contract on arbitrary input: a ProtocolError, or a value that encodes to `raw`."""
    try:
        value = codec.decode(raw, max_size=LIMIT)
    except ProtocolError:
        return
    assert codec.encode(value) == raw


@PROPERTY
@given(st.binary(max_size=64))
def test_property_random_bytes(raw: bytes) -> None:
    _decode_or_refuse(raw)


@PROPERTY
@given(VALUES, st.data())
def test_property_mutated_encodings(value: Any, data: st.DataObject) -> None:
    # Random bytes rarely parse; damaging a real encoding explores the near misses.
    raw = bytearray(codec.encode(value) if depth(value) <= MAX_DEPTH else b"\x90")
    position = data.draw(st.integers(min_value=0, max_value=len(raw)))
    action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
    byte = data.draw(st.integers(min_value=0, max_value=255))
    if action == "insert":
        raw.insert(position, byte)
    elif position < len(raw):
        if action == "flip":
            raw[position] ^= byte or 1
        else:
            del raw[position]
    _decode_or_refuse(bytes(raw))
