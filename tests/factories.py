"""Building real signed records for tests (real keys, real signatures, fixed seeds)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from keys.identity import Identity
from protocol.envelope import Record, RecordId, build_record
from protocol.kinds import SCHEMA_VERSIONS, body_from_document
from protocol.scope import SEALED_FLAG, Scope
from protocol.sealed import SealingSecrets, build_sealed_record

NETWORK = "test-net"
T0 = 1_780_000_000_000


def identity(name: str) -> Identity:
    return Identity.from_seed(hashlib.sha256(name.encode()).digest())


def salts_for(fields: Mapping[str, object], tag: str) -> dict[str, bytes]:
    return {name: hashlib.blake2b(f"{tag}/{name}".encode(), digest_size=16).digest() for name in fields}


def lead_document(n: int = 1, domain: str = "pharma-spam.example") -> dict[str, object]:
    return {
        "title": f"Pharmacy spam campaign {n}",
        "summary": "Unsolicited email advertising unlicensed medicines.",
        "violation_types": ["unsolicited-email"],
        "status": "suspected",
        "subjects": [
            {"type": "domain", "value": domain},
            {"type": "ip", "value": "198.51.100.7"},
        ],
        "victim_locations": ["NL", "GB"],
        "requested_assistance": ["information"],
    }


def contact_document(country: str = "NL") -> dict[str, object]:
    return {
        "organisation": "OPTA",
        "unit": "Spam enforcement",
        "emails": ["spam@opta.example"],
        "jurisdiction": country,
        "category": "enforcement",
        "topics": ["email-spam"],
    }


def sealing_for(tag: str) -> SealingSecrets:
    """Fixed sealing secrets (content key, nonce, ephemeral secret) derived from a label."""

    def derive(part: str, size: int) -> bytes:
        return hashlib.blake2b(f"{tag}/{part}".encode(), digest_size=size).digest()

    return SealingSecrets(derive("content key", 32), derive("nonce", 24), derive("ephemeral", 32))


def make_record(
    author: Identity,
    seq: int,
    prev: RecordId | None,
    *,
    kind: str = "lead",
    document: Mapping[str, object] | None = None,
    created: int | None = None,
    scope: Scope | None = None,
    network: str = NETWORK,
    tag: str = "",
) -> Record:
    if kind in SCHEMA_VERSIONS:
        fields = body_from_document(kind, document if document is not None else lead_document(seq))
        schema = SCHEMA_VERSIONS[kind]
    else:
        fields = dict(document or {"note": f"opaque {seq}"})  # type: ignore[arg-type]
        schema = 1
    scope = scope or Scope.create("green")
    created = created if created is not None else T0 + seq * 1000
    if SEALED_FLAG in scope.flags:
        # A scope with the flag `sealed` makes a sealed record of the same body (SPEC §3.7).
        label = f"{author.node_id}/{seq}/{tag}"
        return build_sealed_record(
            author,
            network=network,
            kind=kind,
            schema=schema,
            seq=seq,
            prev=prev,
            created=created,
            scope=scope,
            fields=fields,
            salt=salts_for({"sealed": None}, label)["sealed"],
            sealing=sealing_for(label),
        )
    return build_record(
        author,
        network=network,
        kind=kind,
        schema=schema,
        seq=seq,
        prev=prev,
        created=created,
        scope=scope,
        fields=fields,
        salts=salts_for(fields, f"{author.node_id}/{seq}/{tag}"),
    )


def chain(author: Identity, count: int, **kwargs: object) -> list[Record]:
    result: list[Record] = []
    prev: RecordId | None = None
    for seq in range(1, count + 1):
        record = make_record(author, seq, prev, **kwargs)  # type: ignore[arg-type,unused-ignore]
        result.append(record)
        prev = record.id
    return result
