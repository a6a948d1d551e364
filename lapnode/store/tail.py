"""The newest entries of the log that this process wrote, kept in memory for the feeds.

Rule 1: an entry is added only after the transaction that wrote it committed, with exactly the values
a read of the log would return.
Rule 2: it answers only for an unbroken run of positions starting right after the one asked for; a gap
(a record written by another process, say) or a miss means "read the database", never "nothing there".
Rule 3: anything that moves or removes log entries clears it (a relog gives a record a new position).
Rule 4: entries read from the database may be added too (they are what a read returns), but only by a
read that started after the last clear: `generation` tells the reader whether one happened meanwhile.

Why: when a record arrives, every subscriber's feed reads it back at once; on a relaying node those
reads were several queries per record for rows this process had just written.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Final, Generic, Protocol, TypeVar

DEFAULT_LIMIT: Final = 4096


class Positioned(Protocol):
    @property
    def position(self) -> int: ...


Entry = TypeVar("Entry", bound=Positioned)


class LogTail(Generic[Entry]):
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._limit = limit
        # Ordered, so the oldest goes in O(1): deleting the first key of a plain dict again and again made
        # each `next(iter(...))` step over every slot deleted before it (a 4,096-entry add took 30 ms).
        self._entries: OrderedDict[int, Entry] = OrderedDict()
        self._generation = 0

    @property
    def limit(self) -> int:
        """How many entries it keeps: a caller with more need only build the newest this many."""
        return self._limit

    def add(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            self._entries[entry.position] = entry
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)

    @property
    def generation(self) -> int:
        """How many times it was cleared: a read of the database that began at another generation may
        hold entries since moved or purged, and must not be added (Rule 4)."""
        return self._generation

    def clear(self) -> None:
        self._entries.clear()
        self._generation += 1

    def read(self, after: int, limit: int) -> list[Entry] | None:
        """The entries after `after`, in order, up to `limit` or a gap; None if the next one is not here."""
        found: list[Entry] = []
        position = after + 1
        while len(found) < limit:
            entry = self._entries.get(position)
            if entry is None:
                break
            found.append(entry)
            position += 1
        return found or None
