"""`python -m bench ingest`: decode, verify and store pre-built signed records into a fresh SQLite store.

It measures, in the same run, the raw PyNaCl verify rate on one core, so the ingest rate can be read
as a fraction of what signature checking alone would allow.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from nacl.signing import SigningKey

from bench.corpus import NETWORK, signed_records
from bench.report import emit
from lapnode.runtime import tune_for_bulk_work
from lapnode.store import Store
from lapnode.store.verifier import Ahead


def raw_verify_per_s(samples: int = 20_000) -> float:
    """Ed25519 verifications per second on one core, over record-sized messages."""
    key = SigningKey(bytes(range(32)))
    verify_key = key.verify_key
    messages = [key.sign(i.to_bytes(4, "big") * 150) for i in range(samples)]
    start = time.perf_counter()
    for signed in messages:
        verify_key.verify(signed)
    return samples / (time.perf_counter() - start)


async def run(*, records: int, authors: int, batch: int) -> None:
    raws = list(signed_records(records, authors))
    verify_rate = raw_verify_per_s()
    emit("ingest", "raw_verify_per_s", verify_rate)
    quarter = max(records // 4, 1)
    with tempfile.TemporaryDirectory(prefix="lapnode-bench-") as home:
        store = await Store.open(f"sqlite+aiosqlite:///{Path(home) / 'store.sqlite'}", network=NETWORK)
        try:
            store.warm_up()
            # As `lapnode bundle import` and the daemon do before bulk work.
            tune_for_bulk_work()
            marks: list[float] = [time.perf_counter()]
            # The batches are only there to time the quarters: `lapnode bundle import` stores a bundle in
            # one call, with no pause between batches, so each batch starts verifying while the one
            # before is written (Store.verify_ahead), as one call would keep the workers busy.
            batches = [raws[start : start + batch] for start in range(0, records, batch)]
            ahead: Ahead | None = store.verify_ahead(batches[0])
            for number, current in enumerate(batches):
                following = store.verify_ahead(batches[number + 1]) if number + 1 < len(batches) else None
                report = await store.ingest(current, ahead=ahead)
                ahead = following
                if report.rejected:
                    raise SystemExit(f"bench corpus rejected: {report.rejected[0].reason}")
                marks.append(time.perf_counter())
            held = await store.count()
        finally:
            await store.close()
    if held != records:
        raise SystemExit(f"store holds {held} records, expected {records}")
    total = marks[-1] - marks[0]
    per_quarter = quarter // batch
    first = marks[per_quarter] - marks[0] if per_quarter else total
    last = marks[-1] - marks[-1 - per_quarter] if per_quarter else total
    ingest_rate = records / total
    emit("ingest", "ingest_per_s", ingest_rate)
    emit("ingest", "ratio_to_verify", ingest_rate / verify_rate)
    emit("ingest", "first_quarter_per_s", quarter / first)
    emit("ingest", "last_quarter_per_s", quarter / last)
