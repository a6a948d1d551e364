"""The stored form of a verified record: what the writer needs, and nothing a worker cannot send back.

Rule 1: a RecordRow is only ever made from a `protocol.envelope.Record`, which only verification makes,
so a row always stands for a verified record.
Rule 2: it is a named tuple, not a dataclass: verification workers send rows back by the thousand, and a
tuple pickles and unpickles in C where a slotted dataclass runs Python for every field (measured: about
25 µs a row both ways, a tenth of the ingest budget). Workers send `row_values(record)`, a plain tuple,
not the row: a named tuple unpickles through its Python `__new__`, and a frozenset rebuilds and rehashes
every member, so a plain tuple with `terms` as a tuple loads in 2 µs where the row took 11 (measured with
pickle on this machine, session 4). The daemon re-wraps it with `RecordRow._make`, which runs no checks:
the values are exactly what `RecordRow.of` would build from the same record. A worker leaves the
record's bytes out of its reply and the daemon puts back the bytes it sent (`with_wire`): they are the
largest field, and they crossed the pipe twice.
"""

from __future__ import annotations

from typing import NamedTuple

from protocol.envelope import Record, RecordId
from protocol.scope import canonical_scope


class RecordRow(NamedTuple):
    id: RecordId
    author: bytes
    seq: int
    prev: RecordId | None
    kind: str
    created: int
    tlp: str
    scope: bytes
    expires: int | None
    search_text: str
    # (term type, normalised value) pairs, sorted and without repeats.
    terms: tuple[tuple[str, str], ...]
    wire: bytes
    # Why the content is gone (lapnode.store.lifecycle), for a record stored as a purged stub.
    purged: str | None = None
    # The earlier version this record names as replaced (its disclosed `supersedes` field, SPEC §5.1);
    # None when absent, redacted, or inside a sealed body (stores index nothing of those, SPEC §3.7).
    supersedes: bytes | None = None

    @classmethod
    def of(cls, record: Record) -> RecordRow:
        return cls._make(row_values(record))


def row_values(record: Record, *, keep_wire: bool = True) -> tuple[object, ...]:
    """The values of `record`'s RecordRow, in field order, as a plain tuple: what a worker sends (Rule 2),
    built without the named tuple's keyword `__new__` and a copy into a tuple after it. Without
    `keep_wire` the record's bytes are left out, as None (a worker's reply; `with_wire` puts them back)."""
    header = record.header
    return (
        record.id,
        header.author,
        header.seq,
        header.prev,
        header.kind,
        header.created,
        header.scope.tlp,
        canonical_scope(header.scope),
        header.scope.expires,
        record.body.search_text().casefold(),
        tuple(sorted(set(record.body.index_terms()))),
        record.wire if keep_wire else None,
        None,  # purged: a record just verified is whole
        # A class attribute lookup for the kinds without the field (opaque, sealed): no cost to speak of.
        getattr(record.body, "supersedes", None),
    )


_WIRE = RecordRow._fields.index("wire")


def with_wire(values: tuple[object, ...], wire: bytes) -> RecordRow:
    """The row of a worker's reply (`row_values(..., keep_wire=False)`) with the bytes sent to it."""
    return RecordRow._make((*values[:_WIRE], wire, *values[_WIRE + 1 :]))
