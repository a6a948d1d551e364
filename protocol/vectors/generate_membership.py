"""Rebuild the membership vectors of protocol/SPEC.md §8: `python -m protocol.vectors.generate_membership`.

Rule 1: no randomness and no clock. The authority is RFC 8032 §7.1 TEST 3, the members are TEST 1 and 2
(the handshake vectors' initiator and responder, with the same Noise keys), every time is a constant, and
Ed25519 is deterministic; so the output is a pure function of this file and the protocol code, and
`tests/protocol/test_membership_vectors.py` compares it with the committed `membership.json`.
Rule 2: valid objects are made by the code under test (`issue_credential`, `Session`, `encode_invite`).
Invalid credentials are forged here, each breaking exactly one rule of §8.2 and otherwise well-formed and
validly signed by the authority, so that a verifier that skips the rule accepts it.
Rule 3: pure until `main`: `render()` returns the file text; only `main` touches the filesystem.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from keys.identity import Identity
from keys.membership import (
    CREDENTIAL_DOMAIN,
    RETRACTION_DOMAIN,
    REVOCATION_DOMAIN,
    ROTATION_DOMAIN,
    TrustedAuthorities,
    authority_id,
)
from protocol import codec
from protocol.armor import armor
from protocol.codec import Value
from protocol.credential import (
    FILE_LABEL,
    Credential,
    CredentialCheck,
    issue_credential,
    signed_message,
    verify_credential,
)
from protocol.invite import Invite, encode_invite
from protocol.session import HandshakeComplete, Session
from protocol.statements import (
    REVOCATION_FILE_LABEL,
    ROTATION_FILE_LABEL,
    issue_retraction,
    issue_revocation,
    issue_rotation,
    statement_id,
)
from protocol.vectors.generate import SEEDS, write_or_check
from protocol.vectors.generate_handshake import IDENTITY_SEEDS, STATIC_KEYS, deliver, ephemeral_key

FILE_NAME: Final = "membership.json"
NETWORK: Final = "test-net"
AUTHORITY_SEED: Final = SEEDS["rfc8032-test3"]
# A second authority, trusted by nobody in these vectors: the bytes 0x00..0x1f as its seed.
STRANGER_SEED: Final = bytes(range(32))
T0: Final = 1_780_000_000_000  # 2026-05-28T20:26:40Z: the verifier's clock in every check below
DAY: Final = 86_400_000
MEMBERS: Final = {
    "initiator": ("Autoriteit Consument & Markt", "enforcement", "NL"),
    "responder": ("Office of Communications", "government", "GB"),
}


def authority() -> Identity:
    return Identity.from_seed(AUTHORITY_SEED)


def member(role: str) -> Identity:
    return Identity.from_seed(IDENTITY_SEEDS[role])


def credential(role: str) -> Credential:
    org, category, jurisdiction = MEMBERS[role]
    return issue_credential(
        authority(),
        network=NETWORK,
        subject=member(role).public_key.raw,
        org=org,
        category=category,
        jurisdiction=jurisdiction,
        not_before=T0 - DAY,
        not_after=T0 + 365 * DAY,
    )


def check() -> CredentialCheck:
    return CredentialCheck(TrustedAuthorities([authority().public_key]), T0)


def credential_vector(role: str) -> dict[str, Any]:
    made = credential(role)
    body = codec.encode(made.body.to_wire())
    return {
        "name": role,
        "subject_node_id": member(role).node_id,
        "inputs": {
            "network": NETWORK,
            "org": made.org,
            "category": made.category,
            "jurisdiction": made.jurisdiction,
            "not_before": made.body.not_before,
            "not_after": made.not_after,
        },
        "body_hex": body.hex(),
        "signed_bytes_hex": (CREDENTIAL_DOMAIN + signed_message(NETWORK, body)).hex(),
        "signature_hex": codec.decode(made.wire, max_size=1024)["s"].hex(),
        "wire_hex": made.wire.hex(),
        "file": armor(FILE_LABEL, made.wire),
    }


def _signed(body: Mapping[str, Value], *, signer: Identity | None = None, network: str = NETWORK) -> bytes:
    """A credential around `body` (any map), signed as the rules say unless the vector is about that."""
    body_bytes = codec.encode(dict(body))
    signature = (signer or authority()).sign(CREDENTIAL_DOMAIN, signed_message(network, body_bytes))
    return codec.encode({"b": body_bytes, "s": signature})


def _body(**changes: Value) -> dict[str, Value]:
    body = dict(credential("initiator").body.to_wire())
    body.update(changes)
    return {k: v for k, v in body.items() if v is not _DROP}


_DROP: Final = object()
_STRANGER = Identity.from_seed(STRANGER_SEED)

# name -> (rule broken, error class a conforming verifier raises, the forged wire bytes)
INVALID: Final[dict[str, tuple[str, str, Callable[[], bytes]]]] = {
    "trailing-byte": (
        "§2: one value, no trailing bytes",
        "MalformedCredential",
        lambda: credential("initiator").wire + b"\x00",
    ),
    "extra-field": (
        "§8.2: exactly the fields v, net, auth, ...",
        "MalformedCredential",
        lambda: _signed(_body(x=1)),
    ),
    "missing-field": (
        "§8.2: exactly the fields v, net, auth, ...",
        "MalformedCredential",
        lambda: _signed(_body(jur=_DROP)),
    ),
    "version-2": ("§8.2: v is 1", "MalformedCredential", lambda: _signed(_body(v=2))),
    "boolean-version": (
        "§2 rule 1: a boolean is not an integer",
        "MalformedCredential",
        lambda: _signed(_body(v=True)),
    ),
    "unknown-category": (
        "§8.2: cat is a member category",
        "MalformedCredential",
        lambda: _signed(_body(cat="police")),
    ),
    "lowercase-jurisdiction": (
        "§8.2: jur is two uppercase letters",
        "MalformedCredential",
        lambda: _signed(_body(jur="nl")),
    ),
    "empty-org": ("§8.2: org is 1 to 200 characters", "MalformedCredential", lambda: _signed(_body(org=""))),
    "exp-before-nbf": (
        "§8.2: exp after nbf",
        "MalformedCredential",
        lambda: _signed(_body(exp=T0 - 2 * DAY)),
    ),
    "short-signature": (
        "§8.2: s is 64 bytes",
        "MalformedCredential",
        lambda: codec.encode({"b": codec.encode(_body()), "s": bytes(63)}),
    ),
    "other-network": (
        "§8.2 step 3: net is the verifier's network",
        "CredentialWrongNetwork",
        lambda: _signed(_body(net="other-net"), network="other-net"),
    ),
    "untrusted-authority": (
        "§8.2 step 4: auth is trusted",
        "CredentialUntrusted",
        lambda: _signed(_body(auth=_STRANGER.public_key.raw), signer=_STRANGER),
    ),
    "signed-by-another-key": (
        "§8.2 step 5: the signature verifies under auth",
        "CredentialBadSignature",
        lambda: _signed(_body(), signer=_STRANGER),
    ),
    "signed-for-another-network": (
        "§8.2 step 5: net is inside the signed bytes",
        "CredentialBadSignature",
        lambda: _signed(_body(), network="other-net"),
    ),
    "tampered-org": (
        "§8.2 step 5: the body is signed as it travels",
        "CredentialBadSignature",
        lambda: _tampered_org(),
    ),
    "for-the-responder": (
        "§8.2 step 6: node is the authenticated peer",
        "CredentialWrongSubject",
        lambda: credential("responder").wire,
    ),
    "not-yet-valid": (
        "§8.2 step 8: now >= nbf - 60 s",
        "CredentialNotYetValid",
        lambda: _signed(_body(nbf=T0 + 61_000, exp=T0 + DAY)),
    ),
    "expired": (
        "§8.2 step 8: now < exp",
        "CredentialExpired",
        lambda: _signed(_body(nbf=T0 - 2 * DAY, exp=T0)),
    ),
}


def _tampered_org() -> bytes:
    good = codec.decode(_signed(_body()), max_size=1024)
    return codec.encode(
        {"b": codec.encode(_body(org="Autoriteit Consument & Markt (forged)")), "s": good["s"]}
    )


def invalid_vectors() -> list[dict[str, Any]]:
    vectors = []
    for name, (rule, error, make) in INVALID.items():
        wire = make()
        vectors.append({"name": name, "rule": rule, "error": error, "wire_hex": wire.hex()})
    return vectors


def credentialed_sessions() -> tuple[Session, Session]:
    """The handshake vectors' two parties, each presenting its credential and demanding the other's."""
    initiator = Session.initiator(
        identity=member("initiator"),
        network=NETWORK,
        static_private=STATIC_KEYS["initiator"],
        ephemeral_private=ephemeral_key("initiator"),
        responder_node_key=member("responder").public_key.raw,
        credential=credential("initiator").wire,
        credential_check=check(),
    )
    responder = Session.responder(
        identity=member("responder"),
        network=NETWORK,
        static_private=STATIC_KEYS["responder"],
        ephemeral_private=ephemeral_key("responder"),
        is_allowed=lambda key: True,
        credential=credential("responder").wire,
        credential_check=check(),
    )
    return initiator, responder


def handshake_vector() -> dict[str, Any]:
    initiator, responder = credentialed_sessions()
    message_1 = initiator.start()
    assert deliver(responder, message_1) == []
    (message_2,) = responder.take_outgoing()
    (initiator_done,) = deliver(initiator, message_2)
    (message_3,) = initiator.take_outgoing()
    (responder_done,) = deliver(responder, message_3)
    assert isinstance(initiator_done, HandshakeComplete) and isinstance(responder_done, HandshakeComplete)
    assert initiator_done.credential == credential("responder")
    assert responder_done.credential == credential("initiator")
    return {
        "comment": "handshake.json's parties and keys, each presenting credentials[role] (SPEC §8.3); "
        "both sides check at now_ms with the authority as the only trusted one",
        "now_ms": T0,
        "frames_hex": [message_1.hex(), message_2.hex(), message_3.hex()],
        "handshake_hash_hex": initiator_done.handshake_hash.hex(),
    }


def invite_vector() -> dict[str, Any]:
    invite = Invite(
        NETWORK, member("responder").public_key.raw, "node.ofcom.example:7450", authority().public_key.raw
    )
    return {
        "network": invite.network,
        "node_id": member("responder").node_id,
        "address": invite.address,
        "authority_id": authority_id(authority().public_key),
        "token": encode_invite(invite),
    }


def revocation_wire() -> bytes:
    return issue_revocation(
        authority(),
        network=NETWORK,
        subject=member("initiator").public_key.raw,
        reason="Key compromised; a new one is being issued",
        issued_at=T0,
    ).wire


def revocation_vector() -> dict[str, Any]:
    wire = revocation_wire()
    body = codec.decode(wire, max_size=2048)["b"]
    return {
        "subject_node_id": member("initiator").node_id,
        "inputs": {"reason": "Key compromised; a new one is being issued", "at": T0},
        "body_hex": body.hex(),
        "signed_bytes_hex": (REVOCATION_DOMAIN + signed_message(NETWORK, body)).hex(),
        "wire_hex": wire.hex(),
        "id_hex": statement_id(wire).hex(),
        "file": armor(REVOCATION_FILE_LABEL, wire),
    }


def _revocation(
    *,
    signer: Identity | None = None,
    network: str = NETWORK,
    domain: bytes = REVOCATION_DOMAIN,
    **changes: Value,
) -> bytes:
    body = dict(codec.decode(codec.decode(revocation_wire(), max_size=2048)["b"], max_size=2048))
    body.update(changes)
    body = {k: v for k, v in body.items() if v is not _DROP}
    body_bytes = codec.encode(body)
    signature = (signer or authority()).sign(domain, signed_message(network, body_bytes))
    return codec.encode({"b": body_bytes, "s": signature})


INVALID_REVOCATIONS: Final[dict[str, tuple[str, str, Callable[[], bytes]]]] = {
    "unknown-type": ("§8.7: t is revoke", "StatementError", lambda: _revocation(t="unrevoke")),
    "extra-field": ("§8.7: exactly the fields", "StatementError", lambda: _revocation(x=1)),
    "empty-reason": ("§8.7: reason is 1 to 500 characters", "StatementError", lambda: _revocation(reason="")),
    "other-network": (
        "§8.7: net is the verifier's",
        "StatementError",
        lambda: _revocation(net="other-net", network="other-net"),
    ),
    "credential-domain": (
        "§1: each statement under its own domain",
        "StatementError",
        lambda: _revocation(domain=CREDENTIAL_DOMAIN),
    ),
    "untrusted-authority": (
        "§8.7: by a trusted authority",
        "UntrustedStatement",
        lambda: _revocation(auth=_STRANGER.public_key.raw, signer=_STRANGER),
    ),
}


def invalid_revocations() -> list[dict[str, Any]]:
    return [
        {"name": name, "rule": rule, "error": error, "wire_hex": make().hex()}
        for name, (rule, error, make) in INVALID_REVOCATIONS.items()
    ]


# The responder's next key: RFC 8032 §7.1 TEST 1024's secret key, another seed anyone can check; and
# its Noise static key, any 32 bytes (X25519 clamps them).
NEXT_SEED: Final = bytes.fromhex("f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5")
NEXT_STATIC: Final = bytes.fromhex("a8abababababababababababababababababababababababababababababab6b")


def rotation_wire() -> bytes:
    return issue_rotation(
        member("responder"), Identity.from_seed(NEXT_SEED), network=NETWORK, rotated_at=T0, last_seq=7
    ).wire


def rotation_vector() -> dict[str, Any]:
    wire = rotation_wire()
    body = codec.decode(wire, max_size=2048)["b"]
    return {
        "comment": "the responder of the handshake vectors replaces its key; n is the new key's signature",
        "old_node_id": member("responder").node_id,
        "new_seed_hex": NEXT_SEED.hex(),
        "new_node_id": Identity.from_seed(NEXT_SEED).node_id,
        "inputs": {"at": T0, "seq": 7},
        "body_hex": body.hex(),
        "signed_bytes_hex": (ROTATION_DOMAIN + signed_message(NETWORK, body)).hex(),
        "wire_hex": wire.hex(),
        "id_hex": statement_id(wire).hex(),
        "file": armor(ROTATION_FILE_LABEL, wire),
    }


def _rotation(
    *, old_signer: Identity | None = None, new_signer: Identity | None = None, **changes: Value
) -> bytes:
    body = dict(codec.decode(codec.decode(rotation_wire(), max_size=2048)["b"], max_size=2048))
    body.update(changes)
    body_bytes = codec.encode({k: v for k, v in body.items() if v is not _DROP})
    message = signed_message(NETWORK, body_bytes)
    old = old_signer or member("responder")
    new = new_signer or Identity.from_seed(NEXT_SEED)
    return codec.encode(
        {"b": body_bytes, "n": new.sign(ROTATION_DOMAIN, message), "s": old.sign(ROTATION_DOMAIN, message)}
    )


INVALID_ROTATIONS: Final[dict[str, tuple[str, str, Callable[[], bytes]]]] = {
    "not-signed-by-the-old-key": (
        "§8.8: s by old",
        "StatementError",
        lambda: _rotation(old_signer=_STRANGER),
    ),
    "not-signed-by-the-new-key": (
        "§8.8: n by new",
        "StatementError",
        lambda: _rotation(new_signer=_STRANGER),
    ),
    "same-key": (
        "§8.8: new differs from old",
        "StatementError",
        lambda: _rotation(new=member("responder").public_key.raw, new_signer=member("responder")),
    ),
    "negative-seq": ("§8.8: seq is 0 or a sequence number", "StatementError", lambda: _rotation(seq=-1)),
    "missing-seq": ("§8.8: exactly the fields", "StatementError", lambda: _rotation(seq=_DROP)),
}


def invalid_rotations() -> list[dict[str, Any]]:
    return [
        {"name": name, "rule": rule, "error": error, "wire_hex": make().hex()}
        for name, (rule, error, make) in INVALID_ROTATIONS.items()
    ]


# The record the initiator retracts: any 32-byte record id (§8.10 does not look inside it).
RETRACTED_RECORD: Final = bytes(range(32, 64))


def retraction_wire() -> bytes:
    return issue_retraction(
        member("initiator"), network=NETWORK, target=RETRACTED_RECORD, reason="error", retracted_at=T0
    ).wire


def retraction_vector() -> dict[str, Any]:
    wire = retraction_wire()
    body = codec.decode(wire, max_size=2048)["b"]
    return {
        "comment": "the initiator of the handshake vectors retracts its record target_hex",
        "author_node_id": member("initiator").node_id,
        "inputs": {"target_hex": RETRACTED_RECORD.hex(), "reason": "error", "at": T0},
        "body_hex": body.hex(),
        "signed_bytes_hex": (RETRACTION_DOMAIN + signed_message(NETWORK, body)).hex(),
        "wire_hex": wire.hex(),
        "id_hex": statement_id(wire).hex(),
    }


def _retraction(
    *, signer: Identity | None = None, domain: bytes = RETRACTION_DOMAIN, **changes: Value
) -> bytes:
    body = dict(codec.decode(codec.decode(retraction_wire(), max_size=2048)["b"], max_size=2048))
    body.update(changes)
    body_bytes = codec.encode({k: v for k, v in body.items() if v is not _DROP})
    signature = (signer or member("initiator")).sign(domain, signed_message(NETWORK, body_bytes))
    return codec.encode({"b": body_bytes, "s": signature})


INVALID_RETRACTIONS: Final[dict[str, tuple[str, str, Callable[[], bytes]]]] = {
    "not-signed-by-the-author": (
        "§8.10: s by author",
        "StatementError",
        lambda: _retraction(signer=_STRANGER),
    ),
    "revocation-domain": (
        "§1: each statement under its own domain",
        "StatementError",
        lambda: _retraction(domain=REVOCATION_DOMAIN),
    ),
    "free-text-reason": (
        "§8.10: reason is a code",
        "StatementError",
        lambda: _retraction(reason="sent to the wrong case"),
    ),
    "short-target": (
        "§8.10: target is a 32-byte record id",
        "StatementError",
        lambda: _retraction(target=b"x"),
    ),
    "extra-field": ("§8.10: exactly the fields", "StatementError", lambda: _retraction(note="x")),
}


def invalid_retractions() -> list[dict[str, Any]]:
    return [
        {"name": name, "rule": rule, "error": error, "wire_hex": make().hex()}
        for name, (rule, error, make) in INVALID_RETRACTIONS.items()
    ]


def rotated_handshake_vector() -> dict[str, Any]:
    """The initiator dials the responder's old key; the responder answers with its new key and the
    rotation, and the initiator follows it (legacy mode: no credentials)."""
    new = Identity.from_seed(NEXT_SEED)
    initiator = Session.initiator(
        identity=member("initiator"),
        network=NETWORK,
        static_private=STATIC_KEYS["initiator"],
        ephemeral_private=ephemeral_key("initiator"),
        responder_node_key=member("responder").public_key.raw,
    )
    responder = Session.responder(
        identity=new,
        network=NETWORK,
        static_private=NEXT_STATIC,
        ephemeral_private=ephemeral_key("responder"),
        is_allowed=member("initiator").public_key.raw.__eq__,
        rotation=rotation_wire(),
    )
    message_1 = initiator.start()
    assert deliver(responder, message_1) == []
    (message_2,) = responder.take_outgoing()
    (initiator_done,) = deliver(initiator, message_2)
    (message_3,) = initiator.take_outgoing()
    (responder_done,) = deliver(responder, message_3)
    assert isinstance(initiator_done, HandshakeComplete) and isinstance(responder_done, HandshakeComplete)
    assert initiator_done.peer_node_key == new.public_key.raw and initiator_done.rotation is not None
    return {
        "comment": "handshake.json's initiator pins the responder's old key; the responder presents its new "
        "key (static key below) with rot = rotation.wire_hex; ephemeral keys as in handshake.json",
        "responder_static_private_hex": NEXT_STATIC.hex(),
        "frames_hex": [message_1.hex(), message_2.hex(), message_3.hex()],
        "handshake_hash_hex": initiator_done.handshake_hash.hex(),
    }


def build() -> dict[str, Any]:
    for role in MEMBERS:  # the vectors are valid at T0, as the file says
        verify_credential(
            credential(role).wire, network=NETWORK, check=check(), subject=member(role).public_key.raw
        )
    return {
        "comment": "Membership vectors for protocol/SPEC.md §8; layout in §8, 'Vectors'.",
        "network": NETWORK,
        "now_ms": T0,
        "authority": {
            "seed_hex": AUTHORITY_SEED.hex(),
            "public_key_hex": authority().public_key.raw.hex(),
            "authority_id": authority_id(authority().public_key),
        },
        "credentials": [credential_vector(role) for role in MEMBERS],
        "invalid_credentials": invalid_vectors(),
        "handshake": handshake_vector(),
        "invite": invite_vector(),
        "revocation": revocation_vector(),
        "invalid_revocations": invalid_revocations(),
        "rotation": rotation_vector(),
        "invalid_rotations": invalid_rotations(),
        "rotated_handshake": rotated_handshake_vector(),
        "retraction": retraction_vector(),
        "invalid_retractions": invalid_retractions(),
    }


def render() -> dict[str, str]:
    return {FILE_NAME: json.dumps(build(), indent=2, ensure_ascii=False) + "\n"}


def main(argv: Sequence[str] | None = None) -> int:
    return write_or_check("python -m protocol.vectors.generate_membership", __doc__, render(), argv)


if __name__ == "__main__":
    sys.exit(main())
