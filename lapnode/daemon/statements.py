"""Passing membership statements (revocations, key rotations, retractions) to every peer, and acting on
them (protocol/SPEC.md §8.7, §8.10).

Rule 1: statements flood. Every channel, whichever side opened it, starts with both sides sending the
digest of what they hold; a side whose digest differs from the other's sends everything it holds. A
statement new to this node, from a peer or from another process (`lapnode membership import`, `authority
revoke --publish`), goes at once to every open channel except the one it came from. So a revocation
crosses each link once, in seconds, whatever the subscription graph, and no policy can hold it back.
Rule 2: a statement is verified before it is stored or passed on. One signed by an authority this node
does not trust is dropped quietly (federated nodes trust different authorities); one that fails
verification is the sender's offence: the channel ends and the peer is scored.
Rule 3: acting on a revocation is three things, all here: the revoked key's open channels end
(`Node.sweep`), its handshakes are refused (`Membership.revoked`), and the store refuses its new records
(the writer reads the same table). The records already held are flagged when read. A rotation likewise
retires its old key (`Membership.retired`); the store moves the peer book's pins to the new key.
A retraction purges its record as it is stored (lapnode.store.lifecycle).
Rule 4: a rotation a peer showed in its handshake (SPEC §8.8) is stored and passed on like one received
in a `mem` message: that is how a node whose only link is the rotated peer learns of the rotation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

from lapnode.clock import now_ms
from lapnode.daemon.channel import Channel, ChannelClosed
from lapnode.daemon.node import Node
from protocol.errors import ProtocolError
from protocol.gossip import (
    MAX_STATEMENTS_PER_MESSAGE,
    MembershipDigest,
    MembershipStatements,
)
from protocol.statements import (
    RETRACT,
    Retraction,
    Revocation,
    Statement,
    UntrustedStatement,
    digest,
    statement_id,
    verify_statement,
)

log = logging.getLogger("lapnode.statements")

_MAX_ANNOUNCED: Final = 100_000


class MembershipGossip:
    """One per daemon: what the node holds, and the flooding of what it learns (Rule 1)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._position = 0
        # Ids already sent to every open channel, so a statement this daemon stored itself is not sent
        # again when the poll finds it in the table.
        self._announced: set[bytes] = set()

    async def start(self) -> None:
        """Load what the store holds: revoked and retired keys take effect before the first handshake."""
        store = self._node.store
        self._position = await store.statements.head()
        await self._refresh()
        self._node.membership.own_rotation = await store.statements.rotation_into(self._node.key)

    async def _refresh(self) -> None:
        statements = self._node.store.statements
        self._node.membership.revoked = await statements.revoked()
        self._node.membership.retired = frozenset(await statements.retired())

    async def opened(self, channel: Channel) -> None:
        """A channel just opened: keep the rotation its peer showed, if new to us (Rule 4)."""
        if channel.rotation is not None:
            await self._store_and_pass_on([channel.rotation], source=channel)

    @property
    def revoked(self) -> frozenset[bytes]:
        return self._node.membership.revoked

    async def greet(self, channel: Channel) -> None:
        """Say what we hold; the peer sends what we lack, and we answer its greeting likewise."""
        await channel.send(MembershipDigest(digest(await self._node.store.statements.ids())))

    async def handle(self, channel: Channel, message: MembershipDigest | MembershipStatements) -> None:
        if isinstance(message, MembershipDigest):
            # Once per session (SPEC §8.7): each answer may be every statement we hold.
            if channel.peer_sent_digest:
                raise ChannelClosed("peer sent its membership digest twice", misbehaved=True)
            channel.peer_sent_digest = True
            ids = await self._node.store.statements.ids()
            if message.digest != digest(ids):
                await self._send_all(channel)
            return
        await self._receive(channel, message.items)

    async def poll(self) -> None:
        """Pick up statements another process stored (the manager calls this every second)."""
        fresh = await self._node.store.statements.after(self._position)
        if not fresh:
            return
        self._position = fresh[-1].position
        if any(row.kind == RETRACT for row in fresh):
            # The other process purged the record as it stored the tombstone: what memory holds of it
            # must go before a feed reads it (lapnode.store.lifecycle).
            self._node.store.forget_recent()
        new = [row.wire for row in fresh if statement_id(row.wire) not in self._announced]
        if not new:
            return
        for wire in new:
            try:
                self._log(self._verify(wire), source=None)
            except ProtocolError:
                continue  # stored by a process that trusted another authority; nothing to act on here
        await self._broadcast(new, except_channel=None)
        await self._took_effect()

    def _verify(self, raw: bytes) -> Statement:
        return verify_statement(raw, network=self._node.network, trusted=self._node.membership.trusted)

    async def _receive(self, channel: Channel, items: Sequence[bytes]) -> None:
        # Copies of what we hold are the common case (every peer sends everything on a digest mismatch):
        # skip them before paying for their signatures.
        held = await self._node.store.statements.known([statement_id(raw) for raw in items])
        verified: list[Statement] = []
        for raw in items:
            if statement_id(raw) in held:
                continue
            try:
                verified.append(self._verify(raw))
            except UntrustedStatement:
                continue
            except ProtocolError as exc:
                raise ChannelClosed(
                    f"peer sent an invalid membership statement: {exc}", misbehaved=True
                ) from exc
        await self._store_and_pass_on(verified, source=channel)

    async def _store_and_pass_on(self, verified: Sequence[Statement], *, source: Channel) -> None:
        stored = await self._node.store.statements.add(verified, now_ms=now_ms())
        if not stored:
            return
        for statement in stored:
            self._log(statement, source=source.peer_key)
        # Pass it on first (the revoked member hears of it too), then act: a few sends of delay at most.
        await self._broadcast([s.wire for s in stored], except_channel=source)
        await self._took_effect()

    async def _took_effect(self) -> None:
        """Refresh the revoked and retired keys and end their channels (Rule 3)."""
        await self._refresh()
        await self._node.sweep()

    async def _send_all(self, channel: Channel) -> None:
        wires = await self._all_wires()
        for start in range(0, len(wires), MAX_STATEMENTS_PER_MESSAGE):
            await channel.send(MembershipStatements(tuple(wires[start : start + MAX_STATEMENTS_PER_MESSAGE])))

    async def _all_wires(self) -> list[bytes]:
        return [row.wire for row in await self._node.store.statements.after(0)]

    async def _broadcast(self, wires: Sequence[bytes], *, except_channel: Channel | None) -> None:
        if len(self._announced) < _MAX_ANNOUNCED:
            self._announced.update(statement_id(wire) for wire in wires)
        for channel in list(self._node.channels):
            if channel is except_channel or channel.closed:
                continue
            try:
                for start in range(0, len(wires), MAX_STATEMENTS_PER_MESSAGE):
                    batch = tuple(wires[start : start + MAX_STATEMENTS_PER_MESSAGE])
                    await channel.send(MembershipStatements(batch))
            except ChannelClosed:
                continue  # that channel's own tasks notice and clean up

    def _log(self, statement: Statement, *, source: bytes | None) -> None:
        if isinstance(statement, Retraction):
            self._node.log_event(
                "retraction_received",
                peer=source,
                author=statement.author_id,
                record=statement.target.hex(),
                reason=statement.reason,
            )
        elif isinstance(statement, Revocation):
            self._node.log_event(
                "revocation_received",
                peer=source,
                revoked=statement.node_id,
                authority=statement.authority_id,
                reason=statement.reason,
            )
        else:
            self._node.log_event(
                "rotation_received",
                peer=source,
                old=statement.old_node_id,
                new=statement.new_node_id,
                last_seq=statement.last_seq,
            )
