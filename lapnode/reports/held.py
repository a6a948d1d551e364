"""The trends this node may count: from stored records to `HeldTrend`s, and what is left out and why.

Rule 1: only live records are read (`Store.live_of_kind`, which applies lapnode.store.queries.live_clause:
not purged, not expired, not superseded), and every one is verified as the store reads it.
Rule 2: a sealed trend counts only once this node has opened it (lapnode.sealing, as `query` does);
otherwise it is left out, as sealed for others or as sealed to this node but not opened.
Rule 3: a trend whose author's key was revoked, or that its key's rotation says the old key never made
(the store's `author-revoked` and `key-retired` flags), is left out: a report is no place for records
the network has stopped vouching for.
Rule 4: a trend still under embargo (only this node's own can be held so; peers never send them) is left
out: a report may leave the node, and the embargo binds its author too.
Rule 5: a trend withheld from this node by its scope never reached it, so it can never be counted; scope
is respected by construction, and there is nothing to count it by.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Final

from lapnode.errors import InputError
from lapnode.reports.trends import EMBARGOED, LOCKED, REVOKED, SEALED, UNREADABLE, HeldTrend
from lapnode.sealing import SealedView
from lapnode.store import AUTHOR_REVOKED, KEY_RETIRED, Store, StoredRecord
from protocol.envelope import RecordId
from protocol.kinds import SealedBody, TrendBody
from protocol.kinds.trend import KIND

# Bounded everything (DESIGN-NOTES 8): far more trends than a network of agencies publishes in years.
MAX_TRENDS: Final = 100_000


async def live_trends(store: Store, *, now_ms: int) -> list[StoredRecord]:
    """Every live trend record this node holds, verified (Rule 1)."""
    found = await store.live_of_kind(KIND, now_ms=now_ms, limit=MAX_TRENDS + 1)
    if len(found) > MAX_TRENDS:
        raise InputError(f"this node holds more than {MAX_TRENDS:,} live trends; a report reads at most that")
    return found


def readable_trends(
    stored: Sequence[StoredRecord],
    views: Mapping[RecordId, SealedView],
    *,
    our_key: bytes,
    now_ms: int,
) -> tuple[list[HeldTrend], dict[str, int]]:
    """The trends of `stored` this node may count, and how many it left out for each reason."""
    counted: list[HeldTrend] = []
    left_out: Counter[str] = Counter()
    for item in stored:
        record = item.record
        body = record.body
        redacted = record.redacted
        embargo = record.header.scope.embargo_until
        if AUTHOR_REVOKED in item.flags or KEY_RETIRED in item.flags:
            left_out[REVOKED] += 1
            continue
        if embargo is not None and now_ms < embargo:
            left_out[EMBARGOED] += 1
            continue
        if isinstance(body, SealedBody):
            view = views.get(record.id)
            if view is None or view.body is None:
                left_out[LOCKED if our_key in body.recipients else SEALED] += 1
                continue
            # The plaintext was sealed whole: nothing of an opened body is redacted.
            body, redacted = view.body, frozenset()
        if not isinstance(body, TrendBody):
            left_out[UNREADABLE] += 1  # a schema version this node does not know (an opaque body)
            continue
        counted.append(HeldTrend(record.id.hex(), record.author_id, body, redacted))
    return counted, dict(left_out)
