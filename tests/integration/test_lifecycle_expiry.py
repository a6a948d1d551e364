"""Expiry between real `lapnode serve` daemons (issue 5, "Tests"; SPEC §4, §8.10).

Every node is a separate daemon process on 127.0.0.1 with its own home, SQLite file and keys; records
and tombstones are made through the real CLI. Checks read the CLI and the SQLite files (read-only).
Every wait is bounded; nothing asserts a duration.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.federation import WAIT_S, NodeProcess, in_parallel, wait_until
from tests.integration.lifecycle import holds_content, purged_as, three_nodes

# Long enough for a record to reach three daemons on a loaded machine before it expires. A node stops
# sending a record CLOCK_SKEW_MS (60 s) before it expires, so this leaves 30 s for the two hops.
EXPIRES_IN = "90s"
# Mostly waiting for that clock: started first, the other workers' files fill the wait.
pytestmark = pytest.mark.long_file


@pytest.fixture
def three(tmp_path: Path) -> Iterator[tuple[NodeProcess, NodeProcess, NodeProcess]]:
    with three_nodes(tmp_path) as nodes:
        yield nodes


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
