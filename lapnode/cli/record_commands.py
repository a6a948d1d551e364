"""`lapnode publish`, `lapnode query` and `lapnode show`.

Rule 1: `--as NODE_ID` shows what that peer would get (lapnode.exits): records it would not receive are
left out, redacted ones shown redacted. `publish --dry-run` decides for every known peer before
anything is signed, and stores nothing.
Rule 2: both are previews for the operator: nothing leaves the node, so they write nothing to the audit
trail, which records disclosures (lapnode.exits Rule 3).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from keys.identity import Identity, node_id_from_public_key, public_key_from_node_id
from keys.keyfile import read_public_node_id
from lapnode.cli.common import (
    echo_json,
    home_option,
    json_option,
    load_home,
    passphrase_file_option,
    printable,
    run_with_store,
)
from lapnode.cli.draft_commands import publish_from_draft
from lapnode.cli.filters import DEFAULT_QUERY_LIMIT, FilterOptions, filter_options
from lapnode.cli.lifecycle_commands import PurgedNotice, purged_notice
from lapnode.cli.passphrase import unlock_identity
from lapnode.cli.policy_commands import our_key, policy_of
from lapnode.cli.render import (
    history_document,
    print_detail,
    print_history,
    print_table,
    record_document,
)
from lapnode.clock import now_ms
from lapnode.exits import (
    Audience,
    Disclosure,
    PeerEvidence,
    disclose,
    peer_audience,
    peer_evidence,
    shown_or_withheld,
)
from lapnode.home import NodeHome
from lapnode.policy import Decision, Draft, decide
from lapnode.publishing import (
    DEFAULT_TLP,
    ScopeRequest,
    body_fields,
    build_scope,
    load_document,
    merge_overrides,
    publish_record,
)
from lapnode.sealing import SealedReader, SealedView
from lapnode.store import History, Peer, Store, StoredRecord
from protocol.codec import Value
from protocol.envelope import Record, RecordId
from protocol.kinds import SealedBody
from protocol.scope import (
    CATEGORIES,
    DEFAULT_RELAY_HOPS,
    FLAGS,
    MAX_RELAY_HOPS,
    SEALED_FLAG,
    TLP_LEVELS,
    Scope,
)

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


def scope_options(command: F) -> F:
    """The scope options of `publish` (also `correct`, which may only narrow with them)."""
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
            "--flag",
            metavar="FLAG",
            multiple=True,
            help=f"Handling flags: {', '.join(sorted(FLAGS - {'sealed'}))}.",
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
    command = click.option(
        "--sealed",
        is_flag=True,
        help="Encrypt the body to the --audience-member nodes (and this node): relays carry ciphertext only.",
    )(command)
    command = scope_options(command)
    command = passphrase_file_option(command)
    command = click.option(
        "--dry-run",
        is_flag=True,
        help="Sign and store nothing: show which known peers would receive it, redacted, or not, and why.",
    )(command)
    command = click.option(
        "--from-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Record body as a JSON or TOML file; flags override its fields.",
    )(command)
    return json_option(home_option(command))


def _split(values: Iterable[str]) -> list[str]:
    """Repeatable options also take comma-separated lists: `--jurisdiction-allow NL,BE`."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def scope_request(options: dict[str, Any]) -> ScopeRequest:
    """Pop the scope options (and `--sealed`, where the command has it) into a ScopeRequest."""
    values = {name: options.pop(name) for name in _SCOPE_NAMES}
    members = _split(values["audience_member"])
    flags = _split(values["flag"])
    sealed = bool(options.pop("sealed", False))
    if SEALED_FLAG in (flag.lower() for flag in flags):
        raise click.UsageError("--flag sealed: a record is sealed by encrypting it; use --sealed")
    if sealed and not members:
        # Checked before anything is read or unlocked: a sealed body needs someone to be sealed to.
        raise click.UsageError(
            "--sealed needs at least one --audience-member NODE_ID: the body is encrypted to named members"
        )
    return ScopeRequest(
        tlp=values["tlp"],
        categories=_split(values["audience_category"]),
        members=members,
        jurisdictions_allow=_split(values["jurisdiction_allow"]),
        jurisdictions_deny=_split(values["jurisdiction_deny"]),
        flags=flags,
        sealed=sealed,
        relay_hops=values["relay_hops"],
        expires=values["expires"],
        embargo_until=values["embargo_until"],
    )


def _with_retention(request: ScopeRequest, kind: str, home: NodeHome) -> ScopeRequest:
    """Without --expires, a kind with a retention (config.toml `[retention]`) expires that long after it
    is made, so every node purges it then (docs/policy.md, "Retention")."""
    retention = dict(home.config.retention)
    if request.expires is not None or kind not in retention:
        return request
    return replace(request, expires=retention[kind])


def _publish(
    kind: str, options: dict[str, Any], defaults: Callable[[NodeHome], dict[str, object]]
) -> Record | None:
    """Shared by the three kinds: read, validate everything, unlock the key, sign and store."""
    home = load_home(options.pop("home"))
    as_json = options.pop("as_json")
    passphrase_file = options.pop("passphrase_file")
    from_file = options.pop("from_file")
    dry_run = options.pop("dry_run")
    request = _with_retention(scope_request(options), kind, home)
    document = load_document(from_file) if from_file is not None else {}
    document = {**defaults(home), **merge_overrides(document, options)}
    fields = body_fields(kind, document, from_file)
    scope = build_scope(request, now=now_ms())
    if dry_run:
        _dry_run(home, kind, scope, fields, as_json)
        return None
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
    print_published(record, identity, as_json)
    return record


def print_published(record: Record, identity: Identity, as_json: bool) -> None:
    """The new record's id, or with --json its document (`publish`, `correct`, `declassify`, ...)."""
    if as_json:
        # The author is a recipient of its own sealed records, and its key is unlocked already.
        opened = SealedReader(identity.public_key.raw, lambda: identity).views([record])
        echo_json(record_document(record, views=opened))
    else:
        click.echo(record.id.hex())


def _dry_run(home: NodeHome, kind: str, scope: Scope, fields: Mapping[str, Value], as_json: bool) -> None:
    """For every known peer: what it would receive of this record if it were published now."""
    rules = policy_of(home)
    draft = Draft(our_key(home), kind, scope)
    moment = now_ms()

    async def known_peers(store: Store) -> tuple[list[Peer], PeerEvidence]:
        return await store.peers.all(), await peer_evidence(store, home.config, now_ms=moment)

    peers, evidence = run_with_store(home, known_peers)
    rows = []
    for peer in peers:
        decision = decide(
            draft,
            evidence.recipient(peer)[0],
            now_ms=moment,
            our_key=draft.author,
            hops=0,
            policy=rules,
            via="gossip",
        )
        rows.append(_dry_run_row(peer, decision, fields))
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no known peers: nobody would receive it (add peers with `lapnode peer add`)")
    for row in rows:
        click.echo(printable(_dry_run_line(row)))
    receiving = sum(1 for row in rows if row["decision"] != "withhold")
    click.echo(
        f"dry run: {receiving} of {len(rows)} known peers would receive it; nothing was signed or stored"
    )


def _dry_run_row(peer: Peer, decision: Decision, fields: Mapping[str, Value]) -> dict[str, object]:
    action = decision.action
    reasons = list(decision.reasons)
    if peer.blocked:
        action, reasons = "withhold", ["peer is blocked", *reasons]
    withheld = sorted(decision.fields & fields.keys()) if action == "redact" else []
    if action == "redact" and not withheld:
        action = "send"  # the rule's fields are not in this record: it goes whole
    return {
        "peer": node_id_from_public_key(peer.key),
        "name": peer.name,
        "category": peer.category,
        "jurisdiction": peer.jurisdiction,
        "decision": action,
        "fields": withheld,
        "reasons": reasons,
    }


def _dry_run_line(row: dict[str, object]) -> str:
    who = f"{row['name'] or row['peer']} [{row['category'] or '?'}, {row['jurisdiction'] or '??'}]"
    outcome = {"send": "receives it", "redact": "receives it redacted", "withhold": "does not receive it"}
    text = f"{who}: {outcome[str(row['decision'])]}"
    fields = row["fields"]
    if isinstance(fields, list) and fields:
        text += f" (without {', '.join(fields)})"
    reasons = row["reasons"]
    assert isinstance(reasons, list)
    return text + "".join(f"\n    - {reason}" for reason in reasons)


def _no_defaults(home: NodeHome) -> dict[str, object]:
    return {}


def _contact_defaults(home: NodeHome) -> dict[str, object]:
    # A node's contact record is usually about the node's own organisation.
    config = home.config
    return {"organisation": config.org, "jurisdiction": config.jurisdiction, "category": config.category}


# What a body file of each kind starts from: `publish` and `correct` read files the same way.
DOCUMENT_DEFAULTS: Mapping[str, Callable[[NodeHome], dict[str, object]]] = {
    "contact": _contact_defaults,
    "lead": _no_defaults,
    "trend": _no_defaults,
}


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
    _publish("contact", options, DOCUMENT_DEFAULTS["contact"])


@publish.command()
@_publish_options
@click.option("--title", help="One-line title.")
@click.option("--summary", help="What happened, in a few sentences.")
@click.option("--status", type=click.Choice(["verified", "suspected"]), help="Verified or suspected.")
@click.option("--from-draft", type=int, metavar="N", help="Start from draft N, made by `lapnode import`.")
def lead(**options: Any) -> None:
    """Publish a case lead or referral."""
    draft_id = options.pop("from_draft")
    if draft_id is not None:
        publish_from_draft(draft_id, options, _publish)
    else:
        _publish("lead", options, _no_defaults)


@publish.command()
@_publish_options
@click.option("--category", help="What kind of activity, e.g. 'email-spam' or 'phishing'.")
@click.option("--jurisdiction", metavar="CC", help="Where it was measured (ISO 3166-1 alpha-2).")
@click.option("--region", help="Where it was measured, when not one country, e.g. 'EU'.")
@click.option("--metric", help="What is measured, e.g. 'complaints'.")
@click.option("--value", help="Integer, or a decimal written as text (e.g. 12.5).")
@click.option("--unit", help="Unit, e.g. 'count' or 'percent'.")
@click.option("--period-start", help="Start of the period (ISO date).")
@click.option("--period-end", help="End of the period (ISO date).")
def trend(**options: Any) -> None:
    """Publish a trend indicator."""
    options["value"] = _number(options["value"])
    _publish("trend", options, _no_defaults)


def sealed_views(
    home: NodeHome, passphrase_file: Path | None, records: list[Record]
) -> dict[RecordId, SealedView]:
    """Open the sealed records among `records` that are addressed to this node (lapnode.sealing)."""
    if not any(isinstance(record.body, SealedBody) for record in records):
        return {}
    # The node id is in the key file in clear: no passphrase unless a record is addressed to us.
    our_key = public_key_from_node_id(read_public_node_id(home.key_path))
    reader = SealedReader(our_key, lambda: unlock_identity(home.key_path, passphrase_file))
    return reader.views(records)


def _as_option(command: F) -> F:
    return click.option(
        "--as",
        "as_peer",
        metavar="NODE_ID",
        help="Show what this peer (from the peer book) would receive: withheld records left out, "
        "redacted ones redacted.",
    )(command)


def _as_peer(
    home: NodeHome, as_peer: str | None, fetch: Callable[[Store], Awaitable[list[StoredRecord]]]
) -> tuple[list[StoredRecord], list[Disclosure] | None, Audience | None]:
    """The records `fetch` finds, and with --as, each one's disclosure to that peer."""
    if as_peer is None:
        return run_with_store(home, fetch), None, None
    rules = policy_of(home)
    ours = our_key(home)

    async def action(store: Store) -> tuple[list[StoredRecord], list[Disclosure], Audience]:
        found = await fetch(store)
        moment = now_ms()
        audience = await peer_audience(store, home.config, as_peer, "gossip", now_ms=moment)
        return found, disclose(found, audience, our_key=ours, policy=rules, now_ms=moment), audience

    return run_with_store(home, action)


@click.command()
@home_option
@json_option
@passphrase_file_option
@_as_option
@filter_options(default_limit=DEFAULT_QUERY_LIMIT)
@click.option(
    "--all-versions",
    is_flag=True,
    help="Also list superseded versions (by default only the current one of each record).",
)
def query(
    home: Path | None,
    as_json: bool,
    passphrase_file: Path | None,
    as_peer: str | None,
    all_versions: bool,
    **options: Any,
) -> None:
    """List the records this node holds, newest first: the current version of each (superseded ones only
    with --all-versions; purged and expired ones never).

    --text WORDS finds records with every word, in any case ("pharm*" also finds "pharmacy"); other
    punctuation, quotes and operators such as OR or - only separate words. --indicator VALUE finds every
    record naming that domain, IP, email address, phone number, URL... however it is written.

    Sealed records addressed to this node are shown opened (the key is unlocked if needed); the others
    as "sealed for N members; not readable here". --text and --indicator never match a sealed record.
    """
    node_home = load_home(home)
    filters = FilterOptions.pop_from(options)
    moment = now_ms()
    query_filters = replace(
        filters.to_query(limit=filters.limit or DEFAULT_QUERY_LIMIT, now=moment),
        live_at=moment,
        all_versions=all_versions,
    )

    async def fetch(store: Store) -> list[StoredRecord]:
        return await store.query(query_filters)

    found, disclosures, audience = _as_peer(node_home, as_peer, fetch)
    if disclosures is not None:
        found = [shown for d in disclosures if (shown := d.shown) is not None]
    views = sealed_views(node_home, passphrase_file, [item.record for item in found])
    if as_json:
        echo_json([record_document(item.record, item.received_at, views, flags=item.flags) for item in found])
    else:
        print_table(found, views)
    if disclosures is not None and audience is not None:
        withheld = sum(1 for d in disclosures if d.decision.withheld)
        redacted = sum(1 for d in disclosures if d.withheld_fields())
        click.echo(f"as {audience.label}: {withheld} withheld, {redacted} redacted", err=True)


@click.command()
@home_option
@json_option
@passphrase_file_option
@_as_option
@click.argument("record_id", metavar="ID")
def show(
    home: Path | None, as_json: bool, passphrase_file: Path | None, as_peer: str | None, record_id: str
) -> None:
    """Show one record in full, with its versions. ID is the hex id or a unique prefix of at least 8
    characters.

    A sealed record is shown opened if this node is one of its recipients (the key is unlocked if
    needed), and as "sealed for N members; not readable here" otherwise. The history lists the earlier
    versions it replaced and the newer version that replaced it, among the records held here.
    """
    node_home = load_home(home)
    histories: list[History] = []

    async def purged(store: Store) -> PurgedNotice | None:
        return await purged_notice(store, await store.get(record_id), now=now_ms())

    # A purged (or expired) record has no content to show, to anyone (SPEC §8.10).
    notice = run_with_store(node_home, purged)
    if notice is not None:
        if as_json:
            echo_json(notice.document())
        else:
            click.echo(notice.line())
        return

    async def fetch(store: Store) -> list[StoredRecord]:
        found = await store.get(record_id)
        histories.append(await store.history(found.record.id, now_ms=now_ms()))
        return [found]

    (found,), disclosures, audience = _as_peer(node_home, as_peer, fetch)
    if disclosures is not None and audience is not None:
        found = shown_or_withheld(disclosures[0], audience)
    views = sealed_views(node_home, passphrase_file, [found.record])
    if as_json:
        document = record_document(found.record, found.received_at, views, flags=found.flags)
        echo_json({**document, "history": history_document(histories[0])})
    else:
        print_detail(found.record, found.received_at, views, flags=found.flags)
        print_history(histories[0])
