"""Gossip messages: subscribing to a peer's feed, streaming it and acknowledging it (SPEC §6.4-§6.5).

Rule 1: a connection carries one feed, from the responder (the publisher) to the initiator (the
subscriber). The subscriber names a cursor: a position in the publisher's local log, a sequence the
publisher alone assigns. Cursors are never wall-clock times.
Rule 2: the subscriber also sends its per-author holdings as sequence ranges, so the publisher skips
records the subscriber already has from other paths. Gaps in those ranges are normal.
Rule 3: relay bookkeeping (hops) travels beside the record, outside the author's signature. A receiver
takes the record's scope only from the signed header and the hop count only as an upper bound check.
Rule 4: every message is a canonical map with a type tag `t`; unknown types and fields are refused.
Messages are bounded: at most MAX_BATCH_RECORDS records and MAX_MESSAGE_SIZE bytes.
Rule 5: membership statements (SPEC §8.7) travel beside the feed, in both directions: each side says what
it holds (`mem-have`, a digest) once the feed is set up, and sends statements (`mem`) whenever the other
may lack them. They are not records and no policy applies to them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, NamedTuple

from protocol import codec
from protocol.codec import Value
from protocol.envelope import MAX_RECORD_SIZE
from protocol.errors import SchemaError
from protocol.scope import MAX_RELAY_HOPS
from protocol.session import MAX_MESSAGE
from protocol.statements import MAX_STATEMENT_SIZE

MAX_MESSAGE_SIZE: Final = MAX_MESSAGE  # one reassembled session payload (SPEC §6.3)
MAX_BATCH_RECORDS: Final = 512
MAX_BATCH_BYTES: Final = 256 * 1024
MAX_VECTOR_AUTHORS: Final = 4096
MAX_RANGES_PER_AUTHOR: Final = 64
MAX_KINDS: Final = 32
MAX_POSITION: Final = 2**63 - 1
MAX_STATEMENTS_PER_MESSAGE: Final = 256
MAX_STATEMENT_BYTES: Final = MAX_STATEMENT_SIZE
DIGEST_BYTES: Final = 32

Ranges = tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Subscriber → publisher: send me your feed from `cursor` on, skipping what `vector` says I hold."""

    cursor: int
    kinds: tuple[str, ...]
    vector: Mapping[bytes, Ranges]


class FeedItem(NamedTuple):
    """One record of a batch. A named tuple: a feed makes one per record sent and a subscriber one per
    record received, and a frozen dataclass's `__init__` cost four times as much to build."""

    position: int
    hops: int
    wire: bytes


@dataclass(frozen=True, slots=True)
class Batch:
    """Publisher → subscriber: records in log order, each with its log position and hop count.

    `upto` is the log position the batch covers, including records the publisher filtered out, so the
    subscriber's cursor moves past records it may not receive.
    """

    upto: int
    items: tuple[FeedItem, ...]


@dataclass(frozen=True, slots=True)
class Ack:
    """Subscriber → publisher: everything up to `upto` is committed on my side."""

    upto: int


@dataclass(frozen=True, slots=True)
class CaughtUp:
    """Publisher → subscriber: nothing more after `upto` for now; new records will be pushed."""

    upto: int


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    pass


@dataclass(frozen=True, slots=True)
class MembershipDigest:
    """Either side → the other: the digest of the membership statements I hold (SPEC §8.7)."""

    digest: bytes


@dataclass(frozen=True, slots=True)
class MembershipStatements:
    """Either side → the other: membership statements (wire bytes, unverified) you may not hold."""

    items: tuple[bytes, ...]


Message = Subscribe | Batch | Ack | CaughtUp | Unsubscribe | MembershipDigest | MembershipStatements


def encode_message(message: Message) -> bytes:
    if isinstance(message, Batch):
        fast = _encode_batch(message)
        if fast is not None:
            return fast
    return codec.encode(_to_wire(message))


def _encode_batch(batch: Batch) -> bytes | None:
    """A batch's canonical bytes without the generic walk, or None if a value is not what a feed makes.

    A feed sends most of its bytes as batches, and canonicalising one walked every item and value (about
    2 µs a record). Here the map is written with its keys in canonical order ("items" < "t" < "upto")
    and each value is checked to be a plain int in range or bytes, so packing it as it is gives exactly
    `codec.encode`'s bytes (a test holds them equal); anything else takes the generic path.
    """
    upto = batch.upto
    if type(upto) is not int or not 0 <= upto <= MAX_POSITION:
        return None
    items = []
    for position, hops, wire in batch.items:
        if type(position) is not int or type(hops) is not int or type(wire) is not bytes:
            return None
        if not (0 <= position <= MAX_POSITION and 0 <= hops <= MAX_POSITION):
            return None
        items.append([position, hops, wire])
    return codec.encode_decoded({"items": items, "t": "batch", "upto": upto})


def decode_message(raw: bytes) -> Message:
    """Parse one message from a peer. Raises ProtocolError (Malformed, NonCanonical, SchemaError)."""
    value = codec.decode(raw, max_size=MAX_MESSAGE_SIZE)
    if not isinstance(value, dict):
        raise SchemaError("gossip message is not a map")
    kind = value.get("t")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise SchemaError("unknown gossip message type")
    return parser(value)


def ranges_from_seqs(seqs: Iterable[int]) -> Ranges:
    """Compress sorted sequence numbers into inclusive ranges."""
    result: list[tuple[int, int]] = []
    for seq in seqs:
        if result and seq == result[-1][1] + 1:
            result[-1] = (result[-1][0], seq)
        elif not result or seq > result[-1][1]:
            result.append((seq, seq))
    return tuple(result)


def in_ranges(seq: int, ranges: Ranges) -> bool:
    return any(low <= seq <= high for low, high in ranges)


def _to_wire(message: Message) -> dict[str, Value]:
    if isinstance(message, Subscribe):
        return {
            "t": "sub",
            "cursor": message.cursor,
            "kinds": sorted(set(message.kinds)),
            "vector": [
                [author, [list(r) for r in ranges]] for author, ranges in sorted(message.vector.items())
            ],
        }
    if isinstance(message, Batch):
        items = [[item.position, item.hops, item.wire] for item in message.items]
        return {"t": "batch", "upto": message.upto, "items": items}
    if isinstance(message, Ack):
        return {"t": "ack", "upto": message.upto}
    if isinstance(message, CaughtUp):
        return {"t": "idle", "upto": message.upto}
    if isinstance(message, MembershipDigest):
        return {"t": "mem-have", "digest": message.digest}
    if isinstance(message, MembershipStatements):
        return {"t": "mem", "items": list(message.items)}
    return {"t": "unsub"}


def _fields(value: Mapping[str, Value], *names: str) -> None:
    if set(value) != {"t", *names}:
        raise SchemaError(f"gossip {value['t']!r} message must have exactly the fields {', '.join(names)}")


def _position(value: Value, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_POSITION:
        raise SchemaError(f"{what} is not a log position")
    return value


def _parse_subscribe(value: Mapping[str, Value]) -> Subscribe:
    _fields(value, "cursor", "kinds", "vector")
    kinds, vector = value["kinds"], value["vector"]
    if not (isinstance(kinds, list) and len(kinds) <= MAX_KINDS and all(isinstance(k, str) for k in kinds)):
        raise SchemaError("sub.kinds must be a short list of kind names")
    if kinds != sorted(set(kinds)):
        raise SchemaError("sub.kinds must be sorted and without duplicates")  # SPEC §6.4: one encoding
    if not (isinstance(vector, list) and len(vector) <= MAX_VECTOR_AUTHORS):
        raise SchemaError("sub.vector must be a list of [author, ranges]")
    parsed: dict[bytes, Ranges] = {}
    previous = b""
    for entry in vector:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], bytes)):
            raise SchemaError("sub.vector entries must be [author, ranges]")
        author, ranges = entry
        if len(author) != 32 or author <= previous:
            raise SchemaError("sub.vector authors must be 32-byte keys, sorted and not repeated")
        parsed[author] = _parse_ranges(ranges)
        previous = author
    return Subscribe(_position(value["cursor"], "sub.cursor"), tuple(kinds), parsed)


def _parse_ranges(value: Value) -> Ranges:
    if not (isinstance(value, list) and len(value) <= MAX_RANGES_PER_AUTHOR):
        raise SchemaError("sub.vector ranges must be a short list")
    result: list[tuple[int, int]] = []
    for pair in value:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise SchemaError("a range is [low, high]")
        low, high = _position(pair[0], "range"), _position(pair[1], "range")
        if not 1 <= low <= high or (result and low <= result[-1][1] + 1):
            raise SchemaError("ranges must be ascending, disjoint and not adjacent")
        result.append((low, high))
    return tuple(result)


def _parse_batch(value: Mapping[str, Value]) -> Batch:
    _fields(value, "upto", "items")
    items = value["items"]
    if not (isinstance(items, list) and len(items) <= MAX_BATCH_RECORDS):
        raise SchemaError(f"batch.items must be a list of at most {MAX_BATCH_RECORDS}")
    upto = _position(value["upto"], "batch.upto")
    parsed: list[FeedItem] = []
    for item in items:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[2], bytes)):
            raise SchemaError("batch items are [position, hops, record]")
        position, hops = _position(item[0], "item position"), item[1]
        if position < 1:
            raise SchemaError("log positions start at 1")
        if type(hops) is not int or not 0 <= hops <= MAX_RELAY_HOPS:
            raise SchemaError("item hops out of range")
        if len(item[2]) > MAX_RECORD_SIZE or position > upto or (parsed and position <= parsed[-1].position):
            raise SchemaError("batch items must be in log order, within upto, and of bounded size")
        parsed.append(FeedItem(position, hops, item[2]))
    return Batch(upto, tuple(parsed))


def _parse_ack(value: Mapping[str, Value]) -> Ack:
    _fields(value, "upto")
    return Ack(_position(value["upto"], "ack.upto"))


def _parse_caught_up(value: Mapping[str, Value]) -> CaughtUp:
    _fields(value, "upto")
    return CaughtUp(_position(value["upto"], "idle.upto"))


def _parse_unsubscribe(value: Mapping[str, Value]) -> Unsubscribe:
    _fields(value)
    return Unsubscribe()


def _parse_membership_digest(value: Mapping[str, Value]) -> MembershipDigest:
    _fields(value, "digest")
    digest = value["digest"]
    if type(digest) is not bytes or len(digest) != DIGEST_BYTES:
        raise SchemaError(f"mem-have.digest must be {DIGEST_BYTES} bytes")
    return MembershipDigest(digest)


def _parse_membership_statements(value: Mapping[str, Value]) -> MembershipStatements:
    _fields(value, "items")
    items = value["items"]
    if not (isinstance(items, list) and 0 < len(items) <= MAX_STATEMENTS_PER_MESSAGE):
        raise SchemaError(f"mem.items must be a list of 1 to {MAX_STATEMENTS_PER_MESSAGE} statements")
    if not all(type(item) is bytes and 0 < len(item) <= MAX_STATEMENT_BYTES for item in items):
        raise SchemaError(f"mem.items must be statements of 1 to {MAX_STATEMENT_BYTES} bytes")
    return MembershipStatements(tuple(items))


_PARSERS: Final[Mapping[str, Callable[[Mapping[str, Value]], Message]]] = {
    "sub": _parse_subscribe,
    "batch": _parse_batch,
    "ack": _parse_ack,
    "idle": _parse_caught_up,
    "unsub": _parse_unsubscribe,
    "mem-have": _parse_membership_digest,
    "mem": _parse_membership_statements,
}
