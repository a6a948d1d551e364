"""Node ids: round trips, canonical form, and every kind of typo rejected (never decoded to another key)."""

from __future__ import annotations

import hashlib

import bech32
import pytest

from keys.errors import CryptoError, InvalidNodeId
from keys.identity import (
    NodeId,
    PublicKey,
    node_id_from_public_key,
    parse_node_id,
    public_key_from_node_id,
)

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

# RFC 8032 TEST 1 public key and its node id: a golden vector for other implementations.
RFC_TEST1_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC_TEST1_NODE_ID = "lap16adfsqvzky9t042tlmfujeq88g8wzuhnm2nzxfd0qgdx3ac82ydqzjz234"


def key(n: int) -> bytes:
    """A deterministic 32-byte public-key-shaped value (node ids do not care whether it is a curve point)."""
    return hashlib.sha256(b"node-id-test %d" % n).digest()


VALID = node_id_from_public_key(key(0))
DATA_START = len("lap1")


def encode(hrp: str, payload: bytes) -> str:
    words = bech32.convertbits(payload, 8, 5, True)
    assert words is not None
    result: str = bech32.bech32_encode(hrp, words)
    return result


def assert_invalid(text: str) -> None:
    with pytest.raises(InvalidNodeId, match=r" is not a valid node id: "):
        public_key_from_node_id(text)
    with pytest.raises(InvalidNodeId):
        parse_node_id(text)
    with pytest.raises(InvalidNodeId):
        PublicKey.from_node_id(text)


def test_golden_vector() -> None:
    assert node_id_from_public_key(RFC_TEST1_PUBLIC) == RFC_TEST1_NODE_ID
    assert public_key_from_node_id(RFC_TEST1_NODE_ID) == RFC_TEST1_PUBLIC


@pytest.mark.parametrize("n", range(20))
def test_round_trip(n: int) -> None:
    node_id = node_id_from_public_key(key(n))
    assert node_id.startswith("lap1")
    assert len(node_id) == 62
    assert node_id == node_id.lower()
    assert public_key_from_node_id(node_id) == key(n)
    assert parse_node_id(node_id) == node_id
    assert PublicKey.from_node_id(node_id).raw == key(n)
    assert PublicKey(key(n)).node_id == node_id


@pytest.mark.parametrize("position", range(len(VALID)))
def test_every_single_character_substitution_is_rejected(position: int) -> None:
    alphabet = CHARSET + "1bio" + CHARSET.upper()
    for replacement in sorted(set(alphabet) - {VALID[position]}):
        assert_invalid(VALID[:position] + replacement + VALID[position + 1 :])


@pytest.mark.parametrize("n", range(5))
def test_every_adjacent_transposition_is_rejected(n: int) -> None:
    valid = node_id_from_public_key(key(n))
    swaps = 0
    for i in range(len(valid) - 1):
        if valid[i] != valid[i + 1]:
            swaps += 1
            assert_invalid(valid[:i] + valid[i + 1] + valid[i] + valid[i + 2 :])
    assert swaps > 50


def test_every_deletion_and_insertion_is_rejected() -> None:
    for i in range(DATA_START, len(VALID) + 1):
        if i < len(VALID):
            assert_invalid(VALID[:i] + VALID[i + 1 :])
        for extra in CHARSET:
            assert_invalid(VALID[:i] + extra + VALID[i:])


def test_bech32_q_before_final_p_weakness_is_caught_by_the_length_check() -> None:
    # BIP-173's known flaw: if the string ends in "p", inserting "q"s before that "p" keeps the checksum
    # valid. Only the fixed 32-byte length stops such an id from decoding.
    ending_in_p = next(node_id_from_public_key(key(n)) for n in range(10_000) if key_ends_in_p(n))
    for inserted in ("q", "qq", "qqqq", "qqqqq"):
        mangled = ending_in_p[:-1] + inserted + "p"
        hrp, _ = bech32.bech32_decode(mangled)
        assert hrp == "lap", "the checksum alone does not catch this"
        assert_invalid(mangled)


def key_ends_in_p(n: int) -> bool:
    return node_id_from_public_key(key(n)).endswith("p")


@pytest.mark.parametrize("hrp", ["lab", "lapp", "la", "bc", "tb", "lap2", "npub", "x"])
def test_wrong_human_readable_part(hrp: str) -> None:
    with pytest.raises(InvalidNodeId, match="must start with 'lap1'"):
        public_key_from_node_id(encode(hrp, key(1)))


@pytest.mark.parametrize("size", [0, 1, 16, 20, 31, 33, 64])
def test_wrong_length(size: int) -> None:
    with pytest.raises(InvalidNodeId, match=r"32-byte key|longer than 90"):
        public_key_from_node_id(encode("lap", bytes(range(size))))


def test_non_zero_padding_bits_are_rejected() -> None:
    # 52 five-bit words carry 260 bits; the last 4 must be zero, or two strings would name one key.
    words = bech32.convertbits(key(2), 8, 5, True)
    assert words is not None
    words[-1] |= 1
    assert_invalid(bech32.bech32_encode("lap", words))


def test_uppercase_is_accepted_and_normalised() -> None:
    assert public_key_from_node_id(VALID.upper()) == key(0)
    assert parse_node_id(VALID.upper()) == VALID


@pytest.mark.parametrize(
    "mixed",
    [VALID[:10].upper() + VALID[10:], VALID[:-1] + VALID[-1].upper(), "LAP1" + VALID[4:], "Lap" + VALID[3:]],
)
def test_mixed_case_is_rejected(mixed: str) -> None:
    assert mixed.lower() == VALID
    assert_invalid(mixed)


@pytest.mark.parametrize("padded", [f" {VALID}", f"{VALID}\n", f"\t {VALID} \r\n", f"\u00a0{VALID}\u2003"])
def test_surrounding_whitespace_is_stripped(padded: str) -> None:
    assert parse_node_id(padded) == VALID
    assert public_key_from_node_id(padded) == key(0)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "   ",
        "lap1",
        "lap1qqqqqq",
        "hello",
        VALID[:30] + " " + VALID[30:],
        VALID[:30] + "\u00e9" + VALID[31:],
        VALID + VALID,
        "lap1" + "q" * 200,
        "1" + VALID,
        "\x00" + VALID,
    ],
)
def test_garbage_is_rejected(garbage: str) -> None:
    assert_invalid(garbage)


@pytest.mark.parametrize("not_text", [None, 42, VALID.encode(), [VALID]])
def test_non_text_is_rejected(not_text: object) -> None:
    with pytest.raises(InvalidNodeId):
        public_key_from_node_id(not_text)  # type: ignore[arg-type]


def test_error_message_is_one_short_line() -> None:
    with pytest.raises(InvalidNodeId) as caught:
        public_key_from_node_id("x" * 10_000 + "\n" + VALID)
    message = str(caught.value)
    assert "\n" not in message
    assert len(message) < 200
    assert isinstance(caught.value, CryptoError)


@pytest.mark.parametrize("raw", [b"", bytes(31), bytes(33), bytes(64), "a" * 32, bytearray(32)])
def test_public_key_bytes_of_wrong_length_or_type(raw: object) -> None:
    with pytest.raises(InvalidNodeId):
        node_id_from_public_key(raw)  # type: ignore[arg-type]
    with pytest.raises(InvalidNodeId):
        PublicKey(raw)  # type: ignore[arg-type]


def test_node_id_is_a_plain_str() -> None:
    parsed: NodeId = parse_node_id(VALID)
    assert type(parsed) is str
