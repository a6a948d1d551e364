"""The local admin side: /status (JSON for `lapnode status`), /metrics (Prometheus text), and
`POST /peers/changed`, by which the CLI says it changed the peer book (lapnode.daemon.manager Rule 1)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from keys.identity import node_id_from_public_key
from lapnode.clock import now_ms
from lapnode.daemon.appkeys import FEEDS, MANAGER, NODE
from lapnode.daemon.metrics import LOG_HEAD, REGISTRY
from lapnode.daemon.paths import PEERS_CHANGED_PATH, STATUS_PATH
from lapnode.membership.node_credential import credential_report
from lapnode.membership.statements import fork_alarms
from protocol.credential import Credential

MAIN_APP = web.AppKey("main_app", web.Application)


def create_admin_app(main: web.Application) -> web.Application:
    admin = web.Application()
    admin[MAIN_APP] = main
    admin.router.add_get(STATUS_PATH, status_handler)
    admin.router.add_get("/metrics", metrics_handler)
    admin.router.add_post(PEERS_CHANGED_PATH, peers_changed_handler)
    return admin


async def status_handler(request: web.Request) -> web.Response:
    return web.json_response(await collect_status(request.app[MAIN_APP]))


async def peers_changed_handler(request: web.Request) -> web.Response:
    """The peer book changed: look at it now. Carries nothing; the daemon reads the book itself."""
    main = request.app[MAIN_APP]
    main[NODE].log_event("peers_changed")
    main[MANAGER].wake()
    return web.Response(status=204)


async def metrics_handler(request: web.Request) -> web.Response:
    main = request.app[MAIN_APP]
    LOG_HEAD.set(await main[NODE].store.head())
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def collect_status(main: web.Application) -> dict[str, object]:
    node, manager, feeds = main[NODE], main[MANAGER], main[FEEDS]
    head = await node.store.head()
    credentials: dict[bytes, Credential] = {
        channel.peer_key: channel.credential for channel in node.channels if channel.credential is not None
    }
    peers = []
    for peer in await node.store.peers.all():
        subscription = manager.subscriptions.get(peer.key)
        feed = feeds.get(peer.key)
        session_in, session_out = subscription.session_bytes() if subscription else (None, None)
        peers.append(
            {
                "node_id": node_id_from_public_key(peer.key),
                "name": peer.name,
                "address": peer.address,
                "subscribed": peer.subscribed,
                "blocked": peer.blocked,
                "connected": bool(subscription and subscription.state.connected),
                "caught_up": bool(subscription and subscription.state.caught_up.is_set()),
                "last_error": subscription.state.last_error if subscription else None,
                "last_seen": peer.last_seen,
                "records_received": peer.records_received,
                "records_sent": peer.records_sent + (feed.sent if feed else 0),
                "their_feed_position": peer.cursor,
                "behind_our_feed": max(0, head - feed.position) if feed else None,
                "score": peer.score,
                "banned_until": peer.banned_until,
                # Our subscription to this peer: wire bytes of the current (or last) session.
                "session_bytes_in": session_in,
                "session_bytes_out": session_out,
                # What its verified credential says, while a channel with it is open (strict mode).
                "credential": _credential_document(credentials.get(peer.key)),
            }
        )
    alarms = [
        {
            "kind": "equivocation",
            "author": node_id_from_public_key(frozen.author),
            "since": frozen.frozen_at,
            "reason": frozen.reason,
        }
        for frozen in await node.store.frozen_authors()
    ]
    membership, membership_alarms = credential_report(
        node.membership.own_credential(),
        trusted=node.membership.trusted,
        network=node.network,
        subject=node.key,
        now_ms=now_ms(),
        revoked=node.membership.revoked,
    )
    return {
        "node_id": node.identity.node_id,
        "network": node.network,
        "log_head": head,
        "membership": membership,
        "peers": peers,
        "alarms": alarms + membership_alarms + fork_alarms(await node.store.statements.forks()),
    }


def _credential_document(credential: Credential | None) -> dict[str, object] | None:
    if credential is None:
        return None
    return {
        "org": credential.org,
        "category": credential.category,
        "jurisdiction": credential.jurisdiction,
        "not_after": credential.not_after,
        "authority": credential.body.authority_id,
    }
