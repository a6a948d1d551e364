"""`lapnode refer` and `lapnode referral` refusals through the real CLI: one line, non-zero, nothing stored.

No daemon runs: refusals happen before anything would leave the node.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.federation import NodeProcess, free_port_pair, init_nodes


@dataclass
class Pair:
    a: NodeProcess
    b: NodeProcess
    lead_file: Path


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("cli-referrals")
    a = NodeProcess("A", root / "A", free_port_pair(), jurisdiction="FR")
    b = NodeProcess("B", root / "B", free_port_pair(), jurisdiction="AU")
    init_nodes(a, b)
    a.add_peer(b)
    lead_file = root / "lead.json"
    lead_file.write_text(json.dumps({"title": "t", "summary": "s", "status": "verified"}), encoding="utf-8")
    yield Pair(a, b, lead_file)


def refused(node: NodeProcess, *args: str, code: int = 1) -> str:
    before = node.record_count()
    result = node.run(*args, check=False)
    assert result.returncode == code and result.stdout == ""
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert node.record_count() == before
    return result.stderr


def test_a_local_rule_that_withholds_the_lead_publishes_nothing(pair: Pair) -> None:
    policy = pair.a.home / "policy.toml"
    policy.write_text(
        '[[rule]]\nname = "no-leads-to-au"\naction = "deny"\nrecord.kind = ["lead"]\n'
        'recipient.jurisdiction = ["AU"]\n',
        encoding="utf-8",
    )
    try:
        message = refused(pair.a, "refer", "--from-file", str(pair.lead_file), "--to", pair.b.node_id)
        assert "rule no-leads-to-au (deny)" in message and "nothing was published" in message
        lead = pair.a.publish()
        message = refused(pair.a, "refer", lead, "--to", pair.b.node_id)
        assert f"lead {lead} would be withheld" in message
    finally:
        policy.unlink()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--due", "2001-01-01"), 1, "--due '2001-01-01' is in the past"),
        (("--note", "bad\x01note"), 1, "referral.note: 'bad\\x01note' contains a control character"),
        (("--request", "arrest"), 2, "'arrest' is not one of 'enforcement'"),
    ],
)
def test_bad_referral_options_store_nothing(
    pair: Pair, args: tuple[str, ...], code: int, message: str
) -> None:
    text = refused(
        pair.a, "refer", "--from-file", str(pair.lead_file), "--to", pair.b.node_id, *args, code=code
    )
    assert message in text


def test_referring_to_oneself_or_nothing_is_refused(pair: Pair) -> None:
    assert "--to names this node" in refused(
        pair.a, "refer", "--from-file", str(pair.lead_file), "--to", pair.a.node_id
    )
    assert "give either LEAD_ID or --from-file" in refused(pair.a, "refer", "--to", pair.b.node_id, code=2)
    assert "no referral 0123456789" in refused(pair.a, "referral", "accept", "0123456789")
