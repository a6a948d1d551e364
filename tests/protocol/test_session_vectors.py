"""Handshake vectors (protocol/SPEC.md §6.3, 'Vectors'): rebuilt from their inputs, and kept in step.

The tests read `protocol/vectors/handshake.json` as a second implementation would: they take the keys
written in the file, not the generator's tables, drive both roles and compare every frame; then they
check that the generator still writes exactly the committed file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from keys.identity import Identity, PublicKey
from protocol.handshake import PROLOGUE, STATIC_KEY_DOMAIN, encode_binding, static_key_message
from protocol.noise import PROTOCOL_NAME, x25519_public
from protocol.session import MAX_FRAME, HandshakeComplete, Message, Session
from protocol.vectors import generate_handshake
from tests.protocol.test_session import drain

VECTOR_FILE = Path(generate_handshake.__file__).parent / "handshake.json"
VECTORS: dict[str, Any] = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))
ROLES = ("initiator", "responder")


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def sessions_from_file() -> tuple[Session, Session]:
    parties = {role: VECTORS[role] for role in ROLES}
    identities = {role: Identity.from_seed(h(parties[role]["identity_seed_hex"])) for role in ROLES}
    first = Session.initiator(
        identity=identities["initiator"],
        network=VECTORS["network"],
        static_private=h(parties["initiator"]["static_private_hex"]),
        ephemeral_private=h(parties["initiator"]["ephemeral_private_hex"]),
        responder_node_key=h(parties["responder"]["node_key_hex"]),
    )
    second = Session.responder(
        identity=identities["responder"],
        network=VECTORS["network"],
        static_private=h(parties["responder"]["static_private_hex"]),
        ephemeral_private=h(parties["responder"]["ephemeral_private_hex"]),
        is_allowed=h(parties["initiator"]["node_key_hex"]).__eq__,
    )
    return first, second


def test_committed_file_is_what_the_generator_writes() -> None:
    assert generate_handshake.render() == {"handshake.json": VECTOR_FILE.read_text(encoding="utf-8")}


def test_constants() -> None:
    assert VECTORS["protocol_name"] == PROTOCOL_NAME.decode()
    assert h(VECTORS["prologue_hex"]) == PROLOGUE == b"lapnode/noise/v1"
    assert VECTORS["network"] == "test-net"


@pytest.mark.parametrize("role", ROLES)
def test_party_keys_signature_and_payload(role: str) -> None:
    party = VECTORS[role]
    identity = Identity.from_seed(h(party["identity_seed_hex"]))
    assert identity.public_key.raw.hex() == party["node_key_hex"]
    assert identity.node_id == party["node_id"]
    static_public = x25519_public(h(party["static_private_hex"]))
    assert static_public.hex() == party["static_public_hex"]
    assert x25519_public(h(party["ephemeral_private_hex"])).hex() == party["ephemeral_public_hex"]
    signed = STATIC_KEY_DOMAIN + static_key_message(VECTORS["network"], static_public)
    assert signed.hex() == party["signed_bytes_hex"]
    PublicKey(identity.public_key.raw).verify(
        STATIC_KEY_DOMAIN, signed[len(STATIC_KEY_DOMAIN) :], h(party["signature_hex"])
    )
    payload = encode_binding(identity, network=VECTORS["network"], static_public=static_public)
    assert payload.hex() == party["payload_hex"]


def test_static_keys_are_the_rfc_7748_examples() -> None:
    assert VECTORS["initiator"]["static_public_hex"].startswith("8520f0098930a754")  # Alice
    assert VECTORS["responder"]["static_public_hex"].startswith("de9edb7d7b7dc1b4")  # Bob


def test_both_roles_rebuild_every_frame() -> None:
    first, second = sessions_from_file()
    frames = [h(message["frame_hex"]) for message in VECTORS["handshake"]]
    assert [message["from"] for message in VECTORS["handshake"]] == ["initiator", "responder", "initiator"]
    assert first.start() == frames[0]
    assert drain(second, frames[0]) == []
    assert second.take_outgoing() == [frames[1]]
    (done_first,) = drain(first, frames[1])
    assert first.take_outgoing() == [frames[2]]
    (done_second,) = drain(second, frames[2])
    assert isinstance(done_first, HandshakeComplete) and isinstance(done_second, HandshakeComplete)
    assert (
        done_first.handshake_hash.hex() == done_second.handshake_hash.hex() == VECTORS["handshake_hash_hex"]
    )
    assert done_first.peer_node_key.hex() == VECTORS["responder"]["node_key_hex"]
    assert done_second.peer_node_key.hex() == VECTORS["initiator"]["node_key_hex"]

    sides = {"initiator": (first, second), "responder": (second, first)}
    for message in VECTORS["transport"]:
        sender, receiver = sides[message["from"]]
        payload = h(message["payload_hex"])
        assert sender.send(payload).hex() == message["frames_hex"]
        assert drain(receiver, h(message["frames_hex"])) == [Message(payload)]

    fragmented = VECTORS["fragmented"]
    payload = b"a" * fragmented["payload_length"]
    wire = first.send(payload)
    assert hashlib.blake2b(wire, digest_size=32).hexdigest() == fragmented["frames_blake2b_256_hex"]
    assert fragmented["frame_lengths"] == [MAX_FRAME, 18]
    assert wire.endswith(h(fragmented["last_frame_hex"]))
    assert drain(second, wire) == [Message(payload)]
