"""`python -m bench query` fills a store through ingest and prints its four figures (no timings asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_the_query_benchmark_prints_its_four_figures(tmp_path: Path) -> None:
    store = tmp_path / "bench.sqlite"
    args = [
        sys.executable,
        "-m",
        "bench",
        "query",
        "--records",
        "2000",
        "--lookups",
        "20",
        "--searches",
        "10",
    ]
    result = subprocess.run(
        [*args, "--store", str(store)], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["metric"] for line in lines] == [
        "indicator_lookup_p50_ms",
        "indicator_lookup_p99_ms",
        "text_search_p50_ms",
        "contacts_p50_ms",
    ]
    assert all(line["bench"] == "query" and isinstance(line["value"], float) for line in lines)
    # The store was filled through ingest and is kept for the next run, which reuses it.
    again = subprocess.run(
        [*args, "--store", str(store)], capture_output=True, text=True, timeout=600, check=False
    )
    assert again.returncode == 0 and "reusing" in again.stderr, again.stderr
    assert len(again.stdout.splitlines()) == 4
