"""Verifying records in bulk on every core.

Rule 1: this is the only way bytes from outside become `Record`s in lapnode: it calls
protocol.envelope.verify_record and nothing else, so there is one verifier for every entry.
Rule 2: PyNaCl releases the GIL while it checks a signature, so a small thread pool verifies on both
cores while the event loop keeps serving (LESSONS.md: 1.8 times one thread on two cores).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from keys.errors import CryptoError
from keys.identity import PublicKey
from protocol.envelope import Record, verify_record
from protocol.errors import ProtocolError

CHUNK: Final = 256
_MAX_CACHED_KEYS: Final = 100_000


class Verifier:
    def __init__(self, network: str, *, threads: int = 2) -> None:
        self.network = network
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="verify")
        self._keys: dict[bytes, PublicKey] = {}

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _key_for(self, raw: bytes) -> PublicKey:
        # Building a PublicKey decodes the curve point; a network has few authors, so cache them.
        key = self._keys.get(raw)
        if key is None:
            key = PublicKey(raw)
            if len(self._keys) < _MAX_CACHED_KEYS:
                self._keys[raw] = key
        return key

    def verify_one(self, raw: bytes) -> Record | str:
        """The verified record, or a one-line reason it was rejected."""
        try:
            return verify_record(raw, network=self.network, key_for=self._key_for)
        except (ProtocolError, CryptoError) as exc:
            return str(exc) or type(exc).__name__

    def _verify_chunk(self, raws: Sequence[bytes]) -> list[Record | str]:
        return [self.verify_one(raw) for raw in raws]

    async def verify_chunks(self, raws: Sequence[bytes]) -> AsyncIterator[list[Record | str]]:
        """Results in input order, one chunk at a time, as soon as each chunk is verified.

        Every chunk is queued at once, so the caller can store chunk n while the pool verifies n+1.
        """
        loop = asyncio.get_running_loop()
        futures = [
            loop.run_in_executor(self._pool, self._verify_chunk, raws[i : i + CHUNK])
            for i in range(0, len(raws), CHUNK)
        ]
        try:
            for future in futures:
                yield await future
        finally:
            for future in futures:
                future.cancel()

    async def verify_many(self, raws: Sequence[bytes]) -> list[Record | str]:
        return [item async for chunk in self.verify_chunks(raws) for item in chunk]
