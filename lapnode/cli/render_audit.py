"""How the disclosure audit trail looks to an operator (`lapnode audit`).

Rule 1: `audit_document` is the one JSON form of an entry. Keys: seq, time, time_ms, exit, record,
recipient (a node id, or a label such as "public-export"), action, reasons, prev_hash, hash.
Rule 2: labels and reasons can quote operator input (a file name); the table passes them through
`one_line`, and every cell is rich Text, never markup.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from keys.identity import node_id_from_public_key
from lapnode.cli.common import one_line
from lapnode.cli.render import short_node_id
from lapnode.clock import format_ms
from lapnode.store import AuditEntry

_PIPE_WIDTH = 400
_MIN_REASONS = 12
_COLUMNS = ("#", "time (UTC)", "exit", "record", "recipient", "action", "reasons")


def recipient_text(recipient: bytes | str) -> str:
    return node_id_from_public_key(recipient) if isinstance(recipient, bytes) else recipient


def audit_document(entry: AuditEntry) -> dict[str, object]:
    event = entry.event
    return {
        "seq": entry.seq,
        "time": format_ms(event.time_ms),
        "time_ms": event.time_ms,
        "exit": event.exit,
        "record": event.record.hex(),
        "recipient": recipient_text(event.recipient),
        "action": event.action,
        "reasons": list(event.reasons),
        "prev_hash": entry.prev_hash.hex(),
        "hash": entry.entry_hash.hex(),
    }


def _row(entry: AuditEntry) -> list[str]:
    event = entry.event
    recipient = event.recipient
    return [
        str(entry.seq),
        format_ms(event.time_ms)[:19].replace("T", " "),
        event.exit,
        event.record.hex()[:12],
        short_node_id(recipient_text(recipient)) if isinstance(recipient, bytes) else one_line(recipient),
        event.action,
        one_line("; ".join(event.reasons)),
    ]


def print_audit_table(entries: Sequence[AuditEntry]) -> None:
    if not entries:
        click.echo("no audit entries match", err=True)
        return
    rows = [_row(entry) for entry in entries]
    console = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else _PIPE_WIDTH)
    # One line per entry; in a narrow terminal only the reasons give way (`--json` has them all).
    widths = [max(len(name), *(len(row[i]) for row in rows)) for i, name in enumerate(_COLUMNS)]
    room = max(console.width - sum(widths[:-1]) - 2 * (len(_COLUMNS) - 1), _MIN_REASONS)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in _COLUMNS:
        table.add_column(name, no_wrap=True)
    for row in rows:
        *fixed, reasons = row
        cut = reasons if len(reasons) <= room else reasons[: room - 1] + "…"
        table.add_row(*(Text(cell) for cell in (*fixed, cut)))
    console.print(table)
    click.echo(f"{len(entries)} entr{'ies' if len(entries) != 1 else 'y'}", err=True)
