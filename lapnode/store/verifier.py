"""Verifying records in bulk on every core.

Rule 1: every record is verified by lapnode.verification.worker (protocol.envelope.verify_record and
nothing else), in this process or in a worker, so there is one verifier for every entry.
Rule 2: small batches (a CLI command, a live push) are verified in the calling process. Large batches
(catch-up, bundle import, benchmarks) go to a pool of worker processes, one per core: decoding and
schema checks are Python and hold the GIL, so threads would leave the second core idle. Workers return
`RecordRow`s, the stored form, which is all the writer needs.
Rule 3: workers are lean. They run only lapnode.verification.worker, which imports `protocol` and
`keys` and nothing of the store, daemon or CLI, and they do not re-run the daemon's main script (see
`_without_main_module`). They are spawned, never forked from the daemon, whose threads (the database
driver's) fork would copy in whatever state they are in. Not a fork server either: it would be one more
process of the same size, and its children's shared pages count again in each (docs/performance.md,
"Session 3").
Rule 4: workers are shut down with the store, and exit on their own if the daemon dies without shutting
them down (SIGKILL).
Rule 5: a caller may start verifying a batch before it writes the one before (`start`, giving an
`Ahead`): a subscriber verifies what arrives while the store writes what arrived earlier, so the workers
and the writer overlap across batches, not only within one. The results are the same `RecordRow`s, and
the store still decides, in its transaction, which of them it needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import sys
import types
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Final

from lapnode.verification import worker
from lapnode.verification.rows import with_wire
from lapnode.verification.worker import AuthorKeys, Verified, verify, verify_rows
from protocol.envelope import Record, RecordId

CHUNK: Final = 500
# Below this many records a batch is verified in-process: shipping it to a worker costs more.
POOL_THRESHOLD: Final = 2 * CHUNK
# A batch verified ahead of its write (Rule 5) goes to a worker from this size: below it, shipping costs
# more than verifying in the writer's own process when its turn comes (a live push is a few records).
AHEAD_THRESHOLD: Final = 64


@contextlib.contextmanager
def _without_main_module() -> Iterator[None]:
    """Start child processes without running the parent's main script again in each of them.

    multiprocessing re-runs the parent's `__main__` in every spawned child, so that functions defined
    there unpickle, unless that module has no file (an interactive session). The
    daemon's main is the `lapnode` console script, which imports the whole CLI (SQLAlchemy, aiohttp,
    click...: about 70 MB a worker). Workers run only functions of lapnode.verification.worker, so while
    the pool starts them the main module is an empty one. The pool starts a process only inside
    `submit` (never later: workers are not replaced), and warm_up submits on the calling thread.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


# One worker job: the batch positions it verifies, the bytes sent for them, and the job's reply.
Chunk = tuple[tuple[int, ...], list[bytes], "asyncio.Future[list[tuple[object, ...] | str]]"]


@dataclass(frozen=True)
class Ahead:
    """Verification started early for some records of a batch: `chunks` pairs each worker job's batch
    positions with the job (Rule 5)."""

    chunks: tuple[Chunk, ...]
    # The ids `peek_record_id` gave for every record of the batch it was started for, when known, so
    # that `Store.ingest` need not peek again (None once batches are joined).
    peeked: tuple[RecordId | None, ...] | None = None

    @property
    def positions(self) -> set[int]:
        return {position for positions, _, _ in self.chunks for position in positions}

    def shifted(self, offset: int) -> Ahead:
        """The same jobs, for the batch placed at `offset` in a larger one."""
        return Ahead(
            tuple((tuple(p + offset for p in positions), sent, job) for positions, sent, job in self.chunks),
            self.peeked,
        )

    @staticmethod
    def joined(parts: Sequence[Ahead]) -> Ahead:
        """One for the batches of `parts` placed one after another (each already `shifted` to its place).
        The peeked ids are kept when every part has them (a subscriber's group commit: not peeking every
        record a second time was about 3 % of the daemon's instructions per record in `bench sync`)."""
        peeked = [part.peeked for part in parts]
        return Ahead(
            tuple(chunk for part in parts for chunk in part.chunks),
            None if any(ids is None for ids in peeked) else tuple(i for ids in peeked if ids for i in ids),
        )

    async def results(self) -> AsyncIterator[list[tuple[int, Verified]]]:
        """(position, stored form or rejection) for every record, one job at a time, in job order."""
        for positions, sent, job in self.chunks:
            rows = await job
            yield [
                (position, row if isinstance(row, str) else with_wire(row, raw))
                for position, raw, row in zip(positions, sent, rows, strict=True)
            ]

    def cancel(self) -> None:
        for _, _, job in self.chunks:
            job.cancel()


class Verifier:
    def __init__(self, network: str, *, workers: int | None = None) -> None:
        self.network = network
        self._workers = workers if workers is not None else min(os.cpu_count() or 1, 4)
        self._pool: ProcessPoolExecutor | None = None
        self._keys = AuthorKeys()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def warm_up(self) -> None:
        """Start the worker processes now rather than on the first large batch."""
        if self._workers > 1 and self._pool is None:
            spawn = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(self._workers, mp_context=spawn, initializer=worker.worker_init)
            # The pool starts a worker per submitted task while none is idle; wait until every one has
            # started.
            with _without_main_module():
                started = [pool.submit(worker.worker_ready) for _ in range(self._workers)]
            try:
                for future in started:
                    future.result()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            self._pool = pool

    def start(
        self, raws: Sequence[bytes], positions: Sequence[int], peeked: Sequence[RecordId | None]
    ) -> Ahead | None:
        """Start verifying `raws[p]` for each p of `positions` in the pool now (Rule 5); None when
        there are too few to be worth a worker (AHEAD_THRESHOLD) or there is no pool. `peeked` is what
        `peek_record_id` gave for each of `raws`."""
        if len(positions) < AHEAD_THRESHOLD or self._workers <= 1:
            return None
        # No ramp: a subscriber starts one of these per batch as it arrives, so the workers already have
        # the next batches queued, and a batch in one job halves the hand-offs of one in two.
        return self._submit(raws, positions, tuple(peeked), ramp=False)

    def _submit(
        self,
        raws: Sequence[bytes],
        positions: Sequence[int],
        peeked: tuple[RecordId | None, ...] | None = None,
        *,
        ramp: bool = True,
    ) -> Ahead:
        self.warm_up()
        assert self._pool is not None
        loop = asyncio.get_running_loop()
        chunks = []
        for low, high in _spans(len(positions), ramp=ramp):
            part = tuple(positions[low:high])
            sent = [raws[p] for p in part]
            job = loop.run_in_executor(self._pool, worker.worker_rows, sent, self.network)
            chunks.append((part, sent, job))
        return Ahead(tuple(chunks), peeked)

    def verify_one(self, raw: bytes) -> Record | str:
        """The verified record, or a one-line reason it was rejected."""
        return verify(raw, self.network, self._keys)

    async def verify_rows(self, raws: Sequence[bytes]) -> AsyncIterator[list[Verified]]:
        """Stored forms (or rejection reasons) in input order, one chunk at a time.

        Every chunk is queued at once, so the caller can store chunk n while workers verify n+1.
        """
        if len(raws) < POOL_THRESHOLD or self._workers <= 1:
            yield verify_rows(raws, self.network, self._keys)
            return
        ahead = self._submit(raws, range(len(raws)))
        try:
            async for chunk in ahead.results():
                yield [row for _, row in chunk]
        finally:
            ahead.cancel()


def _spans(count: int, *, ramp: bool = True) -> list[tuple[int, int]]:
    """Chunk bounds for `count` records. With `ramp` the first chunks are smaller, so that the writer can
    start on the first while the workers are still on the next (a 10,000-record batch otherwise waited
    for a whole 500-record chunk per worker before its first write)."""
    spans: list[tuple[int, int]] = []
    low, size = 0, CHUNK // 4 if ramp else CHUNK
    while low < count:
        spans.append((low, min(low + size, count)))
        low += size
        size = min(size * 2, CHUNK)
    return spans
