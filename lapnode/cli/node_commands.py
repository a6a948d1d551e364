"""`lapnode init` and `lapnode id`: create a node, and say who it is."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from keys.identity import Identity
from lapnode.cli.common import echo_json, home_option, json_option, load_home, passphrase_file_option
from lapnode.cli.passphrase import protection_for_new_key
from lapnode.config import DEFAULT_LISTEN, DEFAULT_NETWORK, Config
from lapnode.home import NodeHome, check_new_home, initialise_home, resolve_home
from lapnode.store import Store
from protocol.scope import CATEGORIES


async def _probe_store(url: str, network: str) -> None:
    # Creating the schema now makes a wrong --database fail at init, not at the first publish.
    store = await Store.open(url, network=network)
    await store.close()


@click.command()
@home_option
@click.option("--org", required=True, help="Your organisation's name, e.g. 'OPTA'.")
@click.option("--jurisdiction", required=True, metavar="CC", help="ISO 3166-1 alpha-2 country code, e.g. NL.")
@click.option(
    "--category", required=True, metavar="CATEGORY", help=f"Member category: {', '.join(sorted(CATEGORIES))}."
)
@click.option(
    "--listen", default=DEFAULT_LISTEN, show_default=True, metavar="HOST:PORT", help="Peer address."
)
@click.option("--database", metavar="URL", help="Database URL [default: SQLite store.sqlite in the home].")
@click.option("--network", default=DEFAULT_NETWORK, show_default=True, metavar="ID", help="Network id.")
@click.option("--no-passphrase", is_flag=True, help="Store the key unencrypted (demos and tests only).")
@passphrase_file_option
def init(
    home: Path | None,
    org: str,
    jurisdiction: str,
    category: str,
    listen: str,
    database: str | None,
    network: str,
    no_passphrase: bool,
    passphrase_file: Path | None,
) -> None:
    """Create a node: its home, identity key, configuration and store.

    Everything is checked before anything is written; a failed init leaves nothing behind.
    """
    path = resolve_home(home)
    config = Config.create(
        org=org,
        jurisdiction=jurisdiction,
        category=category,
        network=network,
        listen=listen,
        database=database,
    )
    check_new_home(path)
    protection = protection_for_new_key(passphrase_file, no_passphrase=no_passphrase)
    identity = Identity.generate()
    node_home = asyncio.run(initialise_home(path, config, identity, protection, _probe_store))
    click.echo(f"initialised lapnode home {node_home.path}")
    click.echo(f"node id: {identity.node_id}")
    if no_passphrase:
        click.echo(
            "warning: the node key is NOT encrypted (--no-passphrase); use this only for tests", err=True
        )


def _identity_document(home: NodeHome) -> dict[str, str]:
    config = home.config
    return {
        "node_id": home.node_id(),
        "org": config.org,
        "jurisdiction": config.jurisdiction,
        "category": config.category,
        "listen": config.listen,
        "network": config.network,
        "home": str(home.path),
    }


@click.command("id")
@home_option
@json_option
def id_command(home: Path | None, as_json: bool) -> None:
    """Show this node's id and settings (needs no passphrase)."""
    document = _identity_document(load_home(home))
    if as_json:
        echo_json(document)
        return
    width = max(len(name) for name in document)
    for name, value in document.items():
        click.echo(f"{name + ':':<{width + 1}} {value}")
