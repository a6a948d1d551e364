"""`lapnode refer`, `lapnode referrals` and `lapnode referral show|export|accept|decline|update|close`.

Rule 1: thin commands over lapnode.referrals: read and check every option, unlock the key, then act.
Bad input fails before the key is unlocked and before anything is stored.
Rule 2: listing, showing and answering open sealed records, so they unlock the node key (a referral is
sealed to its recipient, a status to the referrer; lapnode.referrals Rule 5).
Rule 3: text from records is remote input and goes through `printable` before it reaches a terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from keys.identity import Identity, node_id_from_public_key, public_key_from_node_id
from lapnode.cli.common import (
    echo_json,
    home_option,
    json_option,
    load_home,
    one_line,
    passphrase_file_option,
    printable,
    run_with_store,
)
from lapnode.cli.passphrase import unlock_identity
from lapnode.cli.policy_commands import policy_of
from lapnode.cli.referral_case import case_file, write_case_file
from lapnode.cli.render import print_detail, short_node_id
from lapnode.clock import now_ms, parse_future_ms
from lapnode.errors import InputError
from lapnode.exits import RecordWithheld, decide_for, peer_evidence
from lapnode.home import NodeHome
from lapnode.policy import Draft
from lapnode.publishing import ScopeRequest, body_fields, build_scope, load_document, publish_record
from lapnode.referrals import (
    DEFAULT_REFERRAL_HOPS,
    STATES,
    Referral,
    ReferralRequest,
    answer_referral,
    check_answerable,
    embeddable_lead,
    find_referral,
    load_referrals,
    recipient_audience,
    send_referral,
)
from lapnode.sealing import SealedReader
from lapnode.store import Peer, Store
from protocol.kinds.documents import render_time
from protocol.kinds.referral import REQUESTS
from protocol.kinds.referral_status import ACCEPTED, ACTIONS, CLOSED, DECLINED, IN_PROGRESS
from protocol.scope import MAX_RELAY_HOPS, TLP_LEVELS


@click.command()
@home_option
@json_option
@passphrase_file_option
@click.argument("lead_id", metavar="LEAD_ID", required=False)
@click.option("--to", "to", metavar="NODE_ID", required=True, help="The member asked for assistance.")
@click.option(
    "--request",
    type=click.Choice(sorted(REQUESTS), case_sensitive=False),
    default="investigation",
    show_default=True,
    help="What you ask the recipient to do.",
)
@click.option("--due", metavar="TIME", help="Answer wanted by: ISO date/date-time or a duration like 14d.")
@click.option("--note", help="A note to the recipient.")
@click.option(
    "--tlp",
    type=click.Choice(TLP_LEVELS, case_sensitive=False),
    help="Stricter TLP than the default (the lead's if stricter than amber, else amber).",
)
@click.option(
    "--relay-hops",
    type=click.IntRange(0, MAX_RELAY_HOPS),
    default=DEFAULT_REFERRAL_HOPS,
    show_default=True,
    help="How far other members may carry the (sealed) referral toward the recipient.",
)
@click.option(
    "--from-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Publish this lead file first (scoped to the recipient only), then refer it.",
)
def refer(
    home: Path | None,
    as_json: bool,
    passphrase_file: Path | None,
    lead_id: str | None,
    from_file: Path | None,
    **options: Any,
) -> None:
    """Refer a lead to another member and ask for assistance. Prints the referral's id.

    The referral is sealed to the recipient: members that relay it hold only ciphertext. The lead goes
    as this node's policy allows it to go to the recipient (redacted if a rule says so); if the policy
    withholds it, nothing is sent.
    """
    if (lead_id is None) == (from_file is None):
        raise click.UsageError("give either LEAD_ID or --from-file FILE")
    node_home = load_home(home)
    recipient = public_key_from_node_id(options["to"])
    now = now_ms()
    due = parse_future_ms(options["due"], now=now, what="--due") if options["due"] else None
    request = ReferralRequest(
        recipient, options["request"].lower(), due, options["note"], options["tlp"], options["relay_hops"]
    )
    # Check the referral's own fields before anything is published or unlocked (Rule 1).
    probe = {
        "lead": "0" * 64,
        "lead_record": b"\0",
        "request": request.request,
        "due": due,
        "note": request.note,
    }
    body_fields("referral", {name: value for name, value in probe.items() if value is not None})
    lead_fields = body_fields("lead", load_document(from_file), from_file) if from_file is not None else None
    if recipient == public_key_from_node_id(node_home.node_id()):
        raise InputError("--to names this node; refer a lead to another member")
    identity = unlock_identity(node_home.key_path, passphrase_file)
    policy = policy_of(node_home)

    async def action(store: Store) -> tuple[str, str]:
        chosen = lead_id
        evidence = await peer_evidence(store, node_home.config, now_ms=now_ms())
        audience = recipient_audience(await store.peers.all(), recipient, evidence)
        if lead_fields is not None:
            # Scoped to the recipient alone and never relayed: it travels inside the sealed referral.
            scope = build_scope(
                ScopeRequest(tlp=request.tlp or "amber", members=[options["to"]], relay_hops=0), now=now_ms()
            )
            # A local rule may still withhold it: then publish nothing (the decision, as for a dry run).
            draft = Draft(identity.public_key.raw, "lead", scope)
            verdict = decide_for(draft, 0, audience, our_key=draft.author, policy=policy, now_ms=now_ms())
            if verdict.withheld:
                raise RecordWithheld(
                    f"the lead would be withheld from {audience.label}: {'; '.join(verdict.reasons)};"
                    " nothing was published"
                )
            lead = await publish_record(
                store,
                identity,
                network=store.network,
                kind="lead",
                fields=lead_fields,
                scope=scope,
                created=now_ms(),
            )
            chosen = lead.id.hex()
        assert chosen is not None
        disclosed = await embeddable_lead(
            store, chosen, audience, our_key=identity.public_key.raw, policy=policy, now_ms=now_ms()
        )
        referral = await send_referral(store, identity, disclosed, request, created=now_ms())
        return referral.id.hex(), disclosed.id.hex()

    referral_id, referred = run_with_store(node_home, action)
    if as_json:
        echo_json({"id": referral_id, "lead": referred, "to": options["to"]})
    else:
        click.echo(referral_id)


def _load(home: NodeHome, passphrase_file: Path | None) -> tuple[Identity, list[Referral], list[Peer]]:
    identity = unlock_identity(home.key_path, passphrase_file)

    async def action(store: Store) -> tuple[list[Referral], list[Peer]]:
        return await load_referrals(store, identity, now_ms=now_ms()), await store.peers.all()

    referrals, peers = run_with_store(home, action)
    return identity, referrals, peers


def counterpart_name(key: bytes, peers: list[Peer]) -> str:
    """The peer book's name or organisation for a node, else its node id."""
    for peer in peers:
        if peer.key == key and (peer.org or peer.name):
            return str(peer.org or peer.name)
    return node_id_from_public_key(key)


def _age(ms: int) -> str:
    minutes = max(ms, 0) // 60_000
    if minutes < 60:
        return f"{minutes}m"
    if minutes < 24 * 60:
        return f"{minutes // 60}h"
    return f"{minutes // (24 * 60)}d"


def referral_row(referral: Referral, peers: list[Peer], now: int) -> dict[str, object]:
    """One referral as `referrals --json` shows it (and the table, from the same values)."""
    due = referral.body.due
    return {
        "id": referral.record.id.hex(),
        "direction": referral.direction,
        "counterpart": counterpart_name(referral.counterpart, peers),
        "counterpart_node_id": node_id_from_public_key(referral.counterpart),
        "request": referral.body.request,
        "state": referral.state,
        "created_ms": referral.record.header.created,
        "age": _age(now - referral.record.header.created),
        "due": None if due is None else _date(due),
        "overdue": referral.overdue(now),
        "lead": referral.body.lead,
        "lead_title": _lead_title(referral),
    }


def _date(ms: int) -> str:
    return render_time(ms)


def _lead_title(referral: Referral) -> str | None:
    lead = referral.lead
    title = getattr(lead.body, "title", None) if lead is not None else None
    return title if isinstance(title, str) else None


@click.command()
@home_option
@json_option
@passphrase_file_option
@click.option("--inbox", "box", flag_value="inbox", help="Only referrals addressed to this node.")
@click.option("--outbox", "box", flag_value="outbox", help="Only referrals this node sent.")
@click.option("--status", "state", type=click.Choice(STATES), help="Only referrals in this state.")
def referrals(
    home: Path | None, as_json: bool, passphrase_file: Path | None, box: str | None, state: str | None
) -> None:
    """List referrals sent and received, newest first, with their state and age; flags overdue ones.

    State is the recipient's latest answer: sent (no answer yet), received, accepted, in-progress,
    declined or closed. OVERDUE: the due date has passed and it is neither declined nor closed.
    """
    node_home = load_home(home)
    _, found, peers = _load(node_home, passphrase_file)
    now = now_ms()
    chosen = [r for r in found if (box is None or r.direction == box) and (state is None or r.state == state)]
    chosen.sort(key=lambda r: (r.record.header.created, r.record.id), reverse=True)
    rows = [referral_row(r, peers, now) for r in chosen]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no referrals match", err=True)
        return
    for row in rows:
        arrow = "from" if row["direction"] == "inbox" else "to"
        due = f" due {str(row['due'])[:10]}" if row["due"] else ""
        flag = "  OVERDUE" if row["overdue"] else ""
        # A counterpart not in the peer book is named by its node id, shortened here (--json has it all).
        who = str(row["counterpart"])
        who = short_node_id(who) if who == row["counterpart_node_id"] else who
        click.echo(
            one_line(
                f"{str(row['id'])[:12]}  {row['direction']:<6} {arrow} {who}  "
                f"{row['request']}  [{row['state']}]  {row['age']} old{due}{flag}"
                + (f"  - {row['lead_title']}" if row["lead_title"] else "")
            )
        )
    click.echo(f"{len(rows)} referral{'s' if len(rows) != 1 else ''}", err=True)


@click.group()
def referral() -> None:
    """Show, export and answer one referral (ID: its id or a unique prefix of 8+ characters)."""


def _one(
    home: Path | None, passphrase_file: Path | None, referral_id: str
) -> tuple[NodeHome, Identity, Referral, list[Peer]]:
    node_home = load_home(home)
    identity, found, peers = _load(node_home, passphrase_file)
    return node_home, identity, find_referral(found, referral_id), peers


@referral.command()
@home_option
@json_option
@passphrase_file_option
@click.argument("referral_id", metavar="ID")
def show(home: Path | None, as_json: bool, passphrase_file: Path | None, referral_id: str) -> None:
    """The referral, its embedded lead (verified) and every status, oldest first."""
    _, identity, found, peers = _one(home, passphrase_file, referral_id)
    document = case_file(found, counterpart_name(found.counterpart, peers), now_ms(), identity)
    if as_json:
        document.pop("records")
        echo_json(document)
        return
    summary = document["referral"]
    assert isinstance(summary, dict)
    lines = [f"{name}: {value}" for name, value in summary.items() if value is not None]
    click.echo(printable("\n".join(lines)))
    click.echo("\nlead (embedded, verified):" if found.lead is not None else f"\nlead: {found.lead_problem}")
    if found.lead is not None:
        views = SealedReader(identity.public_key.raw, lambda: identity).views([found.lead])
        print_detail(found.lead, None, views)
    click.echo("\nhistory:")
    history = document["history"]
    assert isinstance(history, list)
    if not history:
        click.echo("  (no answer yet)")
    for entry in history:
        assert isinstance(entry, dict)
        details = "; ".join(f"{k}: {_detail(v)}" for k, v in entry["details"].items())
        click.echo(
            one_line(f"  {entry['created']}  {entry['status']}" + (f"  ({details})" if details else ""))
        )


def _detail(value: object) -> str:
    """A status detail on one line: a penalty as "40000.00 USD"."""
    if isinstance(value, dict) and value.keys() == {"amount", "currency"}:
        return f"{value['amount']} {value['currency']}"
    return str(value)


@referral.command()
@home_option
@passphrase_file_option
@click.argument("referral_id", metavar="ID")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Case file to write (JSON)."
)
def export(home: Path | None, passphrase_file: Path | None, referral_id: str, out: Path) -> None:
    """Write a case file: the referral, its lead and its history, with every signed record's bytes.

    The signed records (base64) verify on their own with `lapnode verify`-style checks: the case file
    proves who said what and when. It holds the opened content: keep it with the case, not in public.
    """
    node_home, identity, found, peers = _one(home, passphrase_file, referral_id)
    document = case_file(found, counterpart_name(found.counterpart, peers), now_ms(), identity)

    async def action(store: Store) -> None:
        await write_case_file(
            store, node_home.config, found, document, out, now_ms=now_ms(), policy=policy_of(node_home)
        )

    run_with_store(node_home, action)
    click.echo(f"wrote {out}: referral {found.record.id.hex()[:12]}, {len(found.statuses)} statuses")


def _answer(
    home: Path | None,
    passphrase_file: Path | None,
    referral_id: str,
    status: str,
    details: Mapping[str, object],
) -> None:
    node_home, identity, found, _ = _one(home, passphrase_file, referral_id)
    check_answerable(found, identity.public_key.raw)
    document = {k: v for k, v in details.items() if v is not None}
    body_fields("referral-status", {"referral": found.record.id.hex(), "status": status, **document})

    async def action(store: Store) -> str:
        record = await answer_referral(store, identity, found, status, document, created=now_ms())
        return record.id.hex()

    click.echo(run_with_store(node_home, action))


_ID = click.argument("referral_id", metavar="ID")


@referral.command()
@home_option
@passphrase_file_option
@_ID
@click.option("--note", help="A note to the referrer.")
def accept(home: Path | None, passphrase_file: Path | None, referral_id: str, note: str | None) -> None:
    """Accept a referral addressed to this node."""
    _answer(home, passphrase_file, referral_id, ACCEPTED, {"note": note})


@referral.command()
@home_option
@passphrase_file_option
@_ID
@click.option("--reason", required=True, help="Why this node declines it.")
def decline(home: Path | None, passphrase_file: Path | None, referral_id: str, reason: str) -> None:
    """Decline a referral addressed to this node, with a reason."""
    _answer(home, passphrase_file, referral_id, DECLINED, {"reason": reason})


@referral.command()
@home_option
@passphrase_file_option
@_ID
@click.option("--note", required=True, help="What has happened so far.")
def update(home: Path | None, passphrase_file: Path | None, referral_id: str, note: str) -> None:
    """Report progress on a referral addressed to this node (state in-progress)."""
    _answer(home, passphrase_file, referral_id, IN_PROGRESS, {"note": note})


@referral.command()
@home_option
@passphrase_file_option
@_ID
@click.option("--outcome", required=True, help="What was done, in a sentence or two.")
@click.option("--action", type=click.Choice(sorted(ACTIONS)), help="The action taken.")
@click.option("--amount", help="A fine or penalty in major units (e.g. 25000 or 1250.50); needs --currency.")
@click.option("--currency", metavar="CODE", help="ISO 4217 currency of --amount, e.g. AUD.")
@click.option("--note", help="A closing note.")
def close(
    home: Path | None,
    passphrase_file: Path | None,
    referral_id: str,
    outcome: str,
    action: str | None,
    amount: str | None,
    currency: str | None,
    note: str | None,
) -> None:
    """Close a referral addressed to this node with its outcome."""
    if (amount is None) != (currency is None):
        raise click.UsageError("--amount and --currency go together")
    penalty = None if amount is None else {"amount": amount, "currency": currency}
    details = {"outcome": outcome, "action": action, "penalty": penalty, "note": note}
    _answer(home, passphrase_file, referral_id, CLOSED, details)
