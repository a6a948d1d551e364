"""`python -m bench policy` prints its figures in the one benchmark format (bench/report.py)."""

from __future__ import annotations

import json

import pytest

from bench.__main__ import main


def test_the_policy_benchmark_prints_decisions_per_second(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "--records", "40", "--peers", "20", "--rounds", "1"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["bench"] == "policy" and lines[0]["metric"] == "decisions_per_s" and lines[0]["value"] > 0
    shares = {line["metric"]: line["value"] for line in lines[1:]}
    assert set(shares) == {"share_send", "share_redact", "share_withhold"}
    assert abs(sum(shares.values()) - 1) < 0.01
    assert all(value > 0 for value in shares.values()), "the mix exercises every outcome"
