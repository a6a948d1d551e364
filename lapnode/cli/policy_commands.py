"""`lapnode policy check|explain` and `lapnode quarantine list|release|drop` (docs/policy.md).

Rule 1: these read policy.toml exactly as the daemon does (`load_policy`), so `policy check` passing
means the daemon will start with the same rules, and `policy explain` shows the decision the feed makes
(a preview: nothing leaves the node, so nothing is written to the audit trail).
Rule 2: quarantine commands edit the store, so they work whether or not the daemon runs; a released
record takes a new log position, and a running daemon's feeds offer it within a second.
"""

from __future__ import annotations

from pathlib import Path

import click

from keys.identity import node_id_from_public_key, public_key_from_node_id
from lapnode.cli.common import (
    echo_json,
    home_option,
    json_option,
    load_home,
    one_line,
    printable,
    run_with_store,
)
from lapnode.cli.render import record_document
from lapnode.clock import format_ms, now_ms
from lapnode.exits import Audience, Disclosure, disclose, peer_audience
from lapnode.home import NodeHome
from lapnode.policy import Policy, load_policy
from lapnode.store import QuarantinedRecord, Store
from protocol.envelope import Record


def policy_of(home: NodeHome) -> Policy:
    """The home's policy.toml, compiled (no file: no local rules)."""
    return load_policy(home.policy_path)


def our_key(home: NodeHome) -> bytes:
    return public_key_from_node_id(home.node_id())


@click.group()
def policy() -> None:
    """Check and explain this node's local disclosure rules (policy.toml in the node home)."""


@policy.command()
@home_option
def check(home: Path | None) -> None:
    """Validate policy.toml: prints "ok: N rules", or the first problem (exit 1)."""
    node_home = load_home(home)
    rules = policy_of(node_home)
    click.echo(f"ok: {len(rules.rules)} rules")
    if rules.source is None:
        click.echo(f"(no {node_home.policy_path}: only the authors' scopes apply)")
        return
    outbound = sum(1 for rule in rules.rules if rule.outbound)
    click.echo(f"{outbound} outbound, {len(rules.rules) - outbound} inbound, from {rules.source}")
    for item in sorted(rules.sets.values(), key=lambda s: s.name):
        as_of = f", as of {item.as_of.isoformat()}" if item.as_of else " (yours)"
        click.echo(f"set {item.name}: {len(item.codes)} jurisdictions{as_of}")


@policy.command()
@home_option
@json_option
@click.argument("record_id", metavar="RECORD_ID")
@click.option("--peer", "peer_id", metavar="NODE_ID", help="A peer from the peer book.")
@click.option("--public", "public", is_flag=True, help="A public export instead of a peer.")
@click.option(
    "--via",
    type=click.Choice(["gossip", "bundle"]),
    default="gossip",
    show_default=True,
    help="For a peer: over gossip, or in a bundle file made for it.",
)
def explain(
    home: Path | None, as_json: bool, record_id: str, peer_id: str | None, public: bool, via: str
) -> None:
    """Show the decision for one held record and one recipient, with every reason."""
    if (peer_id is not None) == public:
        raise click.UsageError("say who the record would go to: --peer NODE_ID or --public")
    node_home = load_home(home)
    rules = policy_of(node_home)
    ours = our_key(node_home)

    async def action(store: Store) -> tuple[Audience, Disclosure]:
        stored = await store.get(record_id)
        audience = (
            Audience.public()
            if public
            else await peer_audience(
                store,
                node_home.config,
                str(peer_id),
                "bundle" if via == "bundle" else "gossip",
                now_ms=now_ms(),
            )
        )
        (disclosure,) = disclose([stored], audience, our_key=ours, policy=rules, now_ms=now_ms())
        return audience, disclosure

    audience, disclosure = run_with_store(node_home, action)
    notes = rule_notes(disclosure.decision.reasons, rules)
    fields = disclosure.withheld_fields()
    if as_json:
        echo_json(
            {
                "record": disclosure.stored.record.id.hex(),
                "recipient": audience.label,
                "via": audience.via,
                "decision": disclosure.decision.action,
                "fields": fields,
                "reasons": list(disclosure.decision.reasons),
                "notes": notes,
            }
        )
        return
    lines = [f"record {disclosure.stored.record.id.hex()} to {audience.label}: {disclosure.decision.action}"]
    if fields:
        lines.append(f"fields withheld: {', '.join(fields)}")
    lines.append("reasons:")
    lines += [f"  - {reason}" for reason in disclosure.decision.reasons]
    lines += [f"note on rule {name}: {note}" for name, note in notes.items()]
    click.echo(printable("\n".join(lines)))


def rule_notes(reasons: tuple[str, ...], rules: Policy) -> dict[str, str]:
    """The notes of the rules a decision names (every rule reason starts "rule NAME (")."""
    named = {reason.split(" ", 2)[1] for reason in reasons if reason.startswith("rule ")}
    return {rule.name: rule.note for rule in rules.rules if rule.name in named and rule.note}


@click.group("quarantine")
def quarantine_group() -> None:
    """Records a local inbound rule set aside: not shown in queries, not relayed, until you act."""


@quarantine_group.command("list")
@home_option
@json_option
def quarantine_list(home: Path | None, as_json: bool) -> None:
    """List the quarantined records, oldest first, with the reasons they were set aside."""
    held = run_with_store(load_home(home), lambda store: store.quarantined())
    if as_json:
        echo_json([_quarantined_document(item) for item in held])
        return
    if not held:
        click.echo("nothing in quarantine", err=True)
        return
    for item in held:
        source = node_id_from_public_key(item.source) if item.source else "(unknown peer)"
        received = format_ms(item.received_at)
        click.echo(
            one_line(f"{item.record.id.hex()[:12]}  {item.record.header.kind}  from {source}  {received}")
        )
        click.echo(one_line(f"    {item.record.body.summary_line()}"))
        for reason in item.reasons:
            click.echo(one_line(f"    - {reason}"))
    click.echo(f"{len(held)} record{'s' if len(held) != 1 else ''} in quarantine", err=True)


def _quarantined_document(item: QuarantinedRecord) -> dict[str, object]:
    return record_document(item.record, item.received_at) | {
        "source": node_id_from_public_key(item.source) if item.source else None,
        "hops": item.hops,
        "reasons": list(item.reasons),
    }


@quarantine_group.command("release")
@home_option
@click.argument("record_id", metavar="ID")
def quarantine_release(home: Path | None, record_id: str) -> None:
    """Store a quarantined record as if it had just arrived; feeds may then offer it."""

    async def action(store: Store) -> Record:
        return await store.release(record_id)

    record = run_with_store(load_home(home), action)
    click.echo(f"released {record.id.hex()}")


@quarantine_group.command("drop")
@home_option
@click.argument("record_id", metavar="ID")
def quarantine_drop(home: Path | None, record_id: str) -> None:
    """Delete a quarantined record."""
    dropped = run_with_store(load_home(home), lambda store: store.drop(record_id))
    click.echo(f"dropped {dropped.hex()}")
