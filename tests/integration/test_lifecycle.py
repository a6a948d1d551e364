"""Retraction and expiry between real `lapnode serve` daemons (issue 5, "Tests"; SPEC §4, §8.10).

Every node is a separate daemon process on 127.0.0.1 with its own home, SQLite file and keys; records
and tombstones are made through the real CLI. Checks read the CLI and the SQLite files (read-only).
Every wait is bounded; nothing asserts a duration.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.federation import (
    WAIT_S,
    NodeProcess,
    free_port_pair,
    in_parallel,
    init_nodes,
    stop_all,
    wait_until,
)

# Long enough for a record to reach three daemons on a loaded machine before it expires.
EXPIRES_IN = "90s"


def make_node(root: Path, name: str) -> NodeProcess:
    node = NodeProcess(name, root / name, free_port_pair())
    return node


def purge_often(node: NodeProcess) -> None:
    """The daemon's purge pass every second (config.toml `purge_interval`), not every minute."""
    config = node.home / "config.toml"
    text = config.read_text()
    assert 'purge_interval = "60s"' in text
    config.write_text(text.replace('purge_interval = "60s"', 'purge_interval = "1s"'))


@pytest.fixture
def three(tmp_path: Path) -> Iterator[tuple[NodeProcess, NodeProcess, NodeProcess]]:
    a, b, c = (make_node(tmp_path, name) for name in "ABC")
    init_nodes(a, b, c)
    for node in (a, b, c):
        purge_often(node)
    # B subscribes to A, C to B: C's only way to A's records and statements is through B.
    in_parallel(lambda: b.peer_with(a), lambda: c.peer_with(b))
    try:
        yield a, b, c
    finally:
        stop_all((c, b, a))
    for node in (a, b, c):
        assert "Traceback" not in node.logs(), f"{node.name} logged an unhandled exception"


def purged_as(node: NodeProcess, record_id: str) -> str | None:
    rows = node._sql("SELECT purged FROM records WHERE rid = ?", bytes.fromhex(record_id))
    return str(rows[0][0]) if rows and rows[0][0] is not None else None


def holds_content(node: NodeProcess, record_id: str) -> bool:
    """Whether the node's file holds the record with its content (not purged)."""
    rows = node._sql("SELECT purged FROM records WHERE rid = ?", bytes.fromhex(record_id))
    return bool(rows) and rows[0][0] is None


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


def test_an_expired_record_is_purged_on_every_node(
    three: tuple[NodeProcess, NodeProcess, NodeProcess],
) -> None:
    a, b, c = three
    in_parallel(a.start, b.start, c.start)
    expiring = a.publish("--tlp", "green", "--expires", EXPIRES_IN, title="Short-lived lead")
    lasting = a.publish("--tlp", "green", title="Long-lived lead")
    for node in (b, c):
        node.wait_for(lasting, timeout=WAIT_S * 2)
    # It reached every node before it expired (the test needs that to mean anything).
    assert [node.name for node in (a, b, c) if not holds_content(node, expiring)] == []
    for node in (a, b, c):
        wait_until(
            lambda node=node: purged_as(node, expiring) == "expired",  # type: ignore[misc]
            timeout=WAIT_S * 4,
            what=f"{node.name} to purge the expired record",
        )
        ids = node.query_ids()
        assert expiring not in ids and lasting in ids, node.name
    assert "expired" in c.run("show", expiring).stdout
