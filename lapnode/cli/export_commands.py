"""`lapnode export stix|misp|xarf|csv`: records in standard formats, through the disclosure adapter.

Rule 1: the recipient is always described: `--for NODE_ID` (a peer, with the attributes pinned in the
peer book), `--public` (anyone: TLP:CLEAR only), or by default this node's own organisation. Every record
goes through lapnode.interop.disclosure; what it withholds is counted on stderr, never written.
Rule 2: an export is an exit (lapnode.exits Rule 3): its decisions, withheld records included, are
appended to the audit trail in one transaction after the output is made in memory and before it is
written; if that fails, nothing is written. The destination is checked first, so an export refused for
an existing file records nothing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import ColumnElement

from keys.identity import public_key_from_node_id
from lapnode.cli.bundle_commands import check_new_file, write_new_file
from lapnode.cli.common import home_option, load_home, printable, run_with_store
from lapnode.cli.filters import FilterOptions, filter_options
from lapnode.cli.policy_commands import policy_of
from lapnode.clock import now_ms
from lapnode.errors import InputError
from lapnode.exits import (
    Audience,
    audience_for_peer,
    audit_events,
    file_label,
    local_audience,
    peer_evidence,
    record_decisions,
)
from lapnode.home import NodeHome
from lapnode.interop import csv_io, misp, stix_bundle, xarf_io
from lapnode.interop.exporting import Collected, author_names, collect
from lapnode.store import Store, filter_clause
from lapnode.store.queries import id_range
from lapnode.store.schema import records
from protocol.errors import SchemaError
from protocol.indicators import normalise

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
_STDOUT = "-"
Render = Callable[[Collected, dict[bytes, str]], T]


def _audience_options(command: F) -> F:
    command = click.option(
        "--public", is_flag=True, help="The output is public: only TLP:CLEAR records go into it."
    )(command)
    return click.option(
        "--for",
        "for_node",
        metavar="NODE_ID",
        help="Export for this peer (its pinned category and jurisdiction) [default: this organisation].",
    )(command)


@dataclass(frozen=True)
class _Export:
    """One export: which exit, where it goes, for whom, and which records it considers."""

    exit_name: str
    out: str
    for_node: str | None
    public: bool
    where: ColumnElement[bool] | None
    limit: int | None
    # xarf: the one record asked for (not found, or ambiguous: the usual one-line errors).
    record_id: str | None = None
    # --text was given: the search index is brought up to date first.
    text: bool = False

    def __post_init__(self) -> None:
        if self.for_node and self.public:
            raise click.UsageError("--for and --public exclude each other")


async def _audience(store: Store, home: NodeHome, export: _Export) -> Audience:
    if export.public:
        return Audience.public()
    if export.for_node:
        peer = await store.peers.get(public_key_from_node_id(export.for_node))
        return audience_for_peer(peer, "bundle", await peer_evidence(store, home.config, now_ms=now_ms()))
    return local_audience(home.config, audit_recipient=file_label(export.exit_name, export.out))


def _run(home: NodeHome, export: _Export, render: Render[T]) -> tuple[T, Collected, Audience]:
    """Decide for every record, make the output in memory, then record the decisions (Rule 2)."""
    our_key = public_key_from_node_id(home.node_id())
    rules = policy_of(home)

    async def action(store: Store) -> tuple[T, Collected, Audience]:
        if export.record_id is not None:
            await store.get(export.record_id)
        audience = await _audience(store, home, export)
        if export.text:
            await store.search.catch_up()  # the --text clause reads the search index
        now = now_ms()
        found = await collect(
            store,
            audience,
            policy=rules,
            where=export.where,
            limit=export.limit,
            our_key=our_key,
            network=home.config.network,
            now_ms=now,
        )
        output = render(found, await author_names(store, home.config, our_key))
        events = audit_events(found.decided, audience, exit_name=export.exit_name, time_ms=now)
        await record_decisions(store, events)
        return output, found, audience

    return run_with_store(home, action)


def _filtered(
    exit_name: str, out: str, options: dict[str, Any], *, for_node: str | None, public: bool
) -> _Export:
    filters = FilterOptions.pop_from(options)
    # Every held version, each under its own scope, as gossip sends them (lapnode.store.queries Rule 3).
    where = filter_clause(replace(filters.to_query(limit=1), all_versions=True))
    return _Export(exit_name, out, for_node, public, where, filters.limit, text=filters.text is not None)


def _report(found: Collected, written: int, what: str, out: str, audience: Audience) -> None:
    text = (
        f"exported {written} {what} from {len(found.disclosed)} records to {out} for {audience.label}; "
        f"{found.withheld} withheld by policy"
    )
    click.echo(printable(text), err=True)


def _check_file(out: str, force: bool) -> None:
    if out != _STDOUT:
        check_new_file(Path(out), force=force)


def _write_text(out: str, text: str, force: bool) -> None:
    if out == _STDOUT:
        click.echo(text, nl=False)
    else:
        write_new_file(Path(out), text.encode("utf-8"), force=force)


@click.group("export")
def export_group() -> None:
    """Export records as STIX 2.1, a MISP feed, X-ARF or CSV (scope and policy apply)."""


@export_group.command("stix")
@home_option
@click.option("--out", required=True, metavar="FILE", help="The bundle file ('-' for stdout).")
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@_audience_options
@filter_options(default_limit=None)
def export_stix(
    home: Path | None, out: str, force: bool, for_node: str | None, public: bool, **options: Any
) -> None:
    """Write a STIX 2.1 bundle: contacts as identities, leads as indicators and observed data, trends as
    notes, referrals as groupings, all marked with TLP 2.0."""
    node_home = load_home(home)
    export = _filtered("export-stix", out, options, for_node=for_node, public=public)
    _check_file(out, force)
    bundle, found, audience = _run(
        node_home, export, lambda found, names: stix_bundle.bundle(found.disclosed, names)
    )
    _write_text(out, json.dumps(bundle, indent=2, ensure_ascii=False) + "\n", force)
    objects = bundle["objects"]
    assert isinstance(objects, list)
    _report(found, len(objects), "STIX objects", out, audience)


@export_group.command("misp")
@home_option
@click.option("--out", required=True, metavar="DIR", help="The feed directory (created if missing).")
@click.option("--force", is_flag=True, help="Replace the feed files already in DIR.")
@_audience_options
@filter_options(default_limit=None)
def export_misp(
    home: Path | None, out: str, force: bool, for_node: str | None, public: bool, **options: Any
) -> None:
    """Write a MISP feed (one event per lead, manifest.json, hashes.csv) with TLP as tlp: tags."""
    node_home = load_home(home)
    export = _filtered("export-misp", out, options, for_node=for_node, public=public)
    _check_feed_directory(Path(out), force=force)
    events, found, audience = _run(node_home, export, lambda found, names: misp.feed(found.disclosed, names))
    _write_feed(Path(out), events, force=force)
    _report(found, len(events), "MISP events", out, audience)


def _check_feed_directory(directory: Path, *, force: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory} is not a directory")
    existing = list(directory.iterdir()) if directory.exists() else []
    if existing and not force:
        raise InputError(f"{directory} is not empty; pass --force to replace the feed in it")


def _write_feed(directory: Path, events: dict[str, dict[str, object]], *, force: bool) -> None:
    _check_feed_directory(directory, force=force)
    staging = directory.with_name(f".{directory.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    manifest = {}
    hashes = []
    for event_uuid, event in events.items():
        (staging / f"{event_uuid}.json").write_text(json.dumps(event, indent=1, ensure_ascii=False))
        manifest[event_uuid] = misp.manifest_entry(event)
        hashes += [f"{digest},{event_uuid}" for digest in misp.value_hashes(event)]
    (staging / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False))
    (staging / "hashes.csv").write_text("".join(f"{line}\n" for line in hashes))
    # Swap the whole directory, so a MISP polling it never reads half of an old and half of a new feed.
    retired = directory.with_name(f".{directory.name}.old")
    shutil.rmtree(retired, ignore_errors=True)
    if directory.exists():
        directory.rename(retired)
    staging.rename(directory)
    shutil.rmtree(retired, ignore_errors=True)


@export_group.command("xarf")
@home_option
@click.argument("record_id", metavar="ID")
@click.option("--contact", required=True, metavar="EMAIL", help="Your abuse desk's address (reporter).")
@click.option("--org", help="Your organisation's name [default: the node's org].")
@click.option("--out", default=_STDOUT, show_default=True, metavar="FILE", help="Where to write the report.")
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@_audience_options
def export_xarf(
    home: Path | None,
    record_id: str,
    contact: str,
    org: str | None,
    out: str,
    force: bool,
    for_node: str | None,
    public: bool,
) -> None:
    """Write one lead as an X-ARF v4 messaging/spam report."""
    node_home = load_home(home)
    try:
        address = normalise("email", contact)
    except SchemaError as exc:
        raise InputError(f"--contact: {exc}") from None
    low, high = id_range(record_id)
    export = _Export("export-xarf", out, for_node, public, records.c.rid.between(low, high), None, record_id)
    _check_file(out, force)
    reporter = org or node_home.config.org

    def render(found: Collected, _: dict[bytes, str]) -> dict[str, object] | None:
        if not found.disclosed:
            return None  # withheld: the decision is still recorded, then the command fails
        return xarf_io.report_for(found.disclosed[0].record, org=reporter, contact=address)

    report, found, audience = _run(node_home, export, render)
    if report is None:
        raise InputError(f"record {record_id} may not go to {audience.label} (withheld by policy)")
    _write_text(out, json.dumps(report, indent=2, ensure_ascii=False) + "\n", force)
    _report(found, 1, "X-ARF report", out, audience)


@export_group.command("csv")
@home_option
@click.option("--out", required=True, metavar="FILE", help="The CSV file ('-' for stdout).")
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@_audience_options
@filter_options(default_limit=None)
def export_csv(
    home: Path | None, out: str, force: bool, for_node: str | None, public: bool, **options: Any
) -> None:
    """Write indicators as CSV, one per row (record_id, author, created, tlp, kind, type, value, title)."""
    node_home = load_home(home)
    export = _filtered("export-csv", out, options, for_node=for_node, public=public)
    _check_file(out, force)
    text, found, audience = _run(node_home, export, lambda found, _: csv_io.export_csv(found.disclosed))
    _write_text(out, text, force)
    _report(found, text.count("\n") - 1, "indicators", out, audience)
