"""Keeping the set of live subscriptions equal to what the peer book says, while the daemon runs.

Rule 1: the CLI changes the peer book (subscribe, unsubscribe, block, remove) whether or not the daemon
runs; the daemon notices within RESCAN_INTERVAL and starts or stops the matching tasks. A CLI that changed
it also says so on the admin side (`POST /peers/changed`, `wake`), and the daemon looks at once: a new
subscription starts in milliseconds instead of up to a second later. Wakes closer together than
MIN_RESCAN_GAP are served by one rescan, so a local client cannot make the loop spin.
Rule 2: the same loop picks up membership statements other processes stored, ends channels whose peer
was revoked or whose credential expired, and never dials a revoked peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from lapnode.daemon.node import Node
from lapnode.daemon.statements import MembershipGossip
from lapnode.daemon.subscriber import Subscription

RESCAN_INTERVAL: Final = 1.0
MIN_RESCAN_GAP: Final = 0.05

log = logging.getLogger("lapnode.manager")


class SubscriptionManager:
    def __init__(self, node: Node, gossip: MembershipGossip) -> None:
        self._node = node
        self._gossip = gossip
        self.subscriptions: dict[bytes, Subscription] = {}
        self._tasks: dict[bytes, asyncio.Task[None]] = {}
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """Rescan the peer book now rather than at the next interval (the CLI changed it)."""
        self._woken.set()

    async def run(self) -> None:
        try:
            while True:
                self._woken.clear()
                await self._gossip.poll()
                await self._node.sweep()
                await self.reconcile()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._woken.wait(), RESCAN_INTERVAL)
                await asyncio.sleep(MIN_RESCAN_GAP)
        finally:
            await self.stop_all()

    async def reconcile(self) -> None:
        wanted = {
            peer.key: peer
            for peer in await self._node.store.peers.all()
            if peer.subscribed and not peer.blocked and peer.key not in self._node.membership.revoked
        }
        for key in list(self._tasks):
            current = wanted.get(key)
            old = self.subscriptions[key].peer
            if current is None or (current.address, current.kinds) != (old.address, old.kinds):
                await self._stop(key)
        for key, peer in wanted.items():
            if key not in self._tasks:
                subscription = Subscription(self._node, peer, self._gossip)
                self.subscriptions[key] = subscription
                self._tasks[key] = asyncio.create_task(subscription.run(), name=f"subscription-{peer.name}")
                self._node.log_event("subscription_started", peer=key, address=peer.address)

    async def _stop(self, key: bytes) -> None:
        task = self._tasks.pop(key)
        self.subscriptions.pop(key, None)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._node.log_event("subscription_stopped", peer=key)

    async def stop_all(self) -> None:
        for key in list(self._tasks):
            await self._stop(key)
