"""Process-wide settings for the processes that move records in bulk: the daemon and bundle import.

Why the garbage collector is tuned: ingest allocates a few container objects per record (decoded values,
rows, log entries) that nearly all die young and hold no cycles, and CPython's default generation-0
threshold (700 allocations) ran a collection every few dozen records, each walking every object of the
process that was young at the time. Measured on `python -m bench ingest` (session 4): the collector
cost 8 µs a record of the event loop's 41, and 12 of the process's 83. A larger generation-0 threshold
lets young garbage die by reference counting in between, and `gc.freeze` moves everything that exists
after start-up (modules, SQLAlchemy's caches, the app) out of every later collection's walk. Cycles are
still collected; memory held by young cycles grows by at most the threshold's worth of objects.
"""

from __future__ import annotations

import gc
from typing import Final

YOUNG_THRESHOLD: Final = 20_000


def tune_for_bulk_work() -> None:
    """Call once, after start-up and before the bulk work begins."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
