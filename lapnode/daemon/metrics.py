"""Prometheus metrics, served on the local admin side at /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry(auto_describe=True)

RECORDS_SENT = Counter("lapnode_records_sent", "Records sent to subscribers", registry=REGISTRY)
BATCHES_SENT = Counter("lapnode_batches_sent", "Gossip batches sent to subscribers", registry=REGISTRY)
IDLE_SENT = Counter(
    "lapnode_idle_sent",
    "Gossip idle messages sent to subscribers (caught up at a new position)",
    registry=REGISTRY,
)
RECORDS_RECEIVED = Counter("lapnode_records_received", "Records stored from peers", registry=REGISTRY)
RECORDS_REJECTED = Counter(
    "lapnode_records_rejected", "Records from peers that failed verification", registry=REGISTRY
)
DUPLICATES_RECEIVED = Counter(
    "lapnode_duplicates_received", "Records received that were already held", registry=REGISTRY
)
HANDSHAKE_FAILURES = Counter("lapnode_handshake_failures", "Handshakes refused or failed", registry=REGISTRY)
PEERS_DISCONNECTED = Counter(
    "lapnode_peer_disconnects", "Peer connections ended", ["reason"], registry=REGISTRY
)
PEERS_CONNECTED = Gauge("lapnode_peers_connected", "Peers with an open channel", registry=REGISTRY)
LOG_HEAD = Gauge("lapnode_log_head", "Newest position in this node's log", registry=REGISTRY)
