"""The statement book against both backends, and what stored statements do: a revocation refuses the
key's new records and flags held ones (SPEC §8.7); a rotation moves pins and limits the old key's
records to those made before it (§8.8)."""

from __future__ import annotations

import pytest

from lapnode.store import AUTHOR_REVOKED, KEY_RETIRED, QueryFilters, Store, StoreError
from protocol.statements import Revocation, Rotation, issue_revocation, issue_rotation
from tests.factories import NETWORK, T0, chain, identity

AUTHORITY, ROGUE, HONEST = identity("secretariat"), identity("rogue"), identity("honest")


def revocation(subject: bytes = ROGUE.public_key.raw, reason: str = "stolen") -> Revocation:
    return issue_revocation(AUTHORITY, network=NETWORK, subject=subject, reason=reason, issued_at=T0)


async def test_statements_are_stored_once_and_listed_in_order(store: Store) -> None:
    first, second = revocation(), revocation(HONEST.public_key.raw, "left the network")
    assert await store.statements.add([first, first], now_ms=1) == [first]
    assert await store.statements.add([first, second], now_ms=2) == [second]
    assert await store.statements.add([], now_ms=3) == []
    rows = await store.statements.after(0)
    assert [row.wire for row in rows] == [first.wire, second.wire]
    assert [row.kind for row in rows] == ["revoke", "revoke"]
    assert rows[0].subject == ROGUE.public_key.raw and rows[0].signer == AUTHORITY.public_key.raw
    assert await store.statements.after(rows[0].position) == rows[1:]
    assert await store.statements.head() == rows[1].position
    assert sorted(await store.statements.ids()) == sorted([first.id, second.id])
    assert await store.revoked_keys() == {ROGUE.public_key.raw, HONEST.public_key.raw}


async def test_a_revocation_refuses_new_records_and_flags_held_ones(store: Store) -> None:
    rogue_records, honest_records = chain(ROGUE, 4), chain(HONEST, 2)
    await store.ingest([r.wire for r in rogue_records[:2]] + [honest_records[0].wire])
    await store.statements.add([revocation()], now_ms=1)

    report = await store.ingest([rogue_records[3].wire, rogue_records[2].wire, honest_records[1].wire])
    assert report.stored == [honest_records[1].id]
    assert [(r.index, r.reason, r.invalid) for r in report.rejected] == [
        (0, "the author's key has been revoked", False),  # not the sender's fault: no penalty
        (1, "the author's key has been revoked", False),
    ]
    # A copy of a record held before the revocation is still just a duplicate.
    assert (await store.ingest([rogue_records[0].wire])).duplicates == 1

    held = {item.record.id: item.flags for item in await store.query(QueryFilters(limit=100))}
    assert held == {
        rogue_records[0].id: (AUTHOR_REVOKED,),
        rogue_records[1].id: (AUTHOR_REVOKED,),
        honest_records[0].id: (),
        honest_records[1].id: (),
    }
    assert (await store.get(rogue_records[0].id.hex())).flags == (AUTHOR_REVOKED,)
    with pytest.raises(StoreError, match="revoked"):
        await store.publish(ROGUE.public_key.raw, lambda seq, prev: chain(ROGUE, seq)[-1])


# --- rotations (§8.8) ------------------------------------------------------------------------------------

OLD, NEW, NEWER, THIEF = identity("old"), identity("new"), identity("newer"), identity("thief's key")


def rotation(old: object = OLD, new: object = NEW, *, last_seq: int = 2, at: int = T0 + 2_500) -> Rotation:
    return issue_rotation(old, new, network=NETWORK, rotated_at=at, last_seq=last_seq)  # type: ignore[arg-type]


async def test_old_records_stay_valid_and_later_ones_of_the_old_key_are_refused(store: Store) -> None:
    old_records = chain(OLD, 4)  # created T0 + 1000 * seq
    await store.ingest([old_records[0].wire, old_records[3].wire])  # #4 arrived before the rotation did
    await store.statements.add([rotation()], now_ms=1)  # hands over #1..#2, made at T0 + 2500

    report = await store.ingest([r.wire for r in old_records[1:3]])
    assert report.stored == [old_records[1].id]  # #2: within the key's validity, even arriving late
    assert [(r.index, r.invalid) for r in report.rejected] == [(1, False)]
    assert "retired by a rotation" in report.rejected[0].reason
    flags = {item.record.id: item.flags for item in await store.query(QueryFilters(limit=10))}
    assert flags == {old_records[0].id: (), old_records[1].id: (), old_records[3].id: (KEY_RETIRED,)}
    assert await store.last_seq(OLD.public_key.raw) == 4 and await store.last_seq(NEW.public_key.raw) == 0


async def test_a_rotation_moves_the_pin_with_everything_the_operator_set(store: Store) -> None:
    await store.peers.add(
        OLD.public_key.raw, "203.0.113.5:7450", now_ms=1, name="acma", category="enforcement"
    )
    await store.peers.set_subscription(OLD.public_key.raw, True, ("lead",))
    await store.peers.note_activity(OLD.public_key.raw, now_ms=2, score_delta=-30, banned_until=99)
    await store.statements.add([rotation()], now_ms=3)
    assert await store.peers.find(OLD.public_key.raw) is None
    moved = await store.peers.get(NEW.public_key.raw)
    assert (moved.address, moved.name, moved.category, moved.subscribed, moved.kinds) == (
        "203.0.113.5:7450", "acma", "enforcement", True, ("lead",),
    )  # fmt: skip
    assert (moved.score, moved.banned_until) == (0, None)


async def test_a_pin_merges_into_a_row_the_new_key_already_had(store: Store) -> None:
    await store.peers.add(OLD.public_key.raw, "203.0.113.5:7450", now_ms=1, name="acma")
    await store.peers.set_subscription(OLD.public_key.raw, True)
    await store.ingest([chain(identity("someone"), 1)[0].wire], source=OLD.public_key.raw, cursor=7)
    await store.peers.add(NEW.public_key.raw, "", now_ms=2)  # it connected by credential first
    await store.statements.add([rotation()], now_ms=3)
    (only,) = await store.peers.all()
    assert (only.key, only.address, only.name, only.subscribed, only.cursor) == (
        NEW.public_key.raw, "203.0.113.5:7450", "acma", True, 7,
    )  # fmt: skip
    assert only.records_received == 1


async def test_rotations_arriving_out_of_order_end_at_the_last_key(store: Store) -> None:
    await store.peers.add(OLD.public_key.raw, "h:1", now_ms=1)
    await store.statements.add([rotation(NEW, NEWER, last_seq=0)], now_ms=2)  # the second one first
    await store.statements.add([rotation()], now_ms=3)
    assert [p.key for p in await store.peers.all()] == [NEWER.public_key.raw]
    assert await store.statements.rotation_into(NEWER.public_key.raw) == rotation(NEW, NEWER, last_seq=0).wire
    assert set(await store.statements.retired()) == {OLD.public_key.raw, NEW.public_key.raw}


async def test_a_second_rotation_of_one_key_is_evidence_not_followed(store: Store) -> None:
    await store.peers.add(OLD.public_key.raw, "h:1", now_ms=1)
    await store.statements.add([rotation()], now_ms=2)
    await store.statements.add([rotation(OLD, THIEF)], now_ms=3)
    assert [p.key for p in await store.peers.all()] == [NEW.public_key.raw]
    assert await store.statements.forks() == {OLD.public_key.raw: [NEW.public_key.raw, THIEF.public_key.raw]}


async def test_a_rotation_of_a_revoked_key_is_not_stored(store: Store) -> None:
    await store.peers.add(OLD.public_key.raw, "h:1", now_ms=1)
    await store.statements.add([revocation(OLD.public_key.raw)], now_ms=2)
    assert await store.statements.add([rotation()], now_ms=3) == []
    both = [revocation(NEW.public_key.raw), rotation(NEW, NEWER)]  # revoked in the same batch
    assert await store.statements.add(both, now_ms=4) == [both[0]]
    assert [p.key for p in await store.peers.all()] == [OLD.public_key.raw]
