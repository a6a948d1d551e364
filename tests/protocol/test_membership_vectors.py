"""Membership vectors (protocol/SPEC.md §8.8): rebuilt from their inputs, and kept in step.

Like the handshake vectors' tests, these read `protocol/vectors/membership.json` as a second
implementation would: the keys and inputs written in the file, not the generator's tables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from keys.identity import Identity, PublicKey
from keys.membership import (
    CREDENTIAL_DOMAIN,
    RETRACTION_DOMAIN,
    REVOCATION_DOMAIN,
    ROTATION_DOMAIN,
    TrustedAuthorities,
    authority_id,
)
from protocol import credential as credential_module
from protocol import statements as statements_module
from protocol.armor import dearmor
from protocol.credential import (
    FILE_LABEL,
    CredentialCheck,
    issue_credential,
    signed_message,
    verify_credential,
)
from protocol.invite import decode_invite
from protocol.session import HandshakeComplete, Session
from protocol.statements import (
    REVOCATION_FILE_LABEL,
    ROTATION_FILE_LABEL,
    Retraction,
    issue_retraction,
    issue_revocation,
    issue_rotation,
    verify_rotation,
    verify_statement,
)
from protocol.vectors import generate_membership
from tests.protocol.test_session import drain

DIRECTORY = Path(generate_membership.__file__).parent
VECTORS: dict[str, Any] = json.loads((DIRECTORY / "membership.json").read_text(encoding="utf-8"))
HANDSHAKE: dict[str, Any] = json.loads((DIRECTORY / "handshake.json").read_text(encoding="utf-8"))
NETWORK: str = VECTORS["network"]


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def authority() -> Identity:
    return Identity.from_seed(h(VECTORS["authority"]["seed_hex"]))


def check() -> CredentialCheck:
    return CredentialCheck(TrustedAuthorities([authority().public_key]), VECTORS["now_ms"])


def member_key(role: str) -> bytes:
    return h(HANDSHAKE[role]["node_key_hex"])


def test_committed_file_is_what_the_generator_writes() -> None:
    assert generate_membership.render() == {
        "membership.json": (DIRECTORY / "membership.json").read_text("utf-8")
    }


def test_authority_id() -> None:
    key = authority().public_key
    assert key.raw == h(VECTORS["authority"]["public_key_hex"])
    assert authority_id(key) == VECTORS["authority"]["authority_id"]


@pytest.mark.parametrize("vector", VECTORS["credentials"], ids=lambda v: v["name"])
def test_credentials_rebuild_byte_for_byte_and_verify(vector: dict[str, Any]) -> None:
    inputs = vector["inputs"]
    subject = member_key(vector["name"])
    assert PublicKey(subject).node_id == vector["subject_node_id"]
    made = issue_credential(
        authority(),
        network=inputs["network"],
        subject=subject,
        org=inputs["org"],
        category=inputs["category"],
        jurisdiction=inputs["jurisdiction"],
        not_before=inputs["not_before"],
        not_after=inputs["not_after"],
    )
    assert made.wire == h(vector["wire_hex"])
    assert h(vector["signed_bytes_hex"]) == CREDENTIAL_DOMAIN + signed_message(NETWORK, h(vector["body_hex"]))
    authority().public_key.verify(
        CREDENTIAL_DOMAIN, signed_message(NETWORK, h(vector["body_hex"])), h(vector["signature_hex"])
    )
    assert dearmor(FILE_LABEL, vector["file"].encode()) == made.wire
    assert verify_credential(made.wire, network=NETWORK, check=check(), subject=subject) == made


@pytest.mark.parametrize("vector", VECTORS["invalid_credentials"], ids=lambda v: v["name"])
def test_invalid_credentials_are_refused_for_their_rule(vector: dict[str, Any]) -> None:
    error = getattr(credential_module, vector["error"])
    with pytest.raises(error):
        verify_credential(
            h(vector["wire_hex"]), network=NETWORK, check=check(), subject=member_key("initiator")
        )


def test_the_credentialed_handshake_rebuilds_frame_for_frame() -> None:
    def party(role: str) -> dict[str, Any]:
        return {
            "identity": Identity.from_seed(h(HANDSHAKE[role]["identity_seed_hex"])),
            "network": NETWORK,
            "static_private": h(HANDSHAKE[role]["static_private_hex"]),
            "ephemeral_private": h(HANDSHAKE[role]["ephemeral_private_hex"]),
            "credential": h(next(c for c in VECTORS["credentials"] if c["name"] == role)["wire_hex"]),
            "credential_check": check(),
        }

    first = Session.initiator(responder_node_key=member_key("responder"), **party("initiator"))
    second = Session.responder(is_allowed=lambda key: True, **party("responder"))
    frames = [h(frame) for frame in VECTORS["handshake"]["frames_hex"]]
    assert first.start() == frames[0]
    assert drain(second, frames[0]) == []
    assert second.take_outgoing() == [frames[1]]
    (first_done,) = drain(first, frames[1])
    assert first.take_outgoing() == [frames[2]]
    (second_done,) = drain(second, frames[2])
    assert isinstance(first_done, HandshakeComplete) and isinstance(second_done, HandshakeComplete)
    assert first_done.handshake_hash.hex() == VECTORS["handshake"]["handshake_hash_hex"]
    assert first_done.credential is not None and first_done.credential.org == "Office of Communications"
    assert second_done.credential is not None and second_done.credential.category == "enforcement"


def test_the_invite_token() -> None:
    vector = VECTORS["invite"]
    invite = decode_invite(vector["token"])
    assert (invite.network, invite.address) == (vector["network"], vector["address"])
    assert PublicKey(invite.node).node_id == vector["node_id"]
    assert (
        invite.authority is not None and authority_id(PublicKey(invite.authority)) == vector["authority_id"]
    )


def test_the_revocation_rebuilds_byte_for_byte() -> None:
    vector = VECTORS["revocation"]
    made = issue_revocation(
        authority(),
        network=NETWORK,
        subject=member_key("initiator"),
        reason=vector["inputs"]["reason"],
        issued_at=vector["inputs"]["at"],
    )
    assert made.wire.hex() == vector["wire_hex"] and made.id.hex() == vector["id_hex"]
    assert PublicKey(made.subject).node_id == vector["subject_node_id"]
    body = h(vector["body_hex"])
    assert h(vector["signed_bytes_hex"]) == REVOCATION_DOMAIN + signed_message(NETWORK, body)
    assert dearmor(REVOCATION_FILE_LABEL, vector["file"].encode()) == made.wire
    trusted = TrustedAuthorities([authority().public_key])
    assert verify_statement(made.wire, network=NETWORK, trusted=trusted) == made


@pytest.mark.parametrize("vector", VECTORS["invalid_revocations"], ids=lambda v: v["name"])
def test_invalid_revocations_are_refused_for_their_rule(vector: dict[str, Any]) -> None:
    error = getattr(statements_module, vector["error"])
    with pytest.raises(error):
        verify_statement(
            h(vector["wire_hex"]), network=NETWORK, trusted=TrustedAuthorities([authority().public_key])
        )


def test_the_rotation_rebuilds_byte_for_byte() -> None:
    vector = VECTORS["rotation"]
    old = Identity.from_seed(h(HANDSHAKE["responder"]["identity_seed_hex"]))
    new = Identity.from_seed(h(vector["new_seed_hex"]))
    made = issue_rotation(
        old, new, network=NETWORK, rotated_at=vector["inputs"]["at"], last_seq=vector["inputs"]["seq"]
    )
    assert made.wire.hex() == vector["wire_hex"] and made.id.hex() == vector["id_hex"]
    assert (made.old_node_id, made.new_node_id) == (vector["old_node_id"], vector["new_node_id"])
    assert h(vector["signed_bytes_hex"]) == ROTATION_DOMAIN + signed_message(NETWORK, h(vector["body_hex"]))
    assert dearmor(ROTATION_FILE_LABEL, vector["file"].encode()) == made.wire
    assert verify_rotation(made.wire, network=NETWORK) == made


@pytest.mark.parametrize("vector", VECTORS["invalid_rotations"], ids=lambda v: v["name"])
def test_invalid_rotations_are_refused_for_their_rule(vector: dict[str, Any]) -> None:
    error = getattr(statements_module, vector["error"])
    with pytest.raises(error):
        verify_statement(h(vector["wire_hex"]), network=NETWORK, trusted=TrustedAuthorities())


def test_the_retraction_rebuilds_byte_for_byte() -> None:
    vector = VECTORS["retraction"]
    author = Identity.from_seed(h(HANDSHAKE["initiator"]["identity_seed_hex"]))
    inputs = vector["inputs"]
    made = issue_retraction(
        author,
        network=NETWORK,
        target=h(inputs["target_hex"]),
        reason=inputs["reason"],
        retracted_at=inputs["at"],
    )
    assert made.wire.hex() == vector["wire_hex"] and made.id.hex() == vector["id_hex"]
    assert made.author_id == vector["author_node_id"]
    body = h(vector["body_hex"])
    assert h(vector["signed_bytes_hex"]) == RETRACTION_DOMAIN + signed_message(NETWORK, body)
    again = verify_statement(made.wire, network=NETWORK, trusted=TrustedAuthorities())
    assert isinstance(again, Retraction) and again == made


@pytest.mark.parametrize("vector", VECTORS["invalid_retractions"], ids=lambda v: v["name"])
def test_invalid_retractions_are_refused_for_their_rule(vector: dict[str, Any]) -> None:
    error = getattr(statements_module, vector["error"])
    with pytest.raises(error):
        verify_statement(h(vector["wire_hex"]), network=NETWORK, trusted=TrustedAuthorities())


def test_the_rotated_handshake_rebuilds_frame_for_frame() -> None:
    vector = VECTORS["rotated_handshake"]
    first = Session.initiator(
        identity=Identity.from_seed(h(HANDSHAKE["initiator"]["identity_seed_hex"])),
        network=NETWORK,
        static_private=h(HANDSHAKE["initiator"]["static_private_hex"]),
        ephemeral_private=h(HANDSHAKE["initiator"]["ephemeral_private_hex"]),
        responder_node_key=member_key("responder"),
    )
    second = Session.responder(
        identity=Identity.from_seed(h(VECTORS["rotation"]["new_seed_hex"])),
        network=NETWORK,
        static_private=h(vector["responder_static_private_hex"]),
        ephemeral_private=h(HANDSHAKE["responder"]["ephemeral_private_hex"]),
        is_allowed=member_key("initiator").__eq__,
        rotation=h(VECTORS["rotation"]["wire_hex"]),
    )
    frames = [h(frame) for frame in vector["frames_hex"]]
    assert first.start() == frames[0]
    assert drain(second, frames[0]) == []
    assert second.take_outgoing() == [frames[1]]
    (done,) = drain(first, frames[1])
    assert first.take_outgoing() == [frames[2]]
    assert isinstance(done, HandshakeComplete) and done.handshake_hash.hex() == vector["handshake_hash_hex"]
    assert done.rotation is not None and done.rotation.wire.hex() == VECTORS["rotation"]["wire_hex"]
