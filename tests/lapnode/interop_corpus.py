"""Real signed records of every kind and TLP for the interop tests, and the log rows an export reads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from keys.identity import Identity
from lapnode.config import Config
from lapnode.exits import Audience, local_audience
from lapnode.interop.disclosure import Disclosed, decide_rows
from lapnode.policy import NO_RULES, Policy
from lapnode.store import ExportRow
from protocol.envelope import Record, RecordId
from protocol.scope import Scope
from tests.factories import T0, contact_document, identity, make_record

AUTHOR = identity("interop-author")
CONFIG = Config.create(org="OPTA", jurisdiction="NL", category="enforcement", network="test-net")
# This node's own organisation, as `lapnode export stix --out out.json` (no --for, no --public) serves it.
LOCAL = local_audience(CONFIG, audit_recipient="export-stix:out.json")

REFERRAL = {
    "title": "Pharmacy spam with a phishing twist",
    "summary": "Unsolicited email advertising unlicensed medicines, linking to a credential phish.",
    "status": "verified",
    "violation_types": ["unsolicited-email", "phishing"],
    "subjects": [
        {"type": "domain", "value": "pharma-spam.example"},
        {"type": "ip", "value": "198.51.100.7"},
        {"type": "ip", "value": "2001:db8::/32"},
        {"type": "url", "value": "http://pharma-spam.example/buy?id='1'"},
        {"type": "email", "value": "sales@pharma-spam.example"},
        {"type": "asn", "value": "AS64500"},
        {"type": "phone", "value": "+31 70 123 4567"},
        {"type": "name", "value": "Cheap Pills Ltd"},
        {"type": "payment-account", "value": "NL91 ABNA 0417 1643 00"},
        {"type": "message-hash", "value": "sha256:" + "ab" * 32},
    ],
    "first_seen": "2026-01-05",
    "last_seen": "2026-02-01",
    "estimated_victims": 120,
    "victim_locations": ["NL", "GB"],
    "evidence": [{"digest": "sha256:" + "cd" * 32, "description": "spamtrap message"}],
    "requested_assistance": ["investigation", "takedown"],
}
NAMES_ONLY = {
    "title": "Boiler-room caller",
    "summary": "A caller selling fake shares.",
    "status": "suspected",
    "subjects": [{"type": "name", "value": "Golden Shares BV"}],
}
TREND = {
    "period_start": "2026-01-01",
    "period_end": "2026-01-31",
    "category": "email-spam",
    "metric": "complaints",
    "value": 1234,
    "unit": "count",
    "jurisdiction": "NL",
    "breakdown": [{"key": "pharma", "value": 400}],
}


@dataclass(frozen=True)
class Corpus:
    contact: Record
    referral: Record
    names_only: Record
    trend: Record
    strict: Record
    red: Record
    green_lead: Record

    def all(self) -> list[Record]:
        return [
            self.contact,
            self.referral,
            self.names_only,
            self.trend,
            self.strict,
            self.red,
            self.green_lead,
        ]


def build(author: Identity = AUTHOR) -> Corpus:
    made: list[Record] = []
    prev: RecordId | None = None

    def add(kind: str, document: dict[str, object], scope: Scope) -> Record:
        nonlocal prev
        record = make_record(author, len(made) + 1, prev, kind=kind, document=document, scope=scope)
        made.append(record)
        prev = record.id
        return record

    return Corpus(
        contact=add("contact", contact_document(), Scope.create("green")),
        referral=add("lead", REFERRAL, Scope.create("amber", expires=T0 + 10**12)),
        names_only=add("lead", NAMES_ONLY, Scope.create("clear")),
        trend=add("trend", TREND, Scope.create("green")),
        strict=add("lead", {**NAMES_ONLY, "title": "STRICT-SECRET lead"}, Scope.create("amber+strict")),
        red=add(
            "lead", {**REFERRAL, "title": "RED-SECRET lead"}, Scope.create("red", members=[b"\x01" * 32])
        ),
        green_lead=add(
            "lead", {**REFERRAL, "title": "Green lead", "requested_assistance": []}, Scope.create("green")
        ),
    )


def row_of(record: Record, position: int, *, hops: int = 0, received_at: int = T0) -> ExportRow:
    header = record.header
    return ExportRow(
        position, received_at, hops, header.author, header.kind, header.scope, record.wire, record.id
    )


def rows(records: list[Record]) -> list[ExportRow]:
    return [row_of(record, n + 1) for n, record in enumerate(records)]


def disclose(
    items: Iterable[ExportRow],
    audience: Audience,
    *,
    now_ms: int,
    our_key: bytes,
    network: str,
    policy: Policy = NO_RULES,
) -> list[Disclosed]:
    """What the export adapter lets out of `items` for `audience` (the exits record the decisions too)."""
    decided = decide_rows(items, audience, policy=policy, now_ms=now_ms, our_key=our_key, network=network)
    return [item.disclosed for item in decided if item.disclosed is not None]
