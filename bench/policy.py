"""`python -m bench policy`: the disclosure decision, as a feed makes it, on one core.

The records are real signed records with mixed kinds, TLP labels, flags, audiences, embargoes and
expiry dates, read back as the store's log entries (what `Feed._select` decides on: the scope comes
from the store's cache of parsed scopes). The rules are docs/examples/policy.toml: the four worked
examples of docs/policy.md and four more. The peers are twenty recipients of every category, in and out
of the EEA and the adequacy countries, a few of them with attributes the operator never pinned. Some
records are this node's own, the others were relayed to it.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

from bench.corpus import NETWORK, lead_document
from bench.report import emit
from keys.identity import Identity
from lapnode.policy import Recipient, decide, load_policy
from lapnode.store import LogEntry
from protocol.envelope import build_record
from protocol.kinds import SCHEMA_VERSIONS, body_from_document
from protocol.scope import CATEGORIES, Scope, canonical_scope, scope_from_canonical

EXAMPLE_POLICY = Path(__file__).resolve().parents[1] / "docs" / "examples" / "policy.toml"
_NOW = 1_767_225_600_000 + 180 * 86_400_000
_DAY = 86_400_000
_JURISDICTIONS = ["NL", "DE", "FR", "IE", "NO", "GB", "CH", "JP", "KR", "US", "CA", "AU", "BR", "IN", "KP"]
_FLAGS = ["personal-data", "commercially-sensitive", "law-enforcement-only"]


def _peers(rng: random.Random, count: int) -> list[Recipient]:
    categories = sorted(CATEGORIES)
    peers = []
    for n in range(count):
        unpinned = n % 10 == 9  # one in ten: the operator never pinned its attributes
        peers.append(
            Recipient(
                Identity.from_seed(rng.randbytes(32)).public_key.raw,
                f"Peer {n}",
                None if unpinned else categories[n % len(categories)],
                None if unpinned else _JURISDICTIONS[n % len(_JURISDICTIONS)],
            )
        )
    return peers


def _scope(rng: random.Random, peers: list[Recipient]) -> Scope:
    tlp = rng.choices(["clear", "green", "amber", "amber+strict", "red"], weights=[2, 5, 5, 1, 1])[0]
    keys = [p.key for p in peers]
    members = rng.sample(keys, rng.choice([1, 2])) if tlp == "red" or rng.random() < 0.05 else []
    categories = (
        rng.sample(sorted(CATEGORIES), rng.choice([0, 0, 2, 3])) if tlp in ("amber", "amber+strict") else []
    )
    deny = rng.sample(_JURISDICTIONS, 1) if rng.random() < 0.1 else []
    allow = [] if deny or rng.random() < 0.85 else rng.sample(_JURISDICTIONS, 5)
    return Scope.create(
        tlp,
        relay_hops=rng.choice([0, 1, 2, 3, 3, 3, 3, 3]),
        categories=categories,
        members=members,
        jurisdictions_allow=allow,
        jurisdictions_deny=deny,
        flags=[flag for flag in _FLAGS if rng.random() < 0.15],
        embargo_until=_NOW + _DAY if rng.random() < 0.03 else None,
        expires=_NOW + rng.choice([-1, 30, 30, 90, 90, 180]) * _DAY if rng.random() < 0.3 else None,
    )


def _document(rng: random.Random, kind: str, n: int) -> dict[str, object]:
    if kind == "lead":
        return lead_document(rng, n)
    if kind == "contact":
        return {
            "organisation": f"Authority {n}",
            "person": f"Liaison officer {n}",
            "emails": [f"liaison{n}@authority{n}.example"],
            "jurisdiction": rng.choice(_JURISDICTIONS),
            "category": "enforcement",
        }
    start = 1_767_225_600_000 + (n % 52) * 7 * _DAY
    return {
        "period_start": start,
        "period_end": start + 7 * _DAY,
        "jurisdiction": rng.choice(_JURISDICTIONS),
        "category": "sms-spam",
        "metric": "complaints",
        "value": rng.randrange(100, 100_000),
        "unit": "count",
    }


def _log(rng: random.Random, count: int, peers: list[Recipient], authors: list[Identity]) -> list[LogEntry]:
    """`count` records as the store's log hands them to a feed (a scope object shared per encoding)."""
    entries = []
    for n in range(count):
        author = authors[n % len(authors)]
        kind = rng.choices(["lead", "contact", "trend"], weights=[6, 2, 2])[0]
        fields = body_from_document(kind, _document(rng, kind, n))
        record = build_record(
            author,
            network=NETWORK,
            kind=kind,
            schema=SCHEMA_VERSIONS[kind],
            seq=1,
            prev=None,
            created=_NOW - _DAY + n,
            scope=_scope(rng, peers),
            fields=fields,
            salts={name: rng.randbytes(16) for name in fields},
        )
        scope = scope_from_canonical(canonical_scope(record.header.scope))
        hops = 0 if author is authors[0] else rng.choice([0, 0, 0, 1])
        entries.append(
            LogEntry(n + 1, hops, None, record.wire, record.header.author, n + 1, kind, scope, record.id)
        )
    return entries


def run(*, records: int, peers: int, rounds: int, seed: int = 11) -> None:
    rng = random.Random(seed)
    policy = load_policy(EXAMPLE_POLICY)
    recipients = _peers(rng, peers)
    authors = [Identity.from_seed(rng.randbytes(32)) for _ in range(8)]
    our_key = authors[0].public_key.raw  # an eighth of the records are this node's own
    log = _log(rng, records, recipients, authors)
    outcomes: Counter[str] = Counter()
    decisions = 0
    start = time.perf_counter()
    for _ in range(rounds):
        for recipient in recipients:  # a feed decides for one subscriber over the whole log
            for entry in log:
                decision = decide(
                    entry,
                    recipient,
                    now_ms=_NOW,
                    our_key=our_key,
                    hops=entry.hops,
                    policy=policy,
                    via="gossip",
                )
                outcomes[decision.action] += 1
        decisions += len(recipients) * len(log)
    elapsed = time.perf_counter() - start
    emit("policy", "decisions_per_s", decisions / elapsed)
    for action in ("send", "redact", "withhold"):
        emit("policy", f"share_{action}", outcomes[action] / decisions)
