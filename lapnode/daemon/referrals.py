"""The referral desk: the daemon answers `received` to every referral addressed to it, once.

Rule 1: off the ingest path. The desk waits for the log to grow, then asks the store one cheap question
(is there a `referral` past the position it last looked at? a range scan of the log, no bytes read) and
only then opens referrals.
Rule 2: idempotent across restarts and crashes: a referral gets `received` only if this node holds no
status of its own for it (lapnode.referrals.unanswered). At start the desk looks at every referral, so
one that arrived just before a crash is answered after the restart. A referral the operator answered
first (`lapnode referral accept` while the daemon was down) gets no `received` after the fact.
Rule 3: a failure is logged and retried on the next growth; it never stops the daemon.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from sqlalchemy.exc import SQLAlchemyError

from lapnode.daemon.node import Node, now_ms
from lapnode.errors import LapnodeError
from lapnode.referrals import answer_referral, load_referrals, unanswered
from protocol.errors import ProtocolError
from protocol.kinds.referral_status import RECEIVED
from protocol.referrals import REFERRAL_KIND

WAIT_S: Final = 5.0
RETRY_S: Final = 5.0

log = logging.getLogger("lapnode.referrals")


class ReferralDesk:
    def __init__(self, node: Node) -> None:
        self._node = node
        self.acknowledged = 0

    async def run(self) -> None:
        store = self._node.store
        position = -1  # at start: look at every referral held (Rule 2)
        while True:
            head = (
                await store.head() if position < 0 else await store.wait_for_growth(position, timeout=WAIT_S)
            )
            if head == position:
                continue
            try:
                if await store.has_kind_after(REFERRAL_KIND, max(position, 0)):
                    await self.acknowledge()
            except (LapnodeError, ProtocolError, SQLAlchemyError, OSError) as exc:
                self._node.log_event("referral_desk_failed", reason=type(exc).__name__, detail=str(exc)[:200])
                await asyncio.sleep(RETRY_S)
                continue
            position = head

    async def acknowledge(self) -> None:
        """Publish `received` for every referral addressed to us that we have not answered."""
        node = self._node
        for referral in unanswered(await load_referrals(node.store, node.identity, now_ms=now_ms())):
            note = (
                None
                if referral.lead is not None
                else f"the embedded lead cannot be used here: {referral.lead_problem}"
            )
            status = await answer_referral(
                node.store, node.identity, referral, RECEIVED, {"note": note}, created=now_ms()
            )
            self.acknowledged += 1
            node.log_event(
                "referral_received",
                peer=referral.record.header.author,
                referral=referral.record.id.hex(),
                status=status.id.hex(),
            )
