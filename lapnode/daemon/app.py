"""The daemon as an aiohttp application factory: `create_app(settings) -> web.Application`.

Rule 1: resources are opened and closed in cleanup contexts, in order: store, HTTP client, node,
subscription manager, referral desk. Stopping the app closes them in reverse, so acknowledged records
are committed before the process exits.
Rule 2: the public side serves the gossip WebSocket and the read-only TAXII API root under /taxii2/
(which answers loopback clients only: a TLS proxy publishes it); /metrics and /status are on the admin
app, which `serve` binds to loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import WSCloseCode, web

from keys.identity import Identity
from keys.membership import TrustedAuthorities
from lapnode.daemon.appkeys import FEEDS, GOSSIP, MANAGER, NODE, SOCKETS
from lapnode.daemon.channel import Channel, ChannelClosed
from lapnode.daemon.feed import Feed, FeedStats
from lapnode.daemon.manager import SubscriptionManager
from lapnode.daemon.membership import Membership, recipient_for
from lapnode.daemon.metrics import HANDSHAKE_FAILURES, PEERS_CONNECTED, PEERS_DISCONNECTED
from lapnode.daemon.node import GOSSIP_PATH, MAX_WS_MESSAGE, Node, now_ms
from lapnode.daemon.purger import run_purges
from lapnode.daemon.referrals import ReferralDesk
from lapnode.daemon.statements import MembershipGossip
from lapnode.daemon.taxii import ORG as TAXII_ORG
from lapnode.daemon.taxii import PREFIX as TAXII_PREFIX
from lapnode.daemon.taxii import create_taxii_app
from lapnode.policy import Policy
from lapnode.store import Store

log = logging.getLogger("lapnode.app")


@dataclass(frozen=True)
class Settings:
    identity: Identity
    database_url: str
    network: str
    # policy.toml, loaded (and so validated) before the daemon starts; this node's own attributes (the
    # organisation is also named as the author of our own records in TAXII responses).
    policy: Policy
    org: str
    category: str
    jurisdiction: str
    # Empty: legacy mode (peers pinned by the operator); else strict credential checks (SPEC §8.4).
    trusted: TrustedAuthorities = field(default_factory=TrustedAuthorities)
    # This node's installed credential (lapnode.membership.node_credential), re-read when it changes.
    credential_path: Path | None = None
    # Retention per kind in ms (config.toml `[retention]`) and how often the purge pass runs (SPEC §8.10).
    retention: Mapping[str, int] = field(default_factory=dict)
    purge_interval_s: float = 60.0


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[FEEDS] = {}
    app[SOCKETS] = set()
    app.cleanup_ctx.append(_lifecycle(settings))
    app.on_shutdown.append(_close_sockets)
    app.router.add_get(GOSSIP_PATH, gossip_handler)
    if settings.org:
        app[TAXII_ORG] = settings.org
    app.add_subapp(TAXII_PREFIX, create_taxii_app())
    return app


def _lifecycle(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        # Verification workers start with the first large batch (a catch-up), not here: most nodes of a
        # federation never need them, and twenty daemons on one host should not start forty processes.
        store = await Store.open(settings.database_url, network=settings.network)
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=10))
        membership = Membership(settings.trusted, settings.credential_path)
        node = Node(
            settings.identity,
            store,
            settings.network,
            http,
            policy=settings.policy,
            org=settings.org,
            category=settings.category,
            jurisdiction=settings.jurisdiction,
            membership=membership,
        )
        gossip = MembershipGossip(node)
        await gossip.start()
        manager = SubscriptionManager(node, gossip)
        app[NODE], app[MANAGER], app[GOSSIP] = node, manager, gossip
        task = asyncio.create_task(manager.run(), name="subscription-manager")
        # The text search index is kept up outside ingest transactions (lapnode/store/search.py, Rule 2).
        indexer = asyncio.create_task(store.search.run(), name="search-index")
        purges = asyncio.create_task(
            run_purges(node, retention=settings.retention, interval_s=settings.purge_interval_s),
            name="purge-pass",
        )
        # Answers `received` to referrals addressed to us, off the ingest path (lapnode.daemon.referrals).
        desk = asyncio.create_task(ReferralDesk(node).run(), name="referral-desk")
        node.log_event(
            "daemon_started",
            network=settings.network,
            policy_rules=len(settings.policy.rules),
            mode="strict" if membership.strict else "legacy",
            credential=membership.own_credential() is not None,
        )
        try:
            yield
        finally:
            for running in (desk, purges, task, indexer):
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
            await http.close()
            await store.close()
            node.log_event("daemon_stopped")

    return context


async def _close_sockets(app: web.Application) -> None:
    """An orderly close for every peer: a WebSocket close frame, not a dropped connection."""
    sockets = app[SOCKETS].copy()
    for socket in sockets:
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"node shutting down")


async def gossip_handler(request: web.Request) -> web.StreamResponse:
    """A peer dials us to subscribe to our feed. Authenticate first, then serve."""
    node, gossip = request.app[NODE], request.app[GOSSIP]
    socket = web.WebSocketResponse(max_msg_size=MAX_WS_MESSAGE, heartbeat=30)
    await socket.prepare(request)
    request.app[SOCKETS].add(socket)
    peer_key: bytes | None = None
    try:
        channel = await Channel.open(socket, node.responder(await node.admission()), None)
        peer_key = channel.peer_key
        peer = await node.store.peers.find(peer_key)
        if peer is None:
            # Strict mode admits any credentialed member; give it a peer-book row (no address, nothing
            # pinned) so that its activity, score and bans are kept like any peer's.
            peer = await node.store.peers.add(peer_key, "", now_ms=now_ms())
        recipient = recipient_for(peer_key, peer, channel.credential)
        await node.remember_credential(channel)
        stats = request.app[FEEDS].setdefault(peer_key, FeedStats())
        node.channels.add(channel)
        await gossip.opened(channel)
        PEERS_CONNECTED.inc()
        node.log_event("peer_connected", peer=peer_key, direction="inbound")
        try:
            await Feed(node.store, channel, recipient, node.key, stats, node.policy, gossip).serve()
        finally:
            node.channels.discard(channel)
            PEERS_CONNECTED.dec()
            # The stats outlive the connection; move what they counted into the peer book exactly once.
            sent, stats.sent = stats.sent, 0
            await node.store.peers.note_activity(peer_key, now_ms=now_ms(), sent=sent)
    except ChannelClosed as exc:
        if peer_key is None:
            HANDSHAKE_FAILURES.inc()
            node.log_event("handshake_refused", remote=request.remote, peer=exc.peer_key, reason=str(exc))
            if exc.peer_key is not None:
                # It proved who it is and was refused anyway (no valid credential, not admitted): score it.
                await node.penalise(exc.peer_key, str(exc))
        else:
            PEERS_DISCONNECTED.labels(reason="closed").inc()
            node.log_event("peer_disconnected", peer=peer_key, reason=str(exc))
            if exc.misbehaved:
                await node.penalise(peer_key, str(exc))
    finally:
        request.app[SOCKETS].discard(socket)
        await socket.close()
    return socket
