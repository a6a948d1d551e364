"""`python -m bench propagate`: how fast, and at what cost in copies, a record floods a federation.

N daemons on 127.0.0.1 form a connected random graph (fixed seed) in which every node has 3 or 4
peers; along each edge both nodes add each other and subscribe to each other, so records flow both
ways. Then R records are published, at a steady rate, each by a node chosen at random.

What is measured, and how:
- A record is published in this process through `Store.publish` (lapnode.publishing.publish_record,
  what `lapnode publish` runs) on the author node's own SQLite file, signed with that node's key,
  while its daemon runs. The daemon sees it by polling its log (Store.POLL_INTERVAL, 0.25 s), exactly as
  it sees a record published with the CLI. The publish time is taken just before the call.
- Each node's `received_at` (the ms at which that node stored the record) is read from its SQLite file
  with the stdlib sqlite3 module, read-only.
- A record's delivery time is max over the nodes allowed to hold it of (received_at - publish time).
  The records are TLP green; a node is allowed to hold one if its distance from the author in the graph
  is at most relay_hops + 1 (the author sends with hop count 0; SPEC §6.4; `--relay-hops`, by default
  the protocol's default of 3). `p50_ms` and `p99_ms` are nearest-rank percentiles over records.
- `records_undelivered`: records that had not reached every allowed node DELIVERY_TIMEOUT_S after the
  last publish. Such a record counts as infinitely late: a percentile that falls on one is not printed,
  the reason goes to stderr and the command exits with status 1.
- `copies_per_delivery`: (records received + duplicates received) ÷ records received, summed over the
  nodes' Prometheus counters lapnode_records_received_total and lapnode_duplicates_received_total.
"""

from __future__ import annotations

import asyncio
import math
import random
import sqlite3
import statistics
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from bench.corpus import lead_document
from bench.federation import Federation, HarnessError, NodeProcess, wait_until
from bench.report import emit
from keys.identity import Identity, public_key_from_node_id
from keys.keyfile import read_key_file
from lapnode.publishing import publish_record
from lapnode.store import Store
from protocol.kinds import body_from_document
from protocol.scope import DEFAULT_RELAY_HOPS, Scope

BENCH = "propagate"
NETWORK = "bench"
DELIVERY_TIMEOUT_S = 30.0
IDLE_SAMPLE_S = 5.0
_COUNTRIES = ["NL", "GB", "US", "AU", "CA", "FR", "DE", "BE", "JP", "KR"]

__all__ = ["DEFAULT_RELAY_HOPS", "run"]

Edge = tuple[int, int]


def random_graph(nodes: int, rng: random.Random, tries: int = 10_000) -> list[Edge]:
    """A connected simple graph in which every node has degree 3 or 4 (configuration model)."""
    if nodes < 5:
        raise HarnessError("propagate needs at least 5 nodes for degrees of 3 to 4")
    for _ in range(tries):
        degrees = [rng.choice((3, 4)) for _ in range(nodes)]
        if sum(degrees) % 2:
            degrees[0] = 7 - degrees[0]
        stubs = [node for node, degree in enumerate(degrees) for _ in range(degree)]
        rng.shuffle(stubs)
        edges: set[Edge] = set()
        for x, y in zip(stubs[::2], stubs[1::2], strict=True):
            edge = (min(x, y), max(x, y))
            if x == y or edge in edges:
                break
            edges.add(edge)
        else:
            if len(distances(nodes, edges, 0)) == nodes:
                return sorted(edges)
    raise HarnessError("no connected random graph found")


def distances(nodes: int, edges: set[Edge] | Sequence[Edge], source: int) -> dict[int, int]:
    """Hop distance from `source` to every node it reaches (breadth first)."""
    neighbours: dict[int, list[int]] = {n: [] for n in range(nodes)}
    for x, y in edges:
        neighbours[x].append(y)
        neighbours[y].append(x)
    found = {source: 0}
    queue = deque([source])
    while queue:
        node = queue.popleft()
        for other in neighbours[node]:
            if other not in found:
                found[other] = found[node] + 1
                queue.append(other)
    return found


async def wire(nodes: list[NodeProcess], edges: list[Edge]) -> None:
    """Both ends of each edge add each other and subscribe to each other.

    This is what `lapnode peer add` and `lapnode subscribe` do (PeerBook.add, set_subscription), run
    in this process: the CLI costs about a second of CPU per call and an edge needs four calls.
    """
    now = time.time_ns() // 1_000_000
    for index, node in enumerate(nodes):
        store = await Store.open(node.database_url, network=NETWORK)
        try:
            for x, y in edges:
                if index not in (x, y):
                    continue
                other = nodes[y if index == x else x]
                key = public_key_from_node_id(other.node_id)
                await store.peers.add(
                    key,
                    other.address,
                    now_ms=now,
                    name=other.name,
                    category=other.category,
                    jurisdiction=other.jurisdiction,
                )
                await store.peers.set_subscription(key, True)
        finally:
            await store.close()


@dataclass(frozen=True)
class Published:
    rid: bytes
    author: int
    at_ms: int


async def publish(
    nodes: list[NodeProcess], *, records: int, rate: float, relay_hops: int, rng: random.Random
) -> list[Published]:
    """Publish `records` records at `rate` per second, each from a node chosen at random."""
    identities: list[Identity] = [read_key_file(node.home / "identity.key", None) for node in nodes]
    stores = [await Store.open(node.database_url, network=NETWORK) for node in nodes]
    scope = Scope.create("green", relay_hops=relay_hops)
    published: list[Published] = []
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n in range(records):
            await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
            author = rng.randrange(len(nodes))
            fields = body_from_document("lead", lead_document(rng, n, domains=1_000_000))
            at_ms = time.time_ns() // 1_000_000
            record = await publish_record(
                stores[author],
                identities[author],
                network=NETWORK,
                kind="lead",
                fields=fields,
                scope=scope,
                created=at_ms,
            )
            published.append(Published(bytes(record.id), author, at_ms))
    finally:
        for store in stores:
            await store.close()
    return published


def holdings_of(node: NodeProcess) -> dict[bytes, tuple[int, int]]:
    """rid -> (received_at, hops) of every record the node holds, read-only from its SQLite file."""
    connection = sqlite3.connect(f"file:{node.database_path}?mode=ro", uri=True, timeout=30)
    try:
        rows = connection.execute("SELECT rid, received_at, hops FROM records")
        return {bytes(rid): (int(at), int(hops)) for rid, at, hops in rows}
    finally:
        connection.close()


def _explain(
    pending: Sequence[Published],
    holdings: list[dict[bytes, tuple[int, int]]],
    allowed: dict[int, set[int]],
    edges: list[Edge],
) -> str:
    """Which allowed nodes lack each undelivered record, and the hop counts their neighbours hold it at."""
    lines = []
    for p in pending[:8]:
        hops_from = distances(len(holdings), edges, p.author)
        missing = sorted(n for n in allowed[p.author] if p.rid not in holdings[n])
        parts = []
        for n in missing:
            near = [y if x == n else x for x, y in edges if n in (x, y)]
            held = ", ".join(
                f"n{m:02d}@d{hops_from[m]}:hops={holdings[m][p.rid][1] if p.rid in holdings[m] else '-'}"
                for m in near
            )
            parts.append(f"n{n:02d} (distance {hops_from[n]}; neighbours {held})")
        lines.append(f"  record {p.rid.hex()[:12]} by n{p.author:02d}: missing at " + "; ".join(parts))
    return "\n".join(lines)


def counters(nodes: list[NodeProcess]) -> tuple[float, float]:
    """(records received, duplicates received), summed over the nodes."""
    received = duplicates = 0.0
    for node in nodes:
        metrics = node.metrics()
        received += metrics.get("lapnode_records_received_total", 0.0)
        duplicates += metrics.get("lapnode_duplicates_received_total", 0.0)
    return received, duplicates


def _all_caught_up(node: NodeProcess, expected: int) -> bool:
    report = node.status()
    peers = report.get("peers") if report is not None else None
    live = [
        p
        for p in (peers if isinstance(peers, list) else [])
        if isinstance(p, dict) and p.get("subscribed") and p.get("connected") and p.get("caught_up")
    ]
    return len(live) == expected


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def run(*, nodes: int, records: int, rate: float, relay_hops: int, seed: int) -> int:
    """Run the benchmark; 1 if some record did not reach every node allowed to hold it."""
    rng = random.Random(seed)
    edges = random_graph(nodes, rng)
    allowed = {
        source: {n for n, d in distances(nodes, edges, source).items() if 0 < d <= relay_hops + 1}
        for source in range(nodes)
    }
    degree = {n: sum(n in edge for edge in edges) for n in range(nodes)}
    diameter = max(max(distances(nodes, edges, n).values()) for n in range(nodes))
    print(
        f"# {nodes} nodes, {len(edges)} edges, diameter {diameter}, relay_hops {relay_hops}", file=sys.stderr
    )
    began = time.perf_counter()
    with Federation(NETWORK) as federation:
        members = [federation.add(f"n{i:02d}") for i in range(nodes)]
        for i, member in enumerate(members):
            member.jurisdiction = _COUNTRIES[i % len(_COUNTRIES)]
        federation.init(members)
        asyncio.run(wire(members, edges))
        federation.start(members)
        for i, member in enumerate(members):
            wait_until(
                lambda m=member, d=degree[i]: _all_caught_up(m, d),  # type: ignore[misc]
                timeout=60,
                what=f"{member.name}'s subscriptions to connect",
                interval=0.2,
            )
        print(f"# federation up in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        idle_before, idle_start = sum(m.cpu_seconds() for m in members), time.perf_counter()
        time.sleep(IDLE_SAMPLE_S)
        cpu_before, wall_before = sum(m.cpu_seconds() for m in members), time.perf_counter()
        idle_cores = (cpu_before - idle_before) / (wall_before - idle_start)
        published = asyncio.run(publish(members, records=records, rate=rate, relay_hops=relay_hops, rng=rng))
        last_publish = time.perf_counter()
        pending = {p.rid: p for p in published}
        holdings: list[dict[bytes, tuple[int, int]]] = [{} for _ in members]
        while pending and time.perf_counter() - last_publish < DELIVERY_TIMEOUT_S:
            holdings = [holdings_of(member) for member in members]
            pending = {
                rid: p for rid, p in pending.items() if any(rid not in holdings[n] for n in allowed[p.author])
            }
            if pending:
                time.sleep(0.5)
        if pending:
            explanation = _explain(list(pending.values()), holdings, allowed, edges)
            print(
                f"# {len(pending)} of {records} records did not reach every node allowed to hold them "
                f"within {DELIVERY_TIMEOUT_S:.0f} s:\n{explanation}",
                file=sys.stderr,
            )
        # Duplicates may still be in flight when the last node stores a record: wait until they settle.
        previous = counters(members)
        while True:
            time.sleep(1.0)
            current = counters(members)
            if current == previous:
                break
            previous = current
        received, duplicates = current
        cpu = sum(m.cpu_seconds() for m in members) - cpu_before
        wall = time.perf_counter() - wall_before
        print(f"# whole run {time.perf_counter() - began:.1f} s", file=sys.stderr)

    # A record that never reached every allowed node has no delivery time: it counts as infinitely late.
    delivery = [
        max(holdings[n][p.rid][0] - p.at_ms for n in allowed[p.author]) if p.rid not in pending else math.inf
        for p in published
    ]
    deliveries = sum(len(allowed[p.author]) for p in published)
    emit(BENCH, "records_undelivered", len(pending))
    for metric, fraction in (("p50_ms", 0.50), ("p99_ms", 0.99)):
        value = percentile(delivery, fraction)
        if math.isfinite(value):
            emit(BENCH, metric, value)
        else:
            print(
                f"# {metric} undefined: more than {1 - fraction:.0%} of records were not delivered",
                file=sys.stderr,
            )
    emit(BENCH, "copies_per_delivery", (received + duplicates) / received)
    delivered = [d for d in delivery if math.isfinite(d)]
    print(
        f"# {deliveries} deliveries expected, {received:.0f} records received, {duplicates:.0f} duplicates; "
        f"delivered records: p50 {percentile(delivered, 0.5)} ms, p99 {percentile(delivered, 0.99)} ms, "
        f"max {max(delivered)} ms, mean {statistics.fmean(delivered):.0f} ms",
        file=sys.stderr,
    )
    quarter = max(1, len(delivery) // 4)
    print(
        f"# idle, the {nodes} daemons use {idle_cores:.2f} cores; while publishing and delivering they used "
        f"{cpu:.1f} CPU-s in {wall:.1f} s ({cpu / wall:.2f} cores): "
        f"{1000 * cpu / (received + duplicates):.1f} ms per record received; p50 of the first quarter "
        f"of records {percentile(delivery[:quarter], 0.5)} ms, "
        f"of the last {percentile(delivery[-quarter:], 0.5)} ms",
        file=sys.stderr,
    )
    return 1 if pending else 0
