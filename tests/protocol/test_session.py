"""protocol/session.py: the sans-IO session, driven by a pair helper with no sockets.

This module holds the helpers (`pair`, `attempt`, `drain`) and the tests of an established session:
messages both ways, framing and fragments, transport attacks, closing, errors that stay, local misuse.
`test_session_handshake.py` tests the handshake's refusals with the same helpers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import pytest

from keys.errors import InvalidNodeId
from keys.identity import Identity
from protocol.session import (
    FRAGMENT_FINAL,
    FRAGMENT_MORE,
    MAX_FRAGMENT,
    MAX_FRAME,
    MAX_MESSAGE,
    ConnectionClosed,
    Event,
    HandshakeComplete,
    HandshakeFailed,
    LocalProtocolError,
    Message,
    NeedData,
    RemoteProtocolError,
    Session,
    State,
    frame,
)

NETWORK = "test-net"


def secret(label: str) -> bytes:
    return hashlib.blake2b(label.encode(), digest_size=32, person=b"lapnode.test.v1").digest()


@dataclass(frozen=True)
class Node:
    """A test node: an Ed25519 identity and a Noise static key, both from its name."""

    name: str

    @cached_property
    def identity(self) -> Identity:
        return Identity.from_seed(secret(f"{self.name}/identity"))

    @property
    def key(self) -> bytes:
        return self.identity.public_key.raw

    @property
    def static(self) -> bytes:
        return secret(f"{self.name}/static")


ALICE, BOB, MALLORY = Node("alice"), Node("bob"), Node("mallory")


def initiator(
    me: Node = ALICE,
    pinned: Node = BOB,
    *,
    network: str = NETWORK,
    ephemeral: str = "initiator",
    credential: bytes | None = None,
) -> Session:
    return Session.initiator(
        identity=me.identity,
        network=network,
        static_private=me.static,
        ephemeral_private=secret(f"ephemeral/{ephemeral}"),
        responder_node_key=pinned.key,
        credential=credential,
    )


def responder(
    me: Node = BOB,
    allowed: tuple[Node, ...] = (ALICE,),
    *,
    network: str = NETWORK,
    ephemeral: str = "responder",
    credential: bytes | None = None,
) -> Session:
    keys = {node.key for node in allowed}
    return Session.responder(
        identity=me.identity,
        network=network,
        static_private=me.static,
        ephemeral_private=secret(f"ephemeral/{ephemeral}"),
        is_allowed=keys.__contains__,
        credential=credential,
    )


def drain(session: Session, data: bytes | None) -> list[Event]:
    """Feed `data` (None: the transport closed), then collect events up to NeedData or ConnectionClosed."""
    session.receive_data(data)
    events: list[Event] = []
    while not isinstance(event := session.next_event(), NeedData):
        events.append(event)
        if isinstance(event, ConnectionClosed):
            break
    return events


def pair(
    initiating: Session | None = None, responding: Session | None = None
) -> tuple[Session, Session, list[bytes]]:
    """Run a handshake that must succeed; return both sessions and the three frames."""
    first, second = initiating or initiator(), responding or responder()
    message_1 = first.start()
    assert drain(second, message_1) == []
    (message_2,) = second.take_outgoing()
    (done_first,) = drain(first, message_2)
    (message_3,) = first.take_outgoing()
    (done_second,) = drain(second, message_3)
    assert isinstance(done_first, HandshakeComplete) and isinstance(done_second, HandshakeComplete)
    assert first.state is second.state is State.ESTABLISHED
    return first, second, [message_1, message_2, message_3]


@dataclass
class Attempt:
    """What each side saw during a handshake attempt that may fail; nothing here raises."""

    frames: list[bytes] = field(default_factory=list)
    events: dict[str, list[Event]] = field(default_factory=lambda: {"initiator": [], "responder": []})
    errors: dict[str, RemoteProtocolError] = field(default_factory=dict)

    def completed(self, side: str) -> bool:
        return any(isinstance(event, HandshakeComplete) for event in self.events[side])


Tamper = Callable[[int, bytes], bytes]


def attempt(first: Session, second: Session, tamper: Tamper | None = None) -> Attempt:
    """Run the handshake through `tamper(index, wire_bytes)`, then close both transports, as the I/O
    layer does when either side gives up."""
    result = Attempt()
    sides = {"initiator": first, "responder": second}

    def deliver(side: str, data: bytes | None) -> bool:
        try:
            result.events[side] += drain(sides[side], data)
        except RemoteProtocolError as exc:
            result.errors[side] = exc
            return False
        return True

    outgoing = [first.start()]
    for index, side in enumerate(["responder", "initiator", "responder"]):
        wire = b"".join(outgoing)
        wire = tamper(index, wire) if tamper else wire
        result.frames.append(wire)
        if not deliver(side, wire):
            break
        outgoing = sides[side].take_outgoing()
        if not outgoing:
            break
    for side in sides:
        if side not in result.errors:
            deliver(side, None)
    return result


def forge(sender: Session, plaintexts: list[bytes]) -> bytes:
    """Frames sealed with `sender`'s transport key around arbitrary plaintexts (flag byte included)."""
    cipher = sender._send  # the only way to break the fragment rules with valid encryption
    assert cipher is not None
    return b"".join(frame(cipher.encrypt_with_ad(b"", plaintext)) for plaintext in plaintexts)


# --- an established session ----------------------------------------------------------------------------


def test_handshake_authenticates_both_sides() -> None:
    first, second, frames = pair()
    assert first.peer is not None and first.peer.raw == BOB.key
    assert second.peer is not None and second.peer.raw == ALICE.key
    assert len(frames[0]) == 4 + 32  # message 1: the ephemeral key and nothing else


def test_handshake_events_carry_peer_hash_and_credential() -> None:
    first, second = initiator(credential=b"alice-credential"), responder(credential=b"bob-credential")
    first_events, second_events = [], []
    second_events += drain(second, first.start())
    first_events += drain(first, b"".join(second.take_outgoing()))
    second_events += drain(second, b"".join(first.take_outgoing()))
    (done_first,), (done_second,) = first_events, second_events
    assert isinstance(done_first, HandshakeComplete) and isinstance(done_second, HandshakeComplete)
    assert done_first.peer_node_key == BOB.key and done_second.peer_node_key == ALICE.key
    assert done_first.handshake_hash == done_second.handshake_hash and len(done_first.handshake_hash) == 64
    assert done_first.unverified_credential == b"bob-credential"
    assert done_second.unverified_credential == b"alice-credential"


SIZES = [0, 1, 100, MAX_FRAGMENT - 1, MAX_FRAGMENT, MAX_FRAGMENT + 1, 3 * MAX_FRAGMENT, MAX_MESSAGE]


@pytest.mark.parametrize("size", SIZES)
def test_messages_both_ways(size: int) -> None:
    first, second, _ = pair()
    payload = hashlib.shake_256(b"payload").digest(size)
    for sender, receiver in ((first, second), (second, first), (first, second)):
        wire = sender.send(payload)
        assert drain(receiver, wire) == [Message(payload)]
    frames = max(1, -(-size // MAX_FRAGMENT))
    assert len(wire) == size + frames * (4 + 1 + 16)


def test_frame_boundaries_do_not_matter() -> None:
    first, second = initiator(), responder()
    stream_to_second = first.start()
    events: list[Event] = []
    for byte in stream_to_second:
        events += drain(second, bytes([byte]))
    assert events == []
    message_2 = b"".join(second.take_outgoing())
    events = [event for byte in message_2 for event in drain(first, bytes([byte]))]
    assert [type(event) for event in events] == [HandshakeComplete]
    # Message 3 and two payloads in one chunk, as a WebSocket message may carry them.
    chunk = first.send(b"one") + first.send(b"two")  # send() puts message 3 first
    events = drain(second, chunk)
    assert [type(event) for event in events] == [HandshakeComplete, Message, Message]
    assert events[1:] == [Message(b"one"), Message(b"two")]


def test_send_puts_an_untaken_message_3_first() -> None:
    first, second = initiator(), responder()
    drain(second, first.start())
    drain(first, b"".join(second.take_outgoing()))
    wire = first.send(b"hello")
    assert first.take_outgoing() == []
    events = drain(second, wire)
    assert isinstance(events[0], HandshakeComplete) and events[1:] == [Message(b"hello")]


# --- transport attacks ---------------------------------------------------------------------------------


def three_frames() -> tuple[Session, list[bytes]]:
    """An established responder, and three frames the initiator sealed for it (payloads m0, m1, m2)."""
    first, second, _ = pair()
    return second, [first.send(f"m{index}".encode()) for index in range(3)]


ATTACKS: dict[str, tuple[Callable[[list[bytes]], bytes], int]] = {
    # name: (bytes the attacker delivers, how many messages arrive before the session fails)
    "replayed frame": (lambda f: f[0] + f[0], 1),
    "replayed later": (lambda f: f[0] + f[1] + f[0], 2),
    "reordered frames": (lambda f: f[1] + f[0], 0),
    "dropped frame": (lambda f: f[0] + f[2], 1),
    "zero-length frame": (lambda f: f[0] + bytes(4), 1),
    "frame of only a tag": (lambda f: frame(f[1][4:20]), 0),
    "oversized frame, length alone": (lambda f: (MAX_FRAME + 1).to_bytes(4, "big"), 0),
    "largest length prefix": (lambda f: b"\xff\xff\xff\xff", 0),
    "tag cut off": (lambda f: frame(f[0][4:-16]), 0),
    "bytes appended inside the frame": (lambda f: frame(f[0][4:] + b"\x00"), 0),
}


@pytest.mark.parametrize("name", ATTACKS)
def test_transport_attack_ends_the_session(name: str) -> None:
    attack, delivered = ATTACKS[name]
    receiver, frames = three_frames()
    events: list[Event] = []
    receiver.receive_data(attack(frames))
    with pytest.raises(RemoteProtocolError) as info:
        while True:
            events.append(receiver.next_event())
    assert events == [Message(f"m{index}".encode()) for index in range(delivered)]
    assert type(info.value) is RemoteProtocolError
    assert receiver.state is State.ERROR


def test_every_modified_byte_of_a_frame_ends_the_session() -> None:
    _, frames = three_frames()
    for position in range(len(frames[0])):
        for mask in (0x01, 0x80):
            receiver, _ = three_frames()
            modified = bytearray(frames[0])
            modified[position] ^= mask
            with pytest.raises(RemoteProtocolError):
                drain(receiver, bytes(modified))
                drain(receiver, None)  # a longer length prefix waits for bytes that never come


def test_truncated_frame_then_close_is_an_error() -> None:
    receiver, frames = three_frames()
    assert drain(receiver, frames[0][:-1]) == []
    with pytest.raises(RemoteProtocolError, match="session failed") as info:
        drain(receiver, None)
    assert "inside a frame" in info.value.detail


def test_oversized_frame_fails_before_its_body_arrives() -> None:
    receiver, _ = three_frames()
    with pytest.raises(RemoteProtocolError) as info:
        drain(receiver, (MAX_FRAME + 1).to_bytes(4, "big"))
    assert "over the limit" in info.value.detail


def test_a_frame_reflected_to_its_sender_fails() -> None:
    first, _, _ = pair()
    with pytest.raises(RemoteProtocolError):
        drain(first, first.send(b"echo"))


def test_a_frame_from_another_session_fails() -> None:
    _, second, _ = pair()
    other_first, _, _ = pair(initiator(ephemeral="other"), responder(ephemeral="other"))
    with pytest.raises(RemoteProtocolError):
        drain(second, other_first.send(b"elsewhere"))


FULL = b"x" * MAX_FRAGMENT
FRAGMENTS: dict[str, tuple[list[bytes], bytes | None]] = {
    # name: (plaintexts, flag byte included; the message delivered, or None if the session must fail)
    "one full fragment and one byte": ([bytes([FRAGMENT_MORE]) + FULL, b"\x00y"], FULL + b"y"),
    "exactly MAX_MESSAGE": (
        [bytes([FRAGMENT_MORE]) + FULL] * 16 + [b"\x00" + b"y" * (MAX_MESSAGE - 16 * MAX_FRAGMENT)],
        FULL * 16 + b"y" * (MAX_MESSAGE - 16 * MAX_FRAGMENT),
    ),
    "empty payload": ([bytes([FRAGMENT_FINAL])], b""),
    "no flag byte": ([b""], None),
    "unknown flag": ([b"\x02hello"], None),
    "flag 0xff": ([b"\xffhello"], None),
    "short non-final fragment": ([b"\x01short", b"\x00end"], None),
    "empty final fragment after a full one": ([bytes([FRAGMENT_MORE]) + FULL, b"\x00"], None),
    "one byte over MAX_MESSAGE": (
        [bytes([FRAGMENT_MORE]) + FULL] * 16 + [b"\x00" + b"y" * (MAX_MESSAGE - 16 * MAX_FRAGMENT + 1)],
        None,
    ),
    "seventeen non-final fragments": ([bytes([FRAGMENT_MORE]) + FULL] * 17, None),
}


@pytest.mark.parametrize("name", FRAGMENTS)
def test_fragment_rules(name: str) -> None:
    plaintexts, expected = FRAGMENTS[name]
    first, second, _ = pair()
    wire = forge(first, plaintexts)
    if expected is None:
        with pytest.raises(RemoteProtocolError):
            drain(second, wire)
        assert second.state is State.ERROR
    else:
        assert drain(second, wire) == [Message(expected)]


# --- closing -------------------------------------------------------------------------------------------


def test_close_when_established() -> None:
    first, second, _ = pair()
    assert drain(second, first.send(b"last") + b"") == [Message(b"last")]
    assert drain(second, None) == [ConnectionClosed()]
    assert second.state is State.CLOSED
    assert second.next_event() == ConnectionClosed()  # and again, every time
    with pytest.raises(LocalProtocolError):
        second.receive_data(b"more")
    with pytest.raises(LocalProtocolError):
        second.receive_data(None)
    with pytest.raises(LocalProtocolError):
        second.send(b"to nobody")


def test_frames_before_the_close_are_delivered_first() -> None:
    first, second, _ = pair()
    second.receive_data(first.send(b"a") + first.send(b"b"))
    second.receive_data(None)
    assert [second.next_event() for _ in range(3)] == [Message(b"a"), Message(b"b"), ConnectionClosed()]


def test_close_before_the_handshake_is_a_clean_close() -> None:
    assert drain(responder(), None) == [ConnectionClosed()]
    first = initiator()
    first.start()
    assert drain(first, None) == [ConnectionClosed()]
    assert first.peer is None


def test_close_inside_a_multi_frame_message_is_an_error() -> None:
    first, second, _ = pair()
    wire = first.send(b"z" * (MAX_FRAGMENT + 1))
    assert drain(second, wire[: 4 + MAX_FRAME]) == []  # the whole first frame, none of the second
    with pytest.raises(RemoteProtocolError) as info:
        drain(second, None)
    assert "multi-frame" in info.value.detail


# --- errors stay ---------------------------------------------------------------------------------------


def test_after_an_error_the_session_stays_in_error() -> None:
    receiver, frames = three_frames()
    with pytest.raises(RemoteProtocolError) as first_error:
        drain(receiver, frames[1])
    for _ in range(3):
        with pytest.raises(RemoteProtocolError) as again:
            receiver.next_event()
        assert type(again.value) is type(first_error.value)
        assert again.value.detail == first_error.value.detail
    with pytest.raises(RemoteProtocolError):
        receiver.receive_data(frames[0])  # even the frame it expected
    with pytest.raises(RemoteProtocolError):
        receiver.receive_data(None)
    with pytest.raises(LocalProtocolError):
        receiver.send(b"reply")
    assert receiver.take_outgoing() == []
    assert receiver.state is State.ERROR


# --- local misuse --------------------------------------------------------------------------------------


def test_local_misuse_raises_local_protocol_error() -> None:
    first, second = initiator(), responder()
    with pytest.raises(LocalProtocolError):
        first.next_event()  # before start()
    with pytest.raises(LocalProtocolError):
        first.send(b"early")
    with pytest.raises(LocalProtocolError):
        second.start()
    with pytest.raises(LocalProtocolError):
        second.send(b"early")
    message_1 = first.start()
    with pytest.raises(LocalProtocolError):
        first.start()
    with pytest.raises(LocalProtocolError):
        first.send(b"early")
    drain(second, message_1)
    with pytest.raises(LocalProtocolError):
        second.send(b"early")  # AWAIT_MESSAGE_3: no keys before message 3
    drain(first, b"".join(second.take_outgoing()))
    with pytest.raises(TypeError):
        first.send("text")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="batch"):
        first.send(bytes(MAX_MESSAGE + 1))


def test_send_refuses_to_reach_the_last_nonce() -> None:
    first, _, _ = pair()
    cipher = first._send
    assert cipher is not None
    cipher.set_nonce(2**64 - 2)
    first.send(b"the last frame there can be")
    with pytest.raises(LocalProtocolError, match="2\\^64"):
        first.send(b"one more")
    cipher.set_nonce(2**64 - 2)
    with pytest.raises(LocalProtocolError):
        first.send(bytes(MAX_FRAGMENT + 1))  # two frames, one nonce left: nothing is sealed
    assert cipher.nonce == 2**64 - 2


@pytest.mark.parametrize(
    "change",
    [
        {"network": ""},
        {"network": "n" * 65},
        {"static_private": bytes(31)},
        {"ephemeral_private": b""},
        {"credential": b""},
        {"credential": bytes(1025)},
    ],
    ids=["empty network", "long network", "short static", "empty ephemeral", "empty cred", "long cred"],
)
def test_bad_configuration_is_refused_at_construction(change: dict[str, object]) -> None:
    arguments: dict[str, object] = {
        "identity": ALICE.identity,
        "network": NETWORK,
        "static_private": ALICE.static,
        "ephemeral_private": secret("e"),
        "credential": None,
    }
    arguments.update(change)
    with pytest.raises(ValueError):
        Session.initiator(responder_node_key=BOB.key, **arguments)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Session.responder(is_allowed=lambda key: True, **arguments)  # type: ignore[arg-type]


def test_pinned_key_must_be_a_node_key() -> None:
    with pytest.raises(InvalidNodeId):
        Session.initiator(
            identity=ALICE.identity,
            network=NETWORK,
            static_private=ALICE.static,
            ephemeral_private=secret("e"),
            responder_node_key=BOB.key[:31],
        )


def test_remote_errors_say_nothing_to_the_remote() -> None:
    assert issubclass(HandshakeFailed, RemoteProtocolError)
    error = HandshakeFailed("initiator lap1... is not an allowed peer")
    assert str(error) == "handshake failed" and error.args == ("handshake failed",)
    assert "allowed" not in repr(error)
    assert str(RemoteProtocolError("ciphertext does not authenticate")) == "session failed"
