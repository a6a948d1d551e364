"""How records look to an operator: a JSON document, a table row, a detail view.

Rule 1: `record_document` is the one JSON form of a record (query --json, show --json, publish --json),
so scripts see the same shape everywhere. Keys: id, kind, schema, network, author, seq, prev, created,
created_ms, received, scope, body, redacted, sealed, flags (what this node knows against the record
since it stored it, e.g. `author-revoked`).
Rule 2: record text is remote input; the human forms pass it through `printable` (see common.py).
Rule 4: `show` adds `history` (`history_document`): `earlier` versions this one replaced (newest first),
`later` versions that replaced it (oldest first), `superseded_by` (the newest of those, or null) and
`current` (whether this version is live here: not superseded, expired or retracted).
Rule 3: a sealed record (SPEC §3.7) shows its opened body only if the caller opened it (a `SealedView`
from lapnode.sealing); otherwise its body is null and `sealed` says "sealed for N members; not readable
here". Nothing of the ciphertext is shown.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from keys.identity import node_id_from_public_key
from lapnode.cli.common import one_line, printable
from lapnode.clock import format_ms
from lapnode.sealing import NOT_READABLE, SealedView
from lapnode.store import History, StoredRecord, Version
from protocol.envelope import Record, RecordId
from protocol.kinds import Body, SealedBody, body_to_document
from protocol.scope import Scope

_SUMMARY_WIDTH = 80
_PIPE_WIDTH = 400
_MIN_SUMMARY = 12


def scope_document(scope: Scope) -> dict[str, object]:
    return {
        "tlp": scope.tlp,
        "categories": list(scope.categories),
        "members": [node_id_from_public_key(m) for m in scope.members],
        "jurisdictions_allow": list(scope.jurisdictions_allow),
        "jurisdictions_deny": list(scope.jurisdictions_deny),
        "flags": list(scope.flags),
        "relay_hops": scope.relay_hops,
        "embargo_until": format_ms(scope.embargo_until) if scope.embargo_until is not None else None,
        "expires": format_ms(scope.expires) if scope.expires is not None else None,
    }


def sealed_view(record: Record, views: Mapping[RecordId, SealedView]) -> SealedView | None:
    """The view of a sealed record (not readable here unless the caller opened it); None if unsealed."""
    if not isinstance(record.body, SealedBody):
        return None
    return views.get(record.id) or SealedView(record.body.members, None, NOT_READABLE)


def _shown_body(record: Record, view: SealedView | None) -> Body | None:
    return record.body if view is None else view.body


def record_document(
    record: Record,
    received_at: int | None = None,
    views: Mapping[RecordId, SealedView] | None = None,
    *,
    flags: Sequence[str] = (),
) -> dict[str, object]:
    header = record.header
    view = sealed_view(record, views or {})
    body = _shown_body(record, view)
    sealed = None if view is None else {"members": view.members, "opened": view.opened, "note": view.line()}
    return {
        "id": record.id.hex(),
        "kind": header.kind,
        "schema": header.schema,
        "network": header.network,
        "author": record.author_id,
        "seq": header.seq,
        "prev": header.prev.hex() if header.prev is not None else None,
        "created": format_ms(header.created),
        "created_ms": header.created,
        "received": format_ms(received_at) if received_at is not None else None,
        "scope": scope_document(header.scope),
        "body": body_to_document(body) if body is not None else None,
        "redacted": sorted(record.redacted),
        "sealed": sealed,
        "flags": list(flags),
    }


def short_node_id(node_id: str) -> str:
    return f"{node_id[:8]}…{node_id[-4:]}"


def _summary(record: Record, views: Mapping[RecordId, SealedView]) -> str:
    view = sealed_view(record, views)
    body = _shown_body(record, view)
    line = one_line(body.summary_line() if body is not None else view.line() if view is not None else "")
    return line if len(line) <= _SUMMARY_WIDTH else line[: _SUMMARY_WIDTH - 1] + "…"


_COLUMNS = ("id", "kind", "author", "seq", "created (UTC)", "tlp", "summary")


def _row(record: Record, views: Mapping[RecordId, SealedView], flags: Sequence[str]) -> list[str]:
    summary = _summary(record, views)
    return [
        record.id.hex()[:12],
        one_line(record.header.kind),
        short_node_id(record.author_id),
        str(record.header.seq),
        format_ms(record.header.created)[:16].replace("T", " "),
        record.header.scope.tlp.upper(),
        f"[{', '.join(flags).upper()}] {summary}" if flags else summary,
    ]


def print_table(stored: Sequence[StoredRecord], views: Mapping[RecordId, SealedView] | None = None) -> None:
    if not stored:
        click.echo("no records match", err=True)
        return
    rows = [_row(item.record, views or {}, item.flags) for item in stored]
    # Piped into grep or a file, nothing is cut: there is no terminal width to respect.
    console = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else _PIPE_WIDTH)
    # One line per record. In a narrow terminal only the summary gives way, cut with "…" (`show` has it
    # all); the other columns keep their full width.
    widths = [max(len(name), *(len(row[i]) for row in rows)) for i, name in enumerate(_COLUMNS)]
    room = max(console.width - sum(widths[:-1]) - 2 * (len(_COLUMNS) - 1), _MIN_SUMMARY)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in _COLUMNS:
        table.add_column(name, no_wrap=True)
    for row in rows:
        *fixed, summary = row
        cut = summary if len(summary) <= room else summary[: room - 1] + "…"
        # Text cells: record content is never parsed as rich markup.
        table.add_row(*(Text(cell) for cell in (*fixed, cut)))
    console.print(table)
    click.echo(f"{len(stored)} record{'s' if len(stored) != 1 else ''}", err=True)


_FLAG_MEANING = {
    "author-revoked": "the author's key was revoked after this node stored the record",
    "key-retired": "the author's key was rotated away before this record's time or sequence number",
}


def print_detail(
    record: Record,
    received_at: int | None,
    views: Mapping[RecordId, SealedView] | None = None,
    *,
    flags: Sequence[str] = (),
) -> None:
    """The `show` view: header facts, scope, then the body fields one per line."""
    document = record_document(record, received_at, views, flags=flags)
    view = sealed_view(record, views or {})
    scope = document["scope"]
    assert isinstance(scope, dict)
    lines = [f"{name}: {document[name]}" for name in ("id", "kind", "author", "seq", "prev", "created")]
    if received_at is not None:
        lines.append(f"received: {document['received']}")
    for flag in flags:
        lines.append(f"FLAG {flag}: {_FLAG_MEANING.get(flag, 'see the operator guide')}")
    lines.append("scope:")
    lines += [_field_line(name, value) for name, value in scope.items() if value not in (None, [])]
    if record.redacted:
        lines.append(f"redacted: {', '.join(sorted(record.redacted))}")
    if view is not None:
        lines.append(f"sealed: {view.line()}")
    lines.append("body:")
    body = document["body"]
    if body is None:
        lines.append("  (sealed)")
    else:
        items = body.items() if isinstance(body, dict) else [("(opaque)", body)]
        lines += [_field_line(name, value) for name, value in items]
    click.echo(printable("\n".join(str(line) for line in lines)))


def _field_line(name: str, value: object) -> str:
    text = _plain(value)
    return f"  {name}:{text}" if text.startswith("\n") else f"  {name}: {text}"


def _plain(value: object) -> str:
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        # Lists of small tables (subjects, evidence, breakdown): one per line, under the field.
        return "".join("\n    - " + _inline(item) for item in value)
    if isinstance(value, dict):
        return _inline(value)
    if isinstance(value, str | int):
        # Continuation lines of a multi-line field stay indented under it.
        return str(value).replace("\n", "\n    ")
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _inline(table: dict[str, object]) -> str:
    return ", ".join(f"{key}: {_plain(item)}" for key, item in table.items())


def version_document(version: Version) -> dict[str, object]:
    return {
        "id": version.id.hex(),
        "created": format_ms(version.created),
        "created_ms": version.created,
        "tlp": version.tlp,
        "purged": version.purged,
    }


def history_document(history: History) -> dict[str, object]:
    newest = history.newest
    return {
        "current": history.live,
        "superseded_by": version_document(newest) if newest is not None else None,
        "earlier": [version_document(version) for version in history.earlier],
        "later": [version_document(version) for version in history.later],
    }


def _version_line(version: Version) -> str:
    gone = f", {version.purged}" if version.purged else ""
    return f"  {version.id.hex()} ({format_ms(version.created)}, TLP {version.tlp.upper()}{gone})"


def print_history(history: History) -> None:
    """The versions around a record, after its `show` view; nothing for a record with no other."""
    lines = []
    newest = history.newest
    if newest is not None:
        lines.append(f"superseded by {newest.id.hex()} at {format_ms(newest.created)}")
    if history.earlier:
        lines.append("earlier versions (newest first):")
        lines += [_version_line(version) for version in history.earlier]
    if len(history.later) > 1:
        lines.append("later versions (oldest first):")
        lines += [_version_line(version) for version in history.later]
    if lines:
        click.echo("\n".join(lines))
