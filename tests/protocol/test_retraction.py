"""protocol/statements.py: retraction tombstones (SPEC §8.10) are issued, verified and refused for every
rule: the author's key under its own domain, this network, a 32-byte record id, a reason code from the
closed vocabulary, and the size limit of every statement."""

from __future__ import annotations

import pytest

from keys.membership import RETRACTION_DOMAIN, REVOCATION_DOMAIN, TrustedAuthorities
from protocol import codec
from protocol.credential import signed_message
from protocol.statements import (
    MAX_STATEMENT_SIZE,
    RETRACTION_REASONS,
    Retraction,
    StatementError,
    issue_retraction,
    statement_id,
    verify_rotation,
    verify_statement,
)
from tests.factories import identity

NETWORK = "test-net"
AUTHOR, OTHER = identity("author"), identity("someone else")
NOBODY = TrustedAuthorities()
TARGET = bytes(range(32))
T0 = 1_780_000_000_000


def forged(
    *, signer: object = AUTHOR, network: str = NETWORK, domain: bytes = RETRACTION_DOMAIN, **body: object
) -> bytes:
    fields: dict[str, object] = {
        "v": 1, "t": "retract", "net": NETWORK, "author": AUTHOR.public_key.raw,
        "target": TARGET, "reason": "error", "at": T0,
    }  # fmt: skip
    fields.update(body)
    body_bytes = codec.encode({k: v for k, v in fields.items() if v is not None})
    signature = signer.sign(domain, signed_message(network, body_bytes))  # type: ignore[attr-defined]
    return codec.encode({"b": body_bytes, "s": signature})


def test_a_retraction_verifies_without_any_authority() -> None:
    made = issue_retraction(AUTHOR, network=NETWORK, target=TARGET, reason="duplicate", retracted_at=T0)
    again = verify_statement(made.wire, network=NETWORK, trusted=NOBODY)
    assert again == made and isinstance(again, Retraction)
    assert (again.author, again.target, again.reason, again.retracted_at) == (
        AUTHOR.public_key.raw,
        TARGET,
        "duplicate",
        T0,
    )
    assert again.author_id == AUTHOR.node_id
    assert again.id == statement_id(made.wire)


def test_the_forger_builds_what_issuing_builds() -> None:
    # So that every refusal below differs from a valid tombstone by exactly the rule it breaks.
    made = issue_retraction(AUTHOR, network=NETWORK, target=TARGET, reason="error", retracted_at=T0)
    assert forged() == made.wire


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (forged(signer=OTHER), "signature on the retraction does not verify"),
        (forged(author=OTHER.public_key.raw), "signature on the retraction does not verify"),
        (forged(domain=REVOCATION_DOMAIN), "signature on the retraction does not verify"),
        (forged(network="other-net"), "signature on the retraction does not verify"),
        (forged(net="other-net", network="other-net"), "for network 'other-net'"),
        (forged(reason="the suspect was cleared by the court"), "reason must be one of"),
        (forged(reason="ERROR"), "reason must be one of"),
        (forged(reason=1), "reason must be one of"),
        (forged(target=TARGET[:31]), "32-byte record id"),
        (forged(target="0" * 64), "32-byte record id"),
        (forged(author=AUTHOR.public_key.raw[:31]), "32-byte key"),
        (forged(at=-1), "not a valid time"),
        (forged(at=None), "exactly the fields"),
        (forged(note="hello"), "exactly the fields"),
        (forged(v=2), "unsupported statement version"),
        (forged()[:-1], "statement"),
        (b"\x00" * (MAX_STATEMENT_SIZE + 1), "statement"),
    ],
)
def test_every_rule_refuses(wire: bytes, message: str) -> None:
    with pytest.raises(StatementError, match=message):
        verify_statement(wire, network=NETWORK, trusted=NOBODY)


def test_an_oversized_body_is_refused_before_it_is_read() -> None:
    big = forged(reason="x" * MAX_STATEMENT_SIZE)
    assert len(big) > MAX_STATEMENT_SIZE
    with pytest.raises(StatementError):
        verify_statement(big, network=NETWORK, trusted=NOBODY)


def test_extra_signatures_are_refused() -> None:
    outer = codec.decode(forged(), max_size=MAX_STATEMENT_SIZE)
    assert isinstance(outer, dict)
    outer["n"] = outer["s"]
    with pytest.raises(StatementError, match="exactly b and a 64-byte s"):
        verify_statement(codec.encode(outer), network=NETWORK, trusted=NOBODY)


@pytest.mark.parametrize("reason", RETRACTION_REASONS)
def test_every_reason_code_is_accepted(reason: str) -> None:
    made = issue_retraction(AUTHOR, network=NETWORK, target=TARGET, reason=reason, retracted_at=T0)
    assert verify_statement(made.wire, network=NETWORK, trusted=NOBODY) == made


def test_issuing_refuses_what_verifying_would() -> None:
    with pytest.raises(StatementError, match="reason must be one of"):
        issue_retraction(AUTHOR, network=NETWORK, target=TARGET, reason="case 2024/17", retracted_at=T0)
    with pytest.raises(StatementError, match="32-byte record id"):
        issue_retraction(AUTHOR, network=NETWORK, target=b"short", reason="error", retracted_at=T0)


def test_a_retraction_is_not_a_rotation() -> None:
    made = issue_retraction(AUTHOR, network=NETWORK, target=TARGET, reason="error", retracted_at=T0)
    with pytest.raises(StatementError, match="not a key rotation"):
        verify_rotation(made.wire, network=NETWORK)
