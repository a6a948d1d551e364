"""`lapnode trends`: add up the trend indicators of every member whose records this node holds.

Rule 1: the command is a thin face over lapnode.reports: it validates the options first (a typo costs
no store read and no passphrase prompt), reads the live trends, opens the sealed ones addressed to this
node as `query` does (lapnode.cli.record_commands.sealed_views), and prints or plots the report.
Rule 2: a report is a view for this node's operator; like `query` it writes nothing to the audit trail.
A chart file is refused if it exists (unless --force) before anything is read, and written atomically.
"""

from __future__ import annotations

from pathlib import Path

import click

from keys.identity import node_id_from_public_key, public_key_from_node_id
from lapnode.cli.bundle_commands import check_new_file, write_new_file
from lapnode.cli.common import (
    echo_json,
    home_option,
    json_option,
    load_home,
    passphrase_file_option,
    run_with_store,
)
from lapnode.cli.record_commands import sealed_views
from lapnode.cli.render_trends import Member, member, print_report, print_written, report_document
from lapnode.clock import format_ms, now_ms, parse_past_ms
from lapnode.config import check_jurisdiction
from lapnode.errors import InputError
from lapnode.home import NodeHome
from lapnode.reports.chart import chart_format, render_chart
from lapnode.reports.held import live_trends, readable_trends
from lapnode.reports.trends import PERIODS, TrendFilters, build_report
from lapnode.store import Peer, Store, StoredRecord
from protocol.errors import SchemaError
from protocol.kinds import trend as trend_kind

_TIME_HELP = "ISO date or date-time (UTC), or a duration ago such as 90d."


def _word(option: str, text: str) -> str:
    """A metric or category as the trend kind writes it ("SMS-Spam" is "sms-spam")."""
    try:
        checked: str = trend_kind.SCHEMA_TABLE.checks[option](text.strip().lower())
    except SchemaError as exc:
        raise InputError(f"--{option}: {exc}") from None
    return checked


def _filters(
    metric: str | None, category: str | None, jurisdiction: str | None, since: str | None, until: str | None
) -> TrendFilters:
    moment = now_ms()
    filters = TrendFilters(
        metric=_word("metric", metric) if metric is not None else None,
        category=_word("category", category) if category is not None else None,
        jurisdiction=check_jurisdiction(jurisdiction) if jurisdiction is not None else None,
        since=parse_past_ms(since, now=moment) if since is not None else None,
        until=parse_past_ms(until, now=moment) if until is not None else None,
    )
    if filters.since is not None and filters.until is not None and filters.until <= filters.since:
        raise InputError(
            f"--until {format_ms(filters.until)} is not after --since {format_ms(filters.since)}"
        )
    return filters


def _members(home: NodeHome, peers: list[Peer]) -> dict[str, Member]:
    """Who is who, from the peer book and this node's config (lapnode.cli.render_trends Rule 2)."""
    members: dict[str, Member] = {
        node_id_from_public_key(peer.key): Member(node_id_from_public_key(peer.key), peer.name, peer.org)
        for peer in peers
    }
    ours = str(home.node_id())
    members[ours] = Member(ours, None, home.config.org, this_node=True)
    return members


@click.command()
@home_option
@json_option
@passphrase_file_option
@click.option("--metric", metavar="METRIC", help="Only this metric, e.g. complaints.")
@click.option("--category", metavar="CATEGORY", help="Only trends of this category, e.g. sms-spam.")
@click.option("--jurisdiction", metavar="CC", help="Only trends about this country (the trend's own field).")
@click.option(
    "--period",
    type=click.Choice(PERIODS, case_sensitive=False),
    default="month",
    show_default=True,
    help="Bucket size: each trend counts in the bucket of its period_start.",
)
@click.option("--since", metavar="TIME", help=f"Only trends whose period starts at/after TIME. {_TIME_HELP}")
@click.option("--until", metavar="TIME", help=f"Only trends whose period starts before TIME. {_TIME_HELP}")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Also write a chart to FILE (.png or .svg) for a report.",
)
@click.option("--force", is_flag=True, help="With --plot: overwrite FILE if it exists.")
def trends(
    home: Path | None,
    as_json: bool,
    passphrase_file: Path | None,
    metric: str | None,
    category: str | None,
    jurisdiction: str | None,
    period: str,
    since: str | None,
    until: str | None,
    plot: Path | None,
    force: bool,
) -> None:
    """Add up the trend indicators this node holds, from every member, by metric and unit.

    Values in different units are never added together. Only live, verified trends count; those with
    redacted values, sealed ones this node cannot open and the rest left out are counted and named in
    the notes. Sealed trends addressed to this node are opened (the key is unlocked if needed).
    """
    node_home = load_home(home)
    filters = _filters(metric, category, jurisdiction, since, until)
    chart = chart_format(plot) if plot is not None else None
    if plot is not None:
        check_new_file(plot, force=force)
    moment = now_ms()

    async def read(store: Store) -> tuple[list[StoredRecord], list[Peer]]:
        return await live_trends(store, now_ms=moment), await store.peers.all()

    stored, peers = run_with_store(node_home, read)
    views = sealed_views(node_home, passphrase_file, [item.record for item in stored])
    our_key = public_key_from_node_id(node_home.node_id())
    held, left_out = readable_trends(stored, views, our_key=our_key, now_ms=moment)
    report = build_report(held, period=period.lower(), filters=filters, left_out=left_out)
    members = _members(node_home, peers)
    if plot is not None and chart is not None:
        labels = [member(members, node).label for node in report.contributors]
        data = render_chart(report, fmt=chart, contributors=labels, generated=format_ms(moment))
        write_new_file(plot, data, force=force)
        print_written(str(plot), labels)
    if as_json:
        echo_json(report_document(report, members, filters=filters, generated_ms=moment))
    else:
        print_report(report, members)
