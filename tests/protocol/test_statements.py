"""protocol/statements.py: revocations and rotations are issued, verified and refused for every rule of
SPEC §8.7 and §8.8."""

from __future__ import annotations

import pytest

from keys.membership import CREDENTIAL_DOMAIN, REVOCATION_DOMAIN, ROTATION_DOMAIN, TrustedAuthorities
from protocol import codec
from protocol.credential import signed_message
from protocol.statements import (
    MAX_STATEMENT_SIZE,
    Revocation,
    Rotation,
    StatementError,
    UntrustedStatement,
    digest,
    issue_revocation,
    issue_rotation,
    statement_id,
    verify_rotation,
    verify_statement,
)
from tests.factories import identity

NETWORK = "test-net"
AUTHORITY, STRANGER, ROGUE = identity("secretariat"), identity("stranger authority"), identity("rogue")
TRUSTED = TrustedAuthorities([AUTHORITY.public_key])
T0 = 1_780_000_000_000


def revoke(**changes: object) -> Revocation:
    values: dict[str, object] = {
        "network": NETWORK,
        "subject": ROGUE.public_key.raw,
        "reason": "stolen",
        "issued_at": T0,
    }
    values.update(changes)
    return issue_revocation(AUTHORITY, **values)  # type: ignore[arg-type]


def forged(
    *, signer: object = AUTHORITY, network: str = NETWORK, domain: bytes = REVOCATION_DOMAIN, **body: object
) -> bytes:
    fields: dict[str, object] = {
        "v": 1, "t": "revoke", "net": NETWORK, "auth": AUTHORITY.public_key.raw,
        "node": ROGUE.public_key.raw, "reason": "stolen", "at": T0,
    }  # fmt: skip
    fields.update(body)
    body_bytes = codec.encode({k: v for k, v in fields.items() if v is not None})
    signature = signer.sign(domain, signed_message(network, body_bytes))  # type: ignore[attr-defined]
    return codec.encode({"b": body_bytes, "s": signature})


def test_a_revocation_verifies_and_names_its_subject() -> None:
    made = revoke()
    again = verify_statement(made.wire, network=NETWORK, trusted=TRUSTED)
    assert again == made and isinstance(again, Revocation)
    assert (again.node_id, again.reason, again.issued_at) == (ROGUE.node_id, "stolen", T0)
    assert again.authority_id.startswith("lapauth1")
    assert again.id == statement_id(made.wire) and len(again.id) == 32
    assert forged() == made.wire  # the signature is deterministic: one statement, one id


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (lambda: forged(t="unrevoke"), "unknown membership statement type"),
        (lambda: forged(v=2), "version"),
        (lambda: forged(v=True), "version"),
        (lambda: forged(x=1), "exactly the fields"),
        (lambda: forged(at=None), "exactly the fields"),
        (lambda: forged(reason=""), "reason"),
        (lambda: forged(reason=" padded"), "reason"),
        (lambda: forged(reason="x" * 501), "reason"),
        (lambda: forged(reason="two\nlines"), "reason"),
        (lambda: forged(node=b"short"), "node must be a 32-byte key"),
        (lambda: forged(at=-1), "not a valid time"),
        (lambda: forged(net="other-net", network="other-net"), "network 'other-net'"),
        (lambda: forged(network="other-net"), "does not verify"),
        (lambda: forged(domain=CREDENTIAL_DOMAIN), "does not verify"),
        (lambda: forged(signer=STRANGER), "does not verify"),
        (
            lambda: codec.encode({"b": codec.decode(forged(), max_size=2048)["b"], "s": bytes(64), "x": 1}),
            "exactly b",
        ),
        (
            lambda: codec.encode({"b": codec.decode(forged(), max_size=2048)["b"], "s": bytes(63)}),
            "64-byte s",
        ),
        (lambda: codec.encode({"s": bytes(64)}), "body b"),
        (lambda: codec.encode({"b": codec.encode([1]), "s": bytes(64)}), "body is a map"),
        (lambda: b"\xc1", "statement"),
        (lambda: forged() + b"\x00", "statement"),
        (lambda: bytes(MAX_STATEMENT_SIZE + 1), "statement"),
    ],
)
def test_every_rule_refuses(wire: object, message: str) -> None:
    assert callable(wire)
    with pytest.raises(StatementError, match=message):
        verify_statement(wire(), network=NETWORK, trusted=TRUSTED)


def test_an_untrusted_authoritys_revocation_is_not_an_offence() -> None:
    wire = forged(signer=STRANGER, auth=STRANGER.public_key.raw)
    with pytest.raises(UntrustedStatement, match="does not trust"):
        verify_statement(wire, network=NETWORK, trusted=TRUSTED)
    assert not issubclass(UntrustedStatement, StatementError)
    with pytest.raises(UntrustedStatement):  # legacy mode trusts nobody
        verify_statement(revoke().wire, network=NETWORK, trusted=TrustedAuthorities())


def test_issuing_refuses_what_verifying_would() -> None:
    with pytest.raises(StatementError, match="reason"):
        revoke(reason="")
    with pytest.raises(StatementError, match="node"):
        revoke(subject=b"x")


def test_the_digest_is_of_the_set() -> None:
    ids = [statement_id(revoke(reason=f"reason {n}").wire) for n in range(3)]
    assert digest(ids) == digest(reversed(ids)) != digest(ids[:2])
    assert len(digest([])) == 32


# --- rotations (§8.8) ------------------------------------------------------------------------------------

OLD, NEW = identity("old key"), identity("new key")


def rotate(**changes: object) -> Rotation:
    values: dict[str, object] = {"network": NETWORK, "rotated_at": T0, "last_seq": 4}
    values.update(changes)
    return issue_rotation(OLD, NEW, **values)  # type: ignore[arg-type]


def forged_rotation(
    *, old_signer: object = OLD, new_signer: object = NEW, network: str = NETWORK, **body: object
) -> bytes:
    fields: dict[str, object] = {
        "v": 1, "t": "rotate", "net": NETWORK, "old": OLD.public_key.raw, "new": NEW.public_key.raw,
        "at": T0, "seq": 4,
    }  # fmt: skip
    fields.update(body)
    body_bytes = codec.encode({k: v for k, v in fields.items() if v is not None})
    message = signed_message(network, body_bytes)
    return codec.encode(
        {
            "b": body_bytes,
            "n": new_signer.sign(ROTATION_DOMAIN, message),  # type: ignore[attr-defined]
            "s": old_signer.sign(ROTATION_DOMAIN, message),  # type: ignore[attr-defined]
        }
    )


def test_a_rotation_is_signed_by_both_keys_and_needs_no_authority() -> None:
    made = rotate()
    assert (made.old, made.new, made.last_seq, made.rotated_at) == (
        OLD.public_key.raw,
        NEW.public_key.raw,
        4,
        T0,
    )
    assert (made.old_node_id, made.new_node_id) == (OLD.node_id, NEW.node_id)
    for trusted in (TRUSTED, TrustedAuthorities()):  # legacy nodes follow rotations too
        assert verify_statement(made.wire, network=NETWORK, trusted=trusted) == made
    assert verify_rotation(made.wire, network=NETWORK) == made
    assert forged_rotation() == made.wire


def test_a_rotation_limits_the_old_keys_records_by_time_and_sequence() -> None:
    made = rotate()
    assert made.allows(4, T0) and made.allows(1, T0 - 1)
    assert not made.allows(5, T0 - 1)  # past the last sequence number handed over
    assert not made.allows(3, T0 + 1)  # made after the rotation
    assert not rotate(last_seq=0).allows(1, 0)  # a key that never published hands nothing over


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (lambda: forged_rotation(old_signer=STRANGER), "old key's signature"),
        (lambda: forged_rotation(new_signer=STRANGER), "new key's signature"),
        (lambda: forged_rotation(new_signer=OLD, new=OLD.public_key.raw), "must change the key"),
        (lambda: forged_rotation(seq=-1), "seq"),
        (lambda: forged_rotation(seq=True), "seq"),
        (lambda: forged_rotation(seq=None), "exactly the fields"),
        (lambda: forged_rotation(at=2**53), "not a valid time"),
        (lambda: forged_rotation(old=b"short"), "32-byte key"),
        (lambda: forged_rotation(net="other-net", network="other-net"), "network 'other-net'"),
        (lambda: forged_rotation(network="other-net"), "signature"),
        (
            lambda: codec.encode({"b": codec.decode(forged_rotation(), max_size=2048)["b"], "s": bytes(64)}),
            "two 64-byte",
        ),
    ],
)
def test_every_rotation_rule_refuses(wire: object, message: str) -> None:
    assert callable(wire)
    with pytest.raises(StatementError, match=message):
        verify_statement(wire(), network=NETWORK, trusted=TRUSTED)


def test_verify_rotation_refuses_other_statements() -> None:
    with pytest.raises(StatementError, match="not a key rotation"):
        verify_rotation(revoke().wire, network=NETWORK)
