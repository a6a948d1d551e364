"""protocol/invite.py: invite tokens round-trip, and a mistyped or truncated token is an error."""

from __future__ import annotations

import base64
import hashlib

import pytest

from protocol import codec
from protocol.invite import PREFIX, InvalidInvite, Invite, decode_invite, encode_invite
from tests.factories import identity

INVITE = Invite(
    "ucenet", identity("opta").public_key.raw, "203.0.113.20:7450", identity("sec").public_key.raw
)


def test_round_trip_with_and_without_an_authority() -> None:
    token = encode_invite(INVITE)
    assert token.startswith(PREFIX) and len(token) < 160
    assert decode_invite(token) == INVITE
    legacy = Invite("ucenet", INVITE.node, "[2001:db8::1]:7450", None)
    assert decode_invite(encode_invite(legacy)) == legacy


def test_a_token_wrapped_over_lines_is_still_the_token() -> None:
    token = encode_invite(INVITE)
    assert decode_invite(f"  {token[:40]}\n{token[40:90]}\r\n{token[90:]}  ") == INVITE


def test_every_single_character_typo_is_caught() -> None:
    token = encode_invite(INVITE)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for position in range(len(PREFIX), len(token)):
        for replacement in (alphabet[(alphabet.index(token[position]) + step) % 64] for step in (1, 17)):
            typo = token[:position] + replacement + token[position + 1 :]
            with pytest.raises(InvalidInvite):
                decode_invite(typo)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda t: t[:-1], "damaged|checksum"),
        (lambda t: t[: len(t) // 2], "damaged|checksum"),
        (lambda t: t + t[len(PREFIX) :], "damaged|checksum|invite"),
        (lambda t: t.replace(PREFIX, "lapinvite2."), "starts with"),
        (lambda t: t[len(PREFIX) :], "starts with"),
        (lambda t: t + "*", "damaged"),
        (lambda t: PREFIX, "damaged"),
        (lambda t: t + "A" * 2000, "too long"),
    ],
)
def test_damaged_tokens_are_errors(mangle: object, message: str) -> None:
    assert callable(mangle)
    with pytest.raises(InvalidInvite, match=message):
        decode_invite(mangle(encode_invite(INVITE)))


def _token(payload: bytes) -> str:
    check = hashlib.blake2b(payload, digest_size=32, person=b"lapnode.invite1").digest()[:4]
    return PREFIX + base64.urlsafe_b64encode(payload + check).decode().rstrip("=")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([2, "ucenet", INVITE.node, "h:1", None], "version"),
        ([1, "ucenet", INVITE.node, "h:1"], "does not hold an invite"),
        ({"v": 1}, "does not hold an invite"),
        ([1, "", INVITE.node, "h:1", None], "network"),
        ([1, "ucenet", b"short", "h:1", None], "node"),
        ([1, "ucenet", INVITE.node, "", None], "address"),
        ([1, "ucenet", INVITE.node, "a b:1", None], "address"),
        ([1, "ucenet", INVITE.node, "h\x00:1", None], "address"),
        ([1, "ucenet", INVITE.node, "h:1", b"short"], "authority"),
    ],
)
def test_well_checksummed_tokens_with_bad_contents_are_errors(value: object, message: str) -> None:
    with pytest.raises(InvalidInvite, match=message):
        decode_invite(_token(codec.encode(value)))
    with pytest.raises(InvalidInvite):
        decode_invite(_token(b"\xc1"))  # not msgpack at all
