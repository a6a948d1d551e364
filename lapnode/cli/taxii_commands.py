"""`lapnode taxii token add|list|remove`, `lapnode taxii collections` and `lapnode taxii pull`.

Rule 1: a token is printed once, when it is made, and stored only as a hash (lapnode.interop.tokens).
Its category and jurisdiction are the recipient attributes the policy decision judges its client by.
Rule 2: `pull` makes drafts only (lapnode.interop Rule 2), and credentials come from files or the
environment, never from the command line where other users could read them.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from lapnode.cli.common import echo_json, home_option, json_option, load_home, printable, run_with_store
from lapnode.cli.draft_commands import announce, store_drafts
from lapnode.cli.network_commands import split_address
from lapnode.clock import format_ms, now_ms, parse_past_ms
from lapnode.config import check_category, check_jurisdiction
from lapnode.errors import InputError
from lapnode.interop.stix_common import timestamp
from lapnode.interop.taxii_collections import collections
from lapnode.interop.tokens import new_token, token_hash, valid_name
from lapnode.store import Store, TokenEntry

ENV_TAXII_TOKEN = "LAPNODE_TAXII_TOKEN"  # noqa: S105 - the variable's name, not a secret
ENV_TAXII_PASSWORD = "LAPNODE_TAXII_PASSWORD"  # noqa: S105 - the variable's name


@click.group("taxii")
def taxii_group() -> None:
    """The read-only TAXII 2.1 server's API tokens, and pulling from other TAXII servers."""


@taxii_group.group("token")
def token_group() -> None:
    """API tokens for TAXII clients (MISP, OpenCTI, taxii2-client)."""


@token_group.command("add")
@home_option
@click.argument("name")
@click.option("--as-category", "category", required=True, help="The client's member category (policy).")
@click.option("--jurisdiction", required=True, metavar="CC", help="The client's country (policy).")
@click.option("--org", help="The client's organisation, as you verified it.")
def token_add(home: Path | None, name: str, category: str, jurisdiction: str, org: str | None) -> None:
    """Make an API token NAME; it is printed once, and only its hash is kept."""
    node_home = load_home(home)
    if not valid_name(name):
        raise InputError(f"token name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    token = new_token()
    entry = TokenEntry(
        name, token_hash(token), org, check_category(category), check_jurisdiction(jurisdiction), now_ms()
    )

    async def action(store: Store) -> None:
        await store.taxii_tokens.add(entry)

    run_with_store(node_home, action)
    click.echo(token)
    click.echo(
        f"token {name!r} made; it is shown only now. Clients send it as a Bearer token or as the "
        "Basic-auth password.",
        err=True,
    )


@token_group.command("list")
@home_option
@json_option
def token_list(home: Path | None, as_json: bool) -> None:
    """List the API tokens (names and attributes; the tokens themselves are not kept)."""
    node_home = load_home(home)

    async def action(store: Store) -> list[TokenEntry]:
        return await store.taxii_tokens.all()

    found = run_with_store(node_home, action)
    rows = [
        {
            "name": t.name,
            "org": t.org,
            "category": t.category,
            "jurisdiction": t.jurisdiction,
            "created": format_ms(t.created_at),
        }
        for t in found
    ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(
            printable(f"{row['name']:<24} {row['category']:<15} {row['jurisdiction']}  {row['org'] or ''}")
        )
    if not rows:
        click.echo(
            "no TAXII tokens; make one with `lapnode taxii token add NAME --as-category C --jurisdiction CC`"
        )


@token_group.command("remove")
@home_option
@click.argument("name")
def token_remove(home: Path | None, name: str) -> None:
    """Revoke the API token NAME (at once: the next request with it is refused)."""
    node_home = load_home(home)

    async def action(store: Store) -> None:
        await store.taxii_tokens.remove(name)

    run_with_store(node_home, action)
    click.echo(f"token {name!r} removed", err=True)


@taxii_group.command("collections")
@home_option
@json_option
def collections_command(home: Path | None, as_json: bool) -> None:
    """Show this node's TAXII API root and collection ids."""
    node_home = load_home(home)
    host, port = split_address(node_home.config.listen)
    root = f"http://{host}:{port}/taxii2/lapnode/"
    found = {kind: cid for cid, kind in collections(node_home.config.network).items()}
    if as_json:
        echo_json({"api_root": root, "collections": found})
        return
    click.echo(f"API root: {root}  (publish it through a TLS proxy; see docs/interop.md)")
    for kind, cid in found.items():
        click.echo(f"{kind:<8} {cid}")


def _secret(path: Path | None, env: str) -> str | None:
    if path is not None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from None
        return lines[0].strip() if lines else ""
    return os.environ.get(env) or None


@taxii_group.command("pull")
@home_option
@click.argument("url", metavar="API_ROOT_URL")
@click.option("--collection", "collection_id", required=True, metavar="ID", help="The collection id.")
@click.option("--user", help="Basic-auth user (password from --password-file or LAPNODE_TAXII_PASSWORD).")
@click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A Bearer token [else env LAPNODE_TAXII_TOKEN].",
)
@click.option("--added-after", metavar="TIME", help="Only objects added after TIME (ISO date/time or 7d).")
@click.option("--page-size", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--max-objects", type=click.IntRange(1), default=10_000, show_default=True)
def pull_command(
    home: Path | None,
    url: str,
    collection_id: str,
    user: str | None,
    password_file: Path | None,
    token_file: Path | None,
    added_after: str | None,
    page_size: int,
    max_objects: int,
) -> None:
    """Pull STIX indicators from a TAXII 2.1 collection into draft leads (nothing is published)."""
    # Imported here: the HTTP client stack is only needed by this command.
    from lapnode.interop.taxii_pull import Credentials, pull

    node_home = load_home(home)
    if not url.startswith(("https://", "http://")):
        raise InputError(f"{url!r} is not an http(s) URL of a TAXII API root")
    token = _secret(token_file, ENV_TAXII_TOKEN) if user is None else None
    password = _secret(password_file, ENV_TAXII_PASSWORD) if user is not None else None
    after = timestamp(parse_past_ms(added_after, now=now_ms())) if added_after else None
    result = pull(
        url,
        collection_id,
        Credentials(user, password, token),
        added_after=after,
        per_request=page_size,
        max_objects=max_objects,
    )
    click.echo(
        f"{result.objects} objects read, {len(result.drafts)} indicators, "
        f"{result.skipped} other objects skipped",
        err=True,
    )
    announce(store_drafts(node_home, result.drafts, source=f"taxii:{url}#{collection_id}"))
