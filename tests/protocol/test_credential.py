"""protocol/credential.py and protocol/armor.py: issuing, verifying and filing credentials, and the
handshake's credential rules (SPEC §8.2, §8.3). Every refusal names the rule; the vectors in
test_membership_vectors.py cover one forged credential per rule as a second implementation sees them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from keys.membership import TrustedAuthorities
from protocol import codec
from protocol.armor import armor, dearmor
from protocol.credential import (
    FILE_LABEL,
    MAX_CREDENTIAL_SIZE,
    NOT_BEFORE_SKEW_MS,
    CredentialCheck,
    CredentialError,
    CredentialExpired,
    CredentialNotYetValid,
    CredentialRevoked,
    CredentialUntrusted,
    CredentialWrongSubject,
    MalformedCredential,
    decode_credential,
    issue_credential,
    verify_credential,
)
from protocol.errors import Malformed
from protocol.session import HandshakeComplete, HandshakeFailed, Session
from protocol.statements import issue_rotation
from tests.factories import identity
from tests.protocol.test_session import ALICE, BOB, MALLORY, NETWORK, Attempt, Node, attempt, secret

AUTHORITY, STRANGER = identity("secretariat"), identity("stranger authority")
T0 = 1_780_000_000_000
DAY = 86_400_000
TRUSTED = TrustedAuthorities([AUTHORITY.public_key])


def issue(node: Node = ALICE, *, signer: object = AUTHORITY, **changes: object) -> bytes:
    values: dict[str, object] = {
        "network": NETWORK,
        "subject": node.key,
        "org": "Autoriteit Consument & Markt",
        "category": "enforcement",
        "jurisdiction": "NL",
        "not_before": T0,
        "not_after": T0 + 30 * DAY,
    }
    values.update(changes)
    return issue_credential(signer, **values).wire  # type: ignore[arg-type]


def check(now: int = T0, revoked: frozenset[bytes] = frozenset()) -> CredentialCheck:
    return CredentialCheck(TRUSTED, now, revoked)


def test_a_credential_verifies_and_says_who_the_node_is() -> None:
    credential = verify_credential(issue(), network=NETWORK, check=check(), subject=ALICE.key)
    assert (credential.org, credential.category, credential.jurisdiction) == (
        "Autoriteit Consument & Markt",
        "enforcement",
        "NL",
    )
    assert credential.body.node_id == ALICE.identity.node_id
    assert credential.body.authority_id.startswith("lapauth1")
    # Without a subject (inspecting a file) the other checks still apply.
    assert verify_credential(issue(), network=NETWORK, check=check()).subject == ALICE.key


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"org": ""}, "org"),
        ({"org": " padded"}, "org"),
        ({"org": "two\nlines"}, "org"),
        ({"org": "x" * 201}, "org"),
        ({"org": "\U0001f600" * 150}, "org"),  # 150 characters but 600 bytes
        ({"category": "police"}, "cat"),
        ({"category": b"enforcement"}, "cat"),
        ({"jurisdiction": "nl"}, "jur"),
        ({"jurisdiction": "NLD"}, "jur"),
        ({"not_before": -1}, "nbf"),
        ({"not_after": 2**53}, "exp"),
        ({"not_after": T0}, "exp must be after nbf"),
        ({"not_before": True}, "nbf"),
        ({"subject": b"short"}, "node"),
        ({"network": ""}, "net"),
        ({"network": "n" * 65}, "net"),
    ],
)
def test_issuing_refuses_what_no_verifier_would_accept(changes: dict[str, object], message: str) -> None:
    with pytest.raises(MalformedCredential, match=message):
        issue(**changes)


def test_validity_boundaries_and_clock_skew() -> None:
    wire = issue()
    assert verify_credential(wire, network=NETWORK, check=check(T0 - NOT_BEFORE_SKEW_MS))
    with pytest.raises(CredentialNotYetValid):
        verify_credential(wire, network=NETWORK, check=check(T0 - NOT_BEFORE_SKEW_MS - 1))
    assert verify_credential(wire, network=NETWORK, check=check(T0 + 30 * DAY - 1))
    with pytest.raises(CredentialExpired):
        verify_credential(wire, network=NETWORK, check=check(T0 + 30 * DAY))


def test_refusals_in_order() -> None:
    with pytest.raises(CredentialWrongSubject, match="not this node"):
        verify_credential(issue(), network=NETWORK, check=check(), subject=BOB.key)
    with pytest.raises(CredentialRevoked):
        verify_credential(issue(), network=NETWORK, check=check(revoked=frozenset({ALICE.key})))
    # An untrusted issuer is refused before its (valid) signature is even looked at.
    with pytest.raises(CredentialUntrusted, match="does not trust"):
        verify_credential(issue(signer=STRANGER), network=NETWORK, check=check())
    nobody = CredentialCheck(TrustedAuthorities(), T0)
    with pytest.raises(CredentialUntrusted):
        verify_credential(issue(), network=NETWORK, check=nobody)


@pytest.mark.parametrize(
    "raw",
    [b"", b"\xc1", b"\x80", codec.encode([1, 2]), codec.encode({"b": b"", "s": bytes(64)}), bytes(2000)],
)
def test_garbage_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedCredential):
        verify_credential(raw, network=NETWORK, check=check())
    with pytest.raises(CredentialError):
        decode_credential(raw)


def test_the_largest_credential_fits_the_handshake_limit() -> None:
    wire = issue(org="\u00e9" * 200, network="n" * 64)  # 400 bytes of org: the most that passes both limits
    assert len(wire) <= MAX_CREDENTIAL_SIZE
    assert decode_credential(wire).unverified_body.org == "\u00e9" * 200


# --- files -------------------------------------------------------------------------------------------------


def test_a_credential_file_round_trips() -> None:
    wire = issue()
    text = armor(FILE_LABEL, wire)
    assert text.startswith("lapnode-credential/1\n") and text.endswith("\n")
    assert dearmor(FILE_LABEL, text.encode()) == wire
    assert dearmor(FILE_LABEL, text.rstrip("\n").encode()) == wire  # an editor dropped the final newline
    assert dearmor(FILE_LABEL, text.replace("\n", "\r\n").encode()) == wire


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda t: t.replace("lapnode-credential/1", "lapnode-credential/2"), "not a lapnode-credential/1"),
        (lambda t: "", "not a lapnode-credential/1"),
        (lambda t: t + "more\n", "exactly two lines"),
        (lambda t: t.replace("\n", "\n\n", 1), "exactly two lines"),
        (lambda t: t[:-3] + "*\n", "not base64"),
        (lambda t: t[:-4] + "\n", "not base64"),
        (
            lambda t: t[:-2] + ("B" if t[-2] == "A" else "A") + "\n" if t.endswith("=\n") else t + "x",
            "base64",
        ),
        (lambda t: t + "x" * 20_000, "too large"),
    ],
)
def test_a_damaged_credential_file_is_an_error(mangle: object, message: str) -> None:
    assert callable(mangle)
    with pytest.raises(Malformed, match=message):
        dearmor(FILE_LABEL, mangle(armor(FILE_LABEL, issue())).encode())


# --- the handshake (§8.3) ------------------------------------------------------------------------------


def strict_initiator(me: Node = ALICE, *, credential: bytes | None, now: int = T0) -> Session:
    return Session.initiator(
        identity=me.identity,
        network=NETWORK,
        static_private=me.static,
        ephemeral_private=secret("ephemeral/strict-initiator"),
        responder_node_key=BOB.key,
        credential=credential,
        credential_check=check(now),
    )


def strict_responder(*, credential: bytes | None, now: int = T0, admit: bool = True) -> Session:
    return Session.responder(
        identity=BOB.identity,
        network=NETWORK,
        static_private=BOB.static,
        ephemeral_private=secret("ephemeral/strict-responder"),
        is_allowed=lambda key: admit,
        credential=credential,
        credential_check=check(now),
    )


def completed(result: Attempt, side: str) -> HandshakeComplete:
    (done,) = [event for event in result.events[side] if isinstance(event, HandshakeComplete)]
    return done


def test_both_sides_learn_each_others_verified_credential() -> None:
    result = attempt(strict_initiator(credential=issue()), strict_responder(credential=issue(BOB)))
    first, second = completed(result, "initiator"), completed(result, "responder")
    assert first.credential is not None and first.credential.subject == BOB.key
    assert second.credential is not None and second.credential.subject == ALICE.key


def test_an_initiator_refuses_a_responder_without_credential_before_message_3() -> None:
    result = attempt(strict_initiator(credential=issue()), strict_responder(credential=None))
    error = result.errors["initiator"]
    assert isinstance(error, HandshakeFailed) and "presented no credential" in error.detail
    assert str(error) == "handshake failed"  # all the peer is ever told
    assert error.peer_key == BOB.key  # it proved who it is: the I/O layer may score it
    assert len(result.frames) == 2 and not result.completed("responder")


@pytest.mark.parametrize(
    ("credential", "now", "detail"),
    [
        (None, T0, "presented no credential"),
        (issue(MALLORY), T0, "CredentialWrongSubject"),  # someone else's credential
        (issue(signer=STRANGER), T0, "CredentialUntrusted"),
        (issue(), T0 + 31 * DAY, "CredentialExpired"),
        (b"not a credential", T0, "MalformedCredential"),
    ],
)
def test_a_responder_refuses_an_initiator_without_a_valid_credential(
    credential: bytes | None, now: int, detail: str
) -> None:
    result = attempt(
        strict_initiator(credential=credential, now=now),
        strict_responder(credential=issue(BOB, not_after=T0 + 90 * DAY), now=now),
    )
    error = result.errors["responder"]
    assert isinstance(error, HandshakeFailed) and detail in error.detail
    assert error.peer_key == ALICE.key
    assert not result.completed("responder")


def test_a_refused_binding_names_nobody() -> None:
    # The wrong network fails before the binding verifies: nothing proves who sent it.
    other = Session.initiator(
        identity=ALICE.identity,
        network="other-net",
        static_private=ALICE.static,
        ephemeral_private=secret("ephemeral/x"),
        responder_node_key=BOB.key,
    )
    error = attempt(other, strict_responder(credential=issue(BOB))).errors["initiator"]
    assert isinstance(error, HandshakeFailed) and error.peer_key is None


def legacy_responder() -> Session:
    return Session.responder(
        identity=BOB.identity,
        network=NETWORK,
        static_private=BOB.static,
        ephemeral_private=secret("ephemeral/legacy"),
        is_allowed={ALICE.key}.__contains__,
    )


def test_a_strict_initiator_refuses_a_legacy_responder() -> None:
    result = attempt(strict_initiator(credential=issue()), legacy_responder())
    assert "presented no credential" in result.errors["initiator"].detail


def test_legacy_mode_carries_a_credential_unverified() -> None:
    legacy_initiator = Session.initiator(
        identity=ALICE.identity,
        network=NETWORK,
        static_private=ALICE.static,
        ephemeral_private=secret("ephemeral/legacy-initiator"),
        responder_node_key=BOB.key,
        credential=b"anything at all",
    )
    done = completed(attempt(legacy_initiator, legacy_responder()), "responder")
    assert done.unverified_credential == b"anything at all" and done.credential is None


def test_replacing_fields_of_a_verified_credential_is_not_possible() -> None:
    credential = verify_credential(issue(), network=NETWORK, check=check())
    with pytest.raises((AttributeError, TypeError)):
        credential.body.org = "forged"  # type: ignore[misc]
    assert replace(credential.body, org="forged").org == "forged"  # a copy, which is not a Credential


# --- key rotation in the handshake (§8.8) -----------------------------------------------------------------

BOB_NEXT = Node("bob, rotated")


def rotation_of_bob(old: Node = BOB, new: Node = BOB_NEXT) -> bytes:
    return issue_rotation(old.identity, new.identity, network=NETWORK, rotated_at=T0, last_seq=3).wire


def rotated_responder(
    *, rotation: bytes | None, strict: bool = False, revoked: frozenset[bytes] = frozenset()
) -> Session:
    return Session.responder(
        identity=BOB_NEXT.identity,
        network=NETWORK,
        static_private=BOB_NEXT.static,
        ephemeral_private=secret("ephemeral/rotated-responder"),
        is_allowed=lambda key: True,
        credential=issue(BOB_NEXT) if strict else None,
        credential_check=CredentialCheck(TRUSTED, T0, revoked) if strict else None,
        rotation=rotation,
    )


def pinned_initiator(*, strict: bool = False, revoked: frozenset[bytes] = frozenset()) -> Session:
    return Session.initiator(
        identity=ALICE.identity,
        network=NETWORK,
        static_private=ALICE.static,
        ephemeral_private=secret("ephemeral/pinned-initiator"),
        responder_node_key=BOB.key,  # still the old key
        credential=issue() if strict else None,
        credential_check=CredentialCheck(TRUSTED, T0, revoked) if strict else None,
    )


@pytest.mark.parametrize("strict", [False, True])
def test_an_initiator_pinned_to_the_old_key_follows_the_rotation(strict: bool) -> None:
    result = attempt(
        pinned_initiator(strict=strict), rotated_responder(rotation=rotation_of_bob(), strict=strict)
    )
    done = completed(result, "initiator")
    assert done.peer_node_key == BOB_NEXT.key
    assert done.rotation is not None and done.rotation.old == BOB.key
    assert completed(result, "responder").rotation is None


def test_without_the_rotation_the_new_key_is_an_impostor() -> None:
    result = attempt(pinned_initiator(), rotated_responder(rotation=None))
    assert "not the pinned" in result.errors["initiator"].detail


@pytest.mark.parametrize(
    ("rotation", "detail"),
    [
        (lambda: rotation_of_bob(old=MALLORY), "not the pinned"),  # a rotation, but of another key
        (lambda: rotation_of_bob(new=MALLORY), "not into the key it presented"),
        (lambda: b"not a rotation", "StatementError"),
        (lambda: bytes(600), "rotation must be 1 to 512 bytes"),
    ],
)
def test_a_rotation_that_does_not_fit_is_refused(rotation: object, detail: str) -> None:
    assert callable(rotation)
    wire = rotation()
    if len(wire) > 512:
        responder = rotated_responder(rotation=None)
        responder._handshake._rotation = wire  # type: ignore[union-attr]  # what a misbehaving peer sends
    else:
        responder = rotated_responder(rotation=wire)
    error = attempt(pinned_initiator(), responder).errors["initiator"]
    assert isinstance(error, HandshakeFailed) and detail in error.detail


def test_a_rotation_from_a_revoked_key_is_not_followed() -> None:
    result = attempt(
        pinned_initiator(strict=True, revoked=frozenset({BOB.key})),
        rotated_responder(rotation=rotation_of_bob(), strict=True),
    )
    assert "rotated from a revoked key" in result.errors["initiator"].detail


def test_a_legacy_responder_admits_a_rotated_initiator_it_knew_by_the_old_key() -> None:
    rotated_alice = Node("alice, rotated")
    rotation = issue_rotation(
        ALICE.identity, rotated_alice.identity, network=NETWORK, rotated_at=T0, last_seq=0
    )
    first = Session.initiator(
        identity=rotated_alice.identity,
        network=NETWORK,
        static_private=rotated_alice.static,
        ephemeral_private=secret("ephemeral/rotated-alice"),
        responder_node_key=BOB.key,
        rotation=rotation.wire,
    )
    done = completed(attempt(first, legacy_responder()), "responder")  # it admits only ALICE's old key
    assert done.peer_node_key == rotated_alice.key and done.rotation == rotation
