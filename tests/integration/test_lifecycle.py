"""Retraction between real `lapnode serve` daemons (issue 5, "Tests"; SPEC §4, §8.10).

Every node is a separate daemon process on 127.0.0.1 with its own home, SQLite file and keys; records
and tombstones are made through the real CLI. Checks read the CLI and the SQLite files (read-only).
Every wait is bounded; nothing asserts a duration.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.federation import WAIT_S, NodeProcess, in_parallel, wait_until
from tests.integration.lifecycle import holds_content, purged_as, three_nodes


@pytest.fixture
def three(tmp_path: Path) -> Iterator[tuple[NodeProcess, NodeProcess, NodeProcess]]:
    with three_nodes(tmp_path) as nodes:
        yield nodes


def has_tombstone(node: NodeProcess, record_id: str) -> bool:
    rows = node._sql(
        "SELECT 1 FROM statements WHERE kind = 'retract' AND subject = ?", bytes.fromhex(record_id)
    )
    return bool(rows)


def test_a_retraction_reaches_a_node_that_was_offline(
    three: tuple[NodeProcess, NodeProcess, NodeProcess],
) -> None:
    a, b, c = three
    in_parallel(a.start, b.start)
    retracted = a.publish("--tlp", "green", title="Published in error")
    b.wait_for(retracted)
    assert holds_content(b, retracted)

    # Only the author may retract, and only with a reason code; mistakes change nothing.
    wrong = b.run("retract", retracted, "--reason", "error", check=False)
    assert wrong.returncode == 1 and wrong.stderr.startswith("error: ") and "only its author" in wrong.stderr
    free_text = a.run("retract", retracted, "--reason", "the court cleared the suspect", check=False)
    assert free_text.returncode == 2 and "withdrawn" in free_text.stderr
    assert not has_tombstone(a, retracted) and holds_content(b, retracted)

    out = a.run("retract", retracted, "--reason", "error", "--note", "case 2026/17 closed", "--json")
    assert json.loads(out.stdout)["reason"] == "error"
    assert purged_as(a, retracted) == "retracted"
    wait_until(lambda: purged_as(b, retracted) == "retracted", timeout=WAIT_S, what="B to purge it")
    # The note stays on A, in its audit trail; the tombstone every node holds has only the code.
    assert any("case 2026/17" in str(row[0]) for row in a._sql("SELECT reasons FROM audit"))
    wires = b._sql("SELECT wire FROM statements WHERE kind = 'retract'")
    assert wires and all(b"case 2026" not in bytes(row[0]) for row in wires)

    # C was offline throughout. It comes up connected to B only, and learns of the retraction there.
    c.start()
    wait_until(lambda: has_tombstone(c, retracted), timeout=WAIT_S * 2, what="C to get the tombstone")
    # A record published after the retraction reaches C through B: C has caught up past it.
    later = a.publish("--tlp", "green", title="Published after the retraction")
    c.wait_for(later, timeout=WAIT_S * 2)
    assert not holds_content(c, retracted)
    for node in (a, b, c):
        assert retracted not in node.query_ids(), node.name
        assert later in node.query_ids(), node.name
    shown = b.run("show", retracted).stdout
    assert "retracted by its author" in shown and "(error)" in shown and "Published in error" not in shown
