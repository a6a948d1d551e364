"""Serving our feed to one subscriber (SPEC §6.5): catch-up from its cursor, then live push.

Rule 1: every record passes the policy decision function before it is sent; nothing else decides, and
what is sent is what `disclosed_wire` makes of the decision (the whole record, or a redacted copy).
Rule 2: records are read from the store's log in rounds of READ_AHEAD entries and sent in batches; a
round starts only while fewer than WINDOW_BYTES are unacknowledged, so memory stays flat however far
behind the subscriber is, and a slow subscriber slows only its own feed.
Rule 3: a record is never sent back to the peer it came from, nor one the subscriber says it holds, nor
one whose author's key has been revoked (its receivers would refuse it, SPEC §8.7), nor a purged one
(retracted, expired or past retention: its content is gone, SPEC §8.10; a gap is normal, §3.5).
Rule 4: every decision is appended to the audit trail, once per round, before any of its batches is sent.
Skipping a record the subscriber holds, one it sent us, one of a kind it did not ask for, or one whose
author is revoked is not a disclosure decision and is not recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Final

from lapnode.daemon.channel import Channel, ChannelClosed
from lapnode.daemon.metrics import BATCHES_SENT, IDLE_SENT, RECORDS_SENT
from lapnode.daemon.statements import MembershipGossip
from lapnode.policy import Decision, Policy, Recipient, decide, disclosed_wire
from lapnode.store import AuditEvent, LogEntry, Store
from protocol.gossip import (
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    Ack,
    Batch,
    CaughtUp,
    FeedItem,
    MembershipDigest,
    MembershipStatements,
    Ranges,
    Subscribe,
    Unsubscribe,
    in_ranges,
)

# Several of a subscriber's group commits (lapnode.daemon.subscriber.GROUP_COMMIT_RECORDS records of about
# 1 KiB): the feed keeps sending while the subscriber commits, so its verify workers do not run dry. At
# 4 MiB, one commit's worth, every commit stopped the stream until its ack (bench sync: the two nodes kept
# 1.68 of the 2 cores busy; 1.73-1.83 with 16 MiB). It costs no memory here: only sizes are kept.
WINDOW_BYTES: Final = 16 * 1024 * 1024
# Log entries read, decided and audited per round, then sent as as many batches as they need: the read
# and the audit append are a few statements whatever their size, and at 256 entries a round they were a
# good part of a serving daemon's CPU per record (bench sync).
READ_AHEAD: Final = 1024
SUBSCRIBE_TIMEOUT: Final = 10.0
IDLE_WAIT: Final = 15.0

log = logging.getLogger("lapnode.feed")


@dataclass
class FeedStats:
    sent: int = 0
    position: int = 0
    head: int = 0


@dataclass
class _Window:
    unacked: deque[tuple[int, int]] = field(default_factory=deque)
    size: int = 0
    acked: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, upto: int, size: int) -> None:
        self.unacked.append((upto, size))
        self.size += size

    def ack(self, upto: int) -> None:
        while self.unacked and self.unacked[0][0] <= upto:
            self.size -= self.unacked.popleft()[1]
        self.acked = max(self.acked, upto)
        self.changed.set()


class Feed:
    """One subscriber's feed on one channel."""

    def __init__(
        self,
        store: Store,
        channel: Channel,
        recipient: Recipient,
        our_key: bytes,
        stats: FeedStats,
        policy: Policy,
        gossip: MembershipGossip,
    ) -> None:
        self._store = store
        self._policy = policy
        self._channel = channel
        # From lapnode.daemon.membership.recipient_for, the one place a peer's attributes are decided.
        self._recipient = recipient
        self._our_key = our_key
        self._stats = stats
        self._gossip = gossip
        self._window = _Window()
        # Decisions of the current round, appended before its batches are sent (Rule 4).
        self._decided: list[AuditEvent] = []

    async def serve(self) -> None:
        request = await self._channel.receive(timeout=SUBSCRIBE_TIMEOUT)
        if not isinstance(request, Subscribe):
            raise ChannelClosed("first message was not a subscription", misbehaved=True)
        await self._gossip.greet(self._channel)
        acks = asyncio.create_task(self._read_acks())
        stream = asyncio.create_task(self._stream(request))
        try:
            # Whichever ends first (the subscriber leaves, or the stream fails) ends the feed.
            done, _ = await asyncio.wait({acks, stream}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in (acks, stream):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ChannelClosed):
                    await task

    async def _read_acks(self) -> None:
        while True:
            message = await self._channel.receive()
            if isinstance(message, Ack):
                self._window.ack(message.upto)
            elif isinstance(message, MembershipDigest | MembershipStatements):
                await self._gossip.handle(self._channel, message)
            elif isinstance(message, Unsubscribe):
                raise ChannelClosed("subscriber unsubscribed")
            else:
                raise ChannelClosed("unexpected message from a subscriber", misbehaved=True)

    async def _stream(self, request: Subscribe) -> None:
        position = request.cursor
        # The position the subscriber was last told of (by a batch or `idle`), and whether it has had an
        # `idle` this session. A live record needs no `idle` after its batch: the batch's `upto` already
        # told the same position, and the subscriber knows it is caught up (SPEC §6.5 rule 4). On a mesh
        # that frame, and its handling, was a third of the messages per record per link.
        told, idle_sent = -1, False
        kinds = frozenset(request.kinds)
        while True:
            await self._wait_for_window()
            entries = await self._store.read_log(position, limit=READ_AHEAD)
            if not entries:
                if not idle_sent or told != position:
                    await self._channel.send(CaughtUp(position))
                    IDLE_SENT.inc()
                    told, idle_sent = position, True
                self._stats.head = await self._store.wait_for_growth(position, timeout=IDLE_WAIT)
                continue
            items = self._select(entries, kinds, request.vector)
            position = entries[-1].position
            await self._record_decisions()
            for upto, batch, size in _batches(items, upto=position):
                await self._channel.send(Batch(upto, batch))
                BATCHES_SENT.inc()
                told = upto
                self._window.add(upto, size)
                self._stats.sent += len(batch)
                RECORDS_SENT.inc(len(batch))
            self._stats.position = position

    def _select(
        self, entries: list[LogEntry], kinds: frozenset[str], vector: Mapping[bytes, Ranges]
    ) -> list[FeedItem]:
        now_ms = time.time_ns() // 1_000_000
        selection = select_for(
            entries,
            self._recipient,
            kinds=kinds,
            vector=vector,
            policy=self._policy,
            our_key=self._our_key,
            now_ms=now_ms,
            network=self._store.network,
            revoked=self._gossip.revoked,
        )
        for entry, decision in selection.decisions:
            self._note(entry, decision, now_ms)
        return selection.items

    def _note(self, entry: LogEntry, decision: Decision, now_ms: int) -> None:
        recipient = self._recipient.key
        self._decided.append(
            AuditEvent(entry.rid, recipient, decision.action, decision.reasons, now_ms, "gossip")
        )

    async def _record_decisions(self) -> None:
        """Append this round's decisions, before any of its batches is sent (Rule 4)."""
        decided, self._decided = self._decided, []
        await self._store.audit.append(decided)

    async def _wait_for_window(self) -> None:
        while self._window.size > WINDOW_BYTES:
            self._window.changed.clear()
            await self._window.changed.wait()


@dataclass(frozen=True, slots=True)
class Selection:
    """What one round of a feed sends (`items`) and every disclosure decision it made on the way (Rule 4:
    each is audited)."""

    items: list[FeedItem]
    decisions: list[tuple[LogEntry, Decision]]


def select_for(
    entries: Sequence[LogEntry],
    recipient: Recipient,
    *,
    kinds: frozenset[str],
    vector: Mapping[bytes, Ranges],
    policy: Policy,
    our_key: bytes,
    now_ms: int,
    network: str,
    revoked: AbstractSet[bytes] = frozenset(),
) -> Selection:
    """The records of `entries` (a stretch of our log) to send to `recipient`, in log order, as sent.

    SPEC §6.5 rule 3: skip what the recipient sent us, records of `revoked` authors (§8.7: no peer
    would accept them), purged records (§8.10), kinds it did not ask for and what its `vector` says it
    holds; everything else goes through `decide` (Rule 1) and leaves as `disclosed_wire` makes it, with
    the relay count of rule 6. Pure: the feed and the leak oracle (tests/lapnode/test_leak_oracle.py)
    both run exactly this.
    """
    items: list[FeedItem] = []
    decisions: list[tuple[LogEntry, Decision]] = []
    for entry in entries:
        if entry.source == recipient.key or entry.author in revoked or entry.purged is not None:
            continue
        if kinds and entry.kind not in kinds:
            continue
        if in_ranges(entry.seq, vector.get(entry.author, ())):
            continue
        decision = decide(
            entry, recipient, now_ms=now_ms, our_key=our_key, hops=entry.hops, policy=policy, via="gossip"
        )
        decisions.append((entry, decision))
        wire = disclosed_wire(entry.wire, decision, network=network)
        if wire is not None:
            hops_out = 0 if entry.author == our_key else entry.hops + 1
            items.append(FeedItem(entry.position, hops_out, wire))
    return Selection(items, decisions)


def _batches(items: list[FeedItem], *, upto: int) -> list[tuple[int, tuple[FeedItem, ...], int]]:
    """`items` cut into batches of at most MAX_BATCH_RECORDS records and MAX_BATCH_BYTES record bytes (one
    bigger record travels alone), each with its `upto` and size: the last batch covers the whole round
    (`upto`), the others end at their last record."""
    batches: list[tuple[int, tuple[FeedItem, ...], int]] = []
    current: list[FeedItem] = []
    size = 0
    for item in items:
        if current and (size + len(item.wire) > MAX_BATCH_BYTES or len(current) == MAX_BATCH_RECORDS):
            batches.append((current[-1].position, tuple(current), size))
            current, size = [], 0
        current.append(item)
        size += len(item.wire)
    if current:
        batches.append((upto, tuple(current), size))
    return batches
