"""Rebuild the handshake vectors of protocol/SPEC.md §6: `python -m protocol.vectors.generate_handshake`.

Rule 1: no randomness and no clock. Identities are the RFC 8032 §7.1 TEST 1 and 2 seeds, Noise static
keys the RFC 7748 §6.1 Alice and Bob private keys, ephemeral keys BLAKE2b of a label; X25519, Ed25519 and
ChaCha20-Poly1305 are deterministic. So the output is a pure function of this file and the protocol code,
and `tests/protocol/test_session_vectors.py` compares it with the committed `handshake.json`.
Rule 2: every frame is made by `protocol.session.Session`, the code under test, with an initiator and a
responder wired together; the signatures and payloads beside them are made by `protocol.handshake`.
Rule 3: pure until `main`: `render()` returns the file text; only `main` touches the filesystem.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from typing import Any, Final

from keys.identity import Identity
from protocol.handshake import PROLOGUE, STATIC_KEY_DOMAIN, encode_binding, static_key_message
from protocol.noise import PROTOCOL_NAME, x25519_public
from protocol.session import (
    MAX_FRAGMENT,
    ConnectionClosed,
    HandshakeComplete,
    Message,
    NeedData,
    Session,
)
from protocol.vectors.generate import write_or_check

FILE_NAME: Final = "handshake.json"
NETWORK: Final = "test-net"
KEY_PERSON: Final = b"lapnode.vkey.v1"

# RFC 8032 §7.1 TEST 1 and TEST 2 secret keys; RFC 7748 §6.1 Alice's and Bob's private keys.
IDENTITY_SEEDS: Final = {
    "initiator": bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
    "responder": bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"),
}
STATIC_KEYS: Final = {
    "initiator": bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
    "responder": bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
}
PAYLOADS: Final = {
    "initiator": b"lapnode handshake vector: initiator to responder",
    "responder": b"lapnode handshake vector: responder to initiator",
}
# One byte more than a frame holds, so the message travels as a full fragment and a one-byte one (§6.3).
FRAGMENTED_PAYLOAD: Final = b"a" * (MAX_FRAGMENT + 1)


def ephemeral_key(role: str) -> bytes:
    label = f"handshake.json/{role}/ephemeral".encode()
    return hashlib.blake2b(label, digest_size=32, person=KEY_PERSON).digest()


def sessions() -> tuple[Session, Session]:
    """The initiator and responder of the vectors, before any message."""
    identities = {role: Identity.from_seed(seed) for role, seed in IDENTITY_SEEDS.items()}
    initiator = Session.initiator(
        identity=identities["initiator"],
        network=NETWORK,
        static_private=STATIC_KEYS["initiator"],
        ephemeral_private=ephemeral_key("initiator"),
        responder_node_key=identities["responder"].public_key.raw,
    )
    responder = Session.responder(
        identity=identities["responder"],
        network=NETWORK,
        static_private=STATIC_KEYS["responder"],
        ephemeral_private=ephemeral_key("responder"),
        is_allowed=identities["initiator"].public_key.raw.__eq__,
    )
    return initiator, responder


def deliver(receiver: Session, data: bytes) -> list[object]:
    """Feed `data` to `receiver`; return its events up to NeedData."""
    receiver.receive_data(data)
    events: list[object] = []
    while not isinstance(event := receiver.next_event(), NeedData | ConnectionClosed):
        events.append(event)
    return events


def party(role: str) -> dict[str, Any]:
    identity = Identity.from_seed(IDENTITY_SEEDS[role])
    static_public = x25519_public(STATIC_KEYS[role])
    message = static_key_message(NETWORK, static_public)
    return {
        "identity_seed_hex": IDENTITY_SEEDS[role].hex(),
        "node_key_hex": identity.public_key.raw.hex(),
        "node_id": identity.node_id,
        "static_private_hex": STATIC_KEYS[role].hex(),
        "static_public_hex": static_public.hex(),
        "ephemeral_private_hex": ephemeral_key(role).hex(),
        "ephemeral_public_hex": x25519_public(ephemeral_key(role)).hex(),
        "signed_bytes_hex": (STATIC_KEY_DOMAIN + message).hex(),
        "signature_hex": identity.sign(STATIC_KEY_DOMAIN, message).hex(),
        "payload_hex": encode_binding(identity, network=NETWORK, static_public=static_public).hex(),
    }


def build() -> dict[str, Any]:
    initiator, responder = sessions()
    message_1 = initiator.start()
    assert deliver(responder, message_1) == []
    (message_2,) = responder.take_outgoing()
    (initiator_done,) = deliver(initiator, message_2)
    (message_3,) = initiator.take_outgoing()
    (responder_done,) = deliver(responder, message_3)
    assert isinstance(initiator_done, HandshakeComplete) and isinstance(responder_done, HandshakeComplete)
    assert initiator_done.handshake_hash == responder_done.handshake_hash
    handshake_hash = initiator_done.handshake_hash

    transport = []
    for sender, receiver, role in ((initiator, responder, "initiator"), (responder, initiator, "responder")):
        wire = sender.send(PAYLOADS[role])
        assert deliver(receiver, wire) == [Message(PAYLOADS[role])]
        transport.append({"from": role, "payload_hex": PAYLOADS[role].hex(), "frames_hex": wire.hex()})
    fragmented = initiator.send(FRAGMENTED_PAYLOAD)
    assert deliver(responder, fragmented) == [Message(FRAGMENTED_PAYLOAD)]
    return {
        "comment": "Handshake and transport vectors for protocol/SPEC.md §6; layout in §6.3, 'Vectors'.",
        "protocol_name": PROTOCOL_NAME.decode(),
        "prologue_hex": PROLOGUE.hex(),
        "network": NETWORK,
        "initiator": party("initiator"),
        "responder": party("responder"),
        "handshake": [
            {"from": "initiator", "frame_hex": message_1.hex()},
            {"from": "responder", "frame_hex": message_2.hex()},
            {"from": "initiator", "frame_hex": message_3.hex()},
        ],
        "handshake_hash_hex": handshake_hash.hex(),
        "transport": transport,
        "fragmented": {
            "from": "initiator",
            "comment": "sent after transport[0] and transport[1]: its two frames use nonces 1 and 2",
            "payload": f"the byte 0x61 ('a') repeated {len(FRAGMENTED_PAYLOAD)} times",
            "payload_length": len(FRAGMENTED_PAYLOAD),
            "frame_lengths": _frame_lengths(fragmented),
            "frames_blake2b_256_hex": hashlib.blake2b(fragmented, digest_size=32).hexdigest(),
            "last_frame_hex": fragmented[-(4 + _frame_lengths(fragmented)[-1]) :].hex(),
        },
    }


def _frame_lengths(wire: bytes) -> list[int]:
    lengths, offset = [], 0
    while offset < len(wire):
        length = int.from_bytes(wire[offset : offset + 4], "big")
        lengths.append(length)
        offset += 4 + length
    return lengths


def render() -> dict[str, str]:
    return {FILE_NAME: json.dumps(build(), indent=2, ensure_ascii=False) + "\n"}


def main(argv: Sequence[str] | None = None) -> int:
    return write_or_check("python -m protocol.vectors.generate_handshake", __doc__, render(), argv)


if __name__ == "__main__":
    sys.exit(main())
