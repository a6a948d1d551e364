"""The handshake's refusals (protocol/SPEC.md §6.1, §6.2): impostors, strangers, wrong networks, forged,
tampered and replayed messages. Each must fail with one opaque `HandshakeFailed` and never complete.

Forged peers are built from `protocol.noise.HandshakeState` directly, so that they can send what a
well-behaved `Session` never would.
"""

from __future__ import annotations

from collections.abc import Callable

import msgpack
import pytest

from keys.identity import Identity
from protocol import codec
from protocol.handshake import (
    MAX_CREDENTIAL_SIZE,
    MAX_HANDSHAKE_MESSAGE,
    PROLOGUE,
    STATIC_KEY_DOMAIN,
    encode_binding,
    static_key_message,
)
from protocol.noise import HandshakeState, x25519_public
from protocol.session import (
    HandshakeComplete,
    HandshakeFailed,
    RemoteProtocolError,
    Session,
    State,
    frame,
)
from tests.protocol.test_session import (
    ALICE,
    BOB,
    MALLORY,
    NETWORK,
    Attempt,
    attempt,
    drain,
    initiator,
    pair,
    responder,
    secret,
)


def flip(index: int, position: int, mask: int) -> Callable[[int, bytes], bytes]:
    def tamper(current: int, wire: bytes) -> bytes:
        if current != index:
            return wire
        changed = bytearray(wire)
        changed[position] ^= mask
        return bytes(changed)

    return tamper


def assert_refused(result: Attempt, side: str, reason: str) -> HandshakeFailed:
    error = result.errors.get(side)
    assert isinstance(error, HandshakeFailed), result.errors
    assert reason in error.detail
    assert not result.completed("responder")
    return error


# --- who is at the other end ---------------------------------------------------------------------------


def test_impostor_responder_is_refused_before_message_3() -> None:
    # Alice dials Bob's address, but Mallory answers (and would admit Alice).
    result = attempt(initiator(pinned=BOB), responder(me=MALLORY, allowed=(ALICE,)))
    assert_refused(result, "initiator", "not the pinned")
    assert len(result.frames) == 2  # Alice never wrote message 3: Mallory never learns who called
    assert not result.completed("initiator")


def test_responder_refuses_an_unknown_initiator() -> None:
    result = attempt(initiator(me=MALLORY), responder(allowed=(ALICE,)))
    assert_refused(result, "responder", "not an allowed peer")


def test_responder_refuses_when_is_allowed_is_not_exactly_true() -> None:
    second = Session.responder(
        identity=BOB.identity,
        network=NETWORK,
        static_private=BOB.static,
        ephemeral_private=secret("e"),
        is_allowed=lambda key: 1,  # type: ignore[arg-type,return-value]
    )
    assert_refused(attempt(initiator(), second), "responder", "not an allowed peer")


@pytest.mark.parametrize(
    ("first", "second", "side"),
    [("test-net", "other-net", "initiator"), ("other-net", "test-net", "initiator")],
    ids=["responder on another network", "initiator on another network"],
)
def test_wrong_network_is_refused(first: str, second: str, side: str) -> None:
    # The initiator reads the responder's network first (message 2), so it is the one that refuses.
    result = attempt(initiator(network=first), responder(network=second))
    assert_refused(result, side, "network")
    assert not result.completed("initiator")


# --- forged identity payloads --------------------------------------------------------------------------

ALICE_STATIC = x25519_public(ALICE.static)
BOB_STATIC = x25519_public(BOB.static)


def binding(
    node: Identity, static: bytes, *, network: str = NETWORK, domain: bytes = STATIC_KEY_DOMAIN
) -> dict:
    return {
        "net": network,
        "node": node.public_key.raw,
        "sig": node.sign(domain, static_key_message(network, static)),
    }


def forged_initiator(payload: bytes, *, static: bytes = ALICE.static) -> Attempt:
    """A Noise initiator speaking to Bob's responder that sends `payload` in message 3."""
    noise = HandshakeState(
        initiator=True, static_private=static, ephemeral_private=secret("forger"), prologue=PROLOGUE
    )
    second = responder()
    result = Attempt()
    assert drain(second, frame(noise.write_message(b""))) == []
    (message_2,) = second.take_outgoing()
    noise.read_message(message_2[4:])
    try:
        result.events["responder"] += drain(second, frame(noise.write_message(payload)))
    except RemoteProtocolError as exc:
        result.errors["responder"] = exc
    return result


def forged_responder(payload: bytes, *, static: bytes = BOB.static) -> tuple[Attempt, Session]:
    """A Noise responder answering Alice (who pinned Bob) with `payload` in message 2."""
    noise = HandshakeState(
        initiator=False, static_private=static, ephemeral_private=secret("forger"), prologue=PROLOGUE
    )
    first = initiator()
    noise.read_message(first.start()[4:])
    result = Attempt()
    try:
        result.events["initiator"] += drain(first, frame(noise.write_message(payload)))
    except RemoteProtocolError as exc:
        result.errors["initiator"] = exc
    return result, first


def unsorted(value: dict) -> bytes:
    raw: bytes = msgpack.packb(dict(sorted(value.items(), reverse=True)), use_bin_type=True)
    return raw


PAYLOADS: dict[str, tuple[Callable[[], bytes], str]] = {
    # name: (the initiator's payload in message 3, what the responder's log must say)
    "wrong network in payload": (
        lambda: codec.encode(binding(ALICE.identity, ALICE_STATIC, network="other-net")),
        "network",
    ),
    "signature over another static key": (
        lambda: codec.encode(binding(ALICE.identity, x25519_public(secret("other")))),
        "did not sign",
    ),
    "signature by another identity": (
        lambda: codec.encode({**binding(MALLORY.identity, ALICE_STATIC), "node": ALICE.key}),
        "did not sign",
    ),
    "signature in another domain": (
        lambda: codec.encode(binding(ALICE.identity, ALICE_STATIC, domain=b"lapnode/record/v1\x00")),
        "did not sign",
    ),
    "signature without the network length byte": (
        lambda: codec.encode(
            {
                "net": NETWORK,
                "node": ALICE.key,
                "sig": ALICE.identity.sign(STATIC_KEY_DOMAIN, NETWORK.encode() + ALICE_STATIC),
            }
        ),
        "did not sign",
    ),
    "valid binding of a stranger": (
        lambda: encode_binding(MALLORY.identity, network=NETWORK, static_public=ALICE_STATIC),
        "not an allowed peer",
    ),
    "empty payload": (lambda: b"", "Malformed"),
    "not msgpack": (lambda: b"\xc1", "Malformed"),
    "not a map": (lambda: codec.encode([NETWORK, ALICE.key]), "not a map"),
    "unknown key": (
        lambda: codec.encode({**binding(ALICE.identity, ALICE_STATIC), "x": 1}),
        "not a map with the keys",
    ),
    "missing signature": (
        lambda: codec.encode({"net": NETWORK, "node": ALICE.key}),
        "not a map with the keys",
    ),
    "node key of 31 bytes": (
        lambda: codec.encode({**binding(ALICE.identity, ALICE_STATIC), "node": ALICE.key[:31]}),
        "wrong length",
    ),
    "signature of 63 bytes": (
        lambda: codec.encode(
            {
                **binding(ALICE.identity, ALICE_STATIC),
                "sig": binding(ALICE.identity, ALICE_STATIC)["sig"][:63],
            }
        ),
        "wrong length",
    ),
    "network as bytes": (
        lambda: codec.encode({**binding(ALICE.identity, ALICE_STATIC), "net": NETWORK.encode()}),
        "wrong types",
    ),
    "keys out of canonical order": (lambda: unsorted(binding(ALICE.identity, ALICE_STATIC)), "NonCanonical"),
    "empty credential": (
        lambda: codec.encode({**binding(ALICE.identity, ALICE_STATIC), "cred": b""}),
        "credential",
    ),
    "credential as text": (
        lambda: codec.encode({**binding(ALICE.identity, ALICE_STATIC), "cred": "membership"}),
        "credential",
    ),
    "credential over the limit": (
        lambda: codec.encode(
            {**binding(ALICE.identity, ALICE_STATIC), "cred": bytes(MAX_CREDENTIAL_SIZE + 1)}
        ),
        "credential",
    ),
    "payload over the limit": (
        lambda: codec.encode({**binding(ALICE.identity, ALICE_STATIC), "x": bytes(2048)}),
        "over the limit",
    ),
}


@pytest.mark.parametrize("name", PAYLOADS)
def test_responder_refuses_a_forged_initiator_payload(name: str) -> None:
    make, reason = PAYLOADS[name]
    result = forged_initiator(make())
    assert_refused(result, "responder", reason)


def test_forged_initiator_with_a_valid_payload_is_accepted() -> None:
    # The control for the table above: the forger's machinery works, and a credential is carried up.
    payload = encode_binding(ALICE.identity, network=NETWORK, static_public=ALICE_STATIC, credential=b"c")
    (done,) = forged_initiator(payload).events["responder"]
    assert isinstance(done, HandshakeComplete)
    assert done.peer_node_key == ALICE.key and done.unverified_credential == b"c"


def test_a_stolen_binding_does_not_work_with_another_static_key() -> None:
    # Mallory replays Bob's real payload (signed over Bob's static) from her own Noise static key.
    bobs_payload = encode_binding(BOB.identity, network=NETWORK, static_public=BOB_STATIC)
    result, first = forged_responder(bobs_payload, static=MALLORY.static)
    assert_refused(result, "initiator", "did not sign")
    assert first.take_outgoing() == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (lambda: codec.encode(binding(BOB.identity, BOB_STATIC, network="other-net")), "network"),
        (lambda: encode_binding(MALLORY.identity, network=NETWORK, static_public=BOB_STATIC), "pinned"),
        (lambda: b"", "Malformed"),
    ],
    ids=["wrong network", "valid binding of someone else", "empty payload"],
)
def test_initiator_refuses_a_forged_responder_payload(payload: Callable[[], bytes], reason: str) -> None:
    result, first = forged_responder(payload())
    assert_refused(result, "initiator", reason)
    assert first.take_outgoing() == [] and first.state is State.ERROR


def test_message_1_must_carry_no_payload() -> None:
    noise = HandshakeState(
        initiator=True, static_private=ALICE.static, ephemeral_private=secret("e"), prologue=PROLOGUE
    )
    with pytest.raises(HandshakeFailed) as info:
        drain(responder(), frame(noise.write_message(b"hello")))
    assert "no payload" in info.value.detail


def test_low_order_ephemeral_in_message_1_is_refused() -> None:
    with pytest.raises(HandshakeFailed) as info:
        drain(responder(), frame(bytes(32)))
    assert "all-zero" in info.value.detail


def test_oversized_handshake_frame_fails_on_its_length() -> None:
    with pytest.raises(HandshakeFailed) as info:
        drain(responder(), (MAX_HANDSHAKE_MESSAGE + 1).to_bytes(4, "big"))
    assert "over the limit" in info.value.detail


# --- tampered and replayed handshake messages ----------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1, 2], ids=["message 1", "message 2", "message 3"])
def test_every_tampered_byte_fails_the_handshake(index: int) -> None:
    clean = attempt(initiator(), responder())
    assert clean.completed("initiator") and clean.completed("responder") and not clean.errors
    for position in range(len(clean.frames[index])):
        for mask in (0x01, 0x80, 0xFF):
            result = attempt(initiator(), responder(), tamper=flip(index, position, mask))
            where = f"byte {position} ^ {mask:#04x}"
            assert not result.completed("responder"), where
            # The initiator completes when it writes message 3, before the responder has checked it.
            assert index == 2 or not result.completed("initiator"), where
            assert result.errors, where


def test_duplicated_message_1_is_refused() -> None:
    first, second = initiator(), responder()
    message_1 = first.start()
    drain(second, message_1)
    with pytest.raises(HandshakeFailed):
        drain(second, message_1)  # read as message 3


def test_replayed_handshake_to_a_new_responder_is_refused() -> None:
    # An eavesdropper who recorded a whole handshake replays Alice's messages 1 and 3 to Bob later.
    _, _, frames = pair()
    later = responder(ephemeral="later")
    assert drain(later, frames[0]) == []
    assert later.take_outgoing() != [frames[1]]  # a new ephemeral key, so a new message 2
    with pytest.raises(HandshakeFailed):
        drain(later, frames[2])


def test_replayed_message_2_to_a_new_initiator_is_refused() -> None:
    _, _, frames = pair()
    later = initiator(ephemeral="later")
    later.start()
    with pytest.raises(HandshakeFailed):
        drain(later, frames[1])
    assert later.take_outgoing() == []


def test_replaying_the_same_keys_gives_the_same_session_only_to_the_same_ephemerals() -> None:
    # Determinism check behind the test above: only the ephemeral keys made the replay fail.
    _, _, first_frames = pair()
    _, _, second_frames = pair()
    assert first_frames == second_frames


# --- data before the handshake -------------------------------------------------------------------------


def test_transport_frame_instead_of_message_1_is_refused() -> None:
    established_first, _, _ = pair()
    with pytest.raises(HandshakeFailed):
        drain(responder(ephemeral="fresh"), established_first.send(b"hello"))


def test_data_right_after_message_1_is_read_as_message_3_and_refused() -> None:
    first, second = initiator(), responder()
    with pytest.raises(HandshakeFailed):
        drain(second, first.start() + frame(b"\x00" * 80))
    assert second.take_outgoing() == []  # message 2 is dropped with the failed session


def test_garbage_instead_of_message_2_is_refused() -> None:
    first = initiator()
    first.start()
    with pytest.raises(HandshakeFailed):
        drain(first, frame(bytes(range(200))))


def test_failure_stays_during_the_handshake_too() -> None:
    first = initiator()
    first.start()
    with pytest.raises(HandshakeFailed):
        drain(first, frame(bytes(100)))
    with pytest.raises(HandshakeFailed):
        first.next_event()
    assert first.state is State.ERROR and first.peer is None


# --- what the remote may learn -------------------------------------------------------------------------


def test_every_refusal_has_the_same_public_text() -> None:
    errors = [
        attempt(initiator(pinned=BOB), responder(me=MALLORY)).errors["initiator"],
        attempt(initiator(me=MALLORY), responder()).errors["responder"],
        attempt(initiator(), responder(network="other-net")).errors["initiator"],
        attempt(initiator(), responder(), tamper=flip(2, 10, 1)).errors["responder"],
        forged_initiator(b"\xc1").errors["responder"],
    ]
    assert {str(error) for error in errors} == {"handshake failed"}
    assert {error.args for error in errors} == {("handshake failed",)}
    assert {repr(error) for error in errors} == {"HandshakeFailed('handshake failed')"}
    assert len({error.detail for error in errors}) == len(errors)  # the local log can tell them apart
