"""Three real daemons for the retraction and expiry tests (test_lifecycle*.py), and read-only checks of
what each node's SQLite file holds about a record's lifecycle."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.integration.federation import NodeProcess, free_port_pair, in_parallel, init_nodes, stop_all


def purge_often(node: NodeProcess) -> None:
    """The daemon's purge pass every second (config.toml `purge_interval`), not every minute."""
    config = node.home / "config.toml"
    text = config.read_text()
    assert 'purge_interval = "60s"' in text
    config.write_text(text.replace('purge_interval = "60s"', 'purge_interval = "1s"'))


@contextlib.contextmanager
def three_nodes(root: Path) -> Iterator[tuple[NodeProcess, NodeProcess, NodeProcess]]:
    """A, B and C initialised (not started), purging every second; B subscribes to A, C to B, so C's
    only way to A's records and statements is through B. Every daemon is stopped afterwards, and none
    may have logged an unhandled exception."""
    a, b, c = (NodeProcess(name, root / name, free_port_pair()) for name in "ABC")
    init_nodes(a, b, c)
    for node in (a, b, c):
        purge_often(node)
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
