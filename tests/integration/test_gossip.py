"""Gossip between real `lapnode serve` daemons (issue 3, "Tests"): relaying, scope, catch-up, stopping.

Every node is a separate `lapnode serve` process on 127.0.0.1 with its own home, random ports, a real
SQLite file and real keys. Records are published through the real CLI. Checks read the admin endpoint,
the CLI and the SQLite files. Every wait is bounded (federation.wait_until); nothing asserts a duration.
The 20,000-record catch-up and the idle reconnect are in test_gossip_catchup.py.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


def make_node(
    root: Path, name: str, *, category: str = "enforcement", jurisdiction: str = "NL"
) -> NodeProcess:
    """A node whose category and jurisdiction are what its peers pin for it (`peer_with`)."""
    return NodeProcess(name, root / name, free_port_pair(), jurisdiction=jurisdiction, category=category)


# --- A -> B -> C ---------------------------------------------------------------------------------------


@dataclass
class Line:
    """A feeds B, B feeds C. B is pinned as government (by A), C as enforcement in GB (by B)."""

    a: NodeProcess
    b: NodeProcess
    c: NodeProcess


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Line]:
    root = tmp_path_factory.mktemp("line")
    a = make_node(root, "A")
    b = make_node(root, "B", category="government")
    c = make_node(root, "C", jurisdiction="GB")
    init_nodes(a, b, c)
    in_parallel(lambda: b.peer_with(a), lambda: c.peer_with(b))  # B subscribes to A, C to B
    try:
        in_parallel(a.start, b.start, c.start)
        wait_until(lambda: connected(b, a) and connected(c, b), timeout=WAIT_S, what="B and C to connect")
        yield Line(a, b, c)
    finally:
        stop_all((c, b, a))
    for node in (a, b, c):
        assert "Traceback" not in node.logs(), f"{node.name} logged an unhandled exception"


def connected(node: NodeProcess, peer: NodeProcess) -> bool:
    return node.peer_status(peer)["connected"] is True


def test_a_record_published_on_a_reaches_c_through_b(line: Line) -> None:
    record_id = line.a.publish(title="Relayed from A to C")

    line.c.wait_for(record_id)
    # It came through B: C has no other peer, and the relay bookkeeping says it passed one relay.
    assert line.c.stored_hops(record_id) == 1
    assert line.b.stored_hops(record_id) == 0
    assert record_id in line.c.query_ids()

    report = json.loads(line.b.run("status", "--json").stdout)
    assert report["daemon"] == "running"
    (a_on_b,) = [p for p in report["peers"] if p["node_id"] == line.a.node_id]
    assert a_on_b["connected"] is True
    assert a_on_b["records_received"] >= 1
    (c_on_b,) = [p for p in report["peers"] if p["node_id"] == line.c.node_id]
    assert c_on_b["records_sent"] >= 1


def test_live_records_cost_a_batch_each_and_no_idle_message(line: Line) -> None:
    """SPEC §6.5 rule 4: once a subscriber has had `idle`, a live batch's `upto` tells it the position;
    the publisher does not follow each batch with another `idle` (bounded work per record per link)."""
    line.b.wait_for(line.a.publish(title="Before counting"))
    batches, idles = line.a.counter("lapnode_batches_sent_total"), line.a.counter("lapnode_idle_sent_total")
    published = [line.a.publish(title=f"Live record {n}") for n in range(3)]
    for record_id in published:
        line.b.wait_for(record_id)
    assert 1 <= line.a.counter("lapnode_batches_sent_total") - batches <= 3
    assert line.a.counter("lapnode_idle_sent_total") - idles == 0


# Each of these is within B's pinned attributes but not C's, or may not travel a second hop.
WITHHELD_FROM_C = {
    "audience government only (C is enforcement)": ("--audience-category", "government"),
    "relay-hops 0 (direct delivery only)": ("--relay-hops", "0"),
    "tlp amber+strict (never relayed)": ("--tlp", "amber+strict"),
    "jurisdiction GB denied (C is in GB)": ("--jurisdiction-deny", "GB"),
}
# The scope clause each withholding above (and the red one) must name in the audit trail's reasons.
CLAUSE_NAMED = {
    "audience government only (C is enforcement)": "categories",
    "relay-hops 0 (direct delivery only)": "relay_hops",
    "tlp amber+strict (never relayed)": "amber+strict",
    "jurisdiction GB denied (C is in GB)": "jurisdictions_deny",
    "tlp red to a named member (never relayed)": "red",
}


def audit_trail(node: NodeProcess, *filters: str) -> dict[str, list[dict[str, object]]]:
    """`lapnode audit --json` on a node (its daemon running): the entries by record id."""
    entries = json.loads(node.run("audit", "--json", "--limit", "10000", *filters).stdout)
    by_record: dict[str, list[dict[str, object]]] = {}
    for entry in entries:
        by_record.setdefault(entry["record"], []).append(entry)
    return by_record


def test_a_record_whose_scope_excludes_c_reaches_b_but_never_c(line: Line) -> None:
    cases = {
        **WITHHELD_FROM_C,
        "tlp red to a named member (never relayed)": ("--tlp", "red", "--audience-member", line.b.node_id),
    }

    def publish(why: str) -> Callable[[], str]:
        return lambda: line.a.publish(*cases[why], title=why)

    # Concurrent CLI processes publishing on one running node: the store serialises them.
    withheld = dict(zip(cases, in_parallel(*(publish(why) for why in cases)), strict=True))
    # Published last: once C holds it, B's feed to C has passed every record above (feeds run in log
    # order), so their absence on C is a decision, not a delay.
    marker = line.a.publish(title="Marker after the restricted records")

    line.c.wait_for(marker)
    for why, record_id in withheld.items():
        assert line.b.holds(record_id), f"B should hold the record with {why}"
        assert not line.c.holds(record_id), f"C must not receive the record with {why}"
    assert line.b.holds(marker)
    assert not set(withheld.values()) & line.c.query_ids()

    # Every decision was recorded before anything was sent: B's trail names each withholding for C and
    # its reason, and the send of the marker; A's names its sends to B. Both chains verify, live.
    on_b = audit_trail(line.b, "--peer", line.c.node_id, "--exit", "gossip")
    for why, record_id in withheld.items():
        assert {e["action"] for e in on_b[record_id]} == {"withhold"}, why
        reasons = [str(r) for e in on_b[record_id] for r in e["reasons"]]
        assert any(CLAUSE_NAMED[why] in reason for reason in reasons), (why, reasons)
    assert [e["action"] for e in on_b[marker]] == ["send"]
    on_a = audit_trail(line.a, "--peer", line.b.node_id, "--action", "send")
    assert set(withheld.values()) | {marker} <= set(on_a)
    for node in (line.a, line.b):
        assert node.run("audit", "verify").stdout.startswith("ok: ")


def test_a_node_that_was_offline_catches_up_on_its_own(line: Line) -> None:
    assert line.c.stop() == 0
    published = [line.a.publish(title=f"Published while C is down {n}") for n in range(3)]
    for record_id in published:
        line.b.wait_for(record_id)
    assert not any(line.c.holds(record_id) for record_id in published)

    line.c.start()  # nothing is published from here on: C must ask for what it missed
    for record_id in published:
        line.c.wait_for(record_id)
    wait_until(lambda: line.c.peer_status(line.b)["caught_up"] is True, timeout=WAIT_S, what="C caught up")


def test_the_cli_tells_a_running_daemon_that_its_peer_book_changed(line: Line) -> None:
    told = len(line.c.events("peers_changed"))
    stopped, started = len(line.c.events("subscription_stopped")), len(line.c.events("subscription_started"))

    line.c.run("unsubscribe", line.b.node_id)
    wait_until(lambda: len(line.c.events("subscription_stopped")) > stopped, timeout=WAIT_S, what="stopped")
    line.c.run("subscribe", line.b.node_id)
    wait_until(lambda: len(line.c.events("subscription_started")) > started, timeout=WAIT_S, what="started")
    wait_until(lambda: connected(line.c, line.b), timeout=WAIT_S, what="C to connect to B again")

    # Each command reached the admin side (the daemon rescans at once rather than within a second).
    assert len(line.c.events("peers_changed")) == told + 2
    record_id = line.a.publish(title="After C subscribed again")
    line.c.wait_for(record_id)


def test_serve_stops_cleanly_on_sigterm_and_keeps_what_it_acknowledged(line: Line) -> None:
    record_id = line.a.publish(title="Acknowledged before SIGTERM")
    line.b.wait_for(record_id)
    wait_until(  # B acknowledges a batch only after committing it; A has seen the ack once B is caught up
        lambda: line.b.peer_status(line.a)["caught_up"] is True, timeout=WAIT_S, what="B caught up with A"
    )
    held = line.b.record_ids()
    disconnects_on_a = len(line.a.events("peer_disconnected"))

    assert line.b.stop(signal.SIGTERM) == 0
    assert line.b.events("daemon_stopped"), "B should log an orderly stop"
    # Offline, through the CLI: everything B had committed is still there.
    assert held <= line.b.query_ids()

    # A saw an orderly close from its subscriber, not misbehaviour.
    event = line.a.wait_for_event("peer_disconnected", after=disconnects_on_a, peer=line.b.node_id)
    assert event["reason"] == "peer closed the connection"
    assert line.a.peer_status(line.b)["score"] == 0

    line.b.start()
    assert held <= line.b.record_ids()
    wait_until(lambda: connected(line.b, line.a) and connected(line.c, line.b), timeout=WAIT_S, what="links")
    # B's own subscriber (C) was not penalised for B's shutdown either.
    assert line.c.peer_status(line.b)["score"] == 0


def test_serve_stops_cleanly_on_sigint(line: Line) -> None:
    assert line.c.stop(signal.SIGINT) == 0
    assert line.c.events("daemon_stopped")
    line.c.start()
    record_id = line.a.publish(title="After C's Ctrl-C")
    line.c.wait_for(record_id)
