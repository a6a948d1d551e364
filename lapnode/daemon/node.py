"""What a running daemon knows: its identity, its store, its peers' live state, and how to dial out.

Rule 1: the Noise static key is derived from the identity seed under its own domain, so the node has
one secret at rest (the encrypted identity key) and the static key is never written anywhere.
Rule 2: a peer is accepted only if the operator added it, has not blocked it, and it is not serving a
ban for misbehaviour; the check runs inside the handshake, before anything is disclosed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Final

import aiohttp

from keys.identity import Identity, node_id_from_public_key
from lapnode.daemon.channel import Channel
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
        )

    def responder(self, allowed: frozenset[bytes]) -> Session:
        return Session.responder(
            identity=self.identity,
            static_private=self.noise_static(),
            ephemeral_private=os.urandom(32),
            network=self.network,
            is_allowed=allowed.__contains__,
        )

    async def allowed_peers(self) -> frozenset[bytes]:
        current = now_ms()
        return frozenset(
            peer.key
            for peer in await self.store.peers.all()
            if not peer.blocked and (peer.banned_until or 0) <= current
        )

    @contextlib.asynccontextmanager
    async def dial(self, peer: Peer) -> AsyncIterator[Channel]:
        assert self.http is not None, "the daemon's HTTP client is created at start-up"
        url = f"ws://{peer.address}{GOSSIP_PATH}"
        async with self.http.ws_connect(url, max_msg_size=MAX_WS_MESSAGE, heartbeat=30) as socket:
            session = self.initiator(peer.key)
            channel = await Channel.open(socket, session, session.start())
            try:
                yield channel
            finally:
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
