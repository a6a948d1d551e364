"""Indicators as CSV, one per row: `lapnode export csv` and `lapnode import csv`.

Export columns: record_id, author, created, tlp, kind, type, value, title. Every disclosed lead gives a
row per subject and every contact a row per email and phone (trends have no indicators).
Import reads the `type` and `value` columns by their header (so an exported file imports as it is), or
the first two columns of a file without a header. An empty type is guessed from the value.
Rule 1: every row is checked before anything is stored; any bad row fails the whole import, and the
error lists the bad rows by line number. Nothing partial becomes a draft.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Final

from keys.identity import node_id_from_public_key
from lapnode.clock import format_ms
from lapnode.errors import InputError
from lapnode.interop.disclosure import Disclosed
from lapnode.interop.drafting import DraftLead, normalise_subject
from protocol.indicators import guess_term_type
from protocol.kinds import ContactBody, LeadBody

COLUMNS: Final = ("record_id", "author", "created", "tlp", "kind", "type", "value", "title")
MAX_CSV_BYTES: Final = 10 * 1024 * 1024
_SHOWN_ROWS: Final = 10
# A formula in a spreadsheet cell runs when a person opens the file (CSV injection); values starting with
# one of these are prefixed with a quote, as OWASP advises. Indicators never legitimately start so.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) and not text.startswith("+") else text


def _rows(item: Disclosed) -> Iterable[tuple[str, str, str]]:
    body = item.record.body
    if isinstance(body, LeadBody):
        yield from ((s.type, s.value, body.title or "") for s in body.subjects or ())
    elif isinstance(body, ContactBody):
        title = body.organisation or ""
        yield from (("email", e, title) for e in body.emails or ())
        yield from (("phone", p, title) for p in body.phones or ())


def export_csv(disclosed: Iterable[Disclosed]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for item in disclosed:
        header = item.record.header
        fixed = [item.record.id.hex(), node_id_from_public_key(header.author), format_ms(header.created)]
        fixed += [header.scope.tlp, header.kind]
        for kind, value, title in _rows(item):
            writer.writerow([*fixed, kind, _cell(value), _cell(title)])
    return out.getvalue()


def _columns(header: list[str]) -> tuple[int, int] | None:
    names = [h.strip().lower() for h in header]
    if "value" in names:
        return (names.index("type") if "type" in names else -1), names.index("value")
    return None


def import_csv(text: str, *, title: str, summary: str | None, source: str) -> dict[str, object]:
    """One draft lead holding every indicator of the file (Rule 1)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise InputError(f"{source} is not CSV (line {reader.line_num}): {exc}") from None
    if not rows:
        raise InputError(f"{source} is empty")
    found = _columns(rows[0])
    start = 1 if found is not None else 0
    type_at, value_at = found if found is not None else (0, 1)
    lead = DraftLead(title=title)
    bad: list[str] = []
    for number, row in enumerate(rows[start:], start=start + 1):
        if not any(cell.strip() for cell in row):
            continue
        value = row[value_at].strip().removeprefix("'") if len(row) > value_at else ""
        kind = row[type_at].strip() if 0 <= type_at < len(row) else ""
        kind = kind or guess_term_type(value) or ""
        if not value or not kind:
            bad.append(f"line {number}: " + ("no value" if not value else f"cannot tell what {value!r} is"))
            continue
        try:
            subject = normalise_subject(kind, value)
        except InputError as exc:
            bad.append(f"line {number}: {exc}")
            continue
        if subject not in lead.subjects:
            lead.subjects.append(subject)
    if bad:
        more = f" (and {len(bad) - _SHOWN_ROWS} more)" if len(bad) > _SHOWN_ROWS else ""
        raise InputError(
            f"{source}: {len(bad)} bad rows, nothing imported: " + "; ".join(bad[:_SHOWN_ROWS]) + more
        )
    if not lead.subjects:
        raise InputError(f"{source} holds no indicators")
    lead.summary_lines.append(summary or f"{len(lead.subjects)} indicators imported from {source}.")
    return lead.document()
