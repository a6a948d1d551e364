"""`lapnode audit`, `lapnode audit verify`, `lapnode audit head`: the disclosure audit trail.

Rule 1: these commands only read the trail; only the exits (gossip, exports, TAXII) append to it.
Rule 2: `audit verify` exits 0 with `ok: N entries, head HASH`, or 1 with one line naming the first broken
entry (the dispatcher prints it), so a cron job or monitoring check can run it as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from keys.identity import public_key_from_node_id
from lapnode.cli.common import echo_json, home_option, json_option, load_home, run_with_store
from lapnode.cli.filters import DEFAULT_QUERY_LIMIT
from lapnode.cli.render_audit import audit_document, print_audit_table
from lapnode.clock import now_ms, parse_past_ms
from lapnode.errors import InputError, LapnodeError
from lapnode.store import ACTIONS, MAX_LIMIT, AuditCheck, AuditFilters, AuditHead, Store

_TIME_HELP = "ISO date or date-time (UTC), or a duration ago such as 7d or 12h."


class AuditTrailBroken(LapnodeError):
    """The audit trail's hash chain is broken: an entry was altered, removed or reordered."""


def _home(ctx: click.Context, home: Path | None) -> Path | None:
    # `lapnode audit --home X verify` and `lapnode audit verify --home X` both work.
    return home if home is not None else ctx.obj.get("home") if isinstance(ctx.obj, dict) else None


@click.group(invoke_without_command=True)
@home_option
@json_option
@click.option("--record", metavar="ID", help="Decisions about this record (hex id or 8+ character prefix).")
@click.option("--peer", metavar="NODE_ID", help="Decisions for this peer (lap1...).")
@click.option("--recipient", metavar="LABEL", help="Decisions for a recipient that is not a node.")
@click.option("--action", type=click.Choice(ACTIONS), help="Only this decision.")
@click.option("--exit", "exit_name", metavar="EXIT", help="Only decisions of this exit (gossip, ...).")
@click.option("--since", metavar="TIME", help=f"Decided at or after TIME. {_TIME_HELP}")
@click.option("--until", metavar="TIME", help=f"Decided before TIME. {_TIME_HELP}")
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_LIMIT),
    default=DEFAULT_QUERY_LIMIT,
    show_default=True,
    help="At most this many entries, newest first.",
)
@click.pass_context
def audit(ctx: click.Context, /, home: Path | None, **options: Any) -> None:
    """Show the disclosure audit trail, newest first: every send, withhold and redact decision.

    Subcommands check the trail's hash chain (`verify`) and print its head (`head`).
    """
    if ctx.invoked_subcommand is not None:
        explicit = ParameterSource.COMMANDLINE
        given = [
            param.opts[0]
            for param in ctx.command.params
            if param.name != "home" and ctx.get_parameter_source(param.name or "") is explicit
        ]
        if given:
            raise click.UsageError(f"{given[0]} belongs to `lapnode audit` itself, not to a subcommand")
        ctx.obj = {"home": home}
        return
    filters = _filters(options)
    entries = run_with_store(load_home(home), lambda store: store.audit.entries(filters))
    if options["as_json"]:
        echo_json([audit_document(entry) for entry in entries])
    else:
        print_audit_table(entries)


def _filters(options: dict[str, Any]) -> AuditFilters:
    if options["peer"] is not None and options["recipient"] is not None:
        raise click.UsageError("give --peer or --recipient, not both")
    recipient: bytes | str | None = None
    if options["peer"] is not None:
        recipient = public_key_from_node_id(options["peer"])
    elif options["recipient"] is not None:
        recipient = options["recipient"].strip()
        if not recipient:
            raise InputError("--recipient needs a label, e.g. public-export")
    moment = now_ms()
    return AuditFilters(
        record=options["record"],
        recipient=recipient,
        action=options["action"],
        exit=options["exit_name"].strip() if options["exit_name"] else None,
        since=parse_past_ms(options["since"], now=moment) if options["since"] else None,
        until=parse_past_ms(options["until"], now=moment) if options["until"] else None,
        limit=options["limit"],
    )


@audit.command("verify")
@home_option
@json_option
@click.option(
    "--head",
    "noted_head",
    metavar="HASH",
    help="A head hash noted earlier (`lapnode audit head`); it must still be in the trail.",
)
@click.pass_context
def audit_verify(ctx: click.Context, /, home: Path | None, as_json: bool, noted_head: str | None) -> None:
    """Check the audit trail's hash chain from the first entry to the last; name the first broken one."""
    noted = _hash(noted_head) if noted_head is not None else None

    async def action(store: Store) -> AuditCheck:
        return await store.audit.verify(noted_head=noted)

    check = run_with_store(load_home(_home(ctx, home)), action)
    if as_json:
        echo_json(_check_document(check))
    if check.broken is not None:
        raise AuditTrailBroken(f"audit entry #{check.broken.seq} is broken: {check.broken.why}")
    if check.noted_head_found is False:
        raise AuditTrailBroken(
            f"the noted head {noted_head} is not in the audit trail: "
            "entries up to it were removed or rewritten"
        )
    if not as_json:
        click.echo(f"ok: {check.entries} entries, head {check.head.entry_hash.hex()}")


def _hash(text: str) -> bytes:
    cleaned = text.strip().lower()
    if len(cleaned) != 64 or any(c not in "0123456789abcdef" for c in cleaned):
        raise InputError(
            f"--head {text!r} is not an entry hash (64 hex characters, as `lapnode audit head` prints)"
        )
    return bytes.fromhex(cleaned)


def _check_document(check: AuditCheck) -> dict[str, object]:
    broken = check.broken
    return {
        "ok": check.ok,
        "entries": check.entries,
        "head": _head_document(check.head),
        "broken": {"seq": broken.seq, "why": broken.why} if broken is not None else None,
        "noted_head_found": check.noted_head_found,
    }


def _head_document(head: AuditHead) -> dict[str, object]:
    return {"seq": head.seq, "hash": head.entry_hash.hex()}


@audit.command("head")
@home_option
@json_option
@click.pass_context
def audit_head(ctx: click.Context, /, home: Path | None, as_json: bool) -> None:
    """Print the newest entry's number and hash. Note it somewhere else to detect a rewritten trail later."""

    async def action(store: Store) -> AuditHead:
        return await store.audit.head()

    head = run_with_store(load_home(_home(ctx, home)), action)
    if as_json:
        echo_json(_head_document(head))
    else:
        click.echo(f"#{head.seq} {head.entry_hash.hex()}")
