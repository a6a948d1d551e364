"""Gathering what an export may hold: the log read in keyset pages, every row through `disclose`.

Rule 1: this is the only path from the store to an export file; it reads `Store.exports` and hands every
row to `disclosure.disclose` (lapnode.interop Rule 1).
Rule 2: memory stays bounded by the page size plus what is kept: `limit` keeps only the newest records.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

from sqlalchemy import ColumnElement

from lapnode.config import Config
from lapnode.interop.disclosure import Audience, Disclosed, disclose
from lapnode.store import Store

PAGE_ROWS: Final = 1000


@dataclass(frozen=True)
class Collected:
    disclosed: list[Disclosed]
    considered: int

    @property
    def withheld(self) -> int:
        return self.considered - len(self.disclosed)


async def author_names(store: Store, config: Config, our_key: bytes) -> dict[bytes, str]:
    """Who the authors are, as this operator pinned them: peers' organisations, and our own."""
    names = {peer.key: peer.org or peer.name or "" for peer in await store.peers.all()}
    names[our_key] = config.org
    return {key: name for key, name in names.items() if name}


async def collect(
    store: Store,
    audience: Audience,
    *,
    where: ColumnElement[bool] | None,
    limit: int | None,
    our_key: bytes,
    network: str,
    now_ms: int,
) -> Collected:
    kept: deque[Disclosed] = deque(maxlen=limit)
    considered = 0
    after = 0
    while True:
        rows = await store.exports.page(after=after, limit=PAGE_ROWS, where=where)
        if not rows:
            break
        after = rows[-1].position
        considered += len(rows)
        kept.extend(disclose(rows, audience, now_ms=now_ms, our_key=our_key, network=network))
    return Collected(list(kept), considered)
