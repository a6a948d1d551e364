"""An authenticated, encrypted gossip channel over one WebSocket (SPEC §6.3-§6.4).

Rule 1: the handshake completes before any gossip message is read or written; handlers receive a
channel whose `peer_key` is authenticated, and nothing else (authenticate at the door).
Rule 2: anything the remote gets wrong ends the channel with `ChannelClosed`; the remote is told
nothing but the close. The reason goes to the local log.
Rule 3: every wait on the remote is bounded: the handshake by HANDSHAKE_TIMEOUT, each later message
by the caller's timeout, and inbound message rates by a token bucket.
Rule 4: a refused handshake ends with an orderly WebSocket close (1008) carrying one constant text,
`handshake failed`, whatever the reason; the reason goes to the local log (SPEC §6.2, §8.3).
Rule 5: sends are serialised: a session seals frames under consecutive nonces, so two tasks sending on one
channel (a feed and a membership push) must not interleave their frames on the socket.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from typing import Final

from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web
from aiohttp.client_ws import ClientWebSocketResponse

from lapnode.errors import LapnodeError
from protocol.credential import Credential
from protocol.errors import ProtocolError
from protocol.gossip import Message, decode_message, encode_message
from protocol.session import (
    ConnectionClosed,
    HandshakeComplete,
    HandshakeFailed,
    LocalProtocolError,
    NeedData,
    RemoteProtocolError,
    Session,
)
from protocol.session import Message as SessionMessage
from protocol.statements import Rotation

DEFAULT_HANDSHAKE_TIMEOUT: Final = 10.0
HANDSHAKE_TIMEOUT_ENV: Final = "LAPNODE_HANDSHAKE_TIMEOUT"
MAX_MESSAGES_PER_S: Final = 400.0
MESSAGE_BURST: Final = 800.0

log = logging.getLogger("lapnode.channel")
Socket = web.WebSocketResponse | ClientWebSocketResponse


def _handshake_timeout() -> float:
    """Seconds a remote may take over the whole handshake; tests shorten it through the environment."""
    try:
        value = float(os.environ.get(HANDSHAKE_TIMEOUT_ENV, DEFAULT_HANDSHAKE_TIMEOUT))
    except ValueError:
        return DEFAULT_HANDSHAKE_TIMEOUT
    return value if 0 < value < math.inf else DEFAULT_HANDSHAKE_TIMEOUT


HANDSHAKE_TIMEOUT: Final = _handshake_timeout()


class ChannelClosed(LapnodeError):
    """The peer closed the channel, or broke the protocol and was disconnected.

    `peer_key` names the peer of a refused handshake when the handshake authenticated it before refusing
    it (see `protocol.session.HandshakeFailed`); once a channel is open, its `peer_key` says who it is.
    """

    def __init__(self, reason: str, *, misbehaved: bool = False, peer_key: bytes | None = None) -> None:
        super().__init__(reason)
        self.misbehaved = misbehaved
        self.peer_key = peer_key


class _RateLimit:
    def __init__(self, rate: float, burst: float) -> None:
        self._rate, self._burst = rate, burst
        self._tokens, self._last = burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class Channel:
    def __init__(self, socket: Socket, session: Session, done: HandshakeComplete) -> None:
        self._socket = socket
        self._session = session
        self.peer_key = done.peer_node_key
        # The peer's credential, verified in the handshake; None in legacy mode (SPEC §8.3).
        self.credential: Credential | None = done.credential
        # The peer's key rotation it showed in the handshake, verified (SPEC §8.8); stored by the caller.
        self.rotation: Rotation | None = done.rotation
        # Whether the peer has sent its membership digest (once per session, SPEC §8.7).
        self.peer_sent_digest = False
        self._limit = _RateLimit(MAX_MESSAGES_PER_S, MESSAGE_BURST)
        self._sending = asyncio.Lock()
        self.bytes_in = 0
        self.bytes_out = 0

    @classmethod
    async def open(cls, socket: Socket, session: Session, first: bytes | None) -> Channel:
        """Run the handshake to completion (initiator passes its first message)."""
        counters = [0, 0]
        try:
            if first is not None:
                await socket.send_bytes(first)
                counters[1] += len(first)
            try:
                done = await asyncio.wait_for(_handshake(socket, session, counters), HANDSHAKE_TIMEOUT)
            except TimeoutError as exc:
                raise ChannelClosed("handshake timed out", misbehaved=True) from exc
        except ChannelClosed:
            if not socket.closed:
                await socket.close(code=WSCloseCode.POLICY_VIOLATION, message=b"handshake failed")
            raise
        channel = cls(socket, session, done)
        channel.bytes_in, channel.bytes_out = counters
        return channel

    @property
    def closed(self) -> bool:
        return self._socket.closed

    async def send(self, message: Message) -> None:
        async with self._sending:
            try:
                data = self._session.send(encode_message(message))
            except LocalProtocolError as exc:
                raise ChannelClosed(f"cannot send: {exc}") from exc
            self.bytes_out += len(data)
            try:
                await self._socket.send_bytes(data)
            except (ConnectionError, RuntimeError) as exc:
                raise ChannelClosed("connection lost while sending") from exc

    async def receive(self, timeout: float | None = None) -> Message:
        while True:
            try:
                event = self._session.next_event()
            except RemoteProtocolError as exc:
                raise ChannelClosed(
                    f"peer broke the session protocol: {_detail(exc)}", misbehaved=True
                ) from exc
            if isinstance(event, SessionMessage):
                if not self._limit.take():
                    raise ChannelClosed("peer exceeded the message rate", misbehaved=True)
                try:
                    return decode_message(event.payload)
                except ProtocolError as exc:
                    raise ChannelClosed(
                        f"peer sent an invalid gossip message: {exc}", misbehaved=True
                    ) from exc
            if isinstance(event, ConnectionClosed):
                raise ChannelClosed("peer closed the connection")
            if not isinstance(event, NeedData):
                raise ChannelClosed(f"unexpected session event {type(event).__name__}", misbehaved=True)
            self.bytes_in += await _feed(self._socket, self._session, timeout)

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"") -> None:
        if not self._socket.closed:
            await self._socket.close(code=code, message=message)


async def _feed(socket: Socket, session: Session, timeout: float | None) -> int:
    """Pass one WebSocket message into the session; return its size."""
    try:
        message = await socket.receive(timeout=timeout)
    except TimeoutError as exc:
        raise ChannelClosed("peer went silent") from exc
    if message.type == WSMsgType.BINARY:
        data: bytes = message.data
        try:
            session.receive_data(data)
        except RemoteProtocolError as exc:
            raise ChannelClosed(f"peer broke the session protocol: {_detail(exc)}", misbehaved=True) from exc
        return len(data)
    if message.type is WSMsgType.ERROR and isinstance(message.data, WebSocketError):
        # aiohttp's reader found the peer's bytes at fault: a message over max_msg_size (1009), a
        # malformed frame (1002) or bad text (1007). That is misbehaviour, not a peer closing.
        raise ChannelClosed(f"peer broke the WebSocket protocol (code {message.data.code})", misbehaved=True)
    if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
        session.receive_data(None)
        return 0
    raise ChannelClosed("peer sent a non-binary WebSocket message", misbehaved=True)


async def _handshake(socket: Socket, session: Session, counters: list[int]) -> HandshakeComplete:
    while True:
        try:
            event = session.next_event()
        except RemoteProtocolError as exc:
            peer_key = exc.peer_key if isinstance(exc, HandshakeFailed) else None
            raise ChannelClosed(
                f"handshake failed: {_detail(exc)}", misbehaved=True, peer_key=peer_key
            ) from exc
        if isinstance(event, HandshakeComplete):
            for data in session.take_outgoing():
                counters[1] += len(data)
                await socket.send_bytes(data)
            return event
        if isinstance(event, ConnectionClosed):
            raise ChannelClosed("peer closed the connection during the handshake")
        for data in session.take_outgoing():
            counters[1] += len(data)
            await socket.send_bytes(data)
        counters[0] += await _feed(socket, session, HANDSHAKE_TIMEOUT)


def _detail(exc: ProtocolError) -> str:
    """What the remote got wrong, for the local log: a RemoteProtocolError's str() is deliberately opaque."""
    return exc.detail if isinstance(exc, RemoteProtocolError) else str(exc)
