"""Which records this store holds, remembered in memory for the newest ones.

Rule 1: an entry means "held, with this relay hop count or fewer", learnt from a commit or a lookup
of this process. Records are never deleted from the log, and another process can only add records or
shorten a stored path (a relog), so an entry may be pessimistic about hops, never wrong about holding.
Rule 2: it is a shortcut, never a source of truth: a miss costs a database lookup, not a mistake.

Why: on a mesh most arrivals are copies of records already held (each record reaches a node once per
neighbour that relays it). Recognising a copy here saves a write transaction, about a dozen database
round trips, per copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

DEFAULT_LIMIT: Final = 200_000


class HeldIds:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._limit = limit
        self._hops: dict[bytes, int] = {}

    def note(self, entries: Iterable[tuple[bytes, int]]) -> None:
        """Remember records as held with these hop counts (the smaller count wins)."""
        for rid, hops in entries:
            known = self._hops.get(rid)
            if known is None or hops < known:
                self._hops[rid] = hops
        while len(self._hops) > self._limit:
            # dicts keep insertion order: drop the oldest entry.
            del self._hops[next(iter(self._hops))]

    def holds(self, rid: bytes) -> bool:
        return rid in self._hops

    def all_held(self, rids: Sequence[bytes | None], hops: Sequence[int] | None) -> bool:
        """Whether every record is held already by a path no longer than the one it came by now,
        so that storing the batch would change nothing."""
        if not rids:
            return False
        for index, rid in enumerate(rids):
            if rid is None:
                return False
            known = self._hops.get(rid)
            if known is None or (hops is not None and hops[index] < known):
                return False
        return True
