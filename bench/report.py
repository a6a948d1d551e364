"""The one output format of every benchmark: a JSON line per figure."""

from __future__ import annotations

import json


def emit(bench: str, metric: str, value: float) -> None:
    print(json.dumps({"bench": bench, "metric": metric, "value": round(value, 3)}), flush=True)
