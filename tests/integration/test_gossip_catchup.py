"""A 20,000-record catch-up between real `lapnode serve` daemons (issue 3, "Tests"): a crash in the
middle of it, and an idle reconnect.

Both nodes are separate `lapnode serve` processes on 127.0.0.1 with their own homes, random ports, real
SQLite files and real keys. The corpus is ingested into the source's real store before it starts.
Checks read the admin endpoint, the CLI and the SQLite files. Every wait is bounded
(federation.wait_until); nothing asserts a duration.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.federation import (
    WAIT_S,
    NodeProcess,
    corpus,
    free_port_pair,
    init_nodes,
    stop_all,
    wait_for_exit,
    wait_until,
)

CORPUS_RECORDS = 20_000
CORPUS_AUTHORS = 50
# issue 3: "Reconnecting with nothing new costs almost nothing"; `idle_resync_bytes` must stay under this.
IDLE_RESYNC_BOUND = 16_384


def make_node(root: Path, name: str) -> NodeProcess:
    return NodeProcess(name, root / name, free_port_pair())


def connected(node: NodeProcess, peer: NodeProcess) -> bool:
    return node.peer_status(peer)["connected"] is True


@dataclass
class Pair:
    source: NodeProcess
    sink: NodeProcess
    source_ids: set[str]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """`source` holds 20,000 records of 50 authors; `sink` subscribes to it, starting empty."""
    root = tmp_path_factory.mktemp("pair")
    source, sink = make_node(root, "source"), make_node(root, "sink")
    with ThreadPoolExecutor(max_workers=1) as pool:
        initialised = pool.submit(init_nodes, source, sink)  # CLI processes run while records are signed
        wires = list(corpus(CORPUS_RECORDS, CORPUS_AUTHORS))
        initialised.result()
    source.seed(wires)
    source_ids = source.record_ids()
    assert source.record_count() == (CORPUS_RECORDS, CORPUS_RECORDS)
    sink.peer_with(source)
    try:
        source.start()
        yield Pair(source, sink, source_ids)
    finally:
        stop_all((sink, source))
    for node in (source, sink):
        assert "Traceback" not in node.logs(), f"{node.name} logged an unhandled exception"


def test_a_peer_killed_during_a_catch_up_of_20000_records_ends_with_exactly_the_source_records(
    pair: Pair,
) -> None:
    sink = pair.sink
    sink.start()

    def part_way() -> bool:
        held = sink.record_count()[0]  # straight from the file: no HTTP round trip to a busy daemon
        assert held < CORPUS_RECORDS, "the catch-up ended before the kill; nothing was tested"
        return held > 0

    wait_until(part_way, timeout=WAIT_S, what="the sink to hold some records", interval=0.02)
    workers = sink.kill()
    # A crash leaves nothing running behind it: the daemon's verifier workers go with it.
    wait_for_exit(workers, what="the killed sink's worker processes to exit")
    rows, distinct = sink.record_count()
    assert 0 < rows < CORPUS_RECORDS, "the kill should land in the middle of the catch-up"
    assert rows == distinct

    sink.start()
    wait_until(
        lambda: sink.record_count()[0] >= CORPUS_RECORDS, timeout=120, what="the sink to hold every record"
    )
    wait_until(lambda: sink.peer_status(pair.source)["caught_up"] is True, timeout=WAIT_S, what="caught up")
    assert sink.record_count() == (CORPUS_RECORDS, CORPUS_RECORDS)  # none duplicated
    assert sink.record_ids() == pair.source_ids  # none lost, nothing else
    assert sink.peer_status(pair.source)["their_feed_position"] == CORPUS_RECORDS


def test_a_reconnect_with_nothing_new_exchanges_fewer_bytes_than_the_bound(pair: Pair) -> None:
    source, sink = pair.source, pair.sink
    if not sink.running:
        sink.start()
    wait_until(
        lambda: sink.record_count()[0] >= CORPUS_RECORDS, timeout=120, what="the sink to hold every record"
    )
    wait_until(lambda: sink.peer_status(source)["caught_up"] is True, timeout=WAIT_S, what="caught up")
    received = sink.peer_status(source)["records_received"]
    wait_until(  # the source's count settles once the sink has acknowledged everything
        lambda: source.peer_status(sink)["behind_our_feed"] == 0, timeout=WAIT_S, what="the last ack"
    )
    sent = source.peer_status(sink)["records_sent"]
    # Serving 20,000 records recorded at least as many decisions (more if the crash made it decide
    # some twice), appended a batch at a time; the trail verifies in streamed chunks.
    verified = source.run("audit", "verify").stdout.split()
    assert verified[0] == "ok:" and int(verified[1]) >= CORPUS_RECORDS
    audit_head = source.run("audit", "head").stdout

    assert sink.stop() == 0
    sink.start()
    wait_until(lambda: sink.peer_status(source)["caught_up"] is True, timeout=WAIT_S, what="caught up")

    on_sink = sink.peer_status(source)
    bytes_in, bytes_out = on_sink["session_bytes_in"], on_sink["session_bytes_out"]
    assert isinstance(bytes_in, int) and isinstance(bytes_out, int)
    # The handshake alone is a few hundred bytes each way; the vector of 50 authors a few KiB.
    assert bytes_in > 0 and bytes_out > 0
    assert bytes_in + bytes_out < IDLE_RESYNC_BOUND, (bytes_in, bytes_out)
    # No record was sent again.
    assert on_sink["records_received"] == received
    assert sink.record_count() == (CORPUS_RECORDS, CORPUS_RECORDS)
    wait_until(lambda: connected(sink, source), timeout=WAIT_S, what="the sink to stay connected")
    assert source.peer_status(sink)["records_sent"] == sent
    # Records the subscriber already holds are not disclosure decisions: nothing was recorded.
    assert source.run("audit", "head").stdout == audit_head
