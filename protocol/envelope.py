"""Record envelopes: build, decode, verify and redact (protocol/SPEC.md §3).

Rule 1: a record is `{"f": disclosures, "h": header bytes, "s": signature}`. The author signs the header
bytes exactly as they travel; nobody ever re-serialises a header to check it.
Rule 2: the header commits to each body field with a salted hash; the disclosures carry salt and value.
A relay may drop a disclosure (redaction) and the record still verifies; it cannot change one.
Rule 3: verification happens in typed stages, `decode_unverified` → `check_signature` → `complete`, so
nothing can read a body whose signature was not checked. `verify_record` runs all three.
Rule 4: no clock and no randomness here: creation time and salts come in as arguments.
Rule 5: a record whose scope has the flag `sealed` verifies like any other, and its body is a
`SealedBody` of ciphertext (§3.7); only `protocol.sealed.open_sealed` reads what it holds.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, NewType

import msgpack

from keys.errors import BadSignature
from keys.identity import Identity, NodeId, PublicKey, node_id_from_public_key
from protocol import codec
from protocol.codec import Value
from protocol.errors import InvalidRecord, ProtocolError, SchemaError
from protocol.frozen import quick_init
from protocol.kinds import Body, parse_body, sealed
from protocol.scope import MAX_TIME_MS, SEALED_FLAG, Scope, scope_from_canonical

RecordId = NewType("RecordId", bytes)
KeyLookup = Callable[[bytes], PublicKey]

FORMAT_VERSION: Final = 1
RECORD_DOMAIN: Final = b"lapnode/record/v1\x00"
MAX_RECORD_SIZE: Final = 64 * 1024
SALT_SIZE: Final = 16
ID_SIZE: Final = 32
MAX_SEQ: Final = 2**63 - 1
_COMMIT_PERSON: Final = b"lapnode.field.v1"
_ID_PERSON: Final = b"lapnode.recid.v1"
# Personalised hash states to copy: copying one costs half as much as setting one up (hot path).
_COMMIT_HASH: Final = hashlib.blake2b(digest_size=32, person=_COMMIT_PERSON)
_ID_HASH: Final = hashlib.blake2b(digest_size=32, person=_ID_PERSON)
_HEADER_KEYS: Final = frozenset(
    {"v", "net", "kind", "schema", "author", "seq", "prev", "created", "scope", "commit"}
)
_WIRE_KEYS: Final = frozenset({"f", "h", "s"})


@quick_init
@dataclass(frozen=True, slots=True)
class Header:
    """The signed part of a record, validated."""

    network: str
    kind: str
    schema: int
    author: bytes
    seq: int
    prev: RecordId | None
    created: int
    scope: Scope
    commitments: Mapping[str, bytes]


@quick_init
@dataclass(frozen=True, slots=True)
class UnverifiedRecord:
    """Decoded and well-formed, but its signature is not checked yet. Read nothing from it but routing."""

    unverified_header: Header
    header_bytes: bytes
    signature: bytes
    disclosures: Mapping[str, tuple[bytes, Value]]

    def signed_message(self) -> bytes:
        net = self.unverified_header.network.encode()
        return bytes([len(net)]) + net + self.header_bytes


@quick_init
@dataclass(frozen=True, slots=True)
class SignedRecord:
    """The signature is valid for the author; commitments and body are not checked yet."""

    unverified: UnverifiedRecord


@quick_init
@dataclass(frozen=True, slots=True)
class Record:
    """A fully verified record. Only `complete` (and so `verify_record`) makes one."""

    header: Header
    header_bytes: bytes
    signature: bytes
    disclosures: Mapping[str, tuple[bytes, Value]]
    body: Body
    id: RecordId
    wire: bytes

    @property
    def author_id(self) -> NodeId:
        return node_id_from_public_key(self.header.author)

    @property
    def redacted(self) -> frozenset[str]:
        return frozenset(self.header.commitments) - frozenset(self.disclosures)


def commitment(name: str, salt: bytes, value: Value, *, decoded: bool = False) -> bytes:
    """The salted commitment to one body field (SPEC §3.3).

    `decoded=True` says `value` came from `codec.decode`, so it is canonical already and need not be
    rebuilt; this is the verification hot path.
    """
    pair = [name, value]
    digest = _COMMIT_HASH.copy()
    digest.update(salt)
    digest.update(codec.encode_decoded(pair) if decoded else codec.encode(pair))
    return digest.digest()


def record_id(header_bytes: bytes, signature: bytes) -> RecordId:
    """BLAKE2b-256 over the signed header and its signature: stable under redaction (SPEC §3.4)."""
    digest = _ID_HASH.copy()
    digest.update(header_bytes)
    digest.update(signature)
    return RecordId(digest.digest())


def build_record(
    identity: Identity,
    *,
    network: str,
    kind: str,
    schema: int,
    seq: int,
    prev: RecordId | None,
    created: int,
    scope: Scope,
    fields: Mapping[str, Value],
    salts: Mapping[str, bytes],
) -> Record:
    """Sign a new record. `salts` holds a fresh random SALT_SIZE salt per field (the caller's randomness)."""
    missing = set(fields) - set(salts)
    if missing:
        raise ValueError(f"no salt for field {sorted(missing)[0]!r}")
    if any(len(salt) != SALT_SIZE for salt in salts.values()):
        raise ValueError("salts must be 16 bytes")
    header: dict[str, Value] = {
        "v": FORMAT_VERSION,
        "net": network,
        "kind": kind,
        "schema": schema,
        "author": identity.public_key.raw,
        "seq": seq,
        "created": created,
        "scope": scope.to_wire(),
        "commit": {name: commitment(name, salts[name], value) for name, value in fields.items()},
    }
    if prev is not None:
        header["prev"] = prev
    header_bytes = codec.encode(header)
    net = network.encode()
    signature = identity.sign(RECORD_DOMAIN, bytes([len(net)]) + net + header_bytes)
    disclosures = {name: [salts[name], value] for name, value in fields.items()}
    wire = codec.encode({"f": disclosures, "h": header_bytes, "s": signature})
    return verify_record(wire, network=network)


def peek_record_id(raw: bytes) -> RecordId | None:
    """The id these bytes would have if they are a record, or None. This is NOT verification.

    For duplicate detection only: a node that already holds a verified record with this id learns
    nothing more from another copy, whatever the copy's disclosures say. Anything not yet held must
    still go through `verify_record`.
    """
    if len(raw) > MAX_RECORD_SIZE:
        return None
    # Step over the disclosures without building them: a canonical envelope is the map f, h, s in
    # that order, and only h and s make the id.
    unpacker = _peeker()
    start = unpacker.tell()
    try:
        unpacker.feed(raw)
        if unpacker.read_map_header() != len(_WIRE_KEYS) or unpacker.unpack() != "f":
            header_bytes = signature = None
        else:
            unpacker.skip()
            header_bytes = unpacker.unpack() if unpacker.unpack() == "h" else None
            signature = unpacker.unpack() if unpacker.unpack() == "s" else None
    except (ValueError, TypeError, msgpack.UnpackException, msgpack.OutOfData, RecursionError):
        header_bytes = signature = None
    if unpacker.tell() - start != len(raw):
        # Bytes left over (not a canonical record, or it stopped early): the next peek needs an empty
        # reader.
        _PEEKERS.unpacker = _new_peeker()
    if not (isinstance(header_bytes, bytes) and isinstance(signature, bytes) and len(signature) == 64):
        return None
    return record_id(header_bytes, signature)


# One reader per thread, fed one record at a time and reused while each is read to its end. Making a
# msgpack Unpacker zeroes its 1,024-level parse stack, tens of kilobytes: measured with callgrind, one per
# record was a tenth of all the instructions the daemon's process spent ingesting a batch.
_PEEKERS = threading.local()


def _new_peeker() -> msgpack.Unpacker:
    return msgpack.Unpacker(raw=False, max_buffer_size=MAX_RECORD_SIZE)


def _peeker() -> msgpack.Unpacker:
    try:
        unpacker: msgpack.Unpacker = _PEEKERS.unpacker
    except AttributeError:
        unpacker = _PEEKERS.unpacker = _new_peeker()
    return unpacker


def decode_unverified(raw: bytes, *, network: str) -> UnverifiedRecord:
    """Parse the envelope and header; check form, limits and network. Raises ProtocolError.

    The canonical profile (§2) is checked part by part as the envelope is read (`codec.unpack` Rule):
    every value is type-checked exactly here or walked by `codec.check_nested`, then the bytes are
    compared with the encoding. When something is wrong, the generic walk and comparison run first, so a
    record is refused with the error that `codec.decode` followed by these checks would give (§3.6 order).
    """
    outer = codec.unpack(raw, max_size=MAX_RECORD_SIZE)
    try:
        if type(outer) is not dict or outer.keys() != _WIRE_KEYS:
            raise InvalidRecord("envelope must have exactly the fields f, h and s")
        codec.check_keys(outer)
        header_bytes, signature, unverified_fields = outer["h"], outer["s"], outer["f"]
        if type(header_bytes) is not bytes or type(signature) is not bytes or len(signature) != 64:
            raise InvalidRecord("envelope header or signature has the wrong type")
        if type(unverified_fields) is not dict:
            raise InvalidRecord("envelope disclosures are not a map")
        disclosures, misshapen = _disclosures(unverified_fields)
    except ProtocolError:
        codec.check_nested(outer)
        codec.check_encoding(outer, raw)
        raise
    codec.check_encoding(outer, raw)
    header = _decode_header(header_bytes)
    if header.network != network:
        raise InvalidRecord(f"record is for network {header.network!r}, not {network!r}")
    if misshapen is not None:
        raise InvalidRecord(misshapen)
    return UnverifiedRecord(header, header_bytes, signature, disclosures)


def _disclosures(fields: dict[str, Value]) -> tuple[dict[str, tuple[bytes, Value]], str | None]:
    """The disclosures as (salt, value) pairs, each value walked (the map `f` is 1 deep, a pair 2), and
    what is wrong with the first misshapen one: refused after the header and network (§3.6 order)."""
    if fields:
        codec.check_keys(fields)
    disclosures: dict[str, tuple[bytes, Value]] = {}
    misshapen = None
    scalar_types = codec.SCALAR_TYPES
    for name, pair in fields.items():
        if type(pair) is list and len(pair) == 2 and type(pair[0]) is bytes:
            salt, value = pair
            if type(value) not in scalar_types:
                codec.check_nested(value, 3)
            if len(salt) != SALT_SIZE and misshapen is None:
                misshapen = f"disclosure {name!r} has a salt of the wrong size"
            disclosures[name] = (salt, value)
        else:
            codec.check_nested(pair, 2)
            if misshapen is None:
                misshapen = f"disclosure {name!r} is not [salt, value]"
    return disclosures, misshapen


def check_signature(record: UnverifiedRecord, key_for: KeyLookup = PublicKey) -> SignedRecord:
    """Verify the author's signature over the header bytes as received. Raises InvalidRecord.

    `key_for` maps the author's raw key to a PublicKey; a caller may pass a cache (it must be exact).
    """
    key = key_for(record.unverified_header.author)
    if key.raw != record.unverified_header.author:
        raise ValueError("key lookup returned a key that is not the record's author")
    try:
        key.verify(RECORD_DOMAIN, record.signed_message(), record.signature)
    except BadSignature as exc:
        raise InvalidRecord("signature does not verify") from exc
    return SignedRecord(record)


def complete(signed: SignedRecord, raw: bytes) -> Record:
    """Check every disclosure against its commitment and validate the body schema."""
    unverified = signed.unverified
    header = unverified.unverified_header
    values = _disclosed_values(unverified.disclosures, header.commitments)
    committed = frozenset(header.commitments)
    try:
        body: Body
        if SEALED_FLAG in header.scope.flags:
            # A sealed body is ciphertext whatever the kind (§3.7): its shape is checked here, at every
            # node; the kind's own schema is checked by `protocol.sealed.open_sealed` on the plaintext.
            scope, author = header.scope, header.author
            body = sealed.parse(
                header.kind, header.schema, values, committed, members=scope.members, author=author
            )
        else:
            body = parse_body(header.kind, header.schema, values, committed)
    except SchemaError as exc:
        raise InvalidRecord(f"body: {exc}") from exc
    header_bytes, signature = unverified.header_bytes, unverified.signature
    return Record(
        header,
        header_bytes,
        signature,
        unverified.disclosures,
        body,
        record_id(header_bytes, signature),
        raw,
    )


def _disclosed_values(
    disclosures: Mapping[str, tuple[bytes, Value]], commitments: Mapping[str, bytes]
) -> dict[str, Value]:
    """Each disclosed value, once it matches its commitment (SPEC §3.3).

    `commitment(name, salt, value, decoded=True)`, spelt out: this loop runs for every field of every
    record received, and a call per field, with this thread's packer looked up each time, was a third
    of its cost (callgrind).
    """
    values: dict[str, Value] = {}
    new_hash = _COMMIT_HASH.copy
    pack = codec.thread_packer()
    for name, (salt, value) in disclosures.items():
        expected = commitments.get(name)
        if expected is None:
            raise InvalidRecord(f"disclosed field {name!r} has no commitment")
        digest = new_hash()
        digest.update(salt)
        digest.update(pack([name, value]))
        if digest.digest() != expected:
            raise InvalidRecord(f"field {name!r} does not match its commitment")
        values[name] = value
    return values


def verify_record(raw: bytes, *, network: str, key_for: KeyLookup = PublicKey) -> Record:
    """Decode and fully verify one record as received. Raises ProtocolError (InvalidRecord and kin)."""
    unverified = decode_unverified(raw, network=network)
    return complete(check_signature(unverified, key_for), raw)


def redact(record: Record, names: Iterable[str]) -> bytes:
    """Wire bytes of `record` with the named fields withheld; the result keeps the same id and signature."""
    withheld = set(names)
    unknown = withheld - set(record.header.commitments)
    if unknown:
        raise ValueError(f"no field {sorted(unknown)[0]!r} to redact")
    disclosures = {
        name: [salt, value] for name, (salt, value) in record.disclosures.items() if name not in withheld
    }
    return codec.encode({"f": disclosures, "h": record.header_bytes, "s": record.signature})


def withhold_all(raw: bytes) -> bytes:
    """Wire bytes of a stored record with every disclosure withheld: the same header and signature, so the
    same id, and still a valid record (§3.3). What a node keeps of a purged record (§4, §8.10). `raw` must
    be bytes this node verified when it stored them; a malformed one raises InvalidRecord."""
    try:
        outer = codec.decode(raw, max_size=MAX_RECORD_SIZE)
    except ProtocolError as exc:
        raise InvalidRecord(f"not a record: {exc}") from None
    if not isinstance(outer, dict) or set(outer) != _WIRE_KEYS:
        raise InvalidRecord("not a record map with exactly f, h and s")
    return codec.encode({"f": {}, "h": outer["h"], "s": outer["s"]})


def _decode_header(header_bytes: bytes) -> Header:
    """The header's canonical decoding (§2) and its fields (§3.2), read in one pass.

    As in `decode_unverified`: `_header_fields` checks every field for its exact type and walks the one
    it does not (the scope), so that with `codec.check_encoding` nothing `codec.decode` refuses gets
    through; when it refuses something, the generic checks run first so that the error is theirs if they
    have one. The decode's generic walk and then these checks again were 40 % of a header's cost.
    """
    value = codec.unpack(header_bytes, max_size=MAX_RECORD_SIZE)
    try:
        net, kind, schema, author, seq, prev, created, scope_wire, commit = _header_fields(value)
    except ProtocolError:
        codec.check_nested(value)
        codec.check_encoding(value, header_bytes)
        raise
    codec.check_encoding(value, header_bytes)
    try:
        scope = _scope_from_wire(scope_wire)
    except ProtocolError as exc:
        raise InvalidRecord(str(exc)) from exc
    return Header(net, kind, schema, author, seq, prev, created, scope, commit)


def _scope_from_wire(wire: Value) -> Scope:
    if not isinstance(wire, dict):
        raise SchemaError("scope: not a map")
    return scope_from_canonical(codec.encode_decoded(wire))


_HeaderFields = tuple[str, str, int, bytes, int, "RecordId | None", int, Value, dict[str, bytes]]


def _header_fields(value: Value) -> _HeaderFields:
    """The header's fields, each of its exact type (§3.2), and the scope walked, not yet parsed."""
    if type(value) is not dict:
        raise InvalidRecord("header is not a map")
    if value:
        codec.check_keys(value)
    if not _HEADER_KEYS.issuperset(value):
        unknown = set(value) - _HEADER_KEYS
        raise InvalidRecord(f"unknown header field {sorted(unknown)[0]!r}")
    version = value.get("v")
    # Exactly an int: `True == 1` and `1.0 == 1` in Python (§2 rule 1, §3.2).
    if type(version) is not int or version != FORMAT_VERSION:
        raise InvalidRecord(f"unsupported format version {version!r}")
    net, kind, schema = value.get("net"), value.get("kind"), value.get("schema")
    author, seq, created = value.get("author"), value.get("seq"), value.get("created")
    prev, commit = value.get("prev"), value.get("commit")
    if not (type(net) is str and 0 < len(net.encode()) <= 64):
        raise InvalidRecord("header.net must be 1 to 64 bytes of text")
    if not (type(kind) is str and 0 < len(kind) <= 32 and type(schema) is int and schema >= 1):
        raise InvalidRecord("header.kind or header.schema is invalid")
    if not (type(author) is bytes and len(author) == 32):
        raise InvalidRecord("header.author must be a 32-byte key")
    if not (type(seq) is int and 1 <= seq <= MAX_SEQ):
        raise InvalidRecord("header.seq must be a positive integer")
    if not (type(created) is int and 0 <= created < MAX_TIME_MS):
        raise InvalidRecord("header.created is not a valid time")
    # Presence, not `.get()`: an explicit `prev: nil` is neither absent nor a record id (§3.2).
    if (seq == 1) == ("prev" in value):
        raise InvalidRecord("header.prev must be absent exactly when seq is 1")
    if "prev" in value and not (type(prev) is bytes and len(prev) == ID_SIZE):
        raise InvalidRecord("header.prev must be a 32-byte record id")
    if type(commit) is not dict:
        raise InvalidRecord("header.commit must map field names to 32-byte commitments")
    for digest in commit.values():
        if type(digest) is not bytes or len(digest) != 32:
            raise InvalidRecord("header.commit must map field names to 32-byte commitments")
    if commit:
        codec.check_keys(commit)
    scope = value.get("scope")
    codec.check_nested(scope, 1)
    return net, kind, schema, author, seq, prev, created, scope, commit
