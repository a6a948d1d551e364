"""Commands for the network: `serve`, `status`, `peer ...`, `subscribe`, `unsubscribe`.

Rule 1: peer and subscription commands edit the peer book in the store, so they work whether or not
the daemon runs; a running daemon picks the change up within a second, and at once when the command
reaches its admin side to say so (`tell_daemon_peers_changed`, best effort).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

import click

from keys.identity import node_id_from_public_key, public_key_from_node_id
from lapnode.cli.common import echo_json, home_option, json_option, load_home, printable, run_with_store
from lapnode.cli.passphrase import unlock_identity
from lapnode.cli.render_network import peers_table, status_text
from lapnode.clock import now_ms
from lapnode.config import check_category, check_jurisdiction, check_listen
from lapnode.daemon.paths import PEERS_CHANGED_PATH, STATUS_PATH
from lapnode.errors import InputError
from lapnode.home import NodeHome
from lapnode.membership.node_credential import (
    credential_path,
    credential_report,
    installed_credential,
    trusted_authorities,
)
from lapnode.membership.statements import fork_alarms
from lapnode.policy import load_policy
from lapnode.store import Peer, Store
from protocol.kinds import KNOWN_KINDS

STATUS_TIMEOUT_S = 3.0
# Telling the daemon is a courtesy: it rescans on its own within a second, so never wait long for it.
WAKE_TIMEOUT_S = 1.0


def admin_address(listen: str) -> tuple[str, int]:
    """The admin side listens on loopback, one port above the gossip port."""
    _, port = split_address(listen)
    return "127.0.0.1", port + 1


def split_address(text: str) -> tuple[str, int]:
    host, _, port = check_listen(text).rpartition(":")
    return host.strip("[]"), int(port)


@click.command()
@home_option
@click.option("--passphrase-file", type=click.Path(dir_okay=False, path_type=Path))
def serve_command(home: Path | None, passphrase_file: Path | None) -> None:
    """Run the node daemon until SIGTERM or Ctrl-C."""
    # Imported here, not at the top: the daemon pulls in aiohttp and its metrics, about a fifth of the
    # start-up of every other command, which never serves (docs/performance.md, "Test suite time").
    from lapnode.daemon.app import Settings
    from lapnode.daemon.serve import configure_logging, serve

    node_home = load_home(home)
    # A bad policy.toml stops the daemon here, before the passphrase is asked for: never serve without it.
    policy = load_policy(node_home.policy_path)
    identity = unlock_identity(node_home.key_path, passphrase_file)
    configure_logging()
    host, port = split_address(node_home.config.listen)
    admin_host, admin_port = admin_address(node_home.config.listen)
    config = node_home.config
    settings = Settings(
        identity,
        node_home.database_url,
        config.network,
        policy=policy,
        org=config.org,
        category=config.category,
        jurisdiction=config.jurisdiction,
        trusted=trusted_authorities(config),
        credential_path=credential_path(node_home),
        retention=config.retention_ms(),
        purge_interval_s=config.purge_interval_s(),
    )
    asyncio.run(serve(settings, host=host, port=port, admin_host=admin_host, admin_port=admin_port))


@click.command()
@home_option
@json_option
def status(home: Path | None, as_json: bool) -> None:
    """Show this node, its peers, and any alarms."""
    node_home = load_home(home)
    report = status_from_daemon(node_home) or run_with_store(node_home, _offline_status(node_home))
    if as_json:
        echo_json(report)
    else:
        click.echo(status_text(report))


def status_from_daemon(home: NodeHome) -> dict[str, object] | None:
    host, port = admin_address(home.config.listen)
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{STATUS_PATH}", timeout=STATUS_TIMEOUT_S) as answer:
            report: dict[str, object] = json.load(answer)
    except (urllib.error.URLError, OSError, ValueError):
        return None
    report["daemon"] = "running"
    return report


def tell_daemon_peers_changed(home: NodeHome) -> None:
    """Ask a running daemon to look at its peer book now; nothing happens if none runs (Rule 1)."""
    host, port = admin_address(home.config.listen)
    request = urllib.request.Request(f"http://{host}:{port}{PEERS_CHANGED_PATH}", data=b"", method="POST")
    with contextlib.suppress(urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
        urllib.request.urlopen(request, timeout=WAKE_TIMEOUT_S).close()  # noqa: S310 - http:// on loopback, built here


def _changed(home: NodeHome, change: Callable[[Store], Awaitable[object]]) -> None:
    """Apply one change to the peer book, then tell a running daemon."""
    run_with_store(home, change)
    tell_daemon_peers_changed(home)


def _offline_status(home: NodeHome) -> Callable[[Store], Awaitable[dict[str, object]]]:
    async def collect(store: Store) -> dict[str, object]:
        peers = [_peer_document(peer) for peer in await store.peers.all()]
        alarms = [
            {
                "kind": "equivocation",
                "author": node_id_from_public_key(f.author),
                "since": f.frozen_at,
                "reason": f.reason,
            }
            for f in await store.frozen_authors()
        ]
        membership, membership_alarms = credential_report(
            installed_credential(home),
            trusted=trusted_authorities(home.config),
            network=home.config.network,
            subject=public_key_from_node_id(home.node_id()),
            now_ms=now_ms(),
            revoked=await store.revoked_keys(),
        )
        return {
            "daemon": "not running",
            "node_id": home.node_id(),
            "network": home.config.network,
            "log_head": await store.head(),
            "membership": membership,
            "peers": peers,
            "alarms": alarms + membership_alarms + fork_alarms(await store.statements.forks()),
        }

    return collect


def _peer_document(peer: Peer) -> dict[str, object]:
    return {
        "node_id": node_id_from_public_key(peer.key),
        "name": peer.name,
        "address": peer.address,
        "org": peer.org,
        "category": peer.category,
        "jurisdiction": peer.jurisdiction,
        "subscribed": peer.subscribed,
        "kinds": list(peer.kinds),
        "blocked": peer.blocked,
        "connected": False,
        "last_seen": peer.last_seen,
        "records_received": peer.records_received,
        "records_sent": peer.records_sent,
        "their_feed_position": peer.cursor,
        "score": peer.score,
        "banned_until": peer.banned_until,
    }


@click.group()
def peer() -> None:
    """Manage the peers this node talks to."""


@peer.command("add")
@home_option
@click.argument("node_id")
@click.argument("address")
@click.option("--name", help="A short local name for the peer.")
@click.option("--org", help="The peer's organisation, as you have verified it.")
@click.option("--category", help="enforcement, government, industry or interest-group.")
@click.option("--jurisdiction", help="ISO 3166-1 alpha-2 code of the peer's country.")
def peer_add(
    home: Path | None,
    node_id: str,
    address: str,
    name: str | None,
    org: str | None,
    category: str | None,
    jurisdiction: str | None,
) -> None:
    """Add (or update) a peer: NODE_ID and HOST:PORT. Its attributes are yours to pin, not its claims."""
    key = public_key_from_node_id(node_id)
    check_listen(address)
    pinned = {
        "category": check_category(category) if category else None,
        "jurisdiction": check_jurisdiction(jurisdiction) if jurisdiction else None,
    }
    node_home = load_home(home)
    if key == public_key_from_node_id(node_home.node_id()):
        raise InputError("that is this node's own id")

    async def add(store: Store) -> None:
        await store.peers.add(key, address, now_ms=now_ms(), name=name, org=org, **pinned)

    _changed(node_home, add)
    click.echo(f"added peer {node_id_from_public_key(key)} at {address}")


@peer.command("list")
@home_option
@json_option
def peer_list(home: Path | None, as_json: bool) -> None:
    """List the peers in this node's peer book."""
    peers = run_with_store(load_home(home), lambda store: store.peers.all())
    if as_json:
        echo_json([_peer_document(p) for p in peers])
    else:
        click.echo(peers_table([_peer_document(p) for p in peers]))


@peer.command("remove")
@home_option
@click.argument("node_id")
def peer_remove(home: Path | None, node_id: str) -> None:
    """Forget a peer. Records it sent stay."""
    key = public_key_from_node_id(node_id)
    _changed(load_home(home), lambda store: store.peers.remove(key))
    click.echo(f"removed peer {printable(node_id.strip())}")


@peer.command("block")
@home_option
@click.argument("node_id")
def peer_block(home: Path | None, node_id: str) -> None:
    """Refuse all connections from and to a peer, and end any subscription to it."""
    key = public_key_from_node_id(node_id)
    _changed(load_home(home), lambda store: store.peers.set_blocked(key, True))
    click.echo(f"blocked peer {printable(node_id.strip())}")


@click.command()
@home_option
@click.argument("node_id")
@click.option("--kind", "kinds", multiple=True, help="Only these record kinds (repeatable).")
def subscribe(home: Path | None, node_id: str, kinds: tuple[str, ...]) -> None:
    """Ask a peer for its feed: what it holds and may give us, then new records as they appear."""
    key = public_key_from_node_id(node_id)
    unknown = sorted(set(kinds) - KNOWN_KINDS)
    if unknown:
        raise InputError(f"--kind {unknown[0]!r} is not one of {', '.join(sorted(KNOWN_KINDS))}")

    async def change(store: Store) -> None:
        current = await store.peers.get(key)
        if current.blocked:
            raise InputError("that peer is blocked; remove and add it again to trust it")
        await store.peers.set_subscription(key, True, kinds)

    _changed(load_home(home), change)
    click.echo(f"subscribed to {node_id_from_public_key(key)}")


@click.command()
@home_option
@click.argument("node_id")
def unsubscribe(home: Path | None, node_id: str) -> None:
    """Stop receiving a peer's feed."""
    key = public_key_from_node_id(node_id)
    _changed(load_home(home), lambda store: store.peers.set_subscription(key, False))
    click.echo(f"unsubscribed from {node_id_from_public_key(key)}")
