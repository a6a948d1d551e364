"""keys.x25519 and Identity.x25519_agree: the X25519 operations sealed records rely on (SPEC §3.7).

Every Wycheproof X25519 case (vectors/x25519_test.json, Apache-2.0) runs against `x25519_shared_secret`:
a case whose shared secret is all zeros must be refused, every other case must give Wycheproof's
result, "acceptable" ones included (twist points and non-canonical encodings, which RFC 7748 says to
accept). A case libsodium judges differently fails here, loudly: it is to be reported, never skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keys.errors import KeyAgreementError
from keys.identity import Identity
from keys.x25519 import x25519_key_of_node, x25519_public_key, x25519_shared_secret

VECTORS = Path(__file__).parent / "vectors" / "x25519_test.json"
BASE_POINT = (9).to_bytes(32, "little")

# RFC 7748 §6.1.
ALICE_SECRET = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_SECRET = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PUBLIC = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
RFC7748_SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")

# libsodium test/default/ed25519_convert.c and .exp: an Ed25519 seed and its key's X25519 form.
CONVERT_SEED = bytes.fromhex("421151a459faeade3d247115f94aedae42318124095afabe4d1451a559faedee")
CONVERT_ED25519_PUBLIC = bytes.fromhex("b5076a8474a832daee4dd5b4040983b6623b5f344aca57d4d6ee4baf3f259e6e")
CONVERT_X25519_PUBLIC = bytes.fromhex("f1814f0e8ff1043d8a44d25babff3cedcae6c22c3edaa48f857ae70de2baae50")


def load_cases() -> list[Any]:
    document = json.loads(VECTORS.read_text(encoding="utf-8"))
    assert document["algorithm"] == "XDH"
    cases = [
        pytest.param(case, id=f"tc{case['tcId']}-{case['result']}")
        for group in document["testGroups"]
        if group["curve"] == "curve25519"
        for case in group["tests"]
    ]
    assert len(cases) == document["numberOfTests"]
    return cases


@pytest.mark.parametrize("case", load_cases())
def test_wycheproof_case(case: dict[str, Any]) -> None:
    secret, public = bytes.fromhex(case["private"]), bytes.fromhex(case["public"])
    assert case["result"] in ("valid", "acceptable")
    if "ZeroSharedSecret" in case["flags"]:
        assert case["shared"] == "00" * 32
        with pytest.raises(KeyAgreementError):
            x25519_shared_secret(secret, public)
    else:
        assert x25519_shared_secret(secret, public).hex() == case["shared"]


def test_rfc7748_diffie_hellman() -> None:
    assert x25519_public_key(ALICE_SECRET) == ALICE_PUBLIC
    assert x25519_public_key(BOB_SECRET) == BOB_PUBLIC
    assert x25519_shared_secret(ALICE_SECRET, BOB_PUBLIC) == RFC7748_SHARED
    assert x25519_shared_secret(BOB_SECRET, ALICE_PUBLIC) == RFC7748_SHARED


def test_libsodium_conversion_vector() -> None:
    identity = Identity.from_seed(CONVERT_SEED)
    assert identity.public_key.raw == CONVERT_ED25519_PUBLIC
    assert x25519_key_of_node(CONVERT_ED25519_PUBLIC) == CONVERT_X25519_PUBLIC
    # X25519(secret, 9) is the public key: the private side converts to the matching secret.
    assert identity.x25519_agree(BASE_POINT) == CONVERT_X25519_PUBLIC


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_converted_keys_agree(seed: bytes, ephemeral: bytes) -> None:
    """The sender's X25519(ephemeral, converted node key) is what the node computes with its identity."""
    identity = Identity.from_seed(seed)
    recipient = x25519_key_of_node(identity.public_key.raw)
    sent = x25519_shared_secret(ephemeral, recipient)
    assert identity.x25519_agree(x25519_public_key(ephemeral)) == sent


@pytest.mark.parametrize(
    ("label", "node_key"),
    [
        ("the neutral point (small order)", bytes([1]) + bytes(31)),
        ("a point of order 2 (small order)", bytes.fromhex("ec" + "ff" * 30 + "7f")),
        ("not on the curve", bytes.fromhex("02" + "00" * 31)),
        ("y not reduced (non-canonical)", b"\xff" * 32),
        ("31 bytes", bytes(31)),
    ],
)
def test_unusable_node_keys_are_refused(label: str, node_key: bytes) -> None:
    with pytest.raises(KeyAgreementError):
        x25519_key_of_node(node_key)


def test_low_order_public_keys_give_no_secret() -> None:
    identity = Identity.from_seed(CONVERT_SEED)
    for low_order in (bytes(32), (1).to_bytes(32, "little")):
        with pytest.raises(KeyAgreementError, match="low-order"):
            identity.x25519_agree(low_order)


def test_wrong_lengths_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        x25519_shared_secret(bytes(31), BOB_PUBLIC)
    with pytest.raises(ValueError, match="32 bytes"):
        x25519_public_key(bytes(33))
