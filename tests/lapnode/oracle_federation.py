"""Random federations for the leak oracle, and running one to quiescence in-process with the real code.

What is real: every node is a real `Store` (SQLite file, alembic schema, real verification, the real
inbound screen in `Store.ingest`, relogging, quarantine), its local rules are a real policy document
read by `parse_policy`, records are really signed (and sealed), and every hop runs what the daemon runs:
the subscriber asks with `subscription_for`, the publisher reads its log with `Store.read_log` and picks
with `select_for` (skips, `decide`, `disclosed_wire`, relay counts), messages pass through the gossip
codec, and the subscriber commits with `Store.ingest` screened by `screen_arrival`. What is not here is
only transport (Noise, WebSocket, flow control, retries): a session is a loop in this module.

The schedule is random too (drawn by hypothesis, so it shrinks): which feed runs next, when a session
drops and the subscriber reconnects (re-sending its cursor and holdings), and when each record is
published.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from hypothesis import strategies as st

from lapnode.daemon.feed import READ_AHEAD, select_for
from lapnode.daemon.subscriber import screen_arrival, subscription_for
from lapnode.policy import InboundDecision, Policy, Recipient, parse_policy
from lapnode.store import Arrival, Store
from lapnode.store.engine import create_engine, migrate
from lapnode.store.schema import metadata
from lapnode.store.verifier import Verifier
from protocol.envelope import Record, RecordId, verify_record
from protocol.gossip import Batch, CaughtUp, FeedItem, Subscribe, decode_message, encode_message
from protocol.scope import Scope
from tests.factories import NETWORK, T0, identity, make_record
from tests.lapnode.oracle_model import (
    POOL_JURISDICTIONS,
    SETS,
    Attributes,
    Condition,
    Federation,
    OracleRecord,
    OracleRule,
    OracleScope,
)

MAX_NODES: Final = 7
NODES: Final = tuple(identity(f"leak oracle node {i}") for i in range(MAX_NODES))
NOW: Final = T0 + 30 * 24 * 3600 * 1000
DAY: Final = 24 * 3600 * 1000
CATEGORIES: Final = ("enforcement", "government", "industry", "interest-group")
TLPS: Final = ("clear", "green", "amber", "amber+strict", "red")
RULE_FLAGS: Final = ("personal-data", "commercially-sensitive", "law-enforcement-only", "sealed")
OPAQUE_KIND: Final = "x-memo"
MAX_ROUNDS: Final = 60
PUBLISH_ROUNDS: Final = 2
RECONNECT: Final = 0.05

# Field names a redact rule may list (the loader checks them against the kinds the rule can match).
REDACTABLE: Final = {
    "lead": ("summary", "subjects", "legal_basis", "evidence"),
    "contact": ("person", "emails", "notes", "unit"),
    "trend": ("commentary", "region"),
}
DOCUMENTS: Final[dict[str, tuple[dict[str, Any], dict[str, Any]]]] = {
    # kind: (required fields, optional fields)
    "lead": (
        {"title": "Spam wave", "summary": "Sent by Jan.", "status": "suspected"},
        {
            "subjects": [{"type": "domain", "value": "spam.example"}],
            "evidence": [{"digest": "sha256:" + "ab" * 32, "description": "Headers"}],
            "legal_basis": "Art. 13",
            "victim_locations": ["NL"],
        },
    ),
    "contact": (
        {"organisation": "OPTA", "jurisdiction": "NL", "category": "enforcement"},
        {
            "person": "Jan",
            "emails": ["jan@opta.example"],
            "phones": ["+31 70 315 3500"],
            "notes": "Ask for Jan.",
            "unit": "Spam",
        },
    ),
    "trend": (
        {
            "period_start": T0,
            "period_end": T0 + 3600 * 1000,
            "jurisdiction": "NL",
            "category": "sms-spam",
            "metric": "complaints",
            "value": 3,
            "unit": "count",
        },
        {"commentary": "Rising.", "region": "Randstad"},
    ),
    OPAQUE_KIND: ({"note": "A kind this release cannot read."}, {"notes": "Free text about Jan."}),
}


# --- strategies ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    record: OracleRecord
    document: dict[str, Any]
    round: int


@dataclass(frozen=True)
class Scenario:
    federation: Federation
    records: tuple[Published, ...]
    schedule: random.Random

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        return f"Scenario(federation={self.federation!r}, records={self.records!r})"


# Strategies are built once: building one per draw cost more than running the federation.
_INTS: Final = {size: st.integers(0, size - 1) for size in range(1, 64)}
_MASKS: Final = {size: st.integers(0, 2**size - 1) for size in range(1, 16)}


def pick(draw: st.DrawFn, values: tuple[Any, ...]) -> Any:
    """One of `values` (shrinks towards the first)."""
    return values[draw(_INTS[len(values)])]


def chance(draw: st.DrawFn, tenths: int) -> bool:
    """True `tenths` times in ten (shrinks towards False)."""
    return bool(draw(_INTS[10]) >= 10 - tenths)


def subset(draw: st.DrawFn, values: tuple[str, ...], *, nonempty: bool = False) -> frozenset[str]:
    """Some of `values`, as a bit mask (shrinks towards none, or the first)."""
    mask = draw(_MASKS[len(values)]) or (1 if nonempty else 0)
    return frozenset(v for i, v in enumerate(values) if mask >> i & 1)


def _attributes(draw: st.DrawFn, node: Attributes) -> Attributes:
    """What an operator pins about `node`: usually the truth, sometimes nothing, rarely a mistake."""
    how = pick(draw, ("true",) * 6 + ("no category", "no jurisdiction", "nothing", "wrong"))
    if how == "true":
        return node
    if how == "wrong":
        return Attributes(pick(draw, CATEGORIES), pick(draw, POOL_JURISDICTIONS))
    category = None if how in ("no category", "nothing") else node.category
    return Attributes(category, None if how in ("no jurisdiction", "nothing") else node.jurisdiction)


def _condition(draw: st.DrawFn, subject: str, values: tuple[str, ...]) -> Condition:
    return Condition(subject, tuple(sorted(subset(draw, values, nonempty=True))), chance(draw, 5))


def _conditions(
    draw: st.DrawFn, n: int, *, outbound: bool
) -> tuple[tuple[Condition, ...], tuple[Condition, ...]]:
    nodes = tuple(str(i) for i in range(n))
    record: list[Condition] = []
    for subject, values, tenths in (
        ("kind", tuple(REDACTABLE), 3),
        ("tlp", TLPS, 3),
        ("flags", RULE_FLAGS, 3),
        ("author", ("self", *nodes), 2),
    ):
        if chance(draw, tenths):
            record.append(_condition(draw, subject, values))
    peer: list[Condition] = []
    for subject, values, tenths in (
        ("category", CATEGORIES, 4),
        ("jurisdiction", (*POOL_JURISDICTIONS, *SETS), 4),
        ("node", nodes, 2),
    ):
        if chance(draw, tenths):
            peer.append(_condition(draw, subject, values))
    if outbound and chance(draw, 2):
        peer.append(Condition("named", ("true",), chance(draw, 5)))
    return tuple(record), tuple(peer)


ACTIONS: Final = ("deny", "allow-only", "redact", "redact", "quarantine", "reject")


def _rules(draw: st.DrawFn, n: int, me: int) -> tuple[OracleRule, ...]:
    result = []
    for number in range(pick(draw, (0, 0, 0, 1, 1, 2, 3))):
        action = pick(draw, ACTIONS)
        record, peer = _conditions(draw, n, outbound=action in ("deny", "allow-only", "redact"))
        if action == "allow-only" and not peer:
            peer = (_condition(draw, "category", CATEGORIES),)
        fields: tuple[str, ...] = ()
        if action == "redact":
            kinds = [c for c in record if c.subject == "kind" and not c.negated]
            names = sorted({f for k in (kinds[0].values if kinds else REDACTABLE) for f in REDACTABLE[k]})
            fields = tuple(sorted(subset(draw, ("personal", *names), nonempty=True)))
        result.append(OracleRule(f"rule-{me}-{number}", action, record, peer, fields))
    return tuple(result)


def _scope(draw: st.DrawFn, n: int) -> OracleScope:
    tlp = pick(draw, ("clear", "green", "green", "amber", "amber", "amber+strict", "red", "red"))
    # red goes to named members only: usually name some.
    members = (
        subset(draw, tuple(str(i) for i in range(n)))
        if chance(draw, 8 if tlp == "red" else 3)
        else frozenset()
    )
    allow = subset(draw, POOL_JURISDICTIONS[:5]) if chance(draw, 2) else frozenset()
    deny = subset(draw, POOL_JURISDICTIONS[5:]) if chance(draw, 2) else frozenset()
    flags = set(subset(draw, RULE_FLAGS[:3])) if chance(draw, 3) else set()
    if members and chance(draw, 3):
        flags.add("sealed")
    return OracleScope(
        tlp=tlp,
        relay_hops=pick(draw, (0, 1, 2, 2, 3, 3, 4)),
        categories=subset(draw, CATEGORIES) if chance(draw, 2) else frozenset(),
        members=frozenset(int(m) for m in members),
        allow=allow,
        deny=deny,
        flags=frozenset(flags),
        embargoed=draw(_INTS[30]) == 29,
        expired=draw(_INTS[30]) == 29,
    )


def _published(draw: st.DrawFn, n: int) -> Published:
    kind = pick(draw, ("lead", "lead", "contact", "contact", "trend", OPAQUE_KIND))
    scope = _scope(draw, n)
    required, optional = DOCUMENTS[kind]
    document = {**required, **{k: v for k, v in optional.items() if chance(draw, 5)}}
    fields = frozenset({"sealed"}) if scope.sealed else frozenset(document)
    record = OracleRecord(draw(_INTS[n]), kind, scope, fields)
    return Published(record, document, draw(_INTS[PUBLISH_ROUNDS]))


# A node whose config.toml states no jurisdiction is outside every jurisdiction clause (fail closed).
OWN_JURISDICTIONS: Final = (*POOL_JURISDICTIONS, None)
DENSITIES: Final = (
    ("none", "none", "none", "none", "both", "both", "u->v", "v->u"),
    ("none", "none", "none", "none", "none", "none", "both", "both", "u->v", "v->u"),
    ("none", "none", "none", "both", "both", "both", "u->v", "v->u"),
)
RANDOMS: Final = st.randoms(use_true_random=False)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n = 6 + draw(_INTS[MAX_NODES - 5])
    nodes = tuple(Attributes(pick(draw, CATEGORIES), pick(draw, OWN_JURISDICTIONS)) for _ in range(n))
    feeds: list[tuple[int, int]] = []
    # Sparse meshes make long relay paths, dense ones many paths of one length.
    links = pick(draw, DENSITIES)
    for u in range(n):
        for v in range(u + 1, n):  # each pair: no link, one feed either way, or both (most links)
            link = pick(draw, links)
            feeds += [(u, v)] if link in ("both", "u->v") else []
            feeds += [(v, u)] if link in ("both", "v->u") else []
    neighbours = {(a, b) for u, v in feeds for a, b in ((u, v), (v, u))}
    pinned = {(a, b): _attributes(draw, nodes[b]) for a, b in sorted(neighbours)}
    kinds = {
        feed: subset(draw, ("lead", "contact", "trend", OPAQUE_KIND), nonempty=True)
        for feed in feeds
        if draw(_INTS[10]) == 9
    }
    rules = tuple(_rules(draw, n, me) for me in range(n))
    federation = Federation(nodes, tuple(feeds), pinned, rules, kinds)
    records = tuple(_published(draw, n) for _ in range(3 + draw(_INTS[3])))
    return Scenario(federation, records, draw(RANDOMS))


# --- turning the model's federation into real configuration ----------------------------------------------


def node_id(index: str) -> str:
    return NODES[int(index)].node_id


def policy_document(rules: tuple[OracleRule, ...]) -> dict[str, Any]:
    """The policy.toml (as parsed TOML) that states these rules."""
    tables = []
    for rule in rules:
        table: dict[str, Any] = {"name": rule.name, "action": rule.action}
        for key, conditions_ in (
            ("record", rule.record),
            ("recipient" if rule.action in ("deny", "allow-only", "redact") else "sender", rule.peer),
        ):
            if not conditions_:
                continue
            written: dict[str, Any] = {}
            for c in conditions_:
                if c.subject == "named":
                    written["named"] = not c.negated
                    continue
                values = list(c.values)
                if c.subject in ("author", "node"):
                    values = [v if v == "self" else node_id(v) for v in values]
                written[("not-" if c.negated else "") + c.subject] = values
            table[key] = written
        if rule.fields:
            table["fields"] = list(rule.fields)
        tables.append(table)
    return {"rule": tables}


def real_scope(scope: OracleScope) -> Scope:
    return Scope.create(
        scope.tlp,
        relay_hops=scope.relay_hops,
        categories=scope.categories,
        members=[NODES[m].public_key.raw for m in scope.members],
        jurisdictions_allow=scope.allow,
        jurisdictions_deny=scope.deny,
        flags=scope.flags,
        embargo_until=NOW + DAY if scope.embargoed else None,
        expires=NOW - DAY if scope.expired else None,
    )


# --- running a federation --------------------------------------------------------------------------------


@dataclass
class Holding:
    hops: int
    fields: frozenset[str]


@dataclass
class Observed:
    """What every node holds at quiescence, by the model's record index."""

    stored: list[dict[int, Holding]]
    quarantined: list[dict[int, frozenset[str]]]
    # (publisher, subscriber) feeds over which a record was refused as breaking the author's scope,
    # and the reasons: a node that sent it misbehaved.
    misbehaved: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    invalid: list[str] = field(default_factory=list)
    rounds: int = 0


@dataclass
class _Session:
    request: Subscribe
    position: int


class Nodes:
    """MAX_NODES databases, migrated once and emptied for each federation, and one event loop.

    Migrating and opening a store per node of every federation would cost more than all the
    replication in it, so the engines (and their connections) live as long as the test module. Each
    federation gets fresh `Store` objects (so nothing a store keeps in memory survives), over
    databases emptied of every row but the schema version, with the peer book its operators would have
    written with `peer add` and `peer subscribe --kinds`. The emptying and the peer book go through a
    plain SQLite connection: they are setup, not what is under test, and through the store's API they
    took a third of each federation's time.
    """

    def __init__(self, directory: Path) -> None:
        self._paths = [directory / f"node{i}.sqlite" for i in range(MAX_NODES)]
        self._runner = asyncio.Runner()
        self._engines = [create_engine(f"sqlite+aiosqlite:///{path}") for path in self._paths]
        self._runner.run(self._migrate())
        self._setup = [sqlite3.connect(path, isolation_level=None) for path in self._paths]
        for db in self._setup:
            db.execute("PRAGMA synchronous=OFF")  # setup only: nothing here needs to survive a crash

    async def _migrate(self) -> None:
        for engine in self._engines:
            await migrate(engine)

    def close(self) -> None:
        for db in self._setup:
            db.close()
        self._runner.run(self._dispose())
        self._runner.close()

    async def _dispose(self) -> None:
        for engine in self._engines:
            await engine.dispose()

    def run(self, scenario: Scenario) -> Observed:
        fed = scenario.federation
        for node in range(len(fed.nodes)):
            _reset(self._setup[node], fed, node)
        stores = [Store(self._engines[i], Verifier(NETWORK)) for i in range(len(fed.nodes))]
        return self._runner.run(_replicate(fed, scenario, stores))


def _reset(db: sqlite3.Connection, fed: Federation, node: int) -> None:
    rows = [
        (
            NODES[b].public_key.raw,
            f"127.0.0.1:{9000 + b}",
            f"org {b}",
            view.category,
            view.jurisdiction,
            (b, node) in fed.feeds,
            ",".join(sorted(fed.kinds.get((b, node), ()))),
            NOW,
        )
        for (a, b), view in sorted(fed.pinned.items())
        if a == node
    ]
    db.execute("BEGIN IMMEDIATE")
    for table in reversed(metadata.sorted_tables):
        db.execute(f"DELETE FROM {table.name}")
    db.executemany(
        "INSERT INTO peers (key, address, org, category, jurisdiction, subscribed, kinds, added_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.execute("COMMIT")


def _recipient(fed: Federation, holder: int, other: int) -> Recipient:
    view = fed.pinned[(holder, other)]
    return Recipient(NODES[other].public_key.raw, f"org {other}", view.category, view.jurisdiction)


async def _replicate(fed: Federation, scenario: Scenario, stores: list[Store]) -> Observed:
    policies = [parse_policy(policy_document(rules)) for rules in fed.rules]
    schedule = scenario.schedule
    us = [
        Recipient(NODES[i].public_key.raw, f"org {i}", a.category, a.jurisdiction)
        for i, a in enumerate(fed.nodes)
    ]
    ids: list[RecordId] = [RecordId(b"")] * len(scenario.records)
    sessions: dict[tuple[int, int], _Session] = {}
    observed = Observed([{} for _ in stores], [{} for _ in stores])
    feeds = list(fed.feeds)
    for round_ in range(MAX_ROUNDS):
        observed.rounds = round_ + 1
        heads = [await _head(s) for s in stores]
        for index, item in enumerate(scenario.records):
            if item.round == round_:
                ids[index] = await _publish(stores[item.record.author], item, index)
        schedule.shuffle(feeds)
        quarantined = 0
        for u, v in feeds:
            quarantined += await _exchange(fed, stores, policies, us, sessions, observed, schedule, u, v)
        # Quiescent: everything is published, and a round in which every feed ran once (each reading
        # its publisher's log to the end) stored, relogged and quarantined nothing. Another round would
        # read the same entries with a vector that can only have grown, so it could offer only less.
        if round_ >= PUBLISH_ROUNDS and not quarantined and heads == [await _head(s) for s in stores]:
            break
    else:
        raise AssertionError(f"no quiescence after {MAX_ROUNDS} rounds")
    await _observe(stores, ids, observed)
    return observed


async def _head(store: Store) -> int:
    """The store's head as its feeds see it (cached, and exact for writes made by this process)."""
    return await store.wait_for_growth(0, timeout=0)


async def _publish(store: Store, item: Published, index: int) -> RecordId:
    author = NODES[item.record.author]
    scope = real_scope(item.record.scope)

    def build(seq: int, prev: RecordId | None) -> Record:
        kind, document = item.record.kind, item.document
        return make_record(
            author, seq, prev, kind=kind, document=document, scope=scope, tag=f"oracle {index}"
        )

    record = await store.publish(author.public_key.raw, build)
    return record.id


async def _exchange(
    fed: Federation,
    stores: list[Store],
    policies: list[Policy],
    us: list[Recipient],
    sessions: dict[tuple[int, int], _Session],
    observed: Observed,
    schedule: random.Random,
    u: int,
    v: int,
) -> int:
    """One turn of u's feed to v: (re)subscribe if the session is new or dropped, then one batch (or
    `idle`) up to u's head. Returns how many records v newly quarantined."""
    publisher, subscriber = stores[u], stores[v]
    session = sessions.get((u, v))
    if session is None and await _head(publisher) == 0:
        return 0  # a session now would only hear `idle`; it starts once the publisher has a record
    if session is None or schedule.random() < RECONNECT:
        peer = await subscriber.peers.get(NODES[u].public_key.raw)
        request = decode_message(encode_message(await subscription_for(subscriber, peer)))
        assert isinstance(request, Subscribe)
        session = sessions[(u, v)] = _Session(request, request.cursor)
    if await publisher.wait_for_growth(session.position, timeout=0) <= session.position:
        return 0
    entries = await publisher.read_log(session.position, limit=READ_AHEAD)
    selection = select_for(
        entries,
        _recipient(fed, u, v),
        kinds=frozenset(session.request.kinds),
        vector=session.request.vector,
        policy=policies[u],
        our_key=NODES[u].public_key.raw,
        now_ms=NOW,
        network=NETWORK,
    )
    session.position = entries[-1].position
    message: Batch | CaughtUp = (
        Batch(session.position, tuple(selection.items)) if selection.items else CaughtUp(session.position)
    )
    received = decode_message(encode_message(message))
    assert isinstance(received, Batch | CaughtUp)
    items: tuple[FeedItem, ...] = received.items if isinstance(received, Batch) else ()
    sender = _recipient(fed, v, u)

    def screen(arrival: Arrival, hops: int) -> InboundDecision:
        return screen_arrival(arrival, hops, sender=sender, us=us[v], policy=policies[v], now=NOW)

    report = await subscriber.ingest(
        [item.wire for item in items],
        source=NODES[u].public_key.raw,
        hops=[item.hops for item in items],
        cursor=received.upto,
        screen=screen,
    )
    observed.invalid += [r.reason for r in report.rejected if r.invalid]
    refused = [r.reason for r in report.rejected if r.misbehaved]
    if refused:
        observed.misbehaved.setdefault((u, v), []).extend(refused)
    return len(report.quarantined)


async def _observe(stores: list[Store], ids: list[RecordId], observed: Observed) -> None:
    index = {rid: i for i, rid in enumerate(ids)}
    for node, store in enumerate(stores):
        for entry in await store.read_log(0, limit=10_000):
            record = verify_record(entry.wire, network=NETWORK)
            observed.stored[node][index[record.id]] = Holding(entry.hops, frozenset(record.disclosures))
        for held in await store.quarantined():
            observed.quarantined[node][index[held.record.id]] = frozenset(held.record.disclosures)
