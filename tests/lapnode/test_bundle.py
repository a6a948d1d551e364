"""The bundle codec (lapnode/bundle.py): format, strict decoding, and one damaged byte = one record."""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import Callable
from functools import cache

import pytest

from lapnode import bundle as bundle_module
from lapnode.bundle import (
    MAGIC,
    BundleCheck,
    check_bundle,
    collect_records,
    decode_record_line,
    encode_bundle,
)
from lapnode.errors import BundleError
from lapnode.store import QueryFilters, StoredRecord
from protocol.envelope import Record, verify_record
from tests.factories import NETWORK, T0, chain, identity

RECORDS = chain(identity("bundle-author"), 5)
BUNDLE = encode_bundle(NETWORK, [record.wire for record in RECORDS])
HEADER_END = BUNDLE.index(b"\n")  # the header line's own LF


@cache
def _verify_cached(raw: bytes, network: str) -> Record:
    # Only the damaged record changes from one flip to the next; the other four are verified once.
    return verify_record(raw, network=network)


def check(data: bytes, network: str | None = NETWORK) -> BundleCheck:
    return check_bundle(data, network=network, verify=_verify_cached)


def _record_blocks() -> list[tuple[int, int]]:
    """[start, end) of each record's block: the blank line's LF, the base64 line and its LF."""
    blocks, start = [], HEADER_END + 1
    for record in RECORDS:
        end = start + 1 + len(base64.b64encode(record.wire)) + 1
        blocks.append((start, end))
        start = end
    assert start == len(BUNDLE)
    return blocks


BLOCKS = _record_blocks()


def _assert_only_record_rejected(result: BundleCheck, index: int, position: int) -> None:
    where = f"byte {position} (record {index})"
    assert not result.problems, where
    assert len(result.rejected) == 1, where
    assert [a.record.id for a in result.accepted] == [r.id for i, r in enumerate(RECORDS) if i != index], (
        where
    )
    # The reported line is where the damaged text starts: the record's line, the blank line before it when
    # that LF was changed, or the line after when the line's first byte became LF.
    assert result.rejected[0].line in (2 * index + 2, 2 * index + 3, 2 * index + 4), where
    assert result.rejected[0].reason, where


def test_format_is_a_header_then_blank_line_separated_base64_lines() -> None:
    lines = BUNDLE.decode("ascii").split("\n")
    assert lines[0] == f"{MAGIC} network={NETWORK} records=5"
    assert lines[1::2][:5] == [""] * 5
    assert [base64.b64decode(line) for line in lines[2::2][:5]] == [r.wire for r in RECORDS]
    assert BUNDLE.endswith(b"\n") and lines[-1] == ""


def test_an_intact_bundle_verifies_completely() -> None:
    result = check(BUNDLE)
    assert result.ok and result.header is not None and result.header.records == 5
    assert [a.record.id for a in result.accepted] == [r.id for r in RECORDS]
    assert [a.line for a in result.accepted] == [3, 5, 7, 9, 11]


def test_an_empty_bundle_is_valid() -> None:
    result = check(encode_bundle(NETWORK, []))
    assert result.ok and result.accepted == []


@pytest.mark.parametrize("mask", [0x01, 0xFF])
def test_flipping_any_byte_of_the_records_rejects_exactly_that_record(mask: int) -> None:
    """The issue's acceptance rule, for every byte after the header: record lines and all separators."""
    for index, (start, end) in enumerate(BLOCKS):
        for position in range(start, end):
            damaged = bytearray(BUNDLE)
            damaged[position] ^= mask
            _assert_only_record_rejected(check(bytes(damaged)), index, position)


def test_any_replacement_byte_rejects_exactly_that_record() -> None:
    """Arbitrary values too, including a byte that becomes LF and splits a line in two."""
    rng = random.Random(20250301)
    for index, (start, end) in enumerate(BLOCKS):
        for position in range(start, end):
            damaged = bytearray(BUNDLE)
            damaged[position] = rng.choice([b for b in range(256) if b != BUNDLE[position]])
            _assert_only_record_rejected(check(bytes(damaged)), index, position)


def test_a_byte_turned_into_a_newline_inside_a_record_line_costs_one_record() -> None:
    for index, (start, end) in enumerate(BLOCKS):
        for position in range(start + 1, end - 1, 37):
            damaged = bytearray(BUNDLE)
            damaged[position] = 0x0A
            _assert_only_record_rejected(check(bytes(damaged)), index, position)


@pytest.mark.parametrize("mask", [0x01, 0xFF])
def test_a_damaged_header_is_reported_and_every_record_still_verifies(mask: int) -> None:
    for position in range(HEADER_END + 1):
        damaged = bytearray(BUNDLE)
        damaged[position] ^= mask
        result = check(bytes(damaged))
        assert result.problems, f"byte {position}"
        assert not result.rejected, f"byte {position}"
        assert len(result.accepted) == 5, f"byte {position}"


def test_without_a_network_the_header_names_it_and_a_damaged_one_rejects_everything() -> None:
    assert check(BUNDLE, network=None).ok
    damaged = BUNDLE.replace(b"network=", b"netw0rk=", 1)
    result = check(damaged, network=None)
    assert result.problems and not result.accepted and len(result.rejected) == 5


def test_a_bundle_for_another_network_is_rejected() -> None:
    foreign = chain(identity("bundle-author"), 2, network="other-net")
    result = check(encode_bundle("other-net", [record.wire for record in foreign]))
    assert any("other-net" in problem for problem in result.problems)
    assert len(result.rejected) == 2 and not result.accepted
    assert "not 'test-net'" in result.rejected[0].reason


def test_a_truncated_bundle_is_reported_even_at_a_line_boundary() -> None:
    cut = BUNDLE[: BLOCKS[3][0]]
    result = check(cut)
    assert len(result.accepted) == 3 and not result.rejected
    assert any("announces 5 records" in problem for problem in result.problems)


def test_cut_inside_a_record_rejects_that_record() -> None:
    result = check(BUNDLE[: BLOCKS[4][0] + 40])
    assert len(result.accepted) == 4 and len(result.rejected) == 1


def test_extra_blank_lines_are_harmless() -> None:
    result = check(BUNDLE.replace(b"\n\n", b"\n\n\n\n") + b"\n\n")
    assert result.ok and len(result.accepted) == 5


def test_empty_and_foreign_files_are_bundle_level_problems() -> None:
    assert check(b"").problems == ["the file is empty; it is not a bundle"]
    result = check(b'{"not": "a bundle"}\n')
    assert result.problems and "not a bundle header" in result.problems[0]


def test_an_unknown_format_version_is_named() -> None:
    result = check(BUNDLE.replace(b"lapnode-bundle/1", b"lapnode-bundle/2", 1))
    assert any("version 2 is not supported" in problem for problem in result.problems)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"QUJD\r", "carriage return"),
        (b"QUJD!", "not valid base64"),
        (b"QUJ", "not valid base64"),
        (b"QUI=", None),  # canonical: decodes, and only fails later as a record
        (b"QUJ=", "canonical"),  # same bytes as "QUI=" with a non-zero unused bit
        (b"Q" * 100_000, "longer than any record"),
    ],
)
def test_record_lines_are_decoded_strictly(line: bytes, reason: str | None) -> None:
    if reason is None:
        assert decode_record_line(line) == b"AB"
        return
    with pytest.raises(ValueError, match=reason):
        decode_record_line(line)


def test_the_default_verifier_is_the_protocol_verifier() -> None:
    damaged = bytearray(BUNDLE)
    damaged[BLOCKS[2][0] + 200] ^= 0x04
    result = check_bundle(bytes(damaged), network=NETWORK)
    assert len(result.rejected) == 1 and len(result.accepted) == 4


def test_reasons_name_the_failure() -> None:
    reasons: dict[str, Callable[[bytearray], None]] = {
        "not valid base64": lambda d: d.__setitem__(BLOCKS[1][0] + 5, ord("*")),
        "invalid record": lambda d: d.__setitem__(BLOCKS[1][0] + 300, d[BLOCKS[1][0] + 300] ^ 0x02),
    }
    for expected, damage in reasons.items():
        damaged = bytearray(BUNDLE)
        damage(damaged)
        result = check(bytes(damaged))
        assert len(result.rejected) == 1 and expected in result.rejected[0].reason
        assert result.rejected[0].describe().startswith("line 5: ")


class _FakeStore:
    """Store.query's contract over a list: newest first (created, then id), `until` exclusive, `limit`."""

    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self.queries = 0

    async def query(self, filters: QueryFilters) -> list[StoredRecord]:
        self.queries += 1
        matching = [r for r in self.records if filters.until is None or r.header.created < filters.until]
        matching.sort(key=lambda r: (r.header.created, r.id), reverse=True)
        return [StoredRecord(r, 0) for r in matching[: filters.limit]]


def _many_records() -> list[Record]:
    # Four records share one millisecond, and b and c tie pairwise: pages must overlap correctly.
    records = chain(identity("paging-a"), 4, created=T0 + 2500)
    for name in ("b", "c"):
        records += chain(identity(f"paging-{name}"), 4)  # created T0 + seq * 1000
    return records


@pytest.mark.parametrize("page", [2, 5, 100])
def test_export_pages_through_everything_in_chain_order(page: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle_module, "MAX_LIMIT", page)
    records = _many_records()
    if page == 2:
        # More records in one millisecond than a page holds: say so, rather than loop or drop some.
        with pytest.raises(BundleError, match="share one millisecond"):
            asyncio.run(collect_records(_FakeStore(records), QueryFilters(), None))  # type: ignore[arg-type]
        return
    held = asyncio.run(collect_records(_FakeStore(records), QueryFilters(), None))  # type: ignore[arg-type]
    got = [item.record for item in held]
    assert sorted(r.id for r in got) == sorted(r.id for r in records)
    assert [(r.header.author, r.header.seq) for r in got] == sorted(
        (r.header.author, r.header.seq) for r in got
    )


def test_export_limit_keeps_the_newest() -> None:
    records = chain(identity("paging-e"), 6)
    got = asyncio.run(collect_records(_FakeStore(records), QueryFilters(), 2))  # type: ignore[arg-type]
    assert [r.record.header.seq for r in got] == [5, 6]
