"""lapnode/sealing.py: fresh sealing secrets, and opening sealed records for this node's operator."""

from __future__ import annotations

from keys.identity import Identity
from lapnode.errors import PassphraseError
from lapnode.sealing import SealedReader, fresh_sealing_secrets
from protocol.envelope import build_record, verify_record
from protocol.kinds import LeadBody
from protocol.kinds.sealed import SEALED_FIELD
from protocol.scope import Scope
from tests.factories import NETWORK, T0, identity, make_record

AUTHOR, CAROL, RELAY = identity("sealing author"), identity("sealing carol"), identity("sealing relay")
TO_CAROL = Scope.create("red", members=[CAROL.public_key.raw], flags=["sealed"])
SEALED = make_record(AUTHOR, 1, None, scope=TO_CAROL)
CLEAR = make_record(AUTHOR, 2, SEALED.id)


class Unlock:
    """Counts how often the reader asks for the key, and hands out `identity` (or refuses)."""

    def __init__(self, identity: Identity | None) -> None:
        self.identity = identity
        self.calls = 0

    def __call__(self) -> Identity:
        self.calls += 1
        if self.identity is None:
            raise PassphraseError("no passphrase")
        return self.identity


def test_fresh_secrets_are_fresh() -> None:
    first, second = fresh_sealing_secrets(), fresh_sealing_secrets()
    assert len({first.content_key, second.content_key, first.ephemeral_secret, second.ephemeral_secret}) == 4
    assert first.nonce != second.nonce


def test_a_recipient_sees_the_body_and_unlocks_once() -> None:
    unlock = Unlock(CAROL)
    other = make_record(AUTHOR, 3, CLEAR.id, scope=TO_CAROL)
    views = SealedReader(CAROL.public_key.raw, unlock).views([SEALED, CLEAR, other])
    assert set(views) == {SEALED.id, other.id}  # unsealed records need no view
    assert all(isinstance(view.body, LeadBody) and view.opened for view in views.values())
    assert views[SEALED.id].line() == "sealed for 1 member; opened with this node's key"
    assert unlock.calls == 1


def test_a_relay_never_unlocks_its_key() -> None:
    unlock = Unlock(RELAY)
    view = SealedReader(RELAY.public_key.raw, unlock).view(SEALED)
    assert view.body is None and view.line() == "sealed for 1 member; not readable here"
    assert unlock.calls == 0


def test_a_locked_key_says_how_to_open_it_and_is_asked_for_once() -> None:
    unlock = Unlock(None)
    reader = SealedReader(CAROL.public_key.raw, unlock)
    first, second = reader.view(SEALED), reader.view(make_record(AUTHOR, 3, CLEAR.id, scope=TO_CAROL))
    assert first.body is None and second.body is None
    assert "the node key is locked: set LAPNODE_PASSPHRASE or pass --passphrase-file" in first.line()
    assert unlock.calls == 1


def test_a_record_that_does_not_open_is_shown_as_sealed_with_the_reason() -> None:
    payload = dict(SEALED.disclosures[SEALED_FIELD][1])
    payload["ct"] = bytes([payload["ct"][0] ^ 1]) + payload["ct"][1:]
    tampered = build_record(
        AUTHOR,
        network=NETWORK,
        kind="lead",
        schema=1,
        seq=1,
        prev=None,
        created=T0,
        scope=TO_CAROL,
        fields={SEALED_FIELD: payload},
        salts={SEALED_FIELD: bytes(16)},
    )
    record = verify_record(tampered.wire, network=NETWORK)
    view = SealedReader(CAROL.public_key.raw, Unlock(CAROL)).view(record)
    assert view.body is None
    assert view.line() == (
        "sealed for 1 member; addressed to this node, but it does not open: "
        "the sealed content does not open with this node's key"
    )
