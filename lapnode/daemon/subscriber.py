"""Subscribing to one peer's feed: dial, authenticate, catch up, follow, and retry (SPEC §6.5).

Rule 1: a batch is acknowledged only after the records and the new cursor are committed together, so
a crash at any point loses nothing and, after a restart, repeats at most what was not committed.
Rule 2: the reader and the writer are separate tasks joined by a bounded queue: the store writes
several batches per transaction while the next ones arrive, and a full queue stops reading from the
socket (backpressure on the publisher). The reader starts verifying each batch as it arrives
(Store.verify_ahead), so the verify workers check what is queued while the writer writes what came
before; the store still verifies and screens every record before writing it (Rule 4).
Rule 3: failures retry with exponential backoff and full jitter; a node that was offline catches up on
its own when the peer returns, without waiting for new traffic.
Rule 4: every verified record passes the inbound decision (lapnode.policy.decide_inbound) before it is
stored. A record the author's scope kept from us is not stored, and the peer that sent it is penalised
once per batch; a record a local rule quarantines is kept aside for an operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import aiohttp

from lapnode.daemon.channel import Channel, ChannelClosed
from lapnode.daemon.membership import recipient_for
from lapnode.daemon.metrics import DUPLICATES_RECEIVED, RECORDS_RECEIVED, RECORDS_REJECTED
from lapnode.daemon.node import Node, now_ms
from lapnode.daemon.statements import MembershipGossip
from lapnode.policy import InboundDecision, Policy, Recipient, decide_inbound
from lapnode.store import Arrival, Peer, Rejection, Store
from lapnode.store.verifier import Ahead
from protocol.gossip import (
    MAX_RANGES_PER_AUTHOR,
    Ack,
    Batch,
    CaughtUp,
    FeedItem,
    MembershipDigest,
    MembershipStatements,
    Subscribe,
)

QUEUE_BATCHES: Final = 16
# A message from the publisher, with the verification the reader started for it (None: none started).
Arrived = tuple[Batch | CaughtUp, Ahead | None]
GROUP_COMMIT_RECORDS: Final = 4096
BACKOFF_BASE: Final = 0.5
BACKOFF_MAX: Final = 60.0

log = logging.getLogger("lapnode.subscriber")


@dataclass
class SubscriptionState:
    connected: bool = False
    received: int = 0
    position: int = 0
    remote_head: int = 0
    last_error: str | None = None
    failures: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    # Wire bytes of the current session (or the last one, once it ended), handshake included.
    session_bytes_in: int = 0
    session_bytes_out: int = 0
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)


async def subscription_for(store: Store, peer: Peer) -> Subscribe:
    """What we ask `peer` for when a session starts: its feed after the cursor we committed, of the kinds
    we want, minus what we hold and it could not bring closer (SPEC §6.5 rules 2 and 6). The leak
    oracle (tests/lapnode/test_leak_oracle.py) subscribes with exactly this."""
    vector = await store.holdings(publisher=peer.key)
    return Subscribe(
        cursor=peer.cursor,
        kinds=peer.kinds,
        vector={a: r[:MAX_RANGES_PER_AUTHOR] for a, r in vector.items()},
    )


def screen_arrival(
    arrival: Arrival, hops: int, *, sender: Recipient, us: Recipient, policy: Policy, now: int | None = None
) -> InboundDecision:
    """The inbound decision on a verified record `sender` just gave us (Rule 4): the screen that
    Store.ingest calls for every arrival. `now` defaults to the clock."""
    return decide_inbound(
        arrival, sender, now_ms=now_ms() if now is None else now, us=us, hops=hops, policy=policy
    )


class Subscription:
    """Keeps one peer's feed flowing into our store for as long as we subscribe to it."""

    def __init__(self, node: Node, peer: Peer, gossip: MembershipGossip) -> None:
        self._node = node
        self._gossip = gossip
        self.peer = peer
        self.state = SubscriptionState()
        self._channel: Channel | None = None
        # Until a session says otherwise (a credential), the sender is what the operator pinned.
        self._sender = recipient_for(peer.key, peer, None)

    def _screen_for(self, us: Recipient) -> Callable[[Arrival, int], InboundDecision]:
        """The inbound screen of one commit: `us` (this node's attributes, fixed while it runs) is built
        once per commit rather than once per record."""
        sender, policy = self._sender, self._node.policy

        def screen(arrival: Arrival, hops: int) -> InboundDecision:
            return screen_arrival(arrival, hops, sender=sender, us=us, policy=policy)

        return screen

    def session_bytes(self) -> tuple[int, int]:
        """Bytes in and out of the current session, or of the last one once it ended."""
        if self._channel is not None:
            return self._channel.bytes_in, self._channel.bytes_out
        return self.state.session_bytes_in, self.state.session_bytes_out

    async def run(self) -> None:
        while True:
            try:
                await self._session()
                self.state.failures = 0
            except ChannelClosed as exc:
                self.state.last_error = str(exc)
                if exc.misbehaved:
                    await self._node.penalise(self.peer.key, str(exc))
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self.state.last_error = f"cannot reach {self.peer.address}: {type(exc).__name__}"
            finally:
                self.state.connected = False
            self.state.failures += 1
            delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** min(self.state.failures, 10))
            await asyncio.sleep(random.uniform(0, delay))  # full jitter

    async def _session(self) -> None:
        peer = await self._node.store.peers.find(self.peer.key)
        if peer is None:
            # Removed, or moved to a new key by a rotation; the manager stops this task within a second.
            raise ChannelClosed("the peer is no longer in the peer book under this key")
        if (peer.banned_until or 0) > now_ms():
            raise ChannelClosed("peer is refused for misbehaviour; waiting until the ban ends")
        self.state.caught_up.clear()
        async with self._node.dial(peer) as channel:
            self._channel = channel
            # In strict mode the inbound decision reads the sender's attributes from its credential.
            self._sender = recipient_for(channel.peer_key, peer, channel.credential)
            await self._node.remember_credential(channel)
            await self._gossip.opened(channel)
            self.state.connected = True
            await channel.send(await subscription_for(self._node.store, peer))
            await self._gossip.greet(channel)
            self.state.position = peer.cursor
            queue: asyncio.Queue[Arrived] = asyncio.Queue(maxsize=QUEUE_BATCHES)
            reader = asyncio.create_task(self._read(channel, queue))
            try:
                await self._write(channel, queue, reader)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, ChannelClosed):
                    await reader
                while not queue.empty():
                    _, ahead = queue.get_nowait()
                    if ahead is not None:
                        ahead.cancel()
                self._channel = None
                self.state.session_bytes_in = channel.bytes_in
                self.state.session_bytes_out = channel.bytes_out
                self.state.bytes_in += channel.bytes_in
                self.state.bytes_out += channel.bytes_out

    async def _read(self, channel: Channel, queue: asyncio.Queue[Arrived]) -> None:
        while True:
            message = await channel.receive()
            if isinstance(message, MembershipDigest | MembershipStatements):
                await self._gossip.handle(channel, message)
                continue
            if isinstance(message, CaughtUp):
                await queue.put((message, None))
            elif isinstance(message, Batch):
                ahead = self._node.store.verify_ahead([item.wire for item in message.items])
                try:
                    await queue.put((message, ahead))
                except asyncio.CancelledError:
                    if ahead is not None:
                        ahead.cancel()
                    raise
            else:
                raise ChannelClosed("publisher sent a message only a subscriber may send", misbehaved=True)

    async def _write(
        self, channel: Channel, queue: asyncio.Queue[Arrived], reader: asyncio.Task[None]
    ) -> None:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                reader.result()  # raises the reader's ChannelClosed
                return
            arrived = [getter.result()]
            while not queue.empty() and sum(len(m.items) for m, _ in arrived if isinstance(m, Batch)) < (
                GROUP_COMMIT_RECORDS
            ):
                arrived.append(queue.get_nowait())
            await self._commit(channel, arrived)

    async def _commit(self, channel: Channel, arrived: list[Arrived]) -> None:
        messages = [message for message, _ in arrived]
        upto = max(m.upto for m in messages)
        if upto < self.state.position:
            for _, ahead in arrived:
                if ahead is not None:
                    ahead.cancel()
            raise ChannelClosed("publisher moved its feed backwards", misbehaved=True)
        items: list[FeedItem] = []
        started: list[Ahead] = []
        for message, ahead in arrived:
            if ahead is not None:
                started.append(ahead.shifted(len(items)))
            if isinstance(message, Batch):
                items.extend(message.items)
        report = await self._node.store.ingest(
            [item.wire for item in items],
            source=self.peer.key,
            hops=[item.hops for item in items],
            cursor=upto,
            screen=self._screen_for(self._node.us),
            ahead=Ahead.joined(started) if started else None,
        )
        self.state.position = upto
        self.state.received += len(report.stored)
        RECORDS_RECEIVED.inc(len(report.stored))
        DUPLICATES_RECEIVED.inc(report.duplicates)
        await self._note_policy(report.rejected, len(report.quarantined))
        invalid = [r for r in report.rejected if r.invalid]
        if invalid:
            RECORDS_REJECTED.inc(len(invalid))
            raise ChannelClosed(
                f"peer sent {len(invalid)} invalid records: {invalid[0].reason}", misbehaved=True
            )
        if any(isinstance(m, Batch) for m in messages):
            await channel.send(Ack(upto))
        if isinstance(messages[-1], CaughtUp):
            self.state.caught_up.set()
        if report.stored:
            self._node.log_event("records_received", peer=self.peer.key, count=len(report.stored))

    async def _note_policy(self, rejected: list[Rejection], quarantined: int) -> None:
        if quarantined:
            self._node.log_event("records_quarantined", peer=self.peer.key, count=quarantined)
        refused = [r for r in rejected if r.by_policy]
        if refused:
            RECORDS_REJECTED.inc(len(refused))
            self._node.log_event(
                "records_refused", peer=self.peer.key, count=len(refused), reason=refused[0].reason
            )
        broken = [r for r in refused if r.misbehaved]
        if broken:
            await self._node.penalise(
                self.peer.key, f"sent {len(broken)} records their scope kept from us: {broken[0].reason}"
            )
