"""`lapnode publish`, `lapnode query` and `lapnode show`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from lapnode.cli.common import (
    echo_json,
    home_option,
    json_option,
    load_home,
    passphrase_file_option,
    run_with_store,
)
from lapnode.cli.filters import DEFAULT_QUERY_LIMIT, FilterOptions, filter_options
from lapnode.cli.passphrase import unlock_identity
from lapnode.cli.render import print_detail, print_table, record_document
from lapnode.clock import now_ms
from lapnode.home import NodeHome
from lapnode.publishing import (
    DEFAULT_TLP,
    ScopeRequest,
    body_fields,
    build_scope,
    load_document,
    merge_overrides,
    publish_record,
)
from lapnode.store import Store, StoredRecord
from protocol.envelope import Record
from protocol.scope import CATEGORIES, DEFAULT_RELAY_HOPS, FLAGS, MAX_RELAY_HOPS, TLP_LEVELS

F = TypeVar("F", bound=Callable[..., Any])
_INTEGER = re.compile(r"[+-]?\d+")
_SCOPE_NAMES = (
    "tlp",
    "audience_category",
    "audience_member",
    "jurisdiction_allow",
    "jurisdiction_deny",
    "flag",
    "relay_hops",
    "expires",
    "embargo_until",
)


def _scope_options(command: F) -> F:
    options = [
        click.option(
            "--tlp",
            type=click.Choice(TLP_LEVELS, case_sensitive=False),
            default=DEFAULT_TLP,
            show_default=True,
            help="TLP 2.0 label: who may see the record.",
        ),
        click.option(
            "--audience-category",
            metavar="CATEGORY",
            multiple=True,
            help=f"Limit to member categories ({', '.join(sorted(CATEGORIES))}); repeatable.",
        ),
        click.option(
            "--audience-member", metavar="NODE_ID", multiple=True, help="Limit to these nodes; repeatable."
        ),
        click.option(
            "--jurisdiction-allow", metavar="CC", multiple=True, help="Only nodes in these countries."
        ),
        click.option(
            "--jurisdiction-deny", metavar="CC", multiple=True, help="Never nodes in these countries."
        ),
        click.option(
            "--flag", metavar="FLAG", multiple=True, help=f"Handling flags: {', '.join(sorted(FLAGS))}."
        ),
        click.option(
            "--relay-hops",
            type=click.IntRange(0, MAX_RELAY_HOPS),
            default=DEFAULT_RELAY_HOPS,
            show_default=True,
            help="How far peers may relay it (0: direct delivery only).",
        ),
        click.option(
            "--expires", metavar="TIME", help="Expiry: ISO date/date-time (UTC) or a duration like 90d."
        ),
        click.option(
            "--embargo-until", metavar="TIME", help="Embargo end: ISO date/date-time or a duration."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _publish_options(command: F) -> F:
    command = _scope_options(command)
    command = passphrase_file_option(command)
    command = click.option(
        "--from-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Record body as a JSON or TOML file; flags override its fields.",
    )(command)
    return json_option(home_option(command))


def _split(values: Iterable[str]) -> list[str]:
    """Repeatable options also take comma-separated lists: `--jurisdiction-allow NL,BE`."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _scope_request(options: dict[str, Any]) -> ScopeRequest:
    values = {name: options.pop(name) for name in _SCOPE_NAMES}
    return ScopeRequest(
        tlp=values["tlp"],
        categories=_split(values["audience_category"]),
        members=_split(values["audience_member"]),
        jurisdictions_allow=_split(values["jurisdiction_allow"]),
        jurisdictions_deny=_split(values["jurisdiction_deny"]),
        flags=_split(values["flag"]),
        relay_hops=values["relay_hops"],
        expires=values["expires"],
        embargo_until=values["embargo_until"],
    )


def _publish(kind: str, options: dict[str, Any], defaults: Callable[[NodeHome], dict[str, object]]) -> None:
    """Shared by the three kinds: read, validate everything, unlock the key, sign and store."""
    home = load_home(options.pop("home"))
    as_json = options.pop("as_json")
    passphrase_file = options.pop("passphrase_file")
    from_file = options.pop("from_file")
    scope_request = _scope_request(options)
    document = load_document(from_file) if from_file is not None else {}
    document = {**defaults(home), **merge_overrides(document, options)}
    fields = body_fields(kind, document, from_file)
    scope = build_scope(scope_request, now=now_ms())
    # Unlock last: a typo in the file should not cost the operator a passphrase prompt.
    identity = unlock_identity(home.key_path, passphrase_file)
    created = now_ms()  # after the prompt: the record is made now, not when the command started

    async def action(store: Store) -> Record:
        return await publish_record(
            store,
            identity,
            network=home.config.network,
            kind=kind,
            fields=fields,
            scope=scope,
            created=created,
        )

    record = run_with_store(home, action)
    if as_json:
        echo_json(record_document(record))
    else:
        click.echo(record.id.hex())


def _no_defaults(home: NodeHome) -> dict[str, object]:
    return {}


def _contact_defaults(home: NodeHome) -> dict[str, object]:
    # A node's contact record is usually about the node's own organisation.
    config = home.config
    return {"organisation": config.org, "jurisdiction": config.jurisdiction, "category": config.category}


def _number(value: str | None) -> int | str | None:
    # Trend values are integers or decimal strings, never floats (SPEC §5).
    if value is None:
        return None
    return int(value) if _INTEGER.fullmatch(value.strip()) else value.strip()


@click.group()
def publish() -> None:
    """Sign and publish one of this node's records.

    The body comes from --from-file (JSON or TOML) and/or the flags; the scope from the scope flags.
    Prints the new record's id.
    """


@publish.command()
@_publish_options
@click.option("--organisation", help="Organisation [default: the node's org].")
@click.option("--unit", help="Unit or team.")
@click.option("--role", help="Role, e.g. 'International liaison'.")
@click.option("--person", help="Named person (personal data: consider --flag personal-data).")
@click.option("--email", "emails", multiple=True, help="Email address; repeatable.")
@click.option("--phone", "phones", multiple=True, help="Phone number (E.164); repeatable.")
@click.option("--notes", help="Free-text notes.")
def contact(**options: Any) -> None:
    """Publish a point of contact."""
    _publish("contact", options, _contact_defaults)


@publish.command()
@_publish_options
@click.option("--title", help="One-line title.")
@click.option("--summary", help="What happened, in a few sentences.")
@click.option("--status", type=click.Choice(["verified", "suspected"]), help="Verified or suspected.")
def lead(**options: Any) -> None:
    """Publish a case lead or referral."""
    _publish("lead", options, _no_defaults)


@publish.command()
@_publish_options
@click.option("--metric", help="What is measured, e.g. 'complaints'.")
@click.option("--value", help="Integer, or a decimal written as text (e.g. 12.5).")
@click.option("--unit", help="Unit, e.g. 'count' or 'percent'.")
@click.option("--period-start", help="Start of the period (ISO date).")
@click.option("--period-end", help="End of the period (ISO date).")
def trend(**options: Any) -> None:
    """Publish a trend indicator."""
    options["value"] = _number(options["value"])
    _publish("trend", options, _no_defaults)


@click.command()
@home_option
@json_option
@filter_options(default_limit=DEFAULT_QUERY_LIMIT)
def query(home: Path | None, as_json: bool, **options: Any) -> None:
    """List the records this node holds, newest first."""
    node_home = load_home(home)
    filters = FilterOptions.pop_from(options)
    query_filters = filters.to_query(limit=filters.limit or DEFAULT_QUERY_LIMIT)

    async def action(store: Store) -> list[StoredRecord]:
        return await store.query(query_filters)

    found = run_with_store(node_home, action)
    if as_json:
        echo_json([record_document(item.record, item.received_at, item.flags) for item in found])
    else:
        print_table(found)


@click.command()
@home_option
@json_option
@click.argument("record_id", metavar="ID")
def show(home: Path | None, as_json: bool, record_id: str) -> None:
    """Show one record in full. ID is the hex id or a unique prefix of at least 8 characters."""
    node_home = load_home(home)

    async def action(store: Store) -> StoredRecord:
        return await store.get(record_id)

    found = run_with_store(node_home, action)
    if as_json:
        echo_json(record_document(found.record, found.received_at, found.flags))
    else:
        print_detail(found.record, found.received_at, found.flags)
