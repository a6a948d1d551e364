"""One connection between two nodes, with no I/O: handshake, framing, sealing (protocol/SPEC.md §6).

Modelled on h11 and wsproto. The I/O layer feeds received bytes to `receive_data` (None when the
transport closed) and calls `next_event` until it returns `NeedData`; after each call it writes out
whatever `take_outgoing()` returns (the handshake replies). `send(payload)` returns the bytes that carry
one message, preceded by any handshake bytes not yet taken, so that the wire order is always right.

Rule 1: states are `State`; every change goes through `_TRANSITIONS`, and a pair not in the table raises
`LocalProtocolError`: a bug in the caller, never the remote's doing.
Rule 2: everything the remote causes (a malformed, oversized, truncated, tampered, replayed or reordered
frame; a refused identity) raises `RemoteProtocolError` (`HandshakeFailed` before the handshake is
complete) from `next_event` and moves the session to `State.ERROR`, which it never leaves: every later
`receive_data` or `next_event` raises again. `str()` of these errors is a constant; what went wrong is in
`.detail`, for the local log only (§6.3).
Rule 3: no payload is delivered, and `send` is refused, until the handshake is complete; the
`HandshakeComplete` event comes first. The handshake is the door: nothing behind it sees an
unauthenticated peer.
Rule 4: frames are processed lazily, one per `next_event`, so a flood of input is never decoded ahead of
the consumer; a frame's declared length is checked against the limit before its bytes are awaited.
Rule 5: no randomness, no clock. The caller passes the ephemeral key, and enforces HANDSHAKE_TIMEOUT_MS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Final, TypeAlias

from keys.identity import Identity, PublicKey
from protocol.credential import Credential, CredentialCheck
from protocol.errors import Malformed, ProtocolError
from protocol.handshake import MAX_HANDSHAKE_MESSAGE, Handshake
from protocol.noise import MAX_MESSAGE_LEN, MAX_NONCE, TAGLEN, CipherState
from protocol.statements import Rotation

FRAME_HEADER: Final = 4
MAX_FRAME: Final = MAX_MESSAGE_LEN  # 65,535 bytes of Noise message after the 4-byte length
MAX_FRAGMENT: Final = MAX_FRAME - TAGLEN - 1  # one byte of each frame's plaintext is the fragment flag
MAX_MESSAGE: Final = 1 << 20  # one reassembled payload
HANDSHAKE_TIMEOUT_MS: Final = 10_000  # enforced by the I/O layer, which owns the clock
FRAGMENT_FINAL: Final = 0x00
FRAGMENT_MORE: Final = 0x01


class LocalProtocolError(ProtocolError):
    """This side used the session wrongly (out of turn, after close, an oversized payload): a bug here."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the session protocol; the session is over.

    `str(error)` is the same for every instance and is all the peer may ever be told. `detail` says what
    happened, for the local log.
    """

    public_message: ClassVar[str] = "session failed"

    def __init__(self, detail: str) -> None:
        super().__init__(self.public_message)
        self.detail = detail


class HandshakeFailed(RemoteProtocolError):
    """The handshake was refused: bad message, wrong network, impostor, or a peer we do not admit.

    `peer_key` is the peer's node key when its identity binding verified before it was refused (no
    credential, a refused credential, not admitted): the I/O layer may score that peer. It is None when
    the refusal came earlier, since the bytes then prove nothing about who sent them.
    """

    public_message: ClassVar[str] = "handshake failed"

    def __init__(self, detail: str, peer_key: bytes | None = None) -> None:
        super().__init__(detail)
        self.peer_key = peer_key


class Role(Enum):
    INITIATOR = "initiator"
    RESPONDER = "responder"


class State(Enum):
    INITIATOR_START = "initiator-start"  # built; start() not yet called
    AWAIT_MESSAGE_1 = "await-message-1"  # responder
    AWAIT_MESSAGE_2 = "await-message-2"  # initiator, after start()
    AWAIT_MESSAGE_3 = "await-message-3"  # responder, after writing message 2
    ESTABLISHED = "established"
    CLOSED = "closed"
    ERROR = "error"


class _Input(Enum):
    START = "start()"
    READ_HANDSHAKE = "a handshake message"
    READ_FRAME = "a transport frame"
    SEND = "send()"
    CLOSE = "the transport closing"
    FAIL = "a remote failure"


_LIVE: Final = (
    State.INITIATOR_START,
    State.AWAIT_MESSAGE_1,
    State.AWAIT_MESSAGE_2,
    State.AWAIT_MESSAGE_3,
    State.ESTABLISHED,
)
_TRANSITIONS: Final[dict[tuple[State, _Input], State]] = {
    (State.INITIATOR_START, _Input.START): State.AWAIT_MESSAGE_2,
    (State.AWAIT_MESSAGE_1, _Input.READ_HANDSHAKE): State.AWAIT_MESSAGE_3,
    (State.AWAIT_MESSAGE_2, _Input.READ_HANDSHAKE): State.ESTABLISHED,
    (State.AWAIT_MESSAGE_3, _Input.READ_HANDSHAKE): State.ESTABLISHED,
    (State.ESTABLISHED, _Input.READ_FRAME): State.ESTABLISHED,
    (State.ESTABLISHED, _Input.SEND): State.ESTABLISHED,
    **{(state, _Input.CLOSE): State.CLOSED for state in _LIVE},
    **{(state, _Input.FAIL): State.ERROR for state in _LIVE},
}
_HANDSHAKING: Final = frozenset({State.AWAIT_MESSAGE_1, State.AWAIT_MESSAGE_2, State.AWAIT_MESSAGE_3})


# --- events --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """The peer is authenticated as `peer_node_key` (32-byte Ed25519 key); `send` may be called now."""

    peer_node_key: bytes
    # Identifies this session's handshake on both sides (Noise channel binding, §6.1).
    handshake_hash: bytes
    # The peer's credential bytes as sent (§6.2); `credential` is set when the session checked them.
    unverified_credential: bytes | None
    # Verified for `peer_node_key` by the session's CredentialCheck (§8.3); None without one.
    credential: Credential | None = None
    # The peer's rotation into `peer_node_key`, verified, if it sent one (§8.8).
    rotation: Rotation | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """One payload from the authenticated peer, as its `send` was given it."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class NeedData:
    """Nothing more can be decoded until `receive_data` is called again."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The transport closed cleanly between frames. Returned again by every later `next_event`."""


Event: TypeAlias = HandshakeComplete | Message | NeedData | ConnectionClosed


def frame(noise_message: bytes) -> bytes:
    """One frame: a 4-byte big-endian length, then the Noise message (§6.3)."""
    return len(noise_message).to_bytes(FRAME_HEADER, "big") + noise_message


class Session:
    """One conversation with one peer. Build it with `Session.initiator` or `Session.responder`."""

    __slots__ = (
        "_buffer",
        "_error",
        "_fragments",
        "_fragments_size",
        "_handshake",
        "_outgoing",
        "_peer",
        "_receive",
        "_role",
        "_send",
        "_state",
        "_transport_closed",
    )

    def __init__(self, role: Role, handshake: Handshake) -> None:
        """Internal: use `Session.initiator` or `Session.responder`."""
        self._role = role
        self._state = State.INITIATOR_START if role is Role.INITIATOR else State.AWAIT_MESSAGE_1
        self._handshake: Handshake | None = handshake
        self._send: CipherState | None = None
        self._receive: CipherState | None = None
        self._peer: PublicKey | None = None
        self._buffer = bytearray()
        self._outgoing: list[bytes] = []
        self._fragments: list[bytes] = []
        self._fragments_size = 0
        self._transport_closed = False
        self._error: RemoteProtocolError | None = None

    @classmethod
    def initiator(
        cls,
        *,
        identity: Identity,
        network: str,
        static_private: bytes,
        ephemeral_private: bytes,
        responder_node_key: bytes,
        credential: bytes | None = None,
        credential_check: CredentialCheck | None = None,
        rotation: bytes | None = None,
    ) -> Session:
        """The dialling side. It must already know the responder's 32-byte node key (pinning, §6.2).

        `ephemeral_private` MUST be 32 fresh random bytes for this connection and never used again;
        `static_private` is this node's X25519 Noise static key. `credential` is this node's own
        credential; with `credential_check` the responder must present a valid one (§8.3). `rotation`
        is this node's latest key rotation, so that a peer pinned to its old key follows it (§8.8).
        """
        handshake = Handshake.initiator(
            identity=identity,
            network=network,
            static_private=static_private,
            ephemeral_private=ephemeral_private,
            responder=PublicKey(responder_node_key),
            credential=credential,
            credential_check=credential_check,
            rotation=rotation,
        )
        return cls(Role.INITIATOR, handshake)

    @classmethod
    def responder(
        cls,
        *,
        identity: Identity,
        network: str,
        static_private: bytes,
        ephemeral_private: bytes,
        is_allowed: Callable[[bytes], bool],
        credential: bytes | None = None,
        credential_check: CredentialCheck | None = None,
        rotation: bytes | None = None,
    ) -> Session:
        """The accepting side. `is_allowed(node_key)` must return True for a peer to be admitted, and
        with `credential_check` the initiator must also present a valid credential (§8.3)."""
        handshake = Handshake.responder(
            identity=identity,
            network=network,
            static_private=static_private,
            ephemeral_private=ephemeral_private,
            is_allowed=is_allowed,
            credential=credential,
            credential_check=credential_check,
            rotation=rotation,
        )
        return cls(Role.RESPONDER, handshake)

    @property
    def role(self) -> Role:
        return self._role

    @property
    def state(self) -> State:
        return self._state

    @property
    def peer(self) -> PublicKey | None:
        """The authenticated peer, once the handshake is complete."""
        return self._peer

    # --- local calls -----------------------------------------------------------------------------------

    def start(self) -> bytes:
        """The initiator's first frame (handshake message 1). Call once, before anything else."""
        self._transition(_Input.START)
        assert self._handshake is not None
        return frame(self._handshake.write())

    def take_outgoing(self) -> list[bytes]:
        """Handshake frames this session produced on its own (messages 2 and 3), oldest first, each fit to
        be one WebSocket message. Call after every `next_event`; taking them empties the queue."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def send(self, payload: bytes) -> bytes:
        """Seal one payload of at most MAX_MESSAGE bytes; return the bytes to write out, in order.

        They start with any handshake frames not yet taken with `take_outgoing` (message 3 of the
        initiator), so the peer always receives the handshake before the first sealed frame.
        """
        self._transition(_Input.SEND)
        if not isinstance(payload, bytes):
            raise TypeError(f"a payload is bytes, not {type(payload).__name__}")
        if len(payload) > MAX_MESSAGE:
            raise LocalProtocolError(f"a payload is at most {MAX_MESSAGE} bytes; batch under that")
        assert self._send is not None
        chunks = [payload[i : i + MAX_FRAGMENT] for i in range(0, len(payload), MAX_FRAGMENT)] or [b""]
        if self._send.nonce + len(chunks) > MAX_NONCE:
            raise LocalProtocolError("this session has sent 2^64 - 1 frames; open a new one")
        flags = [FRAGMENT_MORE] * (len(chunks) - 1) + [FRAGMENT_FINAL]
        frames = [
            frame(self._send.encrypt_with_ad(b"", bytes([flag]) + chunk))
            for flag, chunk in zip(flags, chunks, strict=True)
        ]
        return b"".join([*self.take_outgoing(), *frames])

    def receive_data(self, data: bytes | None) -> None:
        """Queue bytes from the transport, or None once it has closed. Decoding happens in `next_event`."""
        if self._error is not None:
            raise self._repeat_error()
        if self._transport_closed:
            raise LocalProtocolError("receive_data called after the transport closed")
        if data is None:
            self._transport_closed = True
        else:
            self._buffer += data

    def next_event(self) -> Event:
        """Return the next event, or raise RemoteProtocolError if the peer broke the protocol."""
        if self._error is not None:
            raise self._repeat_error()
        if self._state is State.INITIATOR_START:
            raise LocalProtocolError("the initiator must call start() before next_event()")
        if self._state is State.CLOSED:
            return ConnectionClosed()
        try:
            return self._read_next()
        except LocalProtocolError:
            raise
        except ProtocolError as exc:
            raise self._fail(exc) from None

    # --- inbound, internal -----------------------------------------------------------------------------

    def _read_next(self) -> Event:
        while (raw_frame := self._take_frame()) is not None:
            event = (
                self._read_handshake(raw_frame)
                if self._state in _HANDSHAKING
                else self._read_frame(raw_frame)
            )
            if event is not None:
                return event
        if not self._transport_closed:
            return NeedData()
        if self._buffer:
            raise Malformed(f"the transport closed inside a frame ({len(self._buffer)} bytes)")
        if self._fragments:
            raise Malformed("the transport closed inside a multi-frame message")
        self._transition(_Input.CLOSE)
        return ConnectionClosed()

    def _take_frame(self) -> bytes | None:
        buffer = self._buffer
        if len(buffer) < FRAME_HEADER:
            return None
        length = int.from_bytes(buffer[:FRAME_HEADER], "big")
        limit = MAX_HANDSHAKE_MESSAGE if self._state in _HANDSHAKING else MAX_FRAME
        if length > limit:
            raise Malformed(f"frame of {length} bytes is over the limit of {limit} ({self._state.value})")
        end = FRAME_HEADER + length
        if len(buffer) < end:
            return None
        raw_frame = bytes(buffer[FRAME_HEADER:end])
        del buffer[:end]
        return raw_frame

    def _read_handshake(self, message: bytes) -> HandshakeComplete | None:
        handshake = self._handshake
        assert handshake is not None
        handshake.read(message)
        if handshake.is_my_turn():
            self._outgoing.append(frame(handshake.write()))
        self._transition(_Input.READ_HANDSHAKE)
        if not handshake.complete:
            return None
        peer = handshake.peer
        assert peer is not None
        ciphers = handshake.transport()
        self._send, self._receive = ciphers.send, ciphers.receive
        self._peer = peer.node_key
        self._handshake = None  # drop the ephemeral and static private keys with it
        return HandshakeComplete(
            peer.node_key.raw,
            handshake.handshake_hash,
            peer.unverified_credential,
            peer.credential,
            peer.rotation,
        )

    def _read_frame(self, sealed: bytes) -> Message | None:
        """Open one transport frame; return the message it completes, or None after a non-final fragment."""
        self._transition(_Input.READ_FRAME)
        assert self._receive is not None
        # Each frame is sealed under the next counter (§6.3): a replayed, reordered, dropped or modified
        # frame fails here, and the session ends.
        plaintext = self._receive.decrypt_with_ad(b"", sealed)
        if not plaintext:
            raise Malformed("transport frame has no fragment flag")
        flag, chunk = plaintext[0], plaintext[1:]
        if flag == FRAGMENT_MORE:
            # Canonical fragmentation: every fragment but the last is full, and the last is not empty.
            if len(chunk) != MAX_FRAGMENT or self._fragments_size + len(chunk) >= MAX_MESSAGE:
                raise Malformed("non-final fragment is not full, or the message would be too long")
            self._fragments.append(chunk)
            self._fragments_size += len(chunk)
            return None
        if flag != FRAGMENT_FINAL:
            raise Malformed(f"unknown fragment flag {flag:#04x}")
        if self._fragments and not chunk:
            raise Malformed("final fragment of a multi-frame message is empty")
        if self._fragments_size + len(chunk) > MAX_MESSAGE:
            raise Malformed("reassembled message is over MAX_MESSAGE")
        payload = b"".join([*self._fragments, chunk]) if self._fragments else chunk
        self._fragments.clear()
        self._fragments_size = 0
        return Message(payload)

    # --- state -----------------------------------------------------------------------------------------

    def _transition(self, event: _Input) -> None:
        try:
            self._state = _TRANSITIONS[self._state, event]
        except KeyError:
            raise LocalProtocolError(f"{event.value} is not allowed in state {self._state.value}") from None

    def _fail(self, cause: ProtocolError) -> RemoteProtocolError:
        detail = f"{type(cause).__name__}: {cause}"
        if self._state in _HANDSHAKING:
            assert self._handshake is not None
            known = self._handshake.authenticated_peer
            self._error = HandshakeFailed(detail, known.raw if known is not None else None)
        else:
            self._error = RemoteProtocolError(detail)
        self._transition(_Input.FAIL)
        # Forget keys, buffered input and queued events: nothing is ever processed again.
        self._handshake = self._send = self._receive = None
        self._buffer.clear()
        self._outgoing.clear()
        self._fragments.clear()
        return self._error

    def _repeat_error(self) -> RemoteProtocolError:
        assert self._error is not None
        if isinstance(self._error, HandshakeFailed):
            return HandshakeFailed(self._error.detail, self._error.peer_key)
        return RemoteProtocolError(self._error.detail)
