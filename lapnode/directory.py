"""The point-of-contact directory: the current contact records of the network's members (issue #6).

Rule 1: a member's current contacts are its live contact records (`live_clause`): the newest version of
each, with superseded, expired and retracted ones left out. A member may list several units, so entries
are not merged per author.
Rule 2: "last confirmed" is the signed creation time of the current version: a member re-confirms a
contact by publishing it again, unchanged, as a new version (`lapnode contacts confirm`). No other
time is trusted for it (DESIGN-NOTES 6).
Rule 3: filters read the verified, typed body, never the stored search text, so a redacted field never
matches and a sealed contact is judged only once it is opened here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from lapnode.store import MAX_LIMIT, QueryFilters, Store, StoredRecord
from protocol.kinds import ContactBody
from protocol.kinds.documents import DAY_MS

CONTACT_KIND: Final = "contact"


@dataclass(frozen=True, slots=True)
class DirectoryFilter:
    """The operator's questions; None asks nothing. `text` is matched case-insensitively."""

    jurisdiction: str | None = None
    category: str | None = None
    topic: str | None = None
    text: str | None = None

    def matches(self, body: ContactBody) -> bool:
        if self.jurisdiction is not None and body.jurisdiction != self.jurisdiction:
            return False
        if self.category is not None and body.category != self.category:
            return False
        if self.topic is not None and self.topic not in (body.topics or ()):
            return False
        return self.text is None or self.text.casefold() in searchable(body)


def searchable(body: ContactBody) -> str:
    parts = (body.organisation, body.unit, body.role, body.person, body.notes, *(body.topics or ()))
    return "\n".join(part for part in parts if part is not None).casefold()


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    stored: StoredRecord
    body: ContactBody

    @property
    def confirmed(self) -> int:
        return self.stored.record.header.created

    def age_days(self, now: int) -> int:
        return max(now - self.confirmed, 0) // DAY_MS


async def current_contacts(store: Store, *, now: int) -> list[StoredRecord]:
    """Every live contact record held here (Rule 1), sealed ones included."""
    return await store.query(QueryFilters(kind=CONTACT_KIND, live_at=now, limit=MAX_LIMIT))


def directory(
    readable: Iterable[tuple[StoredRecord, ContactBody]], wanted: DirectoryFilter
) -> list[DirectoryEntry]:
    """The entries that answer `wanted`, by jurisdiction, organisation and unit."""
    entries = [DirectoryEntry(stored, body) for stored, body in readable if wanted.matches(body)]
    return sorted(entries, key=_order)


def stale(entries: Iterable[DirectoryEntry], *, older_than_ms: int, now: int) -> list[DirectoryEntry]:
    """Entries not re-confirmed within `older_than_ms`, oldest first: whom the secretariat should chase."""
    old = [entry for entry in entries if entry.confirmed < now - older_than_ms]
    return sorted(old, key=lambda entry: entry.confirmed)


def _order(entry: DirectoryEntry) -> tuple[str, str, str, int]:
    body = entry.body
    return (body.jurisdiction or "", (body.organisation or "").casefold(), body.unit or "", entry.confirmed)
