"""Bundles: signed records in a file, for air-gapped transfer and as a test base.

Format `lapnode-bundle/1` (to be copied into protocol/SPEC.md):

    A bundle is UTF-8 (in fact ASCII) text.
    Line 1 is the header:   lapnode-bundle/1 network=<network id> records=<n>
    Then, for each record:  an empty line, then ONE line holding the standard base64 (RFC 4648 §4,
                            with "=" padding, no line breaks) of the record's wire bytes.
    Lines end with "\\n" (LF); the file ends with "\\n". Records are thus separated by "\\n\\n".

    bundle   = header LF *( LF record-line LF )
    header   = "lapnode-bundle/1 network=" network-id " records=" 1*DIGIT

Readers split the bytes on runs of LF, so extra blank lines are harmless.

Rule 1 (one damaged byte costs one record): whatever single byte of a bundle is changed, a reader rejects
exactly the record whose line holds it, with the line number and a reason, and accepts every other one.
This holds because:
- the file is handled as bytes, never decoded as a whole, so a byte that is not UTF-8 stays local;
- a changed separator byte is no longer LF, so it joins the record line next to it, and that line fails;
- base64 is decoded strictly (only the alphabet, correct padding) and then re-encoded and compared:
  base64 ignores the low bits of its last character, so a flip there would otherwise decode to the same
  bytes and go unnoticed, which is not acceptable for a format whose point is detecting change;
- every record is then fully verified (protocol.envelope.verify_record: signature, commitments, schema);
- a byte changed *into* LF splits one line into two; two adjacent failed lines with a single LF between
  them (where a blank line should be) are therefore reported as one damaged record.
A damaged header (line 1) is a bundle-level problem; the records are still checked one by one. The header
also carries the record count, so a truncated bundle is reported even if it ends at a line boundary.

Rule 2: this module decodes and verifies; it never stores. `lapnode bundle import` passes the records
that passed to Store.ingest, which verifies them again with the same verifier.
Rule 3: this module decides nothing about who may have a record: `lapnode bundle export` passes what
`collect_records` finds through the policy decision for the bundle's recipient (lapnode.exits).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Final

from keys.errors import CryptoError
from lapnode.errors import BundleError
from lapnode.store import MAX_LIMIT, QueryFilters, Store, StoredRecord
from protocol.envelope import MAX_RECORD_SIZE, Record, verify_record
from protocol.errors import ProtocolError

MAGIC: Final = "lapnode-bundle/1"
_HEADER = re.compile(
    rb"lapnode-bundle/(?P<version>\d+) network=(?P<network>[a-z0-9._-]{1,64}) records=(?P<n>\d{1,9})"
)
# base64 of the largest record, rounded up to whole 4-character groups.
_MAX_LINE: Final = 4 * ((MAX_RECORD_SIZE + 2) // 3)

Verifier = Callable[[bytes, str], Record]


def _verify(raw: bytes, network: str) -> Record:
    return verify_record(raw, network=network)


def encode_bundle(network: str, raws: Iterable[bytes]) -> bytes:
    """The bundle text (as bytes) holding these records' wire bytes, in the given order."""
    records = list(raws)
    lines = [f"{MAGIC} network={network} records={len(records)}\n".encode("ascii")]
    for raw in records:
        lines.append(b"\n" + base64.b64encode(raw) + b"\n")
    return b"".join(lines)


@dataclass(frozen=True, slots=True)
class BundleHeader:
    network: str
    records: int


@dataclass(frozen=True, slots=True)
class AcceptedRecord:
    line: int
    record: Record


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    line: int
    reason: str

    def describe(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class BundleCheck:
    """The outcome of reading a bundle: records that verified, records rejected, bundle-level problems."""

    header: BundleHeader | None
    accepted: list[AcceptedRecord] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.problems


@dataclass(frozen=True, slots=True)
class _Piece:
    line: int  # 1-based line number of the piece's first byte
    data: bytes
    newlines_before: int  # LFs between the previous piece and this one (0 for the first)


def _split_lines(data: bytes) -> list[_Piece]:
    pieces: list[_Piece] = []
    line = 1
    newlines = 0
    for match in re.finditer(rb"[^\n]+|\n+", data):
        chunk = match.group()
        if chunk.startswith(b"\n"):
            line += len(chunk)
            newlines = len(chunk)
        else:
            pieces.append(_Piece(line, chunk, newlines if pieces else 0))
    return pieces


def read_header(line: bytes) -> BundleHeader:
    """Parse line 1, or raise ValueError with the reason."""
    match = _HEADER.fullmatch(line)
    if match is None:
        shown = line[:60].decode("ascii", "replace")
        raise ValueError(
            f"line 1 is not a bundle header (expected '{MAGIC} network=... records=N'): {shown!r}"
        )
    if match.group("version") != b"1":
        raise ValueError(f"bundle format version {match.group('version').decode()} is not supported (only 1)")
    return BundleHeader(match.group("network").decode("ascii"), int(match.group("n")))


def decode_record_line(data: bytes) -> bytes:
    """The wire bytes held by one record line, or ValueError. Strict: see Rule 1 in the module doc."""
    if data.endswith(b"\r"):
        raise ValueError(
            "line ends with a carriage return (converted to Windows line endings? copy bundles as binary)"
        )
    if len(data) > _MAX_LINE:
        raise ValueError(f"line is longer than any record can be ({len(data)} characters)")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64 (damaged or altered)") from None
    if base64.b64encode(raw) != data:
        raise ValueError("base64 is not in its canonical form (damaged or altered)")
    return raw


def _check_piece(piece: _Piece, network: str, verify: Verifier) -> Record | str:
    try:
        raw = decode_record_line(piece.data)
        return verify(raw, network)
    except ValueError as exc:
        return str(exc)
    except (ProtocolError, CryptoError) as exc:
        return f"invalid record: {exc}"


def check_bundle(data: bytes, *, network: str | None = None, verify: Verifier = _verify) -> BundleCheck:
    """Decode and verify every record of a bundle, without storing anything.

    `network` is the network the records must belong to; None means the one the header names (if the
    header is damaged as well, every record is rejected and the problem says why).
    """
    pieces = _split_lines(data)
    if not pieces:
        return BundleCheck(header=None, problems=["the file is empty; it is not a bundle"])
    problems: list[str] = []
    header: BundleHeader | None = None
    try:
        header = read_header(pieces[0].data)
    except ValueError as exc:
        problems.append(str(exc))
    if pieces[0].line != 1:
        problems.append("the file does not start with the bundle header")
    target = network or (header.network if header else None)
    if target is None:
        problems.append("cannot tell which network the records are for; pass --network")
    elif header is not None and header.network != target:
        problems.append(f"the bundle is for network {header.network!r}, not {target!r}")
    outcomes = [_check_piece(p, target, verify) if target else "network unknown" for p in pieces[1:]]
    accepted, rejected = _merge_broken_lines(pieces, header is not None, outcomes)
    if header is not None and header.records != len(accepted) + len(rejected):
        problems.append(
            f"the header announces {header.records} records but the file holds "
            f"{len(accepted) + len(rejected)} (truncated or altered?)"
        )
    return BundleCheck(header=header, accepted=accepted, rejected=rejected, problems=problems)


def _merge_broken_lines(
    pieces: list[_Piece], header_ok: bool, outcomes: list[Record | str]
) -> tuple[list[AcceptedRecord], list[RejectedRecord]]:
    # A byte changed into LF splits a line in two with a single LF between the halves, where a blank line
    # (two LFs) should be. Two failed neighbours joined by a single LF are one damaged line (Rule 1).
    accepted: list[AcceptedRecord] = []
    rejected: list[RejectedRecord] = []
    previous_failed = not header_ok
    for piece, outcome in zip(pieces[1:], outcomes, strict=True):
        failed = isinstance(outcome, str)
        if failed and previous_failed and piece.newlines_before == 1:
            continue  # the rest of the line already reported (or of the damaged header)
        if isinstance(outcome, str):
            rejected.append(RejectedRecord(piece.line, outcome))
        else:
            accepted.append(AcceptedRecord(piece.line, outcome))
        previous_failed = failed
    return accepted, rejected


async def collect_records(store: Store, filters: QueryFilters, limit: int | None) -> list[StoredRecord]:
    """The newest `limit` held records matching `filters` (all if None), returned in chain order.

    Chain order (by author, then seq) lets an importer store each record after its predecessor. The
    store answers at most MAX_LIMIT records a query, so this pages backwards in time; each next page
    repeats the oldest millisecond of the previous one (records can share a `created`), and ids already
    seen are skipped.
    """
    page_size = min(MAX_LIMIT, limit) if limit is not None else MAX_LIMIT
    found: dict[bytes, StoredRecord] = {}  # insertion order is newest first
    until = filters.until
    while limit is None or len(found) < limit:
        page = await store.query(replace(filters, until=until, limit=page_size))
        before = len(found)
        for item in page:
            found.setdefault(item.record.id, item)
        if len(page) < page_size or (limit is not None and len(found) >= limit):
            break
        if len(found) == before:
            raise BundleError(f"more than {page_size} records share one millisecond; narrow the filters")
        until = page[-1].record.header.created + 1
    newest = list(found.values())[:limit] if limit is not None else list(found.values())
    return sorted(newest, key=lambda r: (r.record.header.author, r.record.header.seq))
