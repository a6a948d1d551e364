"""Verification started ahead of the write (lapnode/store/verifier.py Rule 5), against both backends:
the store ends exactly as it would without it, and still refuses what does not verify; and the rows the
workers send are the rows the daemon would make itself."""

from __future__ import annotations

from lapnode.store import Store
from lapnode.store.verifier import AHEAD_THRESHOLD, Ahead
from lapnode.verification.rows import RecordRow, with_wire
from lapnode.verification.worker import worker_rows
from protocol.envelope import verify_record
from tests.factories import NETWORK, chain, contact_document, identity, make_record


def _damaged(wire: bytes) -> bytes:
    return wire[:-1] + bytes([wire[-1] ^ 1])  # the last byte of the signature


async def test_batches_verified_ahead_store_what_verifies_and_refuse_the_rest(store: Store) -> None:
    records = chain(identity("ahead"), 3 * AHEAD_THRESHOLD)
    wires = [record.wire for record in records]
    first, second = wires[: 2 * AHEAD_THRESHOLD], wires[2 * AHEAD_THRESHOLD :]
    second[5] = _damaged(second[5])
    # Both batches start verifying before the first is written, as a subscriber's reader does.
    first_ahead, second_ahead = store.verify_ahead(first), store.verify_ahead(second)
    assert first_ahead is not None and second_ahead is not None
    report = await store.ingest(first, ahead=first_ahead)
    assert report.stored == [record.id for record in records[: 2 * AHEAD_THRESHOLD]] and not report.rejected
    report = await store.ingest(second, ahead=second_ahead)
    assert [rejection.index for rejection in report.rejected] == [5]
    assert "signature" in report.rejected[0].reason
    assert len(report.stored) == AHEAD_THRESHOLD - 1
    assert await store.count() == 3 * AHEAD_THRESHOLD - 1


async def test_records_held_by_then_are_duplicates_not_verified_twice(store: Store) -> None:
    wires = [record.wire for record in chain(identity("ahead-held"), 2 * AHEAD_THRESHOLD)]
    ahead = store.verify_ahead(wires)
    assert ahead is not None
    # The same batch is stored by another path (another peer's copy) before this one is written.
    await store.ingest(wires)
    report = await store.ingest(wires, ahead=ahead)
    assert report.stored == [] and report.duplicates == len(wires)
    # Records this store knows it holds are not sent to the workers again.
    assert store.verify_ahead(wires).chunks == ()


async def test_a_small_batch_is_verified_when_written(store: Store) -> None:
    records = chain(identity("ahead-small"), AHEAD_THRESHOLD - 1)
    wires = [record.wire for record in records]
    ahead = store.verify_ahead(wires)
    # No worker job for so few, but the ids it peeked go along to the write.
    assert ahead.chunks == () and ahead.peeked == tuple(record.id for record in records)
    report = await store.ingest(wires, ahead=ahead)
    assert len(report.stored) == AHEAD_THRESHOLD - 1


async def test_batches_joined_for_one_write_keep_their_peeked_ids_in_order(store: Store) -> None:
    records = chain(identity("ahead-joined"), 3 * AHEAD_THRESHOLD)
    first, second = records[: 2 * AHEAD_THRESHOLD], records[2 * AHEAD_THRESHOLD :]
    parts = [store.verify_ahead([r.wire for r in first]), store.verify_ahead([r.wire for r in second])]
    joined = Ahead.joined([parts[0].shifted(0), parts[1].shifted(len(first))])
    assert joined.peeked == tuple(record.id for record in records)
    assert joined.positions == set(range(len(records)))
    report = await store.ingest([r.wire for r in records], ahead=joined)
    assert report.stored == [record.id for record in records]
    # A part without peeked ids (made elsewhere) makes the joined one peek again rather than misalign.
    assert Ahead.joined([parts[0].shifted(0), Ahead(())]).peeked is None


def test_a_worker_row_is_the_row_the_daemon_would_make_in_process() -> None:
    # Workers send plain tuples built field by field (rows.py, Rule 2); re-wrapped, they must be exactly
    # `RecordRow.of` of the same record, a rejection must stay a reason, and a purged stub is never sent.
    contact = make_record(identity("rows"), 1, None, kind="contact", document=contact_document())
    records = [*chain(identity("rows-lead"), 2), contact]
    damaged = records[0].wire[:-1] + bytes([records[0].wire[-1] ^ 1])
    # The record's bytes do not travel back: the daemon puts back the very bytes it sent (`with_wire`).
    sent = worker_rows([*(r.wire for r in records), damaged], NETWORK)
    assert len(sent[0]) == len(RecordRow._fields)
    for values, record in zip(sent, records, strict=False):
        assert isinstance(values, tuple) and record.wire not in values
        row = with_wire(values, record.wire)
        assert row == RecordRow.of(verify_record(record.wire, network=NETWORK)) and row.purged is None
        assert row.id == record.id and row.wire is record.wire
    assert isinstance(sent[-1], str) and "signature" in sent[-1]
