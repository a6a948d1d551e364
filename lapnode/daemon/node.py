"""What a running daemon knows: its identity, its store, its peers' live state, and how to dial out.

Rule 1: the Noise static key is derived from the identity seed under its own domain, so the node has
one secret at rest (the encrypted identity key) and the static key is never written anywhere.
Rule 2: a peer is accepted only if it is admitted (legacy mode: the operator added it; strict mode: it
presents a valid credential, see lapnode.daemon.membership), the operator has not blocked it, and it is
not serving a ban for misbehaviour; the check runs inside the handshake, before anything is disclosed.
Rule 3: every open channel, in either direction, is in `channels` until it closes, so that a revocation
or an expired credential can end it wherever it is (`sweep`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Final

import aiohttp
from aiohttp import WSCloseCode

from keys.identity import Identity, node_id_from_public_key
from keys.membership import TrustedAuthorities
from lapnode.daemon.channel import Channel
from lapnode.daemon.membership import Membership
from lapnode.daemon.metrics import PEERS_DISCONNECTED
from lapnode.policy import NO_RULES, Policy, Recipient
from lapnode.store import Peer, Store
from protocol.session import Session

GOSSIP_PATH: Final = "/lapnode/v1/gossip"
NOISE_STATIC_CONTEXT: Final = b"lapnode.noise.s1"
MISBEHAVIOUR_PENALTY: Final = -10
BAN_THRESHOLD: Final = -30
BAN_MS: Final = 10 * 60 * 1000
MAX_WS_MESSAGE: Final = 2 * 1024 * 1024

log = logging.getLogger("lapnode.node")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Node:
    identity: Identity
    store: Store
    network: str
    http: aiohttp.ClientSession | None = None
    banned: dict[bytes, int] = field(default_factory=dict)
    # The local rules (policy.toml), loaded once at start, and this node's own attributes as its
    # config.toml states them: what the inbound decision checks a record's audience against.
    policy: Policy = NO_RULES
    org: str | None = None
    category: str | None = None
    jurisdiction: str | None = None
    membership: Membership = field(default_factory=lambda: Membership(TrustedAuthorities()))
    channels: set[Channel] = field(default_factory=set)

    @property
    def key(self) -> bytes:
        return self.identity.public_key.raw

    @property
    def us(self) -> Recipient:
        return Recipient(self.key, self.org, self.category, self.jurisdiction)

    def noise_static(self) -> bytes:
        return self.identity.derive_secret(NOISE_STATIC_CONTEXT)

    def initiator(self, pinned: bytes) -> Session:
        return Session.initiator(
            identity=self.identity,
            static_private=self.noise_static(),
            ephemeral_private=os.urandom(32),
            network=self.network,
            responder_node_key=pinned,
            credential=self.membership.own_credential(),
            credential_check=self.membership.check(now_ms()),
            rotation=self.membership.own_rotation,
        )

    def responder(self, is_allowed: Callable[[bytes], bool]) -> Session:
        return Session.responder(
            identity=self.identity,
            static_private=self.noise_static(),
            ephemeral_private=os.urandom(32),
            network=self.network,
            is_allowed=is_allowed,
            credential=self.membership.own_credential(),
            credential_check=self.membership.check(now_ms()),
            rotation=self.membership.own_rotation,
        )

    async def admission(self) -> Callable[[bytes], bool]:
        """Which initiators may complete a handshake now (Rule 2); credentials are checked on top."""
        current = now_ms()
        peers = await self.store.peers.all()
        if self.membership.strict:
            refused = frozenset(p.key for p in peers if p.blocked or (p.banned_until or 0) > current)
            return lambda key: key not in refused and not self.membership.refused(key)
        allowed = frozenset(p.key for p in peers if not p.blocked and (p.banned_until or 0) <= current)
        return lambda key: key in allowed and not self.membership.refused(key)

    async def remember_credential(self, channel: Channel) -> None:
        """Keep the credential a peer presented, for the exits that run without a session (lapnode.exits)."""
        if channel.credential is not None:
            await self.store.peers.note_credential(channel.peer_key, channel.credential.wire, now_ms=now_ms())

    async def sweep(self) -> None:
        """End every channel whose peer has been revoked or whose credential has expired (Rule 3)."""
        current = now_ms()
        for channel in list(self.channels):
            credential = channel.credential
            if channel.peer_key in self.membership.revoked:
                reason = "revoked"
            elif channel.peer_key in self.membership.retired:
                reason = "key-rotated"
            elif credential is not None and credential.not_after <= current:
                reason = "credential-expired"
            else:
                continue
            self.channels.discard(channel)
            self.log_event("peer_dropped", peer=channel.peer_key, reason=reason)
            PEERS_DISCONNECTED.labels(reason=reason).inc()
            await channel.close(code=WSCloseCode.POLICY_VIOLATION, message=b"membership ended")

    @contextlib.asynccontextmanager
    async def dial(self, peer: Peer) -> AsyncIterator[Channel]:
        assert self.http is not None, "the daemon's HTTP client is created at start-up"
        url = f"ws://{peer.address}{GOSSIP_PATH}"
        async with self.http.ws_connect(url, max_msg_size=MAX_WS_MESSAGE, heartbeat=30) as socket:
            session = self.initiator(peer.key)
            channel = await Channel.open(socket, session, session.start())
            self.channels.add(channel)
            try:
                yield channel
            finally:
                self.channels.discard(channel)
                await channel.close()

    async def penalise(self, key: bytes, reason: str) -> None:
        """Lower a misbehaving peer's score; below the threshold it is refused for a while."""
        peer = await self.store.peers.find(key)
        PEERS_DISCONNECTED.labels(reason="misbehaviour").inc()
        if peer is None:
            return
        score = peer.score + MISBEHAVIOUR_PENALTY
        banned_until = now_ms() + BAN_MS if score <= BAN_THRESHOLD else None
        await self.store.peers.note_activity(
            key, now_ms=now_ms(), score_delta=MISBEHAVIOUR_PENALTY, banned_until=banned_until
        )
        self.log_event(
            "peer_penalised", peer=key, reason=reason, score=score, banned=banned_until is not None
        )

    def log_event(self, event: str, *, peer: bytes | None = None, **fields: object) -> None:
        record: dict[str, object] = {"event": event}
        if peer is not None:
            record["peer"] = node_id_from_public_key(peer)
        record.update(fields)
        log.info(json.dumps(record, default=str, sort_keys=True))
