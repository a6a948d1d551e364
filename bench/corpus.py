"""Realistic signed records for benchmarks, from fixed seeds so every run measures the same bytes."""

from __future__ import annotations

import random
from collections.abc import Iterator

from keys.identity import Identity
from protocol.envelope import RecordId, build_record
from protocol.kinds import SCHEMA_VERSIONS, body_from_document
from protocol.scope import Scope

NETWORK = "bench"
_COUNTRIES = ["NL", "GB", "US", "AU", "CA", "FR", "DE", "BE", "JP", "KR", "NZ", "BR", "ES", "IT", "IE"]
_BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _contact(rng: random.Random, n: int) -> dict[str, object]:
    country = rng.choice(_COUNTRIES)
    return {
        "organisation": f"Authority {n} of {country}",
        "unit": "Spam enforcement",
        "role": "international liaison",
        "emails": [f"liaison{n}@authority{n}.example"],
        "phones": [f"+31{rng.randrange(10**8, 10**9)}"],
        "languages": ["en"],
        "jurisdiction": country,
        "category": "enforcement",
        "topics": ["email-spam", "phishing"],
    }


def lead_document(rng: random.Random, n: int, *, domains: int = 5000) -> dict[str, object]:
    """A realistic lead body; `n` varies the subjects, among `domains` distinct domains."""
    domain = f"pharma-{n % domains}.example"
    return {
        "title": f"Pharmacy spam campaign {n}",
        "summary": "Unsolicited email advertising unlicensed medicines, sent through compromised hosts.",
        "violation_types": ["unsolicited-email", "fraud"],
        "status": rng.choice(["verified", "suspected"]),
        "subjects": [
            {"type": "domain", "value": domain},
            {"type": "ip", "value": f"198.51.{n % 256}.{(n // 256) % 256}"},
            {"type": "email", "value": f"sales@{domain}"},
        ],
        "victim_locations": rng.sample(_COUNTRIES, 2),
        "requested_assistance": ["information"],
    }


def trend_document(rng: random.Random, n: int) -> dict[str, object]:
    start = _BASE_MS + (n % 52) * 7 * 86_400_000
    return {
        "period_start": start,
        "period_end": start + 7 * 86_400_000,
        "jurisdiction": rng.choice(_COUNTRIES),
        "category": "sms-spam",
        "metric": "complaints",
        "value": rng.randrange(100, 100_000),
        "unit": "count",
    }


_MAKERS = (("contact", _contact, 1), ("lead", lead_document, 6), ("trend", trend_document, 3))


def signed_records(count: int, authors: int, seed: int = 7) -> Iterator[bytes]:
    """`count` records from `authors` authors, interleaved round-robin, each author's in sequence."""
    rng = random.Random(seed)
    identities = [Identity.from_seed(rng.randbytes(32)) for _ in range(authors)]
    heads: list[tuple[int, RecordId | None]] = [(0, None)] * authors
    kinds = [kind for kind, _, weight in _MAKERS for _ in range(weight)]
    makers = {kind: maker for kind, maker, _ in _MAKERS}
    for n in range(count):
        index = n % authors
        seq, prev = heads[index]
        kind = kinds[n % len(kinds)]
        fields = body_from_document(kind, makers[kind](rng, n))
        record = build_record(
            identities[index],
            network=NETWORK,
            kind=kind,
            schema=SCHEMA_VERSIONS[kind],
            seq=seq + 1,
            prev=prev,
            created=_BASE_MS + n * 1000,
            scope=Scope.create("green", relay_hops=3),
            fields=fields,
            salts={name: rng.randbytes(16) for name in fields},
        )
        heads[index] = (seq + 1, record.id)
        yield record.wire
