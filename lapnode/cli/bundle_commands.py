"""`lapnode bundle export|import` and `lapnode verify`: signed records through files (lapnode/bundle.py).

Rule 1: an export is an exit like any other (lapnode.exits): it is made `--for` one peer from the peer
book, whose decision applies to every record (withheld ones are left out, redacted ones redacted), or
`--public`, which takes TLP:CLEAR records only. There is no export for nobody in particular.
Rule 2: every decision of an export, withheld records included, is appended to the audit trail (exit
"bundle-export") in one transaction after the bundle is made in memory and before it is written; if that
fails, nothing is written (lapnode.exits Rule 3). The destination is checked first, so an export refused
for an existing file records nothing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import click

from keys.identity import node_id_from_public_key
from lapnode.bundle import (
    BundleCheck,
    RejectedRecord,
    check_bundle,
    collect_records,
    encode_bundle,
)
from lapnode.cli.common import echo_json, home_option, json_option, load_home, printable, run_with_store
from lapnode.cli.filters import FilterOptions, filter_options
from lapnode.cli.policy_commands import our_key, policy_of
from lapnode.clock import now_ms
from lapnode.config import check_network, load_config
from lapnode.errors import BundleError, InputError
from lapnode.exits import Audience, Disclosure, audit_events, disclose, peer_audience, record_decisions
from lapnode.home import CONFIG_NAME, is_initialised, resolve_home
from lapnode.runtime import tune_for_bulk_work
from lapnode.store import IngestReport, Store

_STDIO = "-"
EXIT: Final = "bundle-export"


@click.group()
def bundle() -> None:
    """Exchange signed records through files (air-gapped transfer)."""


@bundle.command()
@home_option
@click.argument("file", metavar="FILE")
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@click.option(
    "--for", "for_peer", metavar="NODE_ID", help="The peer the bundle is for; its decision applies."
)
@click.option("--public", is_flag=True, help="A public export: TLP:CLEAR records only.")
@filter_options(default_limit=None)
def export(
    home: Path | None, file: str, force: bool, for_peer: str | None, public: bool, **options: Any
) -> None:
    """Write the records matching the filters (all by default) that the recipient may have to FILE.

    FILE '-' is stdout. Choose the recipient: --for NODE_ID or --public.
    """
    if (for_peer is not None) == public:
        raise click.UsageError(
            "say who the bundle is for: --for NODE_ID (a peer in your peer book; its policy decision "
            "applies to every record) or --public (TLP:CLEAR records only)"
        )
    node_home = load_home(home)
    filters = FilterOptions.pop_from(options)
    # collect_records pages through all; limit is its own. Every held version goes, as gossip sends it.
    query_filters = replace(filters.to_query(limit=1), all_versions=True)
    rules = policy_of(node_home)
    ours = our_key(node_home)
    if file != _STDIO:
        check_new_file(Path(file), force=force)

    async def action(store: Store) -> tuple[Audience, list[Disclosure], bytes]:
        audience = (
            Audience.public()
            if public
            else await peer_audience(store, node_home.config, str(for_peer), "bundle", now_ms=now_ms())
        )
        held = await collect_records(store, query_filters, filters.limit)
        now = now_ms()
        disclosures = disclose(held, audience, our_key=ours, policy=rules, now_ms=now)
        wires = [d.record.wire for d in disclosures if d.record is not None]
        data = encode_bundle(node_home.config.network, wires)
        decided = [(d.stored.record.id, d.decision) for d in disclosures]
        await record_decisions(store, audit_events(decided, audience, exit_name=EXIT, time_ms=now))
        return audience, disclosures, data

    audience, disclosures, data = run_with_store(node_home, action)
    records = [d.record for d in disclosures if d.record is not None]
    if file == _STDIO:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        write_new_file(Path(file), data, force=force)
    withheld = len(disclosures) - len(records)
    redacted = sum(1 for d in disclosures if d.withheld_fields())
    ask = "--public" if public else "--peer NODE_ID --via bundle"
    text = (
        f"exported {_records(len(records))} to {file} for {audience.label} "
        f"({withheld} withheld, {redacted} redacted; `lapnode policy explain ID {ask}` says why)"
    )
    click.echo(printable(text), err=True)


@bundle.command("import")
@home_option
@json_option
@click.argument("file", metavar="FILE")
def import_command(home: Path | None, as_json: bool, file: str) -> None:
    """Verify every record in FILE ('-' for stdin) and store the valid ones.

    Each rejected record is reported with its line number and reason; the exit code is 1 if any was.
    """
    node_home = load_home(home)
    tune_for_bulk_work()
    check = check_bundle(_read_bundle(file), network=node_home.config.network)

    async def action(store: Store) -> IngestReport:
        return await store.ingest([item.record.wire for item in check.accepted])

    report = run_with_store(node_home, action)
    rejected = _with_store_refusals(check, report)
    valid = len(check.accepted) - len(report.rejected)
    frozen = [node_id_from_public_key(author) for author in report.frozen_authors]
    if as_json:
        outcome = {"stored": len(report.stored), "duplicates": report.duplicates, "frozen_authors": frozen}
        echo_json(_report_document(file, check, rejected, valid) | outcome)
    else:
        summary = f"{len(report.stored)} stored, {report.duplicates} already held, {len(rejected)} rejected"
        _print_report(check, rejected, summary)
        for node_id in frozen:
            click.echo(f"warning: author {node_id} equivocated (two records at one seq); its feed is frozen")
    _fail_if_damaged(file, check, rejected, valid)


@click.command()
@home_option
@json_option
@click.option("--network", metavar="ID", help="Network the records must belong to [default: the home's].")
@click.argument("file", metavar="FILE")
def verify(home: Path | None, as_json: bool, network: str | None, file: str) -> None:
    """Check every record in a bundle FILE ('-' for stdin) without storing anything.

    Works without a node home; the network is --network, else the home's, else the one the bundle names.
    """
    target = _network_for_verify(home, network)
    check = check_bundle(_read_bundle(file), network=target)
    valid = len(check.accepted)
    if as_json:
        echo_json(_report_document(file, check, check.rejected, valid))
    else:
        if target is None and check.header is not None:
            click.echo(
                f"network: {check.header.network} (as the bundle names it; --network to insist on one)"
            )
        _print_report(check, check.rejected, f"{_records(valid)} valid, {len(check.rejected)} rejected")
    _fail_if_damaged(file, check, check.rejected, valid)


def _with_store_refusals(check: BundleCheck, report: IngestReport) -> list[RejectedRecord]:
    """The bundle's rejections plus the verified records the store refused, by line number."""
    # Rejection.index points into the list given to ingest, which is check.accepted.
    refused = [
        RejectedRecord(check.accepted[r.index].line, f"not stored: {r.reason}") for r in report.rejected
    ]
    return sorted(check.rejected + refused, key=lambda item: item.line)


def _records(count: int) -> str:
    return f"{count} record{'' if count == 1 else 's'}"


def _network_for_verify(home: Path | None, network: str | None) -> str | None:
    if network is not None:
        return check_network(network)
    path = resolve_home(home)
    if is_initialised(path):
        return load_config(path / CONFIG_NAME).network
    return None


def _read_bundle(file: str) -> bytes:
    if file == _STDIO:
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{file}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{file} is a directory, not a bundle file") from None
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc.strerror}") from None


def check_new_file(path: Path, *, force: bool) -> None:
    """Refuse an existing file unless --force; checked before an export decides (and records) anything."""
    if path.exists() and not force:
        raise InputError(f"{path} already exists; pass --force to overwrite it")


def write_new_file(path: Path, data: bytes, *, force: bool) -> None:
    """Write atomically: a reader (or a crash) never sees half a bundle."""
    check_new_file(path, force=force)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with temporary.open("xb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()


def _print_report(check: BundleCheck, rejected: list[RejectedRecord], summary: str) -> None:
    for problem in check.problems:
        click.echo(printable(f"bundle: {problem}"))
    for item in rejected:
        click.echo(printable(f"rejected: {item.describe()}"))
    click.echo(summary)


def _report_document(
    file: str, check: BundleCheck, rejected: list[RejectedRecord], valid: int
) -> dict[str, object]:
    return {
        "file": file,
        "network": check.header.network if check.header else None,
        "valid": valid,
        "rejected": [{"line": item.line, "reason": item.reason} for item in rejected],
        "problems": list(check.problems),
    }


def _fail_if_damaged(file: str, check: BundleCheck, rejected: list[RejectedRecord], valid: int) -> None:
    if rejected:
        total = valid + len(rejected)
        raise BundleError(f"{len(rejected)} of {total} records in {file} rejected (see the report above)")
    if check.problems:
        raise BundleError(f"{file}: {check.problems[0]}")
