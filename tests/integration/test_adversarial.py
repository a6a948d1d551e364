"""Attacks on one real `lapnode serve` daemon (issue 3, "Adversarial tests").

The target is a real daemon process; a second real daemon (`legit`) subscribes to it throughout. Each
attack is refused, shows up in the target's structured log (and, where the attacker is an admitted peer,
in its score), and afterwards the legitimate peer still receives a new record.

The attackers are test tools written here, not mocks of lapnode: aiohttp WebSocket clients (and one
server, the fake publisher) that speak the real protocol through `protocol.session.Session`,
`protocol.noise.HandshakeState` and `protocol.gossip`, with real Ed25519 identities.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from keys.identity import Identity
from keys.membership import ROTATION_DOMAIN
from lapnode.daemon.node import BAN_THRESHOLD, GOSSIP_PATH, MAX_WS_MESSAGE, MISBEHAVIOUR_PENALTY
from protocol import codec
from protocol.envelope import MAX_RECORD_SIZE, RECORD_DOMAIN, Record, record_id
from protocol.gossip import (
    Ack,
    Batch,
    CaughtUp,
    FeedItem,
    MembershipDigest,
    MembershipStatements,
    Message,
    Subscribe,
    decode_message,
    encode_message,
)
from protocol.handshake import PROLOGUE, encode_binding
from protocol.noise import HandshakeState
from protocol.session import MAX_FRAME, ConnectionClosed, Event, HandshakeComplete, NeedData, Session, frame
from protocol.session import Message as SessionMessage
from protocol.statements import issue_rotation
from tests.factories import identity, make_record
from tests.integration.federation import (
    NETWORK,
    WAIT_S,
    NodeProcess,
    free_port_pair,
    init_nodes,
    stop_all,
    wait_until,
)

HANDSHAKE_TIMEOUT_S = 2  # LAPNODE_HANDSHAKE_TIMEOUT for the target; the default is 10 s
NOISE_CONTEXT = b"attacker.noise.1"  # 16 bytes: the attackers' own derivation context for Noise keys


@dataclass
class Target:
    node: NodeProcess
    legit: NodeProcess

    @property
    def url(self) -> str:
        return f"ws://{self.node.address}{GOSSIP_PATH}"

    def admit(self, who: Identity, *, address: str = "127.0.0.1:9", name: str = "attacker") -> None:
        """Add a key to the target's peer book through the CLI, as an operator would."""
        self.node.run("peer", "add", who.node_id, address, "--name", name)

    def still_serving(self) -> None:
        """The legitimate subscriber receives a record published after the attack."""
        record_id = self.node.publish(title="Published after an attack")
        self.legit.wait_for(record_id)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    root = tmp_path_factory.mktemp("adversarial")
    node = NodeProcess("target", root / "target", free_port_pair())
    legit = NodeProcess("legit", root / "legit", free_port_pair())
    init_nodes(node, legit)
    legit.peer_with(node)
    try:
        node.start(env={"LAPNODE_HANDSHAKE_TIMEOUT": str(HANDSHAKE_TIMEOUT_S)})
        legit.start()
        wait_until(
            lambda: legit.peer_status(node)["connected"] is True, timeout=WAIT_S, what="legit to connect"
        )
        yield Target(node, legit)
    finally:
        stop_all((legit, node))
    # Whatever the attackers sent became a logged refusal, never an unhandled exception.
    assert "Traceback" not in node.logs(), node.logs()[-5000:]


def attacker(name: str) -> Identity:
    return Identity.from_seed(hashlib.sha256(f"attacker/{name}".encode()).digest())


def initiator(who: Identity, target: Target, *, network: str = NETWORK) -> Session:
    return Session.initiator(
        identity=who,
        network=network,
        static_private=who.derive_secret(NOISE_CONTEXT),
        ephemeral_private=os.urandom(32),
        responder_node_key=target.node.key,
    )


# --- the attackers' socket plumbing ----------------------------------------------------------------------


class PeerGone(Exception):
    """The other side closed the WebSocket."""


@contextlib.asynccontextmanager
async def dial(target: Target) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(target.url, max_msg_size=MAX_WS_MESSAGE) as ws,
    ):
        yield ws


Socket = aiohttp.ClientWebSocketResponse | web.WebSocketResponse


async def next_event(ws: Socket, session: Session) -> Event:
    """The session's next event other than NeedData, reading the socket as needed (bounded)."""
    while True:
        event = session.next_event()
        for data in session.take_outgoing():
            await ws.send_bytes(data)
        if not isinstance(event, NeedData):
            return event
        message = await ws.receive(timeout=WAIT_S)
        session.receive_data(message.data if message.type is WSMsgType.BINARY else None)


async def next_message(ws: Socket, session: Session) -> Message:
    event = await next_event(ws, session)
    if isinstance(event, ConnectionClosed):
        raise PeerGone
    assert isinstance(event, SessionMessage), event
    return decode_message(event.payload)


async def next_feed_message(ws: Socket, session: Session) -> Message:
    """The next message that belongs to the feed: membership statements (SPEC §8.7) ride beside it."""
    while isinstance(message := await next_message(ws, session), MembershipDigest | MembershipStatements):
        pass
    return message


async def handshake(ws: Socket, session: Session) -> None:
    await ws.send_bytes(session.start())
    assert isinstance(await next_event(ws, session), HandshakeComplete)


async def until_closed(ws: Socket, *, timeout: float = WAIT_S) -> list[bytes]:
    """Read until the target closes the socket; return what it sent before. Fails if it never does."""
    received = []
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive()
            if message.type is WSMsgType.BINARY:
                received.append(message.data)
            elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return received


# --- refused at the door -------------------------------------------------------------------------------


def test_an_unknown_node_is_refused_after_a_correct_handshake(target: Target) -> None:
    stranger = attacker("stranger")  # never added to the target's peer book
    refused = len(target.node.events("handshake_refused"))

    async def attack() -> list[bytes]:
        async with dial(target) as ws:
            await handshake(ws, initiator(stranger, target))  # the target proves itself to the stranger...
            return await until_closed(ws)  # ...then refuses it on message 3

    assert asyncio.run(attack()) == [], "nothing may be disclosed to an unknown node"
    event = target.node.wait_for_event("handshake_refused", after=refused)
    assert "not an allowed peer" in str(event["reason"])
    report = target.node.status()
    assert report is not None and isinstance(report["peers"], list)
    assert stranger.node_id not in {peer["node_id"] for peer in report["peers"]}
    target.still_serving()


def test_a_peer_on_another_network_is_refused(target: Target) -> None:
    elsewhere = attacker("other network")
    target.admit(elsewhere, name="other-network")  # a known key: only the network is wrong
    refused = len(target.node.events("handshake_refused"))

    async def attack() -> list[bytes]:
        # Noise by hand: a Session on "other-net" would refuse the target's message 2 and never send
        # message 3, so the attacker ignores the target's binding and binds itself to "other-net".
        noise = HandshakeState(
            initiator=True,
            static_private=elsewhere.derive_secret(NOISE_CONTEXT),
            ephemeral_private=os.urandom(32),
            prologue=PROLOGUE,
        )
        async with dial(target) as ws:
            await ws.send_bytes(frame(noise.write_message(b"")))
            message_2 = await ws.receive(timeout=WAIT_S)
            assert message_2.type is WSMsgType.BINARY
            noise.read_message(message_2.data[4:])
            binding = encode_binding(elsewhere, network="other-net", static_public=noise.static_public)
            await ws.send_bytes(frame(noise.write_message(binding)))
            return await until_closed(ws)

    assert asyncio.run(attack()) == []
    event = target.node.wait_for_event("handshake_refused", after=refused)
    assert "network" in str(event["reason"])
    # The signature binding the key to the node was never checked, so the claim to be this peer is
    # unproven: charging the peer's score for it would let anyone lower any peer's score.
    assert target.node.peer_status(elsewhere.node_id)["score"] == 0
    target.still_serving()


@pytest.mark.parametrize("sends", ["nothing", "message 1 only"])
def test_a_stalled_handshake_is_closed_after_the_handshake_timeout(target: Target, sends: str) -> None:
    refused = len(target.node.events("handshake_refused"))

    async def attack() -> list[bytes]:
        async with dial(target) as ws:
            if sends == "message 1 only":
                await ws.send_bytes(initiator(attacker("staller"), target).start())
            # Bounded well above the configured timeout; the test asserts the close, not its timing.
            return await until_closed(ws, timeout=HANDSHAKE_TIMEOUT_S + WAIT_S)

    received = asyncio.run(attack())
    assert len(received) == (1 if sends == "message 1 only" else 0)  # at most the target's message 2
    event = target.node.wait_for_event("handshake_refused", after=refused)
    assert event["reason"] in ("handshake timed out", "peer went silent")
    target.still_serving()


# --- admitted peers that break the session ---------------------------------------------------------------


def test_a_replayed_frame_ends_the_session_and_costs_score(target: Target) -> None:
    replayer = attacker("replayer")
    target.admit(replayer, name="replayer")
    disconnected = len(target.node.events("peer_disconnected"))

    async def attack() -> None:
        async with dial(target) as ws:
            session = initiator(replayer, target)
            await handshake(ws, session)
            sealed = session.send(encode_message(Subscribe(cursor=0, kinds=(), vector={})))
            await ws.send_bytes(sealed)
            await ws.send_bytes(sealed)  # the same frame again: its counter is spent
            await until_closed(ws)

    asyncio.run(attack())
    event = target.node.wait_for_event("peer_disconnected", after=disconnected, peer=replayer.node_id)
    assert "session protocol" in str(event["reason"])
    assert_penalised(target, replayer, times=1)
    target.still_serving()


OVERSIZED = {
    "a frame header over MAX_FRAME": (MAX_FRAME + 1).to_bytes(4, "big") + bytes(64),
    "a frame header of 4 GiB": b"\xff\xff\xff\xff",
}


@pytest.mark.parametrize("data", OVERSIZED.values(), ids=OVERSIZED.keys())
def test_an_oversized_frame_ends_the_session_and_costs_score(target: Target, data: bytes) -> None:
    sender = attacker(f"oversized {data[:4].hex()}")
    target.admit(sender, name="oversized")
    disconnected = len(target.node.events("peer_disconnected"))

    async def attack() -> None:
        async with dial(target) as ws:
            await handshake(ws, initiator(sender, target))
            await ws.send_bytes(data)
            await until_closed(ws)

    asyncio.run(attack())
    event = target.node.wait_for_event("peer_disconnected", after=disconnected, peer=sender.node_id)
    assert "over the limit" in str(event["reason"])
    assert_penalised(target, sender, times=1)
    target.still_serving()


def test_a_flood_of_messages_ends_the_session_and_costs_score(target: Target) -> None:
    flooder = attacker("flooder")
    target.admit(flooder, name="flooder")
    disconnected = len(target.node.events("peer_disconnected"))

    async def attack() -> None:
        async with dial(target) as ws:
            session = initiator(flooder, target)
            await handshake(ws, session)
            await ws.send_bytes(session.send(encode_message(Subscribe(cursor=0, kinds=(), vector={}))))
            # Valid, sealed, in-order messages, but far more at once than the burst allows (SPEC §6.6).
            await ws.send_bytes(b"".join(session.send(encode_message(Ack(0))) for _ in range(2000)))
            await until_closed(ws)

    asyncio.run(attack())
    event = target.node.wait_for_event("peer_disconnected", after=disconnected, peer=flooder.node_id)
    assert "message rate" in str(event["reason"])
    assert_penalised(target, flooder, times=1)
    target.still_serving()


WEBSOCKET_ABUSE = {
    "a message over the WebSocket size limit": ("peer broke the WebSocket protocol", MAX_WS_MESSAGE + 1),
    "a text message": ("non-binary WebSocket message", 0),
}


@pytest.mark.parametrize("reason, size", WEBSOCKET_ABUSE.values(), ids=WEBSOCKET_ABUSE.keys())
def test_websocket_abuse_ends_the_session_and_costs_score(target: Target, reason: str, size: int) -> None:
    sender = attacker(f"websocket abuse {size}")
    target.admit(sender, name="websocket-abuse")
    disconnected = len(target.node.events("peer_disconnected"))

    async def attack() -> None:
        async with dial(target) as ws:
            await handshake(ws, initiator(sender, target))
            if size:
                await ws.send_bytes(bytes(size))
            else:
                await ws.send_str("hello?")
            await until_closed(ws)

    asyncio.run(attack())
    event = target.node.wait_for_event("peer_disconnected", after=disconnected, peer=sender.node_id)
    assert reason in str(event["reason"])
    assert_penalised(target, sender, times=1)
    target.still_serving()


def test_a_peer_penalised_down_to_the_threshold_is_refused_for_a_while(target: Target) -> None:
    offender = attacker("repeat offender")
    target.admit(offender, name="offender")
    offences = BAN_THRESHOLD // MISBEHAVIOUR_PENALTY  # 3 offences of -10 reach -30

    async def offend() -> None:
        async with dial(target) as ws:
            await handshake(ws, initiator(offender, target))
            await ws.send_bytes(b"\xff\xff\xff\xff")
            await until_closed(ws)

    for _ in range(offences):
        asyncio.run(offend())
    wait_until(
        lambda: target.node.peer_status(offender.node_id)["banned_until"] is not None,
        timeout=WAIT_S,
        what="the ban",
    )
    assert_penalised(target, offender, times=offences)
    refused = len(target.node.events("handshake_refused"))

    async def come_back() -> list[bytes]:
        async with dial(target) as ws:
            await handshake(ws, initiator(offender, target))
            return await until_closed(ws)

    assert asyncio.run(come_back()) == []
    event = target.node.wait_for_event("handshake_refused", after=refused)
    assert "not an allowed peer" in str(event["reason"])
    target.still_serving()


def assert_penalised(target: Target, who: Identity, *, times: int) -> None:
    expected = MISBEHAVIOUR_PENALTY * times
    wait_until(
        lambda: target.node.peer_status(who.node_id)["score"] == expected,
        timeout=WAIT_S,
        what=f"the score of {who.node_id} to reach {expected}",
    )
    penalties = [e for e in target.node.events("peer_penalised") if e.get("peer") == who.node_id]
    assert len(penalties) == times


MEMBERSHIP_ABUSE = {
    # A second digest: each answer may be every statement the target holds (SPEC §8.7).
    "a second mem-have": (
        lambda: [MembershipDigest(bytes(32)), MembershipDigest(bytes(32))],
        "membership digest twice",
    ),
    # A rotation signed by the new key only: anyone could claim to replace anyone's key.
    "a forged rotation": (
        lambda: [MembershipStatements((forged_rotation(),))],
        "invalid membership statement",
    ),
}


def forged_rotation() -> bytes:
    victim, thief = attacker("rotation victim"), attacker("rotation thief")
    genuine = issue_rotation(victim, thief, network=NETWORK, rotated_at=1, last_seq=0)
    outer = codec.decode(genuine.wire, max_size=4096)
    outer["s"] = thief.sign(ROTATION_DOMAIN, b"not what the victim signed")
    return codec.encode(outer)


@pytest.mark.parametrize("abuse", MEMBERSHIP_ABUSE)
def test_membership_gossip_abuse_ends_the_session_and_costs_score(target: Target, abuse: str) -> None:
    make, reason = MEMBERSHIP_ABUSE[abuse]
    abuser = attacker(f"membership {abuse}")
    target.admit(abuser, name="abuser")
    disconnected = len(target.node.events("peer_disconnected"))

    async def attack() -> None:
        async with dial(target) as ws:
            session = initiator(abuser, target)
            await handshake(ws, session)
            messages = [Subscribe(cursor=0, kinds=(), vector={}), *make()]
            await ws.send_bytes(b"".join(session.send(encode_message(m)) for m in messages))
            await until_closed(ws)

    asyncio.run(attack())
    event = target.node.wait_for_event("peer_disconnected", after=disconnected, peer=abuser.node_id)
    assert reason in str(event["reason"])
    assert_penalised(target, abuser, times=1)
    assert target.node._sql("SELECT COUNT(*) FROM statements")[0][0] == 0
    target.still_serving()


# --- a publisher that sends a bad record -----------------------------------------------------------------


@dataclass
class SessionLog:
    received: list[Message] = field(default_factory=list)
    closed_by_subscriber: bool = False


class FakePublisher:
    """A publisher speaking the real protocol with a real identity, serving the target one scripted feed.

    It runs an aiohttp server in a thread of its own, so the test can drive the target synchronously.
    Its first session sends `batches`, each followed by waiting for the subscriber's ack; later sessions
    say `idle` at the last position and wait.
    """

    def __init__(self, me: Identity, subscriber_key: bytes, batches: Sequence[Batch]) -> None:
        self.me = me
        self.subscriber_key = subscriber_key
        self.batches = list(batches)
        self.port = 0
        self.sessions: list[SessionLog] = []
        self.first_session_over = threading.Event()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="fake-publisher")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> FakePublisher:
        self._thread.start()
        assert self._ready.wait(WAIT_S), "the fake publisher did not start"
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(WAIT_S)
        assert not self._thread.is_alive(), "the fake publisher did not stop"

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        app = web.Application()
        app.router.add_get(GOSSIP_PATH, self._serve)
        runner = web.AppRunner(app, shutdown_timeout=1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.port = runner.addresses[0][1]
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_WS_MESSAGE)
        await ws.prepare(request)
        log = SessionLog()
        self.sessions.append(log)
        first = len(self.sessions) == 1
        session = Session.responder(
            identity=self.me,
            network=NETWORK,
            static_private=self.me.derive_secret(NOISE_CONTEXT),
            ephemeral_private=os.urandom(32),
            is_allowed=lambda key: key == self.subscriber_key,
        )
        try:
            assert isinstance(await next_event(ws, session), HandshakeComplete)
            log.received.append(await next_feed_message(ws, session))
            script = self.batches if first else [CaughtUp(self.batches[-1].upto)]
            for message in script:
                await ws.send_bytes(session.send(encode_message(message)))
                if isinstance(message, Batch):
                    log.received.append(await next_feed_message(ws, session))
            while True:  # later sessions idle until the subscriber leaves (or the test ends)
                log.received.append(await next_feed_message(ws, session))
        except PeerGone:
            log.closed_by_subscriber = True
        except TimeoutError:
            pass
        finally:
            await ws.close()
            if first:
                self.first_session_over.set()
        return ws


def tampered(record: Record) -> bytes:
    """The record with one disclosed body value changed; header and signature untouched."""
    envelope = codec.decode(record.wire, max_size=MAX_RECORD_SIZE)
    envelope["f"]["title"][1] = "A title the author never signed"
    return codec.encode(envelope)


def forged(record: Record, forger: Identity) -> bytes:
    """The record's header, claiming its real author, signed by someone else."""
    net = NETWORK.encode()
    envelope = codec.decode(record.wire, max_size=MAX_RECORD_SIZE)
    envelope["s"] = forger.sign(RECORD_DOMAIN, bytes([len(net)]) + net + record.header_bytes)
    return codec.encode(envelope)


def wire_id(wire: bytes) -> str:
    """The id a record's bytes claim (SPEC §3.4), computed without verifying them."""
    envelope = codec.decode(wire, max_size=MAX_RECORD_SIZE)
    return record_id(envelope["h"], envelope["s"]).hex()


@pytest.mark.parametrize("attack", ["tampered", "forged"])
def test_a_bad_record_from_a_publisher_ends_the_session_and_costs_score(target: Target, attack: str) -> None:
    publisher = attacker(f"{attack} publisher")
    valid_1 = make_record(publisher, 1, None, network=NETWORK, tag=attack)
    valid_2 = make_record(publisher, 2, valid_1.id, network=NETWORK, tag=attack)
    if attack == "tampered":
        # Same header and signature, so the same id as the genuine record the target must never hold.
        genuine = make_record(publisher, 3, valid_2.id, network=NETWORK, tag=attack)
        bad_wire = tampered(genuine)
    else:
        genuine = make_record(identity("victim author"), 1, None, network=NETWORK, tag=attack)
        bad_wire = forged(genuine, publisher)
    bad_id = wire_id(bad_wire)
    batches = [
        Batch(1, (FeedItem(1, 0, valid_1.wire),)),
        Batch(3, (FeedItem(2, 0, valid_2.wire), FeedItem(3, 0, bad_wire))),
    ]
    penalised = len(target.node.events("peer_penalised"))

    with FakePublisher(publisher, target.node.key, batches) as fake:
        target.admit(publisher, address=fake.address, name=f"{attack}-publisher")
        target.node.run("subscribe", publisher.node_id)
        assert fake.first_session_over.wait(WAIT_S), "the target never subscribed to the fake publisher"

        first = fake.sessions[0]
        assert isinstance(first.received[0], Subscribe)
        assert first.received[1:] == [Ack(1)], "the target acknowledges the good batch, not the bad one"
        assert first.closed_by_subscriber
        event = target.node.wait_for_event("peer_penalised", after=penalised, peer=publisher.node_id)
        assert "invalid records" in str(event["reason"])
        status = target.node.peer_status(publisher.node_id)
        assert status["score"] == MISBEHAVIOUR_PENALTY
        assert "invalid records" in str(status["last_error"])
        # The valid records, including the one in the same batch as the bad one, are kept.
        assert target.node.holds(valid_1.id.hex()) and target.node.holds(valid_2.id.hex())
        assert not target.node.holds(bad_id) and not target.node.holds(genuine.id.hex())
        target.node.run("unsubscribe", publisher.node_id)

    target.still_serving()
    assert target.legit.holds(valid_2.id.hex()), "the valid records are relayed on"
    assert not target.legit.holds(bad_id)
