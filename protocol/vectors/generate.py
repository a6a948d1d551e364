"""Rebuild the golden vectors of protocol/SPEC.md Appendix B: `python -m protocol.vectors.generate`.

Rule 1: no randomness and no clock. Authors are the RFC 8032 §7.1 test keys, every salt is BLAKE2b of a
label ("<vector>/<field>"), every time is a constant; Ed25519 is deterministic. So the output is a pure
function of this file and the protocol code, and `tests/protocol/test_vectors.py` compares it with the
committed JSON: a change to the wire format cannot go unnoticed.
Rule 2: records are made only by `protocol.envelope.build_record` and `redact`, the code under test. The
invalid vectors are forged here, each breaking exactly one rule of SPEC §3 and otherwise validly signed.
Rule 3: pure until `main`: `render()` returns the file texts; only `main` touches the filesystem.
The layout is described in protocol/vectors/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from keys.identity import Identity
from protocol import codec
from protocol.codec import Value
from protocol.envelope import (
    MAX_RECORD_SIZE,
    RECORD_DOMAIN,
    SALT_SIZE,
    Record,
    build_record,
    commitment,
    redact,
)
from protocol.scope import Scope

NETWORK: Final = "lapnode-vectors"
OTHER_NETWORK: Final = "lapnode-other"
SALT_PERSON: Final = b"lapnode.vsalt.v1"
T0: Final = 1_780_000_000_000  # 2026-05-28T20:26:40Z
HOUR: Final = 3_600_000
DAY: Final = 24 * HOUR

# RFC 8032 §7.1 TEST 1, 2 and 3: secret seeds anyone can check against the RFC.
SEEDS: Final[Mapping[str, bytes]] = {
    "rfc8032-test1": bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
    "rfc8032-test2": bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"),
    "rfc8032-test3": bytes.fromhex("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7"),
}
A: Final = "rfc8032-test1"
B: Final = "rfc8032-test2"


def identity(name: str) -> Identity:
    return Identity.from_seed(SEEDS[name])


def salt_for(label: str) -> bytes:
    return hashlib.blake2b(label.encode(), digest_size=SALT_SIZE, person=SALT_PERSON).digest()


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything `build_record` needs for one vector, with the predecessor named by its vector."""

    name: str
    comment: str
    author: str
    kind: str
    schema: int
    seq: int
    prev: str | None
    created: int
    scope: Scope
    fields: Mapping[str, Value]


CONTACT = Inputs(
    "contact",
    "A contact (kind contact, schema 1): the author's first record, with the default scope.",
    A,
    "contact",
    1,
    1,
    None,
    T0,
    Scope.create("green"),
    {
        "organisation": "Autoriteit Consument & Markt",
        "unit": "Spam enforcement",
        "role": "Point of contact",
        "emails": ["spam@acm.example"],
        "phones": ["+31707222000"],
        "languages": ["nl", "en"],
        "timezone": "Europe/Amsterdam",
        "jurisdiction": "NL",
        "category": "enforcement",
        "topics": ["email-spam", "phishing"],
    },
)
LEAD = Inputs(
    "lead",
    "A lead with subjects and a detriment, seq 2: its prev is the id of the contact vector (seq 1).",
    A,
    "lead",
    1,
    2,
    "contact",
    T0 + HOUR,
    Scope.create("amber", relay_hops=2, categories=["enforcement", "government"]),
    {
        "title": "Fake parcel-delivery SMS campaign",
        "summary": "SMS messages impersonating a parcel service link to a card-harvesting site.\n"
        "Reports from NL and BE.",
        "status": "verified",
        "violation_types": ["phishing", "unsolicited-sms"],
        "subjects": [
            {"type": "domain", "value": "parcel-track.example"},
            {"type": "url", "value": "https://parcel-track.example/pay?id=1"},
            {"type": "phone", "value": "+32470123456"},
            {"type": "ip", "value": "203.0.113.9"},
        ],
        "first_seen": 1_772_323_200_000,
        "last_seen": 1_773_964_800_000,
        "estimated_victims": 1200,
        "detriment": {"amount": 4_825_075, "currency": "EUR"},
        "victim_locations": ["BE", "NL"],
        "requested_assistance": ["information", "takedown"],
    },
)
NARROW = Inputs(
    "narrow-scope",
    "A lead with every scope clause: named members, jurisdictions, flags, embargo and expiry (seq 3).",
    A,
    "lead",
    1,
    3,
    "lead",
    T0 + 2 * HOUR,
    Scope.create(
        "amber+strict",
        relay_hops=0,
        categories=["enforcement"],
        members=[identity(B).public_key.raw, identity("rfc8032-test3").public_key.raw],
        jurisdictions_allow=["GB", "NL"],
        jurisdictions_deny=["US"],
        flags=["law-enforcement-only", "personal-data"],
        embargo_until=T0 + DAY,
        expires=T0 + 90 * DAY,
    ),
    {
        "title": "Named suspect in the parcel SMS campaign",
        "summary": "Payment account and name behind parcel-track.example.",
        "status": "suspected",
        "subjects": [
            {"type": "name", "value": "J. Doe"},
            {"type": "payment-account", "value": "NL00 BANK 0123 4567 89"},
        ],
    },
)
TREND = Inputs(
    "trend",
    "A trend (kind trend, schema 1) by a second author; a decimal string value in the breakdown.",
    B,
    "trend",
    1,
    1,
    None,
    T0,
    Scope.create("clear", relay_hops=16),
    {
        "period_start": 1_767_225_600_000,
        "period_end": 1_775_088_000_000,
        "category": "sms-spam",
        "metric": "complaints",
        "value": 18342,
        "unit": "count",
        "jurisdiction": "GB",
        "method": "Complaints received via the 7726 short code",
        "breakdown": [{"key": "smishing", "value": "61.5"}],
        "commentary": "Up 12% on the previous quarter.",
    },
)
OPAQUE = Inputs(
    "unknown-kind",
    "A kind no node knows yet (x-sighting, schema 3): verified, then kept with an opaque body. "
    "Its fields use every value type of SPEC §2.",
    B,
    "x-sighting",
    3,
    2,
    "trend",
    T0 + HOUR,
    Scope.create("green", relay_hops=1),
    {
        "count": -42,
        "digest": bytes.fromhex("00ff10ab"),
        "labels": ["a", "b"],
        "largest": 2**64 - 1,
        "nested": {"deep": [None, True, False], "empty": {}},
        "note": "Grüße ✓",
    },
)

REFERRAL = Inputs(
    "referral",
    "A referral (kind referral, schema 1) of the lead vector to B, embedding the lead's wire bytes. A "
    "referral always travels sealed to its recipient (SPEC §5.2); this vector is unsealed so that its "
    "body can be read here, and sealing is shown in sealed.json.",
    A,
    "referral",
    1,
    4,
    "narrow-scope",
    T0 + 3 * HOUR,
    Scope.create("amber", relay_hops=2, members=[identity(B).public_key.raw]),
    {
        "lead": "",  # filled in by build_all: the lead vector's id
        "lead_record": b"",  # and its wire bytes
        "request": "investigation",
        "due": T0 + 30 * DAY,
        "note": "The payment page is hosted in your jurisdiction.",
    },
)
REFERRAL_STATUS = Inputs(
    "referral-status",
    "B closes the referral vector with a fine (kind referral-status, schema 1), seq 3 of B.",
    B,
    "referral-status",
    1,
    3,
    "unknown-kind",
    T0 + 4 * HOUR,
    Scope.create("amber", relay_hops=2, members=[identity(A).public_key.raw]),
    {
        "referral": "",  # filled in by build_all: the referral vector's id
        "status": "closed",
        "outcome": "Hosting provider fined; the payment page was taken down.",
        "action": "fine",
        "penalty": {"amount": 2_500_000, "currency": "AUD"},
    },
)
INPUTS: Final = (CONTACT, LEAD, NARROW, TREND, OPAQUE, REFERRAL, REFERRAL_STATUS)
# (vector name, the vector it is a copy of, the fields withheld)
REDACTIONS: Final = (("lead-redacted", "lead", ("detriment", "subjects", "title")),)


def build(inputs: Inputs, built: Mapping[str, Record]) -> Record:
    inputs = _linked(inputs, built)
    return build_record(
        identity(inputs.author),
        network=NETWORK,
        kind=inputs.kind,
        schema=inputs.schema,
        seq=inputs.seq,
        prev=None if inputs.prev is None else built[inputs.prev].id,
        created=inputs.created,
        scope=inputs.scope,
        fields=inputs.fields,
        salts={name: salt_for(f"{inputs.name}/{name}") for name in inputs.fields},
    )


def _linked(inputs: Inputs, built: Mapping[str, Record]) -> Inputs:
    """A referral names and embeds the lead vector, a status names the referral vector (by their ids)."""
    if inputs.name == "referral":
        lead = built["lead"]
        fields = {**inputs.fields, "lead": lead.id.hex(), "lead_record": lead.wire}
    elif inputs.name == "referral-status":
        fields = {**inputs.fields, "referral": built["referral"].id.hex()}
    else:
        return inputs
    return dataclasses.replace(inputs, fields=fields)


def build_all() -> dict[str, Record]:
    built: dict[str, Record] = {}
    for inputs in INPUTS:
        built[inputs.name] = build(inputs, built)
    return built


def friendly(value: Value) -> Any:
    """The JSON form of a canonical value: bytes become lowercase hex strings, the rest is as is."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {key: friendly(item) for key, item in value.items()}
    if isinstance(value, list):
        return [friendly(item) for item in value]
    return value


def canonical_order(value: Value) -> Value:
    result: Value = codec.decode(codec.encode(value), max_size=MAX_RECORD_SIZE)
    return result


def record_vector(inputs: Inputs, record: Record) -> dict[str, Any]:
    author = identity(inputs.author)
    fields = canonical_order(dict(inputs.fields))
    net = NETWORK.encode()
    return {
        "name": inputs.name,
        "comment": inputs.comment,
        "seed_hex": SEEDS[inputs.author].hex(),
        "public_key_hex": author.public_key.raw.hex(),
        "node_id": author.node_id,
        "inputs": {
            "network": NETWORK,
            "kind": inputs.kind,
            "schema": inputs.schema,
            "seq": inputs.seq,
            "prev_hex": None if record.header.prev is None else record.header.prev.hex(),
            "created": inputs.created,
            "scope": friendly(canonical_order(inputs.scope.to_wire())),
            "fields": {
                name: {"value": friendly(value), "msgpack_hex": codec.encode(value).hex()}
                for name, value in fields.items()
            },
            "salts_hex": {name: record.disclosures[name][0].hex() for name in fields},
        },
        "commitments_hex": {name: digest.hex() for name, digest in record.header.commitments.items()},
        "header_hex": record.header_bytes.hex(),
        "signed_bytes_hex": (RECORD_DOMAIN + bytes([len(net)]) + net + record.header_bytes).hex(),
        "signature_hex": record.signature.hex(),
        "wire_hex": record.wire.hex(),
        "id_hex": record.id.hex(),
    }


def node_id_vector(name: str) -> dict[str, Any]:
    public_key = identity(name).public_key
    return {
        "name": name,
        "seed_hex": SEEDS[name].hex(),
        "public_key_hex": public_key.raw.hex(),
        "node_id": public_key.node_id,
    }


def redacted_vector(name: str, source: str, record: Record, withheld: Sequence[str]) -> dict[str, Any]:
    return {
        "name": name,
        "comment": f"The {source} vector with {', '.join(withheld)} withheld: same header, signature and id.",
        "redacted_from": source,
        "redacted": sorted(withheld),
        "wire_hex": redact(record, withheld).hex(),
        "id_hex": record.id.hex(),
    }


# --- invalid vectors -----------------------------------------------------------------------------------


_DROP: Final = object()  # a `_header` change that removes the key


def _header(record: Record, **changes: Value) -> dict[str, Value]:
    header: dict[str, Value] = codec.decode(record.header_bytes, max_size=MAX_RECORD_SIZE)
    for key, value in changes.items():
        if value is _DROP:
            del header[key]
        else:
            header[key] = value
    return header


def _disclosures(record: Record, **changes: Value) -> dict[str, Value]:
    disclosures: dict[str, Value] = {name: [s, v] for name, (s, v) in record.disclosures.items()}
    disclosures.update(changes)
    return disclosures


def _forge(
    record: Record,
    header: Mapping[str, Value] | bytes | None = None,
    disclosures: Mapping[str, Value] | None = None,
    *,
    signer: str = A,
    net: str = NETWORK,
    domain: bytes = RECORD_DOMAIN,
    envelope: Mapping[str, Value] | None = None,
) -> bytes:
    """`record` re-signed over a changed header, with changed disclosures or envelope entries."""
    if header is None:
        header_bytes = record.header_bytes
    else:
        header_bytes = header if isinstance(header, bytes) else codec.encode(header)
    raw_net = net.encode()
    signature = identity(signer).sign(domain, bytes([len(raw_net)]) + raw_net + header_bytes)
    outer: dict[str, Value] = {
        "f": _disclosures(record) if disclosures is None else disclosures,
        "h": header_bytes,
        "s": signature,
    }
    outer.update(envelope or {})
    return codec.encode(outer)


def _committed(record: Record, fields: Mapping[str, Value]) -> tuple[dict[str, Value], dict[str, Value]]:
    """A header committing to exactly `fields` (salted per name) and the matching disclosures."""
    salts = {name: salt_for(f"invalid/{name}") for name in fields}
    commit = {name: commitment(name, salts[name], value) for name, value in fields.items()}
    return _header(record, commit=commit), {name: [salts[name], value] for name, value in fields.items()}


def invalid_vectors(built: Mapping[str, Record]) -> list[dict[str, Any]]:
    contact, lead, unknown = built["contact"], built["lead"], built["unknown-kind"]
    title_salt, _ = lead.disclosures["title"]
    missing_status = _committed(lead, {"title": "t", "summary": "s"})
    undefined_field = _committed(contact, {**CONTACT.fields, "fax": "+31700000000"})
    flipped = bytearray(lead.signature)
    flipped[0] ^= 0x01
    header_map16 = b"\xde\x00" + bytes([len(_header(lead))]) + lead.header_bytes[1:]
    net = NETWORK.encode()
    # (name, SPEC §3.6 step, rule broken, the vector it is based on, wire bytes)
    table: list[tuple[str, int, str, str, bytes]] = [
        ("truncated", 1, "§2: the input ends inside a value", "lead", lead.wire[:-1]),
        ("trailing-byte", 1, "§2: bytes after the record", "lead", lead.wire + b"\x00"),
        ("envelope-map16", 1, "§2 rule 3: the envelope map is a map16, not a fixmap", "lead",
         b"\xde\x00\x03" + lead.wire[1:]),
        ("unknown-envelope-key", 1, "§3.1: an envelope key other than f, h, s", "lead",
         _forge(lead, envelope={"x": b""})),
        ("signature-63-bytes", 1, "§3.1: s is not 64 bytes", "lead",
         _forge(lead, envelope={"s": lead.signature[:63]})),
        ("salt-15-bytes", 1, "§3.3: a disclosure's salt is not 16 bytes", "lead",
         _forge(lead, None, _disclosures(lead, title=[title_salt[:15], LEAD.fields["title"]]))),
        ("header-map16", 2, "§2, §3.2: the header bytes are not canonical (validly signed)", "lead",
         _forge(lead, header_map16)),
        ("unknown-header-key", 2, "§3.2: a header key that is not defined", "lead",
         _forge(lead, _header(lead, extra=1))),
        ("version-2", 2, "§3.2: v is not 1", "lead", _forge(lead, _header(lead, v=2))),
        ("version-true", 2, "§2 rule 1, §3.2: v is the boolean true, not the integer 1", "lead",
         _forge(lead, _header(lead, v=True))),
        ("schema-0", 2, "§3.2: schema is below 1", "lead", _forge(lead, _header(lead, schema=0))),
        ("seq-0", 2, "§3.2: seq is 0", "contact", _forge(contact, _header(contact, seq=0))),
        ("prev-on-seq-1", 2, "§3.2: prev is present on seq 1", "contact",
         _forge(contact, _header(contact, prev=lead.id))),
        ("prev-nil-on-seq-1", 2, "§3.2: prev is present (as nil) on seq 1", "contact",
         _forge(contact, _header(contact, prev=None))),
        ("prev-absent-on-seq-2", 2, "§3.2: prev is absent on seq 2", "lead",
         _forge(lead, _header(lead, prev=_DROP))),
        ("created-2^53", 2, "§3.2: created is not below 2^53", "lead",
         _forge(lead, _header(lead, created=2**53))),
        ("scope-unsorted", 2, "§4: a set-like scope list is not sorted", "lead",
         _forge(lead, _header(lead, scope={"categories": ["government", "enforcement"], "relay_hops": 2,
                                           "tlp": "amber"}))),
        ("scope-overlap", 2, "§4: a jurisdiction is both allowed and denied", "lead",
         _forge(lead, _header(lead, scope={"jurisdictions_allow": ["NL"], "jurisdictions_deny": ["NL"],
                                           "relay_hops": 2, "tlp": "amber"}))),
        ("wrong-network", 2, f"§3.2: validly signed for network {OTHER_NETWORK!r}, not {NETWORK!r}", "lead",
         _forge(lead, _header(lead, net=OTHER_NETWORK), net=OTHER_NETWORK)),
        ("signature-bit-flipped", 3, "§3.2: the signature does not verify", "lead",
         _forge(lead, envelope={"s": bytes(flipped)})),
        ("author-replaced", 3, "§3.2: the header names another author than the signer", "lead",
         _forge(lead, _header(lead, author=identity(B).public_key.raw))),
        ("other-domain", 3, "§1, §3.2: signed under the domain 'lapnode/other/v1\\x00'", "lead",
         _forge(lead, domain=b"lapnode/other/v1\x00")),
        ("no-network-prefix", 3, "§3.2: signed over the header alone, without len(net) ‖ net", "lead",
         _forge(lead, envelope={"s": identity(A).sign(RECORD_DOMAIN, lead.header_bytes)})),
        ("network-not-length-prefixed", 3, "§3.2: signed over net ‖ h, without the length byte", "lead",
         _forge(lead, envelope={"s": identity(A).sign(RECORD_DOMAIN, net + lead.header_bytes)})),
        ("disclosure-without-commitment", 4, "§3.3: a disclosed field has no commitment", "lead",
         _forge(lead, None, _disclosures(lead, legal_basis=[salt_for("invalid/legal_basis"), "Art. 13"]))),
        ("commitment-mismatch", 4, "§3.3: a disclosed value does not match its commitment", "lead",
         _forge(lead, None, _disclosures(lead, title=[title_salt, "Fake parcel-delivery SMS campaign!"]))),
        ("salt-changed", 4, "§3.3: a disclosed salt does not match the commitment", "lead",
         _forge(lead, None, _disclosures(lead, title=[bytes(16), LEAD.fields["title"]]))),
        ("missing-required-field", 5, "§5: a lead that does not commit to its required field status", "lead",
         _forge(lead, *missing_status)),
        ("kind-not-a-name", 5, "§3.2, §5: the kind is not lowercase letters, digits and '-' (validly signed)",
         "unknown-kind", _forge(unknown, _header(unknown, kind="X-Sighting"), signer=B)),
        ("undefined-field", 5, "§5: a contact that discloses a field its schema does not define", "contact",
         _forge(contact, *undefined_field)),
    ]  # fmt: skip
    return [
        {"name": name, "step": step, "rule": rule, "based_on": based_on, "wire_hex": wire.hex()}
        for name, step, rule, based_on, wire in table
    ]


# --- output --------------------------------------------------------------------------------------------


def render() -> dict[str, str]:
    """The text of every vector file, by file name."""
    built = build_all()
    records = [record_vector(_linked(inputs, built), built[inputs.name]) for inputs in INPUTS]
    records += [
        redacted_vector(name, source, built[source], withheld) for name, source, withheld in REDACTIONS
    ]
    node_ids = [node_id_vector(name) for name in SEEDS]
    documents = {
        "records.json": {
            "description": "Golden records for protocol/SPEC.md Appendix B, laid out as "
            "protocol/vectors/README.md describes.",
            "generator": "python -m protocol.vectors.generate",
            "network": NETWORK,
            "node_ids": node_ids,
            "records": records,
        },
        "invalid.json": {
            "description": "Records every verifier must reject, each breaking one rule of "
            "protocol/SPEC.md; step is the §3.6 verification step that refuses it. "
            f"Verify them as network {NETWORK!r}.",
            "generator": "python -m protocol.vectors.generate",
            "network": NETWORK,
            "records": invalid_vectors(built),
        },
    }
    return {name: json.dumps(doc, indent=2, ensure_ascii=False) + "\n" for name, doc in documents.items()}


def write_or_check(prog: str, doc: str | None, files: Mapping[str, str], argv: Sequence[str] | None) -> int:
    """The command line both vector generators share: rewrite the files, or with --check compare them."""
    parser = argparse.ArgumentParser(prog=prog, description=doc)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if a file differs")
    arguments = parser.parse_args(argv)
    directory = Path(__file__).parent
    stale = []
    for name, text in files.items():
        path = directory / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not arguments.check:
            path.write_text(text, encoding="utf-8")
    verb = "differ" if arguments.check else "rewritten"
    print(f"{', '.join(stale) or 'no files'} {verb}")
    return 1 if arguments.check and stale else 0


def main(argv: Sequence[str] | None = None) -> int:
    return write_or_check("python -m protocol.vectors.generate", __doc__, render(), argv)


if __name__ == "__main__":
    sys.exit(main())
