"""Record envelopes (protocol/SPEC.md §3): every verifier rule broken once, and what must keep working.

Negative cases are forged with a valid signature wherever the rule under test is not the signature, so
each one fails at the rule it names and not earlier by accident. The `match` fragments pin that rule.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import bech32
import msgpack
import pytest

from keys.identity import Identity, PublicKey, node_id_from_public_key, public_key_from_node_id
from protocol import codec
from protocol.envelope import (
    MAX_RECORD_SIZE,
    MAX_SEQ,
    RECORD_DOMAIN,
    SALT_SIZE,
    Record,
    build_record,
    check_signature,
    complete,
    decode_unverified,
    peek_record_id,
    record_id,
    redact,
    verify_record,
)
from protocol.errors import InvalidRecord, Malformed, NonCanonical, ProtocolError
from protocol.kinds import LeadBody, OpaqueBody
from protocol.scope import MAX_TIME_MS, Scope
from tests import factories
from tests.factories import NETWORK

ALICE = factories.identity("alice")
BOB = factories.identity("bob")
LEAD = factories.make_record(ALICE, 1, None)
LEAD_2 = factories.make_record(ALICE, 2, LEAD.id)
CONTACT = factories.make_record(ALICE, 3, LEAD_2.id, kind="contact", document=factories.contact_document())

Header = dict[str, Any]
Disclosures = dict[str, list[Any]]


def header_of(record: Record) -> Header:
    header: Header = codec.decode(record.header_bytes, max_size=MAX_RECORD_SIZE)
    return header


def disclosures_of(record: Record) -> Disclosures:
    return {name: [salt, value] for name, (salt, value) in record.disclosures.items()}


def signed_message(header_bytes: bytes, net: str = NETWORK) -> bytes:
    raw_net = net.encode()
    return bytes([len(raw_net)]) + raw_net + header_bytes


def forge(
    header: Header | bytes,
    disclosures: Mapping[str, Any] | None = None,
    *,
    signer: Identity = ALICE,
    signed_net: str = NETWORK,
    domain: bytes = RECORD_DOMAIN,
    envelope: Mapping[str, Any] | None = None,
) -> bytes:
    """A record whose header (a map, or exact bytes) carries a good signature unless told otherwise."""
    header_bytes = header if isinstance(header, bytes) else codec.encode(header)
    signature = signer.sign(domain, signed_message(header_bytes, signed_net))
    outer: dict[str, Any] = {"f": disclosures_of(LEAD) if disclosures is None else disclosures}
    outer |= {"h": header_bytes, "s": signature}
    outer |= envelope or {}
    return codec.encode(outer)


def changed(base: Record = LEAD, **changes: Any) -> Header:
    header = header_of(base)
    header.update(changes)
    return header


def dropped(name: str, base: Record = LEAD) -> Header:
    header = header_of(base)
    del header[name]
    return header


def salt(label: str) -> bytes:
    return hashlib.blake2b(label.encode(), digest_size=SALT_SIZE, person=b"lapnode.testsalt").digest()


# --- the positive path -----------------------------------------------------------------------------------


def test_a_built_record_verifies() -> None:
    record = verify_record(LEAD.wire, network=NETWORK)
    assert record == LEAD
    assert isinstance(record.body, LeadBody)
    assert record.body.title == "Pharmacy spam campaign 1"
    assert record.redacted == frozenset()
    assert record.header.seq == 1 and record.header.prev is None
    assert record.wire == LEAD.wire


def test_record_id_is_blake2b_of_header_and_signature() -> None:
    expected = hashlib.blake2b(LEAD.header_bytes + LEAD.signature, digest_size=32, person=b"lapnode.recid.v1")
    assert LEAD.id == expected.digest() == record_id(LEAD.header_bytes, LEAD.signature)
    assert len(LEAD.id.hex()) == 64


def test_record_id_is_stable() -> None:
    # Ed25519 is deterministic and the encoding canonical: the same inputs give the same bytes and id.
    again = factories.make_record(ALICE, 1, None)
    assert again.wire == LEAD.wire
    assert again.id == LEAD.id
    assert verify_record(LEAD.wire, network=NETWORK).id == LEAD.id


def test_peek_finds_the_id_of_every_record_and_nothing_else() -> None:
    # A contact with more fields than the envelope has keys once slipped past the peek, which then
    # answered None and sent every held copy back through verification.
    many = {**factories.contact_document(), "unit": "Spam", "role": "Liaison", "person": "A. Person"}
    many |= {"phones": ["+31701234567"], "languages": ["en", "nl"], "notes": "Weekdays."}
    contact = factories.make_record(ALICE, 1, None, kind="contact", document=many)
    assert len(contact.disclosures) > 8
    for record in (LEAD, contact):
        assert peek_record_id(record.wire) == record.id
        assert peek_record_id(redact(record, list(record.disclosures)[:1])) == record.id
    assert peek_record_id(LEAD.wire[:-1]) is None
    assert peek_record_id(b"") is None
    assert peek_record_id(codec.encode({"h": LEAD.header_bytes, "s": LEAD.signature})) is None
    assert peek_record_id(codec.encode([1, 2, 3])) is None


def test_peek_answers_each_input_on_its_own_whatever_came_before() -> None:
    # The peek reuses one reader per thread: what is left of a bad or truncated input, or bytes after a
    # record, must never leak into the next answer.
    before = (LEAD.wire[:-1], LEAD.wire[:40], b"\x83", LEAD.wire + b"\x01", b"\xc1", codec.encode([1, 2]))
    for leftover in before:
        peek_record_id(leftover)
        assert peek_record_id(LEAD.wire) == LEAD.id
        assert peek_record_id(LEAD.wire[:-1]) is None
    assert peek_record_id(LEAD.wire + b"\x01") == LEAD.id  # as before: the id is made of h and s only
    assert peek_record_id(LEAD.wire) == LEAD.id


def test_author_id_is_the_bech32_node_id() -> None:
    words = bech32.convertbits(LEAD.header.author, 8, 5, True)
    assert words is not None
    assert LEAD.author_id == bech32.bech32_encode("lap", words)
    assert LEAD.author_id == ALICE.node_id == node_id_from_public_key(ALICE.public_key.raw)
    assert public_key_from_node_id(LEAD.author_id) == LEAD.header.author
    assert LEAD.author_id.startswith("lap1") and len(LEAD.author_id) == 62


def test_chained_records_verify() -> None:
    assert LEAD_2.header.prev == LEAD.id
    assert CONTACT.header.prev == LEAD_2.id
    for record in (LEAD, LEAD_2, CONTACT):
        assert verify_record(record.wire, network=NETWORK).id == record.id


def test_commitment_per_field() -> None:
    for name, (field_salt, value) in LEAD.disclosures.items():
        digest = hashlib.blake2b(digest_size=32, person=b"lapnode.field.v1")
        digest.update(field_salt + codec.encode([name, value]))
        assert LEAD.header.commitments[name] == digest.digest()


def test_redaction_keeps_the_id_and_verifies() -> None:
    wire = redact(LEAD, ["subjects", "summary"])
    assert wire != LEAD.wire and len(wire) < len(LEAD.wire)
    copy = verify_record(wire, network=NETWORK)
    assert copy.id == LEAD.id
    assert copy.header_bytes == LEAD.header_bytes and copy.signature == LEAD.signature
    assert copy.redacted == frozenset({"subjects", "summary"})
    assert set(copy.disclosures) == set(LEAD.disclosures) - {"subjects", "summary"}
    assert isinstance(copy.body, LeadBody)
    assert copy.body.subjects is None and copy.body.summary is None
    assert copy.body.title == "Pharmacy spam campaign 1"


def test_a_redacted_required_field_is_fine() -> None:
    copy = verify_record(redact(LEAD, ["title", "status"]), network=NETWORK)
    assert isinstance(copy.body, LeadBody)
    assert copy.body.title is None and copy.body.status is None
    assert copy.redacted == frozenset({"title", "status"})


def test_redacting_everything_keeps_the_id() -> None:
    copy = verify_record(redact(LEAD, LEAD.header.commitments), network=NETWORK)
    assert copy.id == LEAD.id
    assert copy.disclosures == {}
    assert copy.redacted == frozenset(LEAD.header.commitments)


def test_redacting_a_redacted_copy_again() -> None:
    once = verify_record(redact(LEAD, ["title"]), network=NETWORK)
    twice = verify_record(redact(once, ["summary"]), network=NETWORK)
    assert twice.redacted == frozenset({"title", "summary"}) and twice.id == LEAD.id


def test_redacting_an_unknown_field_is_a_local_error() -> None:
    with pytest.raises(ValueError, match="no field"):
        redact(LEAD, ["nonexistent"])


def test_unknown_kind_is_stored_opaque() -> None:
    record = factories.make_record(ALICE, 1, None, kind="x-sighting", document={"n": 3, "raw": b"\x01"})
    assert isinstance(record.body, OpaqueBody)
    assert record.body.kind == "x-sighting"
    assert dict(record.body.fields) == {"n": 3, "raw": b"\x01"}
    redacted = verify_record(redact(record, ["raw"]), network=NETWORK)
    assert isinstance(redacted.body, OpaqueBody) and dict(redacted.body.fields) == {"n": 3}


def test_known_kind_at_an_unknown_schema_is_opaque() -> None:
    fields = {"title": 1, "whatever": [True]}
    record = build_record(
        ALICE,
        network=NETWORK,
        kind="lead",
        schema=2,
        seq=1,
        prev=None,
        created=factories.T0,
        scope=Scope.create("green"),
        fields=fields,
        salts={name: salt(name) for name in fields},
    )
    assert isinstance(record.body, OpaqueBody)
    assert record.body.schema == 2


def test_the_stages_in_order() -> None:
    unverified = decode_unverified(LEAD.wire, network=NETWORK)
    assert unverified.unverified_header == LEAD.header
    assert not hasattr(unverified, "body")
    signed = check_signature(unverified)
    assert complete(signed, LEAD.wire) == LEAD


def test_key_lookup_is_used_and_must_be_exact() -> None:
    seen: list[bytes] = []

    def lookup(raw: bytes) -> PublicKey:
        seen.append(raw)
        return PublicKey(raw)

    assert verify_record(LEAD.wire, network=NETWORK, key_for=lookup) == LEAD
    assert seen == [ALICE.public_key.raw]
    with pytest.raises(ValueError, match="not the record's author"):
        verify_record(LEAD.wire, network=NETWORK, key_for=lambda _: BOB.public_key)


def test_build_record_refuses_bad_salts() -> None:
    arguments: dict[str, Any] = {
        "network": NETWORK,
        "kind": "x-test",
        "schema": 1,
        "seq": 1,
        "prev": None,
        "created": factories.T0,
        "scope": Scope.create("green"),
        "fields": {"a": 1},
    }
    with pytest.raises(ValueError, match="no salt"):
        build_record(ALICE, **arguments, salts={})
    for size in (0, SALT_SIZE - 1, SALT_SIZE + 1):
        with pytest.raises(ValueError, match="16 bytes"):
            build_record(ALICE, **arguments, salts={"a": b"\x00" * size})


def test_largest_record_is_accepted() -> None:
    # §3.1: "at most 65,536 bytes" includes 65,536.
    def opaque(padding: int) -> bytes:
        fields = {"pad": b"\x00" * padding}
        header = changed(kind="x-pad", commit={"pad": _commit("pad", salt("pad"), fields["pad"])})
        return forge(header, {"pad": [salt("pad"), fields["pad"]]})

    overhead = len(opaque(60_000)) - 60_000  # the pad stays a bin16 either way
    padding = MAX_RECORD_SIZE - overhead
    wire = opaque(padding)
    assert len(wire) == MAX_RECORD_SIZE
    assert verify_record(wire, network=NETWORK).body == OpaqueBody("x-pad", 1, {"pad": b"\x00" * padding})
    bigger = opaque(padding + 1)
    assert len(bigger) == MAX_RECORD_SIZE + 1
    with pytest.raises(Malformed, match="over the limit"):
        verify_record(bigger, network=NETWORK)


def _commit(name: str, field_salt: bytes, value: Any) -> bytes:
    return hashlib.blake2b(
        field_salt + codec.encode([name, value]), digest_size=32, person=b"lapnode.field.v1"
    ).digest()


# --- damage: truncation and every single-byte flip -------------------------------------------------------


def test_every_truncation_is_rejected() -> None:
    for cut in range(len(LEAD.wire)):
        with pytest.raises(ProtocolError):
            verify_record(LEAD.wire[:cut], network=NETWORK)


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
@pytest.mark.parametrize("record", [LEAD, LEAD_2, CONTACT], ids=["lead", "chained", "contact"])
def test_every_byte_flip_is_rejected(record: Record, mask: int) -> None:
    accepted = []
    for position in range(len(record.wire)):
        damaged = bytearray(record.wire)
        damaged[position] ^= mask
        try:
            verify_record(bytes(damaged), network=NETWORK)
        except ProtocolError:
            continue
        accepted.append(position)
    assert accepted == []


def test_every_byte_flip_of_a_redacted_copy_is_rejected() -> None:
    wire = redact(LEAD, ["title"])
    for position in range(len(wire)):
        damaged = bytearray(wire)
        damaged[position] ^= 0xFF
        with pytest.raises(ProtocolError):
            verify_record(bytes(damaged), network=NETWORK)


# --- §3.1 envelope ---------------------------------------------------------------------------------------

HEADER = header_of(LEAD)


def enveloped(**parts: Any) -> bytes:
    """LEAD with envelope entries added or replaced."""
    return forge(HEADER, envelope=parts)


ENVELOPES: list[tuple[str, bytes, type[ProtocolError], str]] = [
    ("not a map", codec.encode([LEAD.header_bytes, LEAD.signature]), InvalidRecord, "exactly the fields"),
    ("unknown envelope key", enveloped(x=b""), InvalidRecord, "exactly the fields"),
    ("sealed key not yet allowed", enveloped(x={}), InvalidRecord, "exactly the fields"),
    (
        "disclosures missing",
        codec.encode({"h": LEAD.header_bytes, "s": LEAD.signature}),
        InvalidRecord,
        "exactly",
    ),
    ("signature missing", codec.encode({"f": {}, "h": LEAD.header_bytes}), InvalidRecord, "exactly"),
    ("header missing", codec.encode({"f": {}, "s": LEAD.signature}), InvalidRecord, "exactly"),
    ("header as text", enveloped(h="header"), InvalidRecord, "wrong type"),
    ("signature as text", enveloped(s="x" * 64), InvalidRecord, "wrong type"),
    ("signature 63 bytes", enveloped(s=LEAD.signature[:63]), InvalidRecord, "wrong type"),
    ("signature 65 bytes", enveloped(s=LEAD.signature + b"\x00"), InvalidRecord, "wrong type"),
    ("disclosures a list", enveloped(f=[]), InvalidRecord, "not a map"),
    (
        "oversized record",
        enveloped(f={"pad": [salt("pad"), bytes(MAX_RECORD_SIZE)]}),
        Malformed,
        "over the limit",
    ),
    ("envelope map in a map16", b"\xde\x00\x03" + LEAD.wire[1:], NonCanonical, "canonical"),
    ("trailing byte", LEAD.wire + b"\x00", Malformed, "trailing"),
]


@pytest.mark.parametrize(("label", "wire", "error", "match"), ENVELOPES, ids=[row[0] for row in ENVELOPES])
def test_envelope_rules(label: str, wire: bytes, error: type[ProtocolError], match: str) -> None:
    with pytest.raises(error, match=match):
        verify_record(wire, network=NETWORK)


# --- §3.2 header and signature ---------------------------------------------------------------------------

# The header map re-encoded as a map16: same value, not the canonical bytes, and validly signed.
NON_CANONICAL_HEADER = b"\xde\x00" + bytes([len(HEADER)]) + LEAD.header_bytes[1:]
UNSORTED_SCOPE = {"tlp": "red", "relay_hops": 0, "flags": ["personal-data", "commercially-sensitive"]}

HEADERS: list[tuple[str, Header | bytes, str]] = [
    ("header not a map", codec.encode([1]), "not a map"),
    ("header not canonical", NON_CANONICAL_HEADER, "canonical"),
    ("header not msgpack", b"\xc1", "not valid msgpack"),
    ("unknown header key", changed(extra=1), "unknown header field 'extra'"),
    ("sealed-looking header key", changed(x=b""), "unknown header field"),
    ("version 2", changed(v=2), "version"),
    ("version 0", changed(v=0), "version"),
    ("version true", changed(v=True), "version"),
    ("version as text", changed(v="1"), "version"),
    ("version missing", dropped("v"), "version"),
    ("network empty", changed(net=""), "header.net"),
    ("network 65 bytes", changed(net="n" * 65), "header.net"),
    ("network as bytes", changed(net=NETWORK.encode()), "header.net"),
    ("kind empty", changed(kind=""), "header.kind"),
    ("kind 33 characters", changed(kind="k" * 33), "header.kind"),
    ("kind as bytes", changed(kind=b"lead"), "header.kind"),
    ("kind missing", dropped("kind"), "header.kind"),
    ("schema 0", changed(schema=0), "header.schema"),
    ("schema true", changed(schema=True), "header.schema"),
    ("schema missing", dropped("schema"), "header.schema"),
    ("author 31 bytes", changed(author=ALICE.public_key.raw[:31]), "header.author"),
    ("author as text", changed(author=ALICE.node_id), "header.author"),
    ("author missing", dropped("author"), "header.author"),
    ("seq 0", changed(seq=0), "header.seq"),
    ("seq negative", changed(seq=-1), "header.seq"),
    ("seq over 2^63-1", changed(seq=MAX_SEQ + 1), "header.seq"),
    ("seq true", changed(seq=True), "header.seq"),
    ("seq missing", dropped("seq"), "header.seq"),
    ("created negative", changed(created=-1), "header.created"),
    ("created at 2^53", changed(created=MAX_TIME_MS), "header.created"),
    ("created false", changed(created=False), "header.created"),
    ("created missing", dropped("created"), "header.created"),
    ("prev present on seq 1", changed(prev=LEAD.id), "absent exactly when seq is 1"),
    ("prev nil on seq 1", changed(prev=None), "absent exactly when seq is 1"),
    ("prev absent on seq 2", dropped("prev", base=LEAD_2), "absent exactly when seq is 1"),
    ("prev 31 bytes", changed(LEAD_2, prev=LEAD.id[:31]), "32-byte record id"),
    ("prev as hex text", changed(LEAD_2, prev=LEAD.id.hex()), "32-byte record id"),
    ("prev nil on seq 2", changed(LEAD_2, prev=None), "32-byte record id"),
    ("commit not a map", changed(commit=[]), "header.commit"),
    ("commit missing", dropped("commit"), "header.commit"),
    ("commitment 31 bytes", changed(commit={"title": b"\x00" * 31}), "header.commit"),
    ("scope missing", dropped("scope"), "scope"),
    ("scope unknown clause", changed(scope={"tlp": "red", "relay_hops": 0, "x": 1}), "unknown clause"),
    ("scope bad tlp", changed(scope={"tlp": "white", "relay_hops": 0}), "scope.tlp"),
    ("scope unsorted", changed(scope=UNSORTED_SCOPE), "sorted"),
]


@pytest.mark.parametrize(("label", "header", "match"), HEADERS, ids=[row[0] for row in HEADERS])
def test_header_rules(label: str, header: Header | bytes, match: str) -> None:
    wire = forge(header)
    with pytest.raises(ProtocolError, match=match):
        verify_record(wire, network=NETWORK)
    # Every header rule is checked before the signature (§3.6 step 2), by decode_unverified.
    with pytest.raises(ProtocolError, match=match):
        decode_unverified(wire, network=NETWORK)


def test_wrong_network() -> None:
    # Validly signed for another network: refused as such before the signature is looked at.
    other = forge(changed(net="other-net"), signed_net="other-net")
    assert verify_record(other, network="other-net").header.network == "other-net"
    with pytest.raises(InvalidRecord, match="network 'other-net', not 'test-net'"):
        verify_record(other, network=NETWORK)
    with pytest.raises(InvalidRecord, match="network 'test-net', not 'other-net'"):
        verify_record(LEAD.wire, network="other-net")


SIGNATURES: list[tuple[str, bytes]] = [
    ("author replaced", forge(changed(author=BOB.public_key.raw), signer=ALICE)),
    ("signed by someone else", forge(HEADER, signer=BOB)),
    ("signature from another domain", forge(HEADER, domain=b"lapnode/other/v1\x00")),
    ("signature from a future record domain", forge(HEADER, domain=b"lapnode/record/v2\x00")),
    ("signature over another network", forge(HEADER, signed_net="other-net")),
    ("signature of a different header", enveloped(s=LEAD_2.signature)),
    ("signature all zero", enveloped(s=bytes(64))),
    ("signature with S not reduced", enveloped(s=LEAD.signature[:32] + b"\xff" * 32)),
    ("header of another record", forge(LEAD_2.header_bytes, envelope={"s": LEAD.signature})),
    ("identity point as author key", forge(changed(author=b"\x01" + bytes(31)), envelope={"s": bytes(64)})),
]


@pytest.mark.parametrize(("label", "wire"), SIGNATURES, ids=[row[0] for row in SIGNATURES])
def test_signature_rules(label: str, wire: bytes) -> None:
    unverified = decode_unverified(wire, network=NETWORK)  # well-formed: only the signature is wrong
    with pytest.raises(InvalidRecord, match="signature does not verify"):
        check_signature(unverified)
    with pytest.raises(InvalidRecord, match="signature does not verify"):
        verify_record(wire, network=NETWORK)


def test_signature_covers_the_network_prefix() -> None:
    # Signing the header bytes alone (no length-prefixed network) must not verify.
    signature = ALICE.sign(RECORD_DOMAIN, LEAD.header_bytes)
    wire = codec.encode({"f": disclosures_of(LEAD), "h": LEAD.header_bytes, "s": signature})
    with pytest.raises(InvalidRecord, match="signature"):
        verify_record(wire, network=NETWORK)


# --- §3.3 disclosures ------------------------------------------------------------------------------------

TITLE_SALT, TITLE = LEAD.disclosures["title"]
OTHER_TITLE = "Pharmacy spam campaign 2"


def disclosed(**changes: Any) -> Disclosures:
    disclosures = disclosures_of(LEAD)
    for name, pair in changes.items():
        if pair is None:
            del disclosures[name]
        else:
            disclosures[name] = pair
    return disclosures


DISCLOSURES: list[tuple[str, Disclosures | dict[str, Any], str]] = [
    ("disclosure without commitment", disclosed(legal_basis=[salt("lb"), "Art. 13"]), "has no commitment"),
    ("value changed", disclosed(title=[TITLE_SALT, OTHER_TITLE]), "does not match its commitment"),
    ("salt changed", disclosed(title=[salt("other"), TITLE]), "does not match its commitment"),
    (
        "values swapped",
        disclosed(title=list(LEAD.disclosures["summary"]), summary=[TITLE_SALT, TITLE]),
        "match",
    ),
    ("value as another type", disclosed(title=[TITLE_SALT, TITLE.encode()]), "does not match"),
    ("salt 15 bytes", disclosed(title=[TITLE_SALT[:15], TITLE]), "salt of the wrong size"),
    ("salt 17 bytes", disclosed(title=[TITLE_SALT + b"\x00", TITLE]), "salt of the wrong size"),
    ("salt 32 bytes", disclosed(title=[TITLE_SALT * 2, TITLE]), "salt of the wrong size"),
    ("salt empty", disclosed(title=[b"", TITLE]), "salt of the wrong size"),
    ("salt as text", disclosed(title=[TITLE_SALT.hex(), TITLE]), r"is not \[salt, value\]"),
    ("pair of three", disclosed(title=[TITLE_SALT, TITLE, 0]), r"is not \[salt, value\]"),
    ("pair of one", disclosed(title=[TITLE_SALT]), r"is not \[salt, value\]"),
    ("bare value", {"title": TITLE}, r"is not \[salt, value\]"),
]


@pytest.mark.parametrize(("label", "disclosures", "match"), DISCLOSURES, ids=[row[0] for row in DISCLOSURES])
def test_disclosure_rules(label: str, disclosures: dict[str, Any], match: str) -> None:
    wire = forge(header_of(LEAD), disclosures)
    assert LEAD.signature == codec.decode(wire, max_size=MAX_RECORD_SIZE)["s"]  # the signed part is intact
    with pytest.raises(InvalidRecord, match=match):
        verify_record(wire, network=NETWORK)


def test_a_disclosure_cannot_move_to_another_name() -> None:
    # The name is inside the commitment: the title's salt and value do not fit under "summary".
    disclosures = disclosed(summary=[TITLE_SALT, TITLE])
    with pytest.raises(InvalidRecord, match="'summary' does not match"):
        verify_record(forge(header_of(LEAD), disclosures), network=NETWORK)


# --- §2 inside a record: the envelope and header are checked part by part, not walked whole ------------

# Past MAX_DEPTH, and past the msgpack encoder's recursion limit (511): the re-encoding that compares bytes
# must never see it. Written by hand, as no encoder writes it.
TOO_DEEP = b"\x91" * 600 + b"\x01"
SCOPE_BYTES = codec.encode(HEADER["scope"])
assert LEAD.header_bytes.count(SCOPE_BYTES) == 1


def loose(value: Any) -> bytes:
    """msgpack as it comes: floats kept, keys in the order given."""
    return msgpack.packb(value, use_bin_type=True)


def loose_envelope(disclosures: Any, **parts: Any) -> bytes:
    return loose({"f": disclosures, "h": LEAD.header_bytes, "s": LEAD.signature, **parts})


def reversed_keys(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: mapping[key] for key in reversed(mapping)}


PROFILE_HEADERS: list[tuple[str, bytes]] = [
    ("version as a float", loose(changed(v=1.0))),
    ("seq as a float", loose(changed(seq=1.0))),
    ("float in the scope", loose(changed(scope={"relay_hops": 0.0, "tlp": "red"}))),
    ("scope nested too deep", LEAD.header_bytes.replace(SCOPE_BYTES, TOO_DEEP)),
    ("commitments out of order", loose(changed(commit=reversed_keys(HEADER["commit"])))),
    ("commitment under a bytes key", loose(changed(commit={b"title": HEADER["commit"]["title"]}))),
    ("header keys out of order", loose(reversed_keys(HEADER))),
    ("float under an unknown key", loose(changed(extra=0.5))),
]


@pytest.mark.parametrize(("label", "header"), PROFILE_HEADERS, ids=[row[0] for row in PROFILE_HEADERS])
def test_a_header_outside_the_profile_is_refused_as_the_codec_refuses_it(label: str, header: bytes) -> None:
    assert_refused_as_the_codec_refuses(header, forge(header))


PROFILE_ENVELOPES: list[tuple[str, bytes]] = [
    ("float disclosed", loose_envelope(disclosed(title=[TITLE_SALT, 1.5]))),
    ("float deep in a disclosure", loose_envelope(disclosed(subjects=[TITLE_SALT, [{"type": 0.5}]]))),
    (
        "disclosure nested too deep",
        loose_envelope(disclosed(title=[TITLE_SALT, b"\xde\xad"])).replace(b"\xc4\x02\xde\xad", TOO_DEEP),
    ),
    ("float where a pair should be", loose_envelope(disclosed(title=[1.5]))),
    ("disclosures out of order", loose_envelope(reversed_keys(disclosed()))),
    (
        "subject keys out of order",
        loose_envelope(disclosed(subjects=[TITLE_SALT, [{"value": "a", "type": "name"}]])),
    ),
    ("float beside an unknown envelope key", loose_envelope(disclosed(), x=1.5)),
    ("header as a map holding a float", loose_envelope(disclosed(), h={"v": 1.5})),
    ("envelope keys out of order", loose({"h": LEAD.header_bytes, "f": disclosed(), "s": LEAD.signature})),
]


@pytest.mark.parametrize(("label", "wire"), PROFILE_ENVELOPES, ids=[row[0] for row in PROFILE_ENVELOPES])
def test_an_envelope_outside_the_profile_is_refused_as_the_codec_refuses_it(label: str, wire: bytes) -> None:
    assert_refused_as_the_codec_refuses(wire, wire)


def assert_refused_as_the_codec_refuses(part: bytes, wire: bytes) -> None:
    """`decode_unverified(wire)` raises what `codec.decode(part)` raises, to the letter."""
    with pytest.raises(ProtocolError) as codec_error:
        codec.decode(part, max_size=MAX_RECORD_SIZE)
    assert isinstance(codec_error.value, Malformed | NonCanonical)
    with pytest.raises(type(codec_error.value), match=f"^{re.escape(str(codec_error.value))}$"):
        decode_unverified(wire, network=NETWORK)


# --- §5 body schema (step 5), signed by the author -------------------------------------------------------


def signed_body(kind: str, fields: dict[str, Any], disclosed: set[str] | None = None) -> bytes:
    commit = {name: _commit(name, salt(name), value) for name, value in fields.items()}
    shown = fields.keys() if disclosed is None else disclosed
    return forge(changed(kind=kind, commit=commit), {name: [salt(name), fields[name]] for name in shown})


LEAD_MINIMUM = {"title": "t", "summary": "s", "status": "verified"}

BODIES: list[tuple[str, bytes]] = [
    ("required field not committed", signed_body("lead", {"title": "t", "summary": "s"})),
    ("undefined field disclosed", signed_body("lead", {**LEAD_MINIMUM, "x": 1})),
    ("undefined field committed but redacted", signed_body("lead", {**LEAD_MINIMUM, "x": 1}, {"title"})),
    ("wrong value type", signed_body("lead", {**LEAD_MINIMUM, "title": 7})),
    ("value outside the vocabulary", signed_body("lead", {**LEAD_MINIMUM, "status": "maybe"})),
    (
        "contact without jurisdiction",
        signed_body("contact", {"organisation": "o", "category": "enforcement"}),
    ),
    ("kind name not a kind", signed_body("Lead Kind", {"a": 1})),
]


@pytest.mark.parametrize(("label", "wire"), BODIES, ids=[row[0] for row in BODIES])
def test_body_rules(label: str, wire: bytes) -> None:
    signed = check_signature(decode_unverified(wire, network=NETWORK))
    with pytest.raises(InvalidRecord, match=r"^body: "):
        complete(signed, wire)
