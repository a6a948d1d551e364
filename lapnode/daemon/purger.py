"""The daemon's purge pass (SPEC §4, §8.10): at start, then every `purge_interval`.

Rule 1: each pass purges what is due in the store (`Store.purge`): records a held tombstone of their
author retracts, records past their scope's expiry, and records of a kind older than this node's
retention for it. The pass is idempotent, so a pass another process ran (`lapnode purge`) costs nothing.
Rule 2: before each pass the store forgets its in-memory copy of the newest log entries, since another
process may have purged some of them; feeds then read the purged rows, which they skip.
Rule 3: a failing pass is logged and retried at the next interval; it never stops the daemon.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from lapnode.daemon.node import Node, now_ms

log = logging.getLogger("lapnode.purger")


async def run_purges(node: Node, *, retention: Mapping[str, int], interval_s: float) -> None:
    while True:
        await purge_once(node, retention=retention)
        await asyncio.sleep(interval_s)


async def purge_once(node: Node, *, retention: Mapping[str, int]) -> None:
    try:
        node.store.forget_recent()
        report = await node.store.purge(now_ms=now_ms(), retention=retention)
    except Exception:  # a task boundary (Rule 3)
        log.exception('{"event": "purge_failed"}')
        return
    if report.total:
        node.log_event(
            "records_purged", retracted=report.retracted, expired=report.expired, retention=report.retention
        )
