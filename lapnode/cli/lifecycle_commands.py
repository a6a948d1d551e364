"""`lapnode retract` and `lapnode purge`, and how `show` tells of a purged record (SPEC §4, §8.10).

Rule 1: `retract` signs a tombstone for one of this node's own records and stores it; the store purges the
record at once and the daemon floods the tombstone to every peer. The reason is a code from
`RETRACTION_REASONS`: the tombstone reaches every member, so no words of the operator go on the wire.
`--note` stays on this node: it is written to the local audit trail with the retraction, nowhere else.
Rule 2: everything is checked before the key is unlocked or anything is stored: the record is held, its
author is this node (or a key this node rotated from), and this node has not retracted it already.
Rule 3: `purge` runs the daemon's purge pass once, for operators who do not run the daemon: tombstones,
expiry, and the retention per kind of config.toml.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from keys.identity import node_id_from_public_key
from keys.membership import TrustedAuthorities
from lapnode.cli.common import (
    echo_json,
    home_option,
    json_option,
    load_home,
    passphrase_file_option,
    printable,
    run_with_store,
)
from lapnode.cli.passphrase import unlock_identity
from lapnode.cli.policy_commands import our_key
from lapnode.clock import format_ms, now_ms
from lapnode.errors import InputError
from lapnode.store import AuditEvent, Store, StoredRecord
from lapnode.store.lifecycle import EXPIRED, RETENTION, RETRACTED
from protocol.errors import ProtocolError
from protocol.statements import RETRACTION_REASONS, Retraction, issue_retraction, verify_statement

MAX_NOTE_CHARS = 1000
# A retraction needs no authority to verify (its author signs it); revocations are not read here.
_NO_AUTHORITIES = TrustedAuthorities()
NETWORK_LABEL = "network (retraction tombstone)"


@dataclass(frozen=True)
class PurgedNotice:
    """What `show` prints of a record whose content is gone, or would be (expired, not yet purged)."""

    rid: bytes
    reason: str
    at: int | None = None
    code: str | None = None

    def line(self) -> str:
        if self.reason == RETRACTED:
            when = f" at {format_ms(self.at)}" if self.at is not None else ""
            code = f" ({self.code})" if self.code else ""
            return f"record {self.rid.hex()}: retracted by its author{when}{code}; its content is gone"
        if self.reason == EXPIRED:
            when = f" at {format_ms(self.at)}" if self.at is not None else ""
            return f"record {self.rid.hex()}: expired{when}; its content is gone"
        return f"record {self.rid.hex()}: purged after this node's retention period; its content is gone"

    def document(self) -> dict[str, object]:
        return {
            "id": self.rid.hex(),
            "purged": self.reason,
            "at": format_ms(self.at) if self.at is not None else None,
            "reason": self.code,
        }


async def purged_notice(store: Store, stored: StoredRecord, *, now: int) -> PurgedNotice | None:
    """The notice for a record `show` must not show the content of (None: show it)."""
    record = stored.record
    expires = record.header.scope.expires
    if stored.purged is None:
        if expires is not None and expires <= now:
            return PurgedNotice(record.id, EXPIRED, expires)
        return None
    if stored.purged == RETRACTED:
        tombstone = await _own_tombstone(store, record.id, record.header.author)
        if tombstone is not None:
            return PurgedNotice(record.id, RETRACTED, tombstone.retracted_at, tombstone.reason)
        return PurgedNotice(record.id, RETRACTED)
    if stored.purged == EXPIRED:
        return PurgedNotice(record.id, EXPIRED, expires)
    return PurgedNotice(record.id, RETENTION)


async def _own_tombstone(store: Store, rid: bytes, author: bytes) -> Retraction | None:
    """The first held tombstone of `rid` that its author (or successor) signed."""
    for wire in await store.statements.retractions_of(rid):
        try:
            statement = verify_statement(wire, network=store.network, trusted=_NO_AUTHORITIES)
        except ProtocolError:
            continue
        if isinstance(statement, Retraction) and await store.may_retract(statement.author, author):
            return statement
    return None


@click.command()
@home_option
@json_option
@passphrase_file_option
@click.argument("record_id", metavar="ID")
@click.option(
    "--reason",
    required=True,
    type=click.Choice(RETRACTION_REASONS),
    help="Why, as a code every member sees: " + ", ".join(RETRACTION_REASONS) + ".",
)
@click.option("--note", metavar="TEXT", help="Free text kept in this node's audit trail only, never sent.")
def retract(
    home: Path | None,
    as_json: bool,
    passphrase_file: Path | None,
    record_id: str,
    reason: str,
    note: str | None,
) -> None:
    """Retract one of this node's records: every node purges its content and keeps the tombstone.

    The tombstone (record id, author, time, reason code) goes to every member of the network, including
    nodes offline now, and is never withdrawn. ID is the hex id or a unique prefix of at least 8
    characters.
    """
    node_home = load_home(home)
    note_text = _check_note(note)
    ours = our_key(node_home)
    target = run_with_store(node_home, lambda store: _retractable(store, record_id, ours))
    identity = unlock_identity(node_home.key_path, passphrase_file)
    moment = now_ms()
    tombstone = issue_retraction(
        identity, network=node_home.config.network, target=target, reason=reason, retracted_at=moment
    )

    async def action(store: Store) -> None:
        await store.statements.add([tombstone], now_ms=moment)
        reasons = (f"retraction: {reason}",) + ((f"note: {note_text}",) if note_text else ())
        await store.audit.append([AuditEvent(target, NETWORK_LABEL, "send", reasons, moment, "retract")])

    run_with_store(node_home, action)
    if as_json:
        echo_json({"id": target.hex(), "retracted_at": format_ms(moment), "reason": reason})
    else:
        click.echo(f"retracted {target.hex()} ({reason}); the tombstone goes to every peer")


def _check_note(note: str | None) -> str | None:
    if note is None:
        return None
    text = note.strip()
    if not text or len(text) > MAX_NOTE_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InputError(f"--note must be one line of 1 to {MAX_NOTE_CHARS} characters")
    return text


async def _retractable(store: Store, record_id: str, ours: bytes) -> bytes:
    """Rule 2: the id of a held record of ours that we have not retracted yet."""
    stored = await store.get(record_id)
    record = stored.record
    author = record.header.author
    if not await store.may_retract(ours, author):
        raise InputError(
            f"record {record.id.hex()[:16]} was written by {node_id_from_public_key(author)}, not this "
            "node; only its author can retract it"
        )
    if await _own_tombstone(store, record.id, author) is not None:
        raise InputError(f"record {record.id.hex()[:16]} is retracted already")
    return record.id


@click.command()
@home_option
@json_option
def purge(home: Path | None, as_json: bool) -> None:
    """Purge what is due now: retracted records, expired ones, and records past their kind's retention.

    The daemon does this by itself every purge_interval; this is for nodes that do not run it.
    """
    node_home = load_home(home)
    retention = node_home.config.retention_ms()
    report = run_with_store(node_home, lambda store: store.purge(now_ms=now_ms(), retention=retention))
    if as_json:
        echo_json({"retracted": report.retracted, "expired": report.expired, "retention": report.retention})
    else:
        click.echo(
            printable(
                f"purged {report.total}: {report.retracted} retracted, {report.expired} expired, "
                f"{report.retention} past retention"
            )
        )
