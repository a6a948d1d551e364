"""protocol/noise.py against the published Noise vectors (cacophony, snow, noise-c), and at its edges.

The vectors drive both sides with the vector's static and ephemeral keys and prologue, check every
handshake message byte for byte, then every transport message, then the handshake hash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from protocol.errors import ProtocolError
from protocol.noise import (
    HASHLEN,
    MAX_MESSAGE_LEN,
    MAX_NONCE,
    PROTOCOL_NAME,
    CipherState,
    HandshakeState,
    NoiseError,
    SymmetricState,
    x25519_public,
)

VECTOR_FILE = Path(__file__).parent / "vectors" / "noise_xx_blake2b.json"
VECTORS: dict[str, Any] = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))

# Curve25519 points of small order and their non-canonical twins: X25519 with any of them is all zeros.
LOW_ORDER_POINTS = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
]


def key(label: str) -> bytes:
    return hashlib.blake2b(label.encode(), digest_size=32).digest()


def handshake_pair(prologue: bytes = b"") -> tuple[HandshakeState, HandshakeState]:
    initiator = HandshakeState(
        initiator=True, static_private=key("is"), ephemeral_private=key("ie"), prologue=prologue
    )
    responder = HandshakeState(
        initiator=False, static_private=key("rs"), ephemeral_private=key("re"), prologue=prologue
    )
    return initiator, responder


def run(initiator: HandshakeState, responder: HandshakeState) -> None:
    responder.read_message(initiator.write_message(b""))
    initiator.read_message(responder.write_message(b""))
    responder.read_message(initiator.write_message(b""))


# --- published vectors ---------------------------------------------------------------------------------


def test_vector_file_holds_only_this_protocol_with_attribution() -> None:
    sources = {source["id"]: source for source in VECTORS["sources"]}
    assert set(sources) == {"cacophony", "snow", "noise-c"}
    assert all(source["license"] and source["repository"] for source in sources.values())
    assert "license" in VECTORS
    for vector in VECTORS["vectors"]:
        assert vector["source"] in sources
        assert vector.get("protocol_name", vector.get("name")) == PROTOCOL_NAME.decode()
        assert not vector.get("init_psks") and not vector.get("resp_psks")


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda vector: vector["source"])
def test_published_vector(vector: dict[str, Any]) -> None:
    initiator = HandshakeState(
        initiator=True,
        static_private=bytes.fromhex(vector["init_static"]),
        ephemeral_private=bytes.fromhex(vector["init_ephemeral"]),
        prologue=bytes.fromhex(vector["init_prologue"]),
    )
    responder = HandshakeState(
        initiator=False,
        static_private=bytes.fromhex(vector["resp_static"]),
        ephemeral_private=bytes.fromhex(vector["resp_ephemeral"]),
        prologue=bytes.fromhex(vector["resp_prologue"]),
    )
    transport = {}
    for index, message in enumerate(vector["messages"]):
        payload, expected = bytes.fromhex(message["payload"]), bytes.fromhex(message["ciphertext"])
        from_initiator = index % 2 == 0  # XX is interactive: the turns alternate, also after it
        if index < 3:
            sender, receiver = (initiator, responder) if from_initiator else (responder, initiator)
            assert sender.write_message(payload) == expected, f"handshake message {index}"
            assert receiver.read_message(expected) == payload
            if index == 2:
                assert initiator.complete and responder.complete
                transport = {True: initiator.transport(), False: responder.transport()}
        else:
            sending, receiving = transport[from_initiator], transport[not from_initiator]
            assert sending.send.encrypt_with_ad(b"", payload) == expected, f"transport message {index}"
            assert receiving.receive.decrypt_with_ad(b"", expected) == payload
    assert len(vector["messages"]) > 3
    assert initiator.handshake_hash == responder.handshake_hash
    if "handshake_hash" in vector:
        assert initiator.handshake_hash.hex() == vector["handshake_hash"]
    assert initiator.remote_static == responder.static_public
    assert responder.remote_static == initiator.static_public


# --- the building blocks -------------------------------------------------------------------------------


def test_nonce_is_32_zero_bits_then_the_little_endian_counter() -> None:
    cipher_key = key("k")
    cipher = CipherState(cipher_key)
    cipher.set_nonce(0x0102030405060708)
    nonce = bytes(4) + bytes([8, 7, 6, 5, 4, 3, 2, 1])
    assert cipher.encrypt_with_ad(b"ad", b"hello") == ChaCha20Poly1305(cipher_key).encrypt(
        nonce, b"hello", b"ad"
    )
    assert cipher.nonce == 0x0102030405060709


def test_cipher_without_key_passes_plaintext_through() -> None:
    cipher = CipherState()
    assert not cipher.has_key()
    assert cipher.encrypt_with_ad(b"ad", b"clear") == b"clear"
    assert cipher.decrypt_with_ad(b"ad", b"clear") == b"clear"


def test_failed_decryption_does_not_advance_the_nonce() -> None:
    sender, receiver = CipherState(key("k")), CipherState(key("k"))
    sealed = sender.encrypt_with_ad(b"", b"payload")
    with pytest.raises(NoiseError):
        receiver.decrypt_with_ad(b"", sealed[:-1] + bytes([sealed[-1] ^ 1]))
    assert receiver.nonce == 0
    assert receiver.decrypt_with_ad(b"", sealed) == b"payload"
    with pytest.raises(NoiseError):  # the same ciphertext again: a replay
        receiver.decrypt_with_ad(b"", sealed)


def test_the_last_nonce_is_never_used() -> None:
    sender, receiver = CipherState(key("k")), CipherState(key("k"))
    sender.set_nonce(MAX_NONCE - 1)
    receiver.set_nonce(MAX_NONCE - 1)
    assert receiver.decrypt_with_ad(b"", sender.encrypt_with_ad(b"", b"last")) == b"last"
    with pytest.raises(NoiseError, match="exhausted"):
        sender.encrypt_with_ad(b"", b"one too many")
    with pytest.raises(NoiseError, match="exhausted"):
        receiver.decrypt_with_ad(b"", bytes(32))
    with pytest.raises(ValueError):
        sender.set_nonce(MAX_NONCE + 1)


@pytest.mark.parametrize("size", [0, 15, MAX_MESSAGE_LEN + 1])
def test_ciphertext_outside_the_noise_limits_is_refused(size: int) -> None:
    with pytest.raises(NoiseError):
        CipherState(key("k")).decrypt_with_ad(b"", bytes(size))


def test_plaintext_over_the_noise_limit_is_a_local_error() -> None:
    cipher = CipherState(key("k"))
    assert len(cipher.encrypt_with_ad(b"", bytes(MAX_MESSAGE_LEN - 16))) == MAX_MESSAGE_LEN
    with pytest.raises(ValueError):
        cipher.encrypt_with_ad(b"", bytes(MAX_MESSAGE_LEN - 15))


def test_protocol_name_is_padded_to_hashlen_and_a_longer_one_hashed() -> None:
    assert SymmetricState(PROTOCOL_NAME).handshake_hash == PROTOCOL_NAME + bytes(HASHLEN - len(PROTOCOL_NAME))
    long_name = b"N" * (HASHLEN + 1)
    assert SymmetricState(long_name).handshake_hash == hashlib.blake2b(long_name).digest()


def test_x25519_public_matches_rfc_7748() -> None:
    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    assert x25519_public(alice).hex() == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"


# --- the handshake at its edges ------------------------------------------------------------------------


@pytest.mark.parametrize("point", LOW_ORDER_POINTS)
def test_low_order_initiator_ephemeral_is_refused(point: str) -> None:
    initiator, responder = handshake_pair()
    message_1 = initiator.write_message(b"")
    responder.read_message(bytes.fromhex(point) + message_1[32:])
    with pytest.raises(NoiseError, match="all-zero"):
        responder.write_message(b"")  # "ee" is the responder's first DH
    with pytest.raises(ValueError, match="failed"):
        responder.write_message(b"")


@pytest.mark.parametrize("point", LOW_ORDER_POINTS)
def test_low_order_responder_ephemeral_is_refused(point: str) -> None:
    initiator, responder = handshake_pair()
    responder.read_message(initiator.write_message(b""))
    message_2 = responder.write_message(b"")
    with pytest.raises(NoiseError, match="all-zero"):
        initiator.read_message(bytes.fromhex(point) + message_2[32:])


def test_turns_are_enforced() -> None:
    initiator, responder = handshake_pair()
    with pytest.raises(ValueError):
        initiator.read_message(bytes(32))
    with pytest.raises(ValueError):
        responder.write_message(b"")
    with pytest.raises(ValueError):
        initiator.transport()
    run(initiator, responder)
    with pytest.raises(ValueError, match="complete"):
        initiator.write_message(b"")


def at_message(index: int) -> tuple[HandshakeState, bytes]:
    """A fresh pair run up to handshake message `index`: its receiver, and the message it is sent."""
    initiator, responder = handshake_pair()
    turns = [(initiator, responder), (responder, initiator), (initiator, responder)]
    for sender, receiver in turns[:index]:
        receiver.read_message(sender.write_message(b""))
    sender, receiver = turns[index]
    return receiver, sender.write_message(b"")


@pytest.mark.parametrize("index", [0, 1, 2])
def test_truncated_handshake_messages_fail(index: int) -> None:
    _, message = at_message(index)
    for length in range(len(message)):
        receiver, _ = at_message(index)
        with pytest.raises(NoiseError):
            receiver.read_message(message[:length])


def test_failed_read_ends_the_handshake() -> None:
    initiator, responder = handshake_pair()
    responder.read_message(initiator.write_message(b""))
    message_2 = bytearray(responder.write_message(b""))
    message_2[40] ^= 1
    with pytest.raises(NoiseError):
        initiator.read_message(bytes(message_2))
    assert not initiator.is_my_turn()
    with pytest.raises(ValueError, match="failed"):
        initiator.read_message(bytes(message_2))


def test_prologue_mismatch_fails_at_the_first_encrypted_message() -> None:
    initiator, _ = handshake_pair(prologue=b"one")
    _, responder = handshake_pair(prologue=b"two")
    responder.read_message(initiator.write_message(b""))  # message 1 is not encrypted
    with pytest.raises(NoiseError):
        initiator.read_message(responder.write_message(b""))


def test_noise_error_is_a_protocol_error() -> None:
    assert issubclass(NoiseError, ProtocolError)


@pytest.mark.parametrize("name", ["static_private", "ephemeral_private"])
def test_keys_must_be_32_bytes(name: str) -> None:
    arguments = {"static_private": key("s"), "ephemeral_private": key("e")}
    arguments[name] = bytes(31)
    with pytest.raises(ValueError):
        HandshakeState(initiator=True, **arguments)
