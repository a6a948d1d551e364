"""One verified record as STIX 2.1 objects (stix_common has the ids, markings and timestamps).

    contact -> identity (with contact_information), its country as a location, and "located-at"
    lead    -> observables (SCOs), observed-data, an indicator whose pattern names them, "based-on";
               a lead with no indicator-shaped subject becomes a note; a referral (a lead requesting
               assistance) is also a grouping of all of that
    trend   -> note
Every object carries the record's TLP 2.0 marking and is created by the author's identity; every domain
object carries an external reference to the record id, so a reader can always find the signed record.

Rule 1: redacted fields are simply absent (the record lists them); nothing is invented to fill a gap.
Rule 2: the objects are built as plain dicts, not with the stix2 library: building an indicator there
costs about 2 ms, nearly all of it re-parsing the pattern we just wrote from canonical values, which
would dominate a TAXII page. tests/lapnode/test_interop_stix.py checks every shape built here with
stix2-validator (strict) and stix2.parse(allow_custom=False).
Rule 3: only vocabulary values of STIX 2.1 are used in open-vocabulary properties.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from keys.identity import node_id_from_public_key
from lapnode.interop.stix_common import (
    SPEC_VERSION,
    TLP_MARKING_IDS,
    StixObject,
    object_id,
    observable_id,
    timestamp,
)
from protocol.envelope import Record
from protocol.kinds import ContactBody, LeadBody, Subject, TrendBody
from protocol.kinds.documents import render_time

_SECTORS: Final[Mapping[str, str]] = {
    "enforcement": "government-national",
    "government": "government",
    "interest-group": "non-profit",
}
_HASH_NAMES: Final[Mapping[str, str]] = {
    "md5": "MD5",
    "sha1": "SHA-1",
    "sha256": "SHA-256",
    "sha512": "SHA-512",
    "sha3-256": "SHA3-256",
    "sha3-512": "SHA3-512",
}
# lapnode violation types that say "this is an attack" rather than a nuisance.
_INDICATOR_TYPES: Final[Mapping[str, str]] = {
    "phishing": "malicious-activity",
    "malware": "malicious-activity",
}


@dataclass(frozen=True)
class Observable:
    """An SCO and the STIX pattern comparison that matches it."""

    sco: StixObject
    comparison: str


def author_identity_id(author: bytes) -> str:
    return object_id("identity", b"", b"author", author)


def author_identity(author: bytes, name: str | None, tlp: str) -> StixObject:
    node_id = node_id_from_public_key(author)
    return {
        "type": "identity",
        "spec_version": SPEC_VERSION,
        "id": author_identity_id(author),
        "created": timestamp(0),
        "modified": timestamp(0),
        "name": name or node_id,
        "identity_class": "organization",
        "description": f"lapnode node {node_id}",
        "object_marking_refs": [TLP_MARKING_IDS[tlp]],
    }


def _quote(value: str) -> str:
    # STIX patterning §9.4: a string literal is single-quoted; a quote or backslash in it is escaped.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _sco(sco_type: str, contributing: dict[str, object], tlp: str) -> StixObject:
    sco: StixObject = {"type": sco_type, "spec_version": SPEC_VERSION}
    sco["id"] = observable_id(sco_type, contributing)
    sco.update(contributing)
    sco["object_marking_refs"] = [TLP_MARKING_IDS[tlp]]
    return sco


def observable(subject: Subject, tlp: str) -> Observable | None:
    """The SCO for a lead subject, or None for subjects STIX has no observable for (names, phones,
    payment accounts, hashes of unknown algorithm)."""
    kind, value = subject.type, subject.value
    if kind in ("domain", "url", "email", "ip"):
        sco_type = {"domain": "domain-name", "url": "url", "email": "email-addr"}.get(kind)
        if sco_type is None:
            sco_type = "ipv6-addr" if ":" in value else "ipv4-addr"
        operator = "ISSUBSET" if kind == "ip" and "/" in value else "="
        return Observable(
            _sco(sco_type, {"value": value}, tlp), f"{sco_type}:value {operator} {_quote(value)}"
        )
    if kind == "asn":
        number = int(value[2:])
        return Observable(
            _sco("autonomous-system", {"number": number}, tlp), f"autonomous-system:number = {number}"
        )
    if kind == "message-hash":
        algorithm, _, digest = value.rpartition(":")
        name = _HASH_NAMES.get(algorithm)
        if name is None:
            return None
        sco = _sco("file", {"hashes": {name: digest}}, tlp)
        return Observable(sco, f"file:hashes.'{name}' = {_quote(digest)}")
    return None


class RecordObjects:
    """Builds the objects for one record; `objects()` returns them, referenced objects first."""

    def __init__(self, record: Record, author_name: str | None) -> None:
        self.record = record
        self.tlp = record.header.scope.tlp
        self.author_name = author_name
        self.rid = bytes(record.id)
        self.created = timestamp(record.header.created)
        self.marking = [TLP_MARKING_IDS[self.tlp]]
        self.author_ref = author_identity_id(record.header.author)

    def new_id(self, object_type: str, role: str = "") -> str:
        return object_id(object_type, self.rid, self.rid, role.encode())

    def common(self, object_type: str, role: str = "") -> StixObject:
        return {
            "type": object_type,
            "spec_version": SPEC_VERSION,
            "id": self.new_id(object_type, role),
            "created_by_ref": self.author_ref,
            "created": self.created,
            "modified": self.created,
            "object_marking_refs": list(self.marking),
            "external_references": [{"source_name": "lapnode", "external_id": self.record.id.hex()}],
        }

    def objects(self) -> list[StixObject]:
        head = [author_identity(self.record.header.author, self.author_name, self.tlp)]
        body = self.record.body
        if isinstance(body, LeadBody):
            return head + self._lead(body)
        if isinstance(body, ContactBody):
            return head + self._contact(body)
        if isinstance(body, TrendBody):
            return [*head, self._trend(body)]
        return []  # a kind this node cannot read is never exported: we would not know what it says

    def _contact(self, body: ContactBody) -> list[StixObject]:
        identity = self.common("identity")
        name = " / ".join(p for p in (body.organisation, body.unit) if p) or f"contact {self.rid.hex()[:12]}"
        identity |= {"name": name, "identity_class": "organization"}
        sector = _SECTORS.get(body.category or "")
        if sector is not None:
            identity["sectors"] = [sector]
        if body.role:
            identity["roles"] = [body.role]
        if body.notes:
            identity["description"] = body.notes
        reach = [f"email: {e}" for e in body.emails or ()] + [f"phone: {p}" for p in body.phones or ()]
        for label, value in (("person", body.person), ("hours", body.hours), ("timezone", body.timezone)):
            if value:
                reach.append(f"{label}: {value}")
        if body.languages:
            reach.append("languages: " + ", ".join(body.languages))
        if reach:
            identity["contact_information"] = "\n".join(reach)
        if body.jurisdiction is None:
            return [identity]
        location: StixObject = {
            "type": "location",
            "spec_version": SPEC_VERSION,
            "id": object_id("location", b"", b"country", body.jurisdiction.encode()),
            "created": timestamp(0),
            "modified": timestamp(0),
            "country": body.jurisdiction,
            "object_marking_refs": list(self.marking),
        }
        located = self.common("relationship", "located-at")
        located |= {
            "relationship_type": "located-at",
            "source_ref": identity["id"],
            "target_ref": location["id"],
        }
        return [identity, location, located]

    def _trend(self, body: TrendBody) -> StixObject:
        note = self.common("note")
        lines = [body.summary_line()]
        lines += [f"{entry.key}: {entry.value}" for entry in body.breakdown or ()]
        lines += [text for text in (body.method, body.commentary) if text]
        note |= {"abstract": body.summary_line()[:200], "content": "\n\n".join(lines)}
        note["object_refs"] = [self.author_ref]
        return note

    def _lead(self, body: LeadBody) -> list[StixObject]:
        seen = [observable(s, self.tlp) for s in body.subjects or ()]
        found = [o for o in seen if o is not None]
        scos = list({o.sco["id"]: o.sco for o in found}.values())
        result: list[StixObject] = list(scos)
        title = body.title or f"lapnode lead {self.rid.hex()[:12]}"
        core: list[str] = []
        if scos:
            observed = self.common("observed-data")
            first = body.first_seen if body.first_seen is not None else self.record.header.created
            last = max(body.last_seen if body.last_seen is not None else first, first)
            observed |= {"first_observed": timestamp(first), "last_observed": timestamp(last)}
            observed |= {"number_observed": 1, "object_refs": [s["id"] for s in scos]}
            result.append(observed)
            core.append(str(observed["id"]))
            indicator = self._indicator(body, title, found, first)
            result.append(indicator)
            based_on = self.common("relationship", "based-on")
            based_on |= {"relationship_type": "based-on", "source_ref": indicator["id"]}
            based_on["target_ref"] = observed["id"]
            result.append(based_on)
            core.insert(0, str(indicator["id"]))
        else:
            note = self.common("note")
            note |= {"abstract": title, "content": _lead_text(body), "object_refs": [self.author_ref]}
            result.append(note)
            core.append(str(note["id"]))
        assistance = [a for a in body.requested_assistance or () if a != "none"]
        if assistance:
            grouping = self.common("grouping")
            grouping |= {"name": title, "context": "suspicious-activity"}
            grouping["description"] = "Referral requesting: " + ", ".join(assistance)
            grouping["object_refs"] = core + [s["id"] for s in scos]
            result.append(grouping)
        return result

    def _indicator(self, body: LeadBody, title: str, found: list[Observable], first: int) -> StixObject:
        indicator = self.common("indicator")
        violations = body.violation_types or ()
        kinds = sorted({_INDICATOR_TYPES.get(v, "anomalous-activity") for v in violations}) or ["unknown"]
        pattern = " OR ".join(f"[{o.comparison}]" for o in found)
        indicator |= {"name": title, "description": _lead_text(body), "indicator_types": kinds}
        indicator |= {"pattern": pattern, "pattern_type": "stix", "pattern_version": SPEC_VERSION}
        indicator["valid_from"] = timestamp(first)
        expires = self.record.header.scope.expires
        if expires is not None and expires > first:
            indicator["valid_until"] = timestamp(expires)
        if violations:
            indicator["labels"] = list(violations)
        return indicator


def _lead_text(body: LeadBody) -> str:
    """The lead's prose and the facts STIX has no property for, as readable text."""
    parts = [body.summary] if body.summary else []
    facts = []
    if body.status:
        facts.append(f"Status: {body.status}")
    if body.violation_types:
        facts.append("Violations: " + ", ".join(body.violation_types))
    if body.victim_locations:
        facts.append("Victims in: " + ", ".join(body.victim_locations))
    if body.first_seen is not None:
        facts.append(f"First seen: {render_time(body.first_seen)}")
    if body.estimated_victims is not None:
        facts.append(f"Estimated victims: {body.estimated_victims}")
    if body.legal_basis:
        facts.append(f"Legal basis: {body.legal_basis}")
    others = [f"{s.type} {s.value}" for s in body.subjects or () if observable(s, "clear") is None]
    if others:
        facts.append("Other subjects: " + "; ".join(others))
    facts += [f"Evidence {e.digest}: {e.description}" for e in body.evidence or ()]
    return "\n\n".join(parts + (["\n".join(facts)] if facts else [])) or "(no description disclosed)"
