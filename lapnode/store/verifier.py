"""Verifying records in bulk on every core.

Rule 1: this is the only way bytes from outside become records in lapnode: every path calls
protocol.envelope.verify_record and nothing else, so there is one verifier for every entry.
Rule 2: small batches (a CLI command, a live push) are verified in the calling process. Large batches
(catch-up, bundle import, benchmarks) go to a pool of worker processes, one per core: decoding and
schema checks are Python and hold the GIL, so threads would leave the second core idle. Workers return
`RecordRow`s, the stored form, which is all the writer needs.
Rule 3: workers ignore SIGINT (the daemon decides when to stop), are shut down with the store, and
exit on their own if the daemon dies without shutting them down (SIGKILL).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Final

from keys.errors import CryptoError
from keys.identity import PublicKey
from lapnode.store.rows import RecordRow
from protocol.envelope import Record, verify_record
from protocol.errors import ProtocolError

CHUNK: Final = 500
# Below this many records a batch is verified in-process: shipping it to a worker costs more.
POOL_THRESHOLD: Final = 2 * CHUNK
_MAX_CACHED_KEYS: Final = 100_000

Verified = RecordRow | str


class _Keys:
    """Cache of authors' public keys: building one decodes a curve point, and a network has few authors."""

    def __init__(self) -> None:
        self._keys: dict[bytes, PublicKey] = {}

    def __call__(self, raw: bytes) -> PublicKey:
        key = self._keys.get(raw)
        if key is None:
            key = PublicKey(raw)
            if len(self._keys) < _MAX_CACHED_KEYS:
                self._keys[raw] = key
        return key


def _verify(raw: bytes, network: str, keys: _Keys) -> Record | str:
    try:
        return verify_record(raw, network=network, key_for=keys)
    except (ProtocolError, CryptoError) as exc:
        return str(exc) or type(exc).__name__


def _rows(raws: Sequence[bytes], network: str, keys: _Keys) -> list[Verified]:
    results: list[Verified] = []
    for raw in raws:
        verified = _verify(raw, network, keys)
        results.append(verified if isinstance(verified, str) else RecordRow.of(verified))
    return results


_WORKER_KEYS = _Keys()


_watching_parent = False


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()


def _exit_with_parent() -> None:
    """End this worker when its parent ends, however it ends.

    A daemon killed with SIGKILL never shuts its pool down, and the pool's queue keeps the workers'
    pipes open, so without this they would wait forever as orphans. The parent's sentinel becomes
    readable when the parent exits, however it exits (multiprocessing gives spawned children one).
    """
    global _watching_parent
    parent = multiprocessing.parent_process()
    if parent is None or _watching_parent:
        return
    _watching_parent = True

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _worker_ready() -> None:
    """A task that does nothing: submitting it makes the pool start a worker (see warm_up)."""


def _worker_rows(raws: list[bytes], network: str) -> list[Verified]:
    return _rows(raws, network, _WORKER_KEYS)


class Verifier:
    def __init__(self, network: str, *, workers: int | None = None) -> None:
        self.network = network
        self._workers = workers if workers is not None else min(os.cpu_count() or 1, 4)
        self._pool: ProcessPoolExecutor | None = None
        self._keys = _Keys()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def warm_up(self) -> None:
        """Start the worker processes now rather than on the first large batch."""
        if self._workers > 1 and self._pool is None:
            # spawn, not fork: the daemon has threads (the database driver's), which fork would copy
            # in whatever state they are in.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self._workers, mp_context=context, initializer=_worker_init)
            # The pool starts a worker per submitted task; wait until every one has started.
            for future in [self._pool.submit(_worker_ready) for _ in range(self._workers)]:
                future.result()

    def verify_one(self, raw: bytes) -> Record | str:
        """The verified record, or a one-line reason it was rejected."""
        return _verify(raw, self.network, self._keys)

    async def verify_rows(self, raws: Sequence[bytes]) -> AsyncIterator[list[Verified]]:
        """Stored forms (or rejection reasons) in input order, one chunk at a time.

        Every chunk is queued at once, so the caller can store chunk n while workers verify n+1.
        """
        if len(raws) < POOL_THRESHOLD or self._workers <= 1:
            yield _rows(raws, self.network, self._keys)
            return
        self.warm_up()
        assert self._pool is not None
        loop = asyncio.get_running_loop()
        futures = [
            loop.run_in_executor(self._pool, _worker_rows, list(raws[i : i + CHUNK]), self.network)
            for i in range(0, len(raws), CHUNK)
        ]
        try:
            for future in futures:
                yield await future
        finally:
            for future in futures:
                future.cancel()
