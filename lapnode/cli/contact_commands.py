"""`lapnode contacts`: the point-of-contact directory, `contacts stale` and `contacts confirm`.

Rule 1: the directory lists each member's current contact records (lapnode.directory): the newest
version of each, without superseded, expired or retracted ones, with the time each was last confirmed.
Rule 2: sealed contacts addressed to this node are opened (the key is unlocked if needed); the others
cannot be read here and are left out, and the count of those is said on stderr.
Rule 3: record text is remote input: the table passes it through `printable`, JSON escapes it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lapnode.cli.common import (
    echo_json,
    home_option,
    json_option,
    load_home,
    one_line,
    passphrase_file_option,
    run_with_store,
)
from lapnode.cli.record_commands import print_published, sealed_views
from lapnode.cli.revision_commands import sign_new_version
from lapnode.clock import format_ms, now_ms, parse_duration_ms
from lapnode.config import check_jurisdiction
from lapnode.directory import (
    CONTACT_KIND,
    DirectoryEntry,
    DirectoryFilter,
    current_contacts,
    directory,
    stale,
)
from lapnode.errors import InputError
from lapnode.home import NodeHome
from lapnode.revisions import current_fields
from lapnode.store import StoredRecord
from protocol.envelope import Record
from protocol.kinds import Body, ContactBody, SealedBody, body_to_document
from protocol.kinds.contact import CATEGORIES, TOPICS
from protocol.scope import Scope

_PIPE_WIDTH: Final = 400
_COLUMNS: Final = (
    "organisation",
    "unit",
    "cc",
    "category",
    "topics",
    "email / phone",
    "last confirmed",
    "id",
)


def _readable(
    home: NodeHome, passphrase_file: Path | None, now: int
) -> tuple[list[tuple[StoredRecord, ContactBody]], int]:
    """Every current contact with a body readable here, and how many sealed ones are not (Rule 2)."""
    found = run_with_store(home, lambda store: current_contacts(store, now=now))
    views = sealed_views(home, passphrase_file, [item.record for item in found])
    readable: list[tuple[StoredRecord, ContactBody]] = []
    unreadable = 0
    for item in found:
        body: Body | None = item.record.body
        if isinstance(body, SealedBody):
            view = views.get(item.record.id)
            body = view.body if view is not None else None
            unreadable += body is None
        if isinstance(body, ContactBody):
            readable.append((item, body))
    return readable, unreadable


def _age(days: int) -> str:
    return "today" if days == 0 else f"{days} day{'s' if days != 1 else ''} ago"


def entry_document(entry: DirectoryEntry, now: int) -> dict[str, object]:
    record = entry.stored.record
    return {
        **body_to_document(entry.body),
        "id": record.id.hex(),
        "author": record.author_id,
        "tlp": record.header.scope.tlp,
        "last_confirmed": format_ms(entry.confirmed),
        "last_confirmed_ms": entry.confirmed,
        "age_days": entry.age_days(now),
    }


def _row(entry: DirectoryEntry, now: int) -> list[str]:
    body = entry.body
    reach = ", ".join((*(body.emails or ()), *(body.phones or ())))
    return [
        body.organisation or "[redacted]",
        body.unit or "",
        body.jurisdiction or "??",
        body.category or "[redacted]",
        ", ".join(body.topics or ()),
        reach,
        f"{format_ms(entry.confirmed)[:10]} ({_age(entry.age_days(now))})",
        entry.stored.record.id.hex()[:12],
    ]


def _print(entries: Sequence[DirectoryEntry], now: int, as_json: bool, unreadable: int) -> None:
    if as_json:
        echo_json([entry_document(entry, now) for entry in entries])
    elif not entries:
        click.echo("no contacts match", err=True)
    else:
        console = Console(
            highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else _PIPE_WIDTH
        )
        table = Table(box=None, header_style="bold", pad_edge=False)
        for name in _COLUMNS:
            table.add_column(name, overflow="fold")
        for entry in entries:
            # Text cells: record content is never parsed as rich markup.
            table.add_row(*(Text(one_line(cell)) for cell in _row(entry, now)))
        console.print(table)
        click.echo(f"{len(entries)} contact{'s' if len(entries) != 1 else ''}", err=True)
    if unreadable:
        click.echo(f"{unreadable} sealed contact(s) not readable here were left out", err=True)


def _home(context: click.Context, home: Path | None) -> NodeHome:
    """A subcommand's --home, else the one given to the group (`lapnode contacts --home X stale`)."""
    group_home = context.obj if isinstance(context.obj, Path) else None
    return load_home(home if home is not None else group_home)


@click.group(invoke_without_command=True)
@home_option
@json_option
@passphrase_file_option
@click.option("--jurisdiction", metavar="CC", help="Only contacts in this country (ISO 3166-1 alpha-2).")
@click.option(
    "--category", type=click.Choice(sorted(CATEGORIES), case_sensitive=False), help="Only this category."
)
@click.option(
    "--topic", type=click.Choice(sorted(TOPICS), case_sensitive=False), help="Only contacts handling this."
)
@click.option(
    "--text",
    metavar="WORDS",
    help="Only contacts whose organisation, unit, role, person, notes or topics contain WORDS"
    " (case-insensitive).",
)
@click.pass_context
def contacts(
    context: click.Context,
    home: Path | None,
    as_json: bool,
    passphrase_file: Path | None,
    jurisdiction: str | None,
    category: str | None,
    topic: str | None,
    text: str | None,
) -> None:
    """The point-of-contact directory: each member's current contact records.

    Shows the newest version of every contact (superseded, expired and retracted ones are left out)
    and when its author last confirmed it. Sealed contacts addressed to this node are opened; sealed
    contacts not readable here are left out. Example: who handles SMS spam in Australia?
    `lapnode contacts --jurisdiction AU --topic sms-spam`.
    """
    if context.invoked_subcommand is not None:
        context.obj = home
        return
    node_home = load_home(home)
    wanted = DirectoryFilter(
        jurisdiction=check_jurisdiction(jurisdiction) if jurisdiction else None,
        category=category.lower() if category else None,
        topic=topic.lower() if topic else None,
        text=text if text and text.strip() else None,
    )
    now = now_ms()
    readable, unreadable = _readable(node_home, passphrase_file, now)
    _print(directory(readable, wanted), now, as_json, unreadable)


@contacts.command(name="stale")
@home_option
@json_option
@passphrase_file_option
@click.option(
    "--older-than",
    metavar="DURATION",
    required=True,
    help="Contacts last confirmed longer ago than this, e.g. 180d, 26w.",
)
@click.pass_context
def stale_command(
    context: click.Context, home: Path | None, as_json: bool, passphrase_file: Path | None, older_than: str
) -> None:
    """Contacts not re-confirmed within DURATION, oldest first: whom to ask for a re-confirmation."""
    duration = parse_duration_ms(older_than)
    if duration is None:
        raise InputError(f"--older-than {older_than!r} is not a duration; give one like 180d, 12w or 24h")
    node_home = _home(context, home)
    now = now_ms()
    readable, unreadable = _readable(node_home, passphrase_file, now)
    entries = directory(readable, DirectoryFilter())
    _print(stale(entries, older_than_ms=duration, now=now), now, as_json, unreadable)


@contacts.command(name="confirm")
@home_option
@json_option
@passphrase_file_option
@click.argument("record_id", metavar="RECORD_ID")
@click.pass_context
def confirm_command(
    context: click.Context, home: Path | None, as_json: bool, passphrase_file: Path | None, record_id: str
) -> None:
    """Re-confirm one of this node's contacts: publish it again, unchanged, as the version that
    supersedes RECORD_ID. The directory then shows it as confirmed now. Prints the new record's id."""

    def same_scope(old: Record, now: int) -> Scope:
        if old.header.kind != CONTACT_KIND:
            raise InputError(f"record {old.id.hex()[:16]} is a {old.header.kind}, not a contact")
        return old.header.scope

    record, identity = sign_new_version(
        _home(context, home), record_id, passphrase_file, scope_for=same_scope, fields_for=current_fields
    )
    print_published(record, identity, as_json)
