"""protocol/gossip.py: every message round-trips; every parser rule refuses what SPEC §6.4 forbids.

Synchronous and table-driven. Malformed messages are built as raw canonical maps with `codec.encode`, so
each case breaks exactly one rule the gossip parser (not the codec) must enforce; a few cases at the end
break the codec's rules through `decode_message`, which is the single inbound entry point.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keys.identity import Identity
from protocol import codec
from protocol.codec import Value
from protocol.envelope import MAX_RECORD_SIZE
from protocol.errors import Malformed, NonCanonical, ProtocolError, SchemaError
from protocol.gossip import (
    MAX_BATCH_RECORDS,
    MAX_KINDS,
    MAX_MESSAGE_SIZE,
    MAX_POSITION,
    MAX_RANGES_PER_AUTHOR,
    MAX_STATEMENT_BYTES,
    MAX_STATEMENTS_PER_MESSAGE,
    MAX_VECTOR_AUTHORS,
    Ack,
    Batch,
    CaughtUp,
    FeedItem,
    MembershipDigest,
    MembershipStatements,
    Message,
    Subscribe,
    Unsubscribe,
    decode_message,
    encode_message,
    in_ranges,
    ranges_from_seqs,
)
from protocol.scope import MAX_RELAY_HOPS
from protocol.session import HandshakeComplete, NeedData, Session
from protocol.session import Message as SessionMessage
from tests.factories import chain, identity

AUTHOR_1 = hashlib.sha256(b"author 1").digest()
AUTHOR_2 = hashlib.sha256(b"author 2").digest()
LOW_AUTHOR, HIGH_AUTHOR = sorted([AUTHOR_1, AUTHOR_2])
RECORDS = [record.wire for record in chain(identity("gossip author"), 3)]

# --- round trips -------------------------------------------------------------------------------------

ROUND_TRIPS: dict[str, Message] = {
    "sub, first time": Subscribe(cursor=0, kinds=(), vector={}),
    "sub with kinds and a vector": Subscribe(
        cursor=1234,
        kinds=("contact", "lead"),
        vector={LOW_AUTHOR: ((1, 5), (7, 7), (9, 400)), HIGH_AUTHOR: ((3, 3),)},
    ),
    "sub at the largest position": Subscribe(cursor=MAX_POSITION, kinds=("trend",), vector={}),
    "sub with the most ranges": Subscribe(
        cursor=1,
        kinds=(),
        vector={AUTHOR_1: tuple((3 * n + 1, 3 * n + 1) for n in range(MAX_RANGES_PER_AUTHOR))},
    ),
    "batch of records": Batch(
        upto=40, items=tuple(FeedItem(10 * (n + 1), n, wire) for n, wire in enumerate(RECORDS))
    ),
    "batch that skipped everything": Batch(upto=99, items=()),
    "batch item at upto with the most hops": Batch(upto=5, items=(FeedItem(5, MAX_RELAY_HOPS, RECORDS[0]),)),
    "batch item of the largest record size": Batch(
        upto=1, items=(FeedItem(1, 0, b"\x00" * MAX_RECORD_SIZE),)
    ),
    "ack": Ack(upto=17),
    "ack of nothing": Ack(upto=0),
    "idle": CaughtUp(upto=2**40),
    "unsub": Unsubscribe(),
    "mem-have": MembershipDigest(bytes(range(32))),
    "mem with one statement": MembershipStatements((b"statement",)),
    "mem at its limits": MembershipStatements(
        tuple(bytes([n % 256]) * MAX_STATEMENT_BYTES for n in range(MAX_STATEMENTS_PER_MESSAGE))
    ),
}


@pytest.mark.parametrize("message", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_every_message_round_trips(message: Message) -> None:
    raw = encode_message(message)
    decoded = decode_message(raw)
    assert decoded == message
    assert type(decoded) is type(message)
    assert encode_message(decoded) == raw  # one encoding per message


WIRE_TAGS = {
    Subscribe: "sub",
    Batch: "batch",
    Ack: "ack",
    CaughtUp: "idle",
    Unsubscribe: "unsub",
    MembershipDigest: "mem-have",
    MembershipStatements: "mem",
}


@pytest.mark.parametrize("message", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_messages_are_canonical_maps_tagged_as_the_spec_says(message: Message) -> None:
    wire = codec.decode(encode_message(message), max_size=MAX_MESSAGE_SIZE)
    assert isinstance(wire, dict)
    assert wire["t"] == WIRE_TAGS[type(message)]


_ODD_VALUES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1), st.booleans(), st.binary(max_size=4)
)


@given(
    st.integers(min_value=0, max_value=MAX_POSITION) | _ODD_VALUES,
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=MAX_POSITION) | _ODD_VALUES,
            st.integers(min_value=0, max_value=MAX_RELAY_HOPS) | _ODD_VALUES,
            st.binary(max_size=40) | st.integers(min_value=0, max_value=9),
        ),
        max_size=6,
    ),
)
def test_a_batch_encodes_exactly_as_the_generic_canonical_encoder_would(
    upto: object, items: list[tuple[object, object, object]]
) -> None:
    batch = Batch(upto, tuple(FeedItem(*item) for item in items))  # type: ignore[arg-type]
    wire = {"t": "batch", "upto": upto, "items": [list(item) for item in items]}
    try:
        expected: bytes | type[Exception] = codec.encode(wire)
    except Malformed:
        expected = Malformed
    if expected is Malformed:
        with pytest.raises(Malformed):
            encode_message(batch)
    else:
        assert encode_message(batch) == expected


def test_subscribe_sorts_kinds_and_authors_on_the_wire() -> None:
    message = Subscribe(cursor=0, kinds=("trend", "contact"), vector={HIGH_AUTHOR: ((1, 1),), LOW_AUTHOR: ()})
    wire = codec.decode(encode_message(message), max_size=MAX_MESSAGE_SIZE)
    assert wire["kinds"] == ["contact", "trend"]
    assert [author for author, _ in wire["vector"]] == [LOW_AUTHOR, HIGH_AUTHOR]


# --- the messages through a real sealed session --------------------------------------------------------


def _session_pair() -> tuple[Session, Session]:
    """Two session state machines wired together in memory, handshake done (no sockets)."""
    subscriber, publisher = identity("pair subscriber"), identity("pair publisher")

    def key(who: Identity, what: str) -> bytes:
        return hashlib.sha256(f"{who.node_id}/{what}".encode()).digest()

    first = Session.initiator(
        identity=subscriber,
        network="test-net",
        static_private=key(subscriber, "static"),
        ephemeral_private=key(subscriber, "ephemeral"),
        responder_node_key=publisher.public_key.raw,
    )
    second = Session.responder(
        identity=publisher,
        network="test-net",
        static_private=key(publisher, "static"),
        ephemeral_private=key(publisher, "ephemeral"),
        is_allowed=lambda peer: peer == subscriber.public_key.raw,
    )
    second.receive_data(first.start())
    assert isinstance(second.next_event(), NeedData)
    first.receive_data(b"".join(second.take_outgoing()))
    assert isinstance(first.next_event(), HandshakeComplete)
    second.receive_data(b"".join(first.take_outgoing()))
    assert isinstance(second.next_event(), HandshakeComplete)
    return first, second


def _carry(sender: Session, receiver: Session, message: Message) -> Message:
    receiver.receive_data(sender.send(encode_message(message)))
    event = receiver.next_event()
    assert isinstance(event, SessionMessage)
    return decode_message(event.payload)


def test_a_whole_feed_conversation_crosses_a_sealed_session_pair() -> None:
    subscriber, publisher = _session_pair()
    subscribe = ROUND_TRIPS["sub with kinds and a vector"]
    assert _carry(subscriber, publisher, subscribe) == subscribe
    for message in (ROUND_TRIPS["batch of records"], CaughtUp(upto=40)):
        assert _carry(publisher, subscriber, message) == message
    assert _carry(subscriber, publisher, Ack(upto=40)) == Ack(upto=40)
    big = Batch(upto=16, items=tuple(FeedItem(n + 1, 0, bytes([n]) * 60_000) for n in range(16)))
    assert _carry(publisher, subscriber, big) == big  # 960 kB: fragmented over many frames
    # Membership statements go both ways, at any time (§8.7).
    for sender, receiver in ((subscriber, publisher), (publisher, subscriber)):
        assert _carry(sender, receiver, ROUND_TRIPS["mem-have"]) == ROUND_TRIPS["mem-have"]
        assert _carry(sender, receiver, ROUND_TRIPS["mem at its limits"]) == ROUND_TRIPS["mem at its limits"]
    assert _carry(subscriber, publisher, Unsubscribe()) == Unsubscribe()


# --- refusals ----------------------------------------------------------------------------------------

SUB: dict[str, Value] = {"t": "sub", "cursor": 0, "kinds": [], "vector": []}
BATCH: dict[str, Value] = {"t": "batch", "upto": 10, "items": [[1, 0, RECORDS[0]], [2, 0, RECORDS[1]]]}
VALID = {
    "sub": SUB,
    "batch": BATCH,
    "ack": {"t": "ack", "upto": 1},
    "idle": {"t": "idle", "upto": 1},
    "unsub": {"t": "unsub"},
    "mem-have": {"t": "mem-have", "digest": bytes(32)},
    "mem": {"t": "mem", "items": [b"statement"]},
}


def with_(base: dict[str, Value], **changes: Value) -> dict[str, Value]:
    return {**base, **changes}


def without(base: dict[str, Value], name: str) -> dict[str, Value]:
    return {key: value for key, value in base.items() if key != name}


def vector(*entries: tuple[bytes, list[list[int]]]) -> dict[str, Value]:
    return with_(SUB, vector=[[author, ranges] for author, ranges in entries])


def items(*entries: list[Value]) -> dict[str, Value]:
    return with_(BATCH, items=list(entries))


@pytest.mark.parametrize("tag", VALID)
def test_the_valid_base_messages_decode(tag: str) -> None:
    assert WIRE_TAGS[type(decode_message(codec.encode(VALID[tag])))] == tag


REFUSED: dict[str, Value] = {
    # the envelope
    "not a map": ["sub", 0, [], []],
    "no type": {"cursor": 0},
    "unknown type": {"t": "gimme"},
    "type of the wrong case": with_(VALID["ack"], t="ACK"),
    "type not text": {"t": 1, "upto": 1},
    # fields of each message
    **{f"{tag} with an extra field": with_(base, extra=1) for tag, base in VALID.items()},
    **{
        f"{tag} without {name}": without(base, name)
        for tag, base in VALID.items()
        for name in base
        if name != "t"
    },
    # positions
    "negative cursor": with_(SUB, cursor=-1),
    "cursor past the largest position": with_(SUB, cursor=MAX_POSITION + 1),
    "cursor as text": with_(SUB, cursor="0"),
    "cursor as a boolean": with_(SUB, cursor=False),
    "ack upto negative": {"t": "ack", "upto": -5},
    "idle upto as bytes": {"t": "idle", "upto": b"\x01"},
    "batch upto as a boolean": with_(BATCH, upto=True),
    # sub.kinds
    "kinds not a list": with_(SUB, kinds="lead"),
    "kinds with a number": with_(SUB, kinds=[1]),
    "kinds unsorted": with_(SUB, kinds=["trend", "lead"]),
    "kinds repeated": with_(SUB, kinds=["lead", "lead"]),
    "too many kinds": with_(SUB, kinds=[f"k{n:02}" for n in range(MAX_KINDS + 1)]),
    # sub.vector
    "vector not a list": with_(SUB, vector={"a": 1}),
    "vector entry not a pair": with_(SUB, vector=[[AUTHOR_1]]),
    "vector author not bytes": with_(SUB, vector=[["author", [[1, 1]]]]),
    "vector author of 31 bytes": vector((AUTHOR_1[:31], [[1, 1]])),
    "vector author of 33 bytes": vector((AUTHOR_1 + b"\x00", [[1, 1]])),
    "vector author repeated": vector((LOW_AUTHOR, [[1, 1]]), (LOW_AUTHOR, [[3, 3]])),
    "vector authors unsorted": vector((HIGH_AUTHOR, [[1, 1]]), (LOW_AUTHOR, [[1, 1]])),
    "ranges not a list": vector((AUTHOR_1, 5)),  # type: ignore[arg-type]
    "range not a pair": vector((AUTHOR_1, [[1, 2, 3]])),
    "range from 0": vector((AUTHOR_1, [[0, 4]])),
    "range backwards": vector((AUTHOR_1, [[5, 4]])),
    "ranges unsorted": vector((AUTHOR_1, [[10, 12], [1, 3]])),
    "ranges overlapping": vector((AUTHOR_1, [[1, 5], [5, 9]])),
    "ranges adjacent": vector((AUTHOR_1, [[1, 5], [6, 9]])),
    "range repeated": vector((AUTHOR_1, [[1, 5], [1, 5]])),
    "range past the largest position": vector((AUTHOR_1, [[1, MAX_POSITION + 1]])),
    "too many ranges": vector((AUTHOR_1, [[3 * n + 1, 3 * n + 1] for n in range(MAX_RANGES_PER_AUTHOR + 1)])),
    # batch.items
    "items not a list": with_(BATCH, items=b""),
    "item not a triple": items([1, 0]),
    "item with a fourth field": items([1, 0, RECORDS[0], 0]),
    "item record not bytes": items([1, 0, "record"]),
    "item position negative": items([-1, 0, RECORDS[0]]),
    "items out of order": items([2, 0, RECORDS[0]], [1, 0, RECORDS[1]]),
    "items at one position": items([2, 0, RECORDS[0]], [2, 0, RECORDS[1]]),
    "item position past upto": items([1, 0, RECORDS[0]], [11, 0, RECORDS[1]]),
    "item hops negative": items([1, -1, RECORDS[0]]),
    "item hops past the relay limit": items([1, MAX_RELAY_HOPS + 1, RECORDS[0]]),
    "item hops as a boolean": items([1, True, RECORDS[0]]),
    "item record over MAX_RECORD_SIZE": items([1, 0, b"\x00" * (MAX_RECORD_SIZE + 1)]),
    # membership (§8.7)
    "digest of 31 bytes": {"t": "mem-have", "digest": bytes(31)},
    "digest as text": {"t": "mem-have", "digest": "00" * 32},
    "no statements": {"t": "mem", "items": []},
    "statements not a list": {"t": "mem", "items": b"statement"},
    "a statement as text": {"t": "mem", "items": ["statement"]},
    "an empty statement": {"t": "mem", "items": [b""]},
    "a statement over the limit": {"t": "mem", "items": [bytes(MAX_STATEMENT_BYTES + 1)]},
    "too many statements": {"t": "mem", "items": [b"s"] * (MAX_STATEMENTS_PER_MESSAGE + 1)},
    "too many items": with_(
        BATCH, upto=MAX_BATCH_RECORDS + 1, items=[[n + 1, 0, b"r"] for n in range(MAX_BATCH_RECORDS + 1)]
    ),
}


@pytest.mark.parametrize("value", REFUSED.values(), ids=REFUSED.keys())
def test_the_parser_refuses(value: Value) -> None:
    with pytest.raises(SchemaError):
        decode_message(codec.encode(value))


def _oversized_batch() -> bytes:
    """A batch whose records are each within MAX_RECORD_SIZE but whose whole is over 1 MiB."""
    count = (1024 * 1024) // MAX_RECORD_SIZE + 1
    return codec.encode(
        {"t": "batch", "upto": count, "items": [[n + 1, 0, b"\x00" * MAX_RECORD_SIZE] for n in range(count)]}
    )


def _crowded_vector() -> bytes:
    authors = [[n.to_bytes(32, "big"), [[1, 1]]] for n in range(MAX_VECTOR_AUTHORS + 1)]
    packed: bytes = msgpack.packb({"cursor": 0, "kinds": [], "t": "sub", "vector": authors})
    return packed


CODEC_REFUSED: dict[str, tuple[Callable[[], bytes], type[ProtocolError]]] = {
    "empty": (lambda: b"", Malformed),
    "truncated": (lambda: encode_message(ROUND_TRIPS["batch of records"])[:-1], Malformed),
    "trailing bytes": (lambda: encode_message(Ack(1)) + b"\x00", Malformed),
    "not msgpack": (lambda: b"\xc1", Malformed),
    "keys out of canonical order": (lambda: msgpack.packb({"upto": 1, "t": "ack"}), NonCanonical),
    "integer in a wide form": (lambda: b"\x82\xa1t\xa3ack\xa4upto\xcd\x00\x01", NonCanonical),
    "a whole message over 1 MiB": (_oversized_batch, Malformed),
    # MAX_VECTOR_AUTHORS is the codec's container limit too, so the codec refuses the 4,097th author.
    "too many vector authors": (_crowded_vector, Malformed),
}


@pytest.mark.parametrize("make, error", CODEC_REFUSED.values(), ids=CODEC_REFUSED.keys())
def test_decode_message_refuses_bytes_outside_the_canonical_profile(
    make: Callable[[], bytes], error: type[ProtocolError]
) -> None:
    with pytest.raises(error):
        decode_message(make())


# --- ranges_from_seqs and in_ranges --------------------------------------------------------------------

RANGES: dict[str, tuple[list[int], tuple[tuple[int, int], ...]]] = {
    "nothing": ([], ()),
    "one": ([7], ((7, 7),)),
    "a run": ([1, 2, 3, 4], ((1, 4),)),
    "gaps": ([1, 2, 4, 6, 7, 8, 20], ((1, 2), (4, 4), (6, 8), (20, 20))),
    "repeats are folded in": ([1, 1, 2, 2, 5, 5], ((1, 2), (5, 5))),
}


@pytest.mark.parametrize("seqs, expected", RANGES.values(), ids=RANGES.keys())
def test_ranges_from_seqs(seqs: list[int], expected: tuple[tuple[int, int], ...]) -> None:
    assert ranges_from_seqs(seqs) == expected
    assert ranges_from_seqs(iter(seqs)) == expected  # any iterable, consumed once


IN_RANGES: dict[str, tuple[int, bool]] = {
    "below the first": (0, False),
    "first low": (1, True),
    "inside": (3, True),
    "first high": (5, True),
    "in a gap": (6, False),
    "second low": (9, True),
    "second high": (12, True),
    "above the last": (13, False),
}


@pytest.mark.parametrize("seq, held", IN_RANGES.values(), ids=IN_RANGES.keys())
def test_in_ranges(seq: int, held: bool) -> None:
    assert in_ranges(seq, ((1, 5), (9, 12))) is held


def test_in_ranges_of_nothing_holds_nothing() -> None:
    assert not in_ranges(1, ())


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(min_value=1, max_value=500), max_size=80))
def test_ranges_from_seqs_is_a_valid_vector_holding_exactly_those_seqs(seqs: set[int]) -> None:
    ranges = ranges_from_seqs(sorted(seqs))
    assert {seq for seq in range(0, 502) if in_ranges(seq, ranges)} == seqs
    if len(ranges) <= MAX_RANGES_PER_AUTHOR:  # what a subscriber sends must pass the publisher's parser
        message = Subscribe(cursor=0, kinds=(), vector={AUTHOR_1: ranges})
        assert decode_message(encode_message(message)) == message
