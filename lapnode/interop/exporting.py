"""Gathering what an export may hold: the log read in keyset pages, every row through the decision.

Rule 1: this is the only path from the store to an export file; it reads `Store.exports` and hands every
row to `disclosure.decide_rows` (lapnode.interop Rule 1).
Rule 2: memory stays bounded by the page size plus what is kept: `limit` keeps only the newest records
that may go, and of a withheld record only its id and decision are kept, for the audit trail.
Rule 3: `Collected.decided` is every decision the export carries out, in log order, for the exit to
record before it writes (lapnode.exits Rule 3): each withheld record, and each record kept. A record
that may go but that `limit` left out is not disclosed, and not among them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

from sqlalchemy import ColumnElement

from lapnode.config import Config
from lapnode.exits import Audience
from lapnode.interop.disclosure import Disclosed, RowDecision, decide_rows
from lapnode.policy import Decision, Policy
from lapnode.store import Store

PAGE_ROWS: Final = 1000


@dataclass(frozen=True)
class Collected:
    disclosed: list[Disclosed]
    considered: int
    decided: list[tuple[bytes, Decision]]

    @property
    def withheld(self) -> int:
        return sum(1 for _, decision in self.decided if decision.action == "withhold")


async def author_names(store: Store, config: Config, our_key: bytes) -> dict[bytes, str]:
    """Who the authors are, as this operator pinned them: peers' organisations, and our own."""
    names = {peer.key: peer.org or peer.name or "" for peer in await store.peers.all()}
    names[our_key] = config.org
    return {key: name for key, name in names.items() if name}


async def collect(
    store: Store,
    audience: Audience,
    *,
    policy: Policy,
    where: ColumnElement[bool] | None,
    limit: int | None,
    our_key: bytes,
    network: str,
    now_ms: int,
) -> Collected:
    kept: deque[RowDecision] = deque(maxlen=limit)
    withheld: list[tuple[int, bytes, Decision]] = []
    considered = 0
    after = 0
    while True:
        rows = await store.exports.page(after=after, limit=PAGE_ROWS, where=where)
        if not rows:
            break
        after = rows[-1].position
        considered += len(rows)
        for item in decide_rows(
            rows, audience, policy=policy, now_ms=now_ms, our_key=our_key, network=network
        ):
            if item.disclosed is not None:
                kept.append(item)
            else:
                withheld.append((item.row.position, item.row.rid, item.decision))
    decided = sorted(
        [*withheld, *((item.row.position, *item.audited) for item in kept)], key=lambda entry: entry[0]
    )
    disclosed = [item.disclosed for item in kept if item.disclosed is not None]
    return Collected(disclosed, considered, [(rid, decision) for _, rid, decision in decided])
