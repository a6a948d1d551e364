"""The disclosure audit trail against both backends: batches, the chain, filters, tampering, concurrency.

Tampering is done the way an attacker with database access would do it: plain SQL on the table, after
switching off the append-only triggers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import replace

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from lapnode.errors import InputError
from lapnode.store import AuditEvent, AuditFilters, AuditTrail, Store, StoreError
from lapnode.store.audit import GENESIS, _row_values, chain_fields, chain_hash
from lapnode.store.engine import create_engine, migrate
from protocol import codec
from tests.factories import NETWORK

PEER = bytes(range(32, 64))
OTHER_PEER = bytes(range(64, 96))
T0 = 1_780_000_000_000


def rid(n: int) -> bytes:
    return hashlib.sha256(f"record {n}".encode()).digest()


def decision(
    n: int, *, recipient: bytes | str = PEER, action: str = "send", exit: str = "gossip"
) -> AuditEvent:
    reasons = (
        ("within the author's scope",) if action == "send" else ("tlp red: recipient is not a named member",)
    )
    return AuditEvent(rid(n), recipient, action, reasons, T0 + n * 1000, exit)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    opened = create_engine(database_url)
    await migrate(opened)
    try:
        yield opened
    finally:
        await opened.dispose()


@pytest.fixture
def trail(engine: AsyncEngine) -> AuditTrail:
    return AuditTrail(engine)


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[dict[str, int]]:
    """Count the SQL statements and commits `engine` sends while the block runs."""
    counts = {"statements": 0, "commits": 0, "selects": 0}

    def on_execute(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        counts["statements"] += 1
        counts["selects"] += statement.lstrip().upper().startswith("SELECT")

    def on_commit(_conn: object) -> None:
        counts["commits"] += 1

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    event.listen(engine.sync_engine, "commit", on_commit)
    try:
        yield counts
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", on_execute)
        event.remove(engine.sync_engine, "commit", on_commit)


async def tamper(engine: AsyncEngine, *statements: str) -> None:
    """Run SQL against the audit table as an attacker would: triggers off first."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("ALTER TABLE audit DISABLE TRIGGER USER"))
        else:
            await conn.execute(text("DROP TRIGGER IF EXISTS audit_no_update"))
            await conn.execute(text("DROP TRIGGER IF EXISTS audit_no_delete"))
        for statement in statements:
            await conn.execute(text(statement))


def independent_hash(prev: bytes, seq: int, event: AuditEvent) -> bytes:
    """The construction as docs/threat-model.md states it, written out without lapnode's codec."""
    fields = {
        "action": event.action,
        "exit": event.exit,
        "reasons": list(event.reasons),
        "recipient": event.recipient,
        "record": event.record,
        "seq": seq,
        "time": event.time_ms,
    }
    return hashlib.blake2b(
        prev + msgpack.packb(fields, use_bin_type=True), digest_size=32, person=b"lapnode-audit-v1"
    ).digest()


async def test_batches_are_chained_in_order_and_verify(trail: AuditTrail) -> None:
    batches = [[decision(n) for n in range(0, 3)], [decision(3, action="withhold")], [decision(4)]]
    heads = [await trail.append(batch) for batch in batches]
    assert [h.seq for h in heads if h] == [3, 4, 5]
    assert await trail.append([]) is None

    entries = await trail.entries(AuditFilters())
    assert [e.seq for e in entries] == [5, 4, 3, 2, 1]  # newest first
    prev = GENESIS
    for entry, sent in zip(reversed(entries), [e for batch in batches for e in batch], strict=True):
        assert entry.event == sent
        assert entry.prev_hash == prev
        assert entry.entry_hash == independent_hash(prev, entry.seq, sent)
        prev = entry.entry_hash
    assert heads[-1] is not None and heads[-1].entry_hash == prev == (await trail.head()).entry_hash

    check = await trail.verify()
    assert check.ok and check.broken is None and check.entries == 5 and check.head == heads[-1]


def test_the_chain_construction_is_pinned() -> None:
    # Golden values: an auditor's own tool, written from docs/threat-model.md, must reproduce them.
    first = AuditEvent(
        bytes(range(32)), PEER, "withhold", ("tlp red: recipient is not a named member",), T0, "gossip"
    )
    second = AuditEvent(bytes(range(32)), "public-export", "send", (), T0 + 1, "bundle-export")
    h1 = chain_hash(GENESIS, 1, first)
    h2 = chain_hash(h1, 2, second)
    assert h1.hex() == "d8834135435ddb81072342096cdb6185a68bdada1759025217e7a0b678e27184"
    assert h2.hex() == "02050ceeb9258fde2eaac7d3ce393f67eacb074012a8271be5a4f74486cfd0bd"
    assert (h1, h2) == (independent_hash(GENESIS, 1, first), independent_hash(h1, 2, second))
    # A key and a label with the same characters can never hash alike (msgpack bin vs str).
    assert chain_hash(GENESIS, 1, replace(second, recipient="x" * 32)) != chain_hash(
        GENESIS, 1, replace(second, recipient=b"x" * 32)
    )


_words = st.from_regex(r"[a-z][a-z-]{0,15}", fullmatch=True)
_events = st.builds(
    AuditEvent,
    record=st.binary(min_size=32, max_size=32),
    recipient=st.one_of(st.binary(min_size=32, max_size=32), st.text(min_size=1, max_size=300)),
    action=_words,
    reasons=st.lists(st.text(max_size=200), max_size=20).map(tuple),
    time_ms=st.integers(0, 2**63 - 1),
    exit=_words,
)


@settings(max_examples=60, deadline=None)
@given(_events, st.integers(1, 2**63 - 1))
def test_the_fast_field_encoding_is_the_canonical_one(event: AuditEvent, seq: int) -> None:
    fields = chain_fields(seq, event)
    assert codec.encode_decoded(fields) == codec.encode(fields)


async def test_a_batch_of_256_costs_one_transaction_and_a_few_statements(
    trail: AuditTrail, engine: AsyncEngine
) -> None:
    await trail.append([decision(n) for n in range(10)])
    with statements(engine) as counts:
        head = await trail.append([decision(n, action="withhold") for n in range(256)])
    assert head is not None and head.seq == 266
    assert counts["commits"] == 1
    assert counts["statements"] <= 4, counts  # lock or BEGIN, the head, one multi-row insert
    assert (await trail.verify()).entries == 266


async def test_filters(trail: AuditTrail) -> None:
    await trail.append(
        [
            decision(1),
            decision(2, action="withhold"),
            decision(1, recipient=OTHER_PEER, action="withhold"),
            decision(3, recipient="public-export", exit="bundle-export"),
            decision(4, recipient="bundle:leads.lapb", action="redact", exit="bundle-export"),
        ]
    )

    async def seqs(**filters: object) -> list[int]:
        return [e.seq for e in await trail.entries(AuditFilters(**filters))]  # type: ignore[arg-type]

    assert await seqs() == [5, 4, 3, 2, 1]
    assert await seqs(record=rid(1).hex()) == [3, 1]
    assert await seqs(record=rid(1).hex()[:10]) == [3, 1]
    assert await seqs(recipient=PEER) == [2, 1]
    assert await seqs(recipient=OTHER_PEER) == [3]
    assert await seqs(recipient="public-export") == [4]
    assert await seqs(action="withhold") == [3, 2]
    assert await seqs(action="redact") == [5]
    assert await seqs(exit="bundle-export") == [5, 4]
    assert await seqs(exit="gossip", action="send") == [1]
    assert await seqs(since=T0 + 2000) == [5, 4, 2]
    assert await seqs(since=T0 + 2000, until=T0 + 4000) == [4, 2]
    assert await seqs(limit=2) == [5, 4]
    assert await seqs(record=rid(9).hex()) == []
    with pytest.raises(InputError):
        await seqs(record="abc")
    with pytest.raises(InputError):
        await seqs(limit=0)


async def filled(trail: AuditTrail, count: int = 10) -> None:
    await trail.append([decision(n, action="withhold" if n % 2 else "send") for n in range(1, count + 1)])


@pytest.mark.parametrize(
    ("sql", "broken", "why"),
    [
        pytest.param(
            ["UPDATE audit SET action = 'send' WHERE seq = 5"], 5, "do not match its hash", id="edited"
        ),
        pytest.param(
            ["UPDATE audit SET reasons = '[\"within the author''s scope\"]' WHERE seq = 5"],
            5,
            "do not match its hash",
            id="reasons-edited",
        ),
        pytest.param(
            ["DELETE FROM audit WHERE seq = 5"], 5, "missing (the trail goes from #4 to #6)", id="deleted"
        ),
        pytest.param(["DELETE FROM audit WHERE seq = 1"], 1, "missing", id="first-deleted"),
        pytest.param(
            [
                "UPDATE audit SET seq = -1 WHERE seq = 5",
                "UPDATE audit SET seq = 5 WHERE seq = 6",
                "UPDATE audit SET seq = 6 WHERE seq = -1",
            ],
            5,
            "does not match entry #4",
            id="reordered",
        ),
        pytest.param(["UPDATE audit SET reasons = 'not json' WHERE seq = 7"], 7, "malformed", id="garbled"),
        pytest.param(
            [
                "INSERT INTO audit SELECT 0, decided_at, exit, rid, recipient_key, recipient_label, action, "
                "reasons, prev_hash, entry_hash FROM audit WHERE seq = 3"
            ],
            1,
            "an entry numbered #0 was put before it",
            id="slipped-in-first",
        ),
        pytest.param(
            ["UPDATE audit SET recipient_key = NULL, recipient_label = 'someone' WHERE seq = 3"],
            3,
            "do not match its hash",
            id="recipient-replaced",
        ),
    ],
)
async def test_verify_names_the_first_broken_entry(
    trail: AuditTrail, engine: AsyncEngine, sql: list[str], broken: int, why: str
) -> None:
    await filled(trail)
    await tamper(engine, *sql)
    check = await trail.verify()
    assert not check.ok and check.broken is not None
    assert check.broken.seq == broken and why in check.broken.why, check.broken
    assert check.entries == broken - 1


async def test_an_entry_edited_and_rehashed_breaks_the_next_link(
    trail: AuditTrail, engine: AsyncEngine
) -> None:
    await filled(trail)
    (fifth,) = [e for e in await trail.entries(AuditFilters()) if e.seq == 5]
    forged = replace(fifth.event, action="send", reasons=("named member",))
    forged_hash = chain_hash(fifth.prev_hash, 5, forged).hex()
    await tamper(
        engine,
        "UPDATE audit SET action = 'send', reasons = '[\"named member\"]', "
        f"entry_hash = {_blob(engine, forged_hash)} WHERE seq = 5",
    )
    check = await trail.verify()
    assert check.broken is not None and check.broken.seq == 6
    assert "does not match entry #5" in check.broken.why


def _blob(engine: AsyncEngine, hex_value: str) -> str:
    return f"'\\x{hex_value}'::bytea" if engine.dialect.name == "postgresql" else f"X'{hex_value}'"


async def test_a_rewritten_tail_is_caught_only_by_a_noted_head(
    trail: AuditTrail, engine: AsyncEngine
) -> None:
    await filled(trail)
    noted = await trail.head()
    assert (await trail.verify(noted_head=noted.entry_hash)).noted_head_found is True
    await tamper(engine, "DELETE FROM audit WHERE seq >= 9")
    await trail.append([decision(99, action="send")])  # the forger carries on with a valid chain

    alone = await trail.verify()
    assert alone.ok and alone.entries == 9  # the chain alone cannot see it: docs/threat-model.md
    against_note = await trail.verify(noted_head=noted.entry_hash)
    assert against_note.noted_head_found is False and not against_note.ok


async def test_verify_reads_in_chunks(trail: AuditTrail, engine: AsyncEngine) -> None:
    await filled(trail)
    with statements(engine) as counts:
        check = await trail.verify(chunk=4)
    assert check.ok and check.entries == 10
    assert counts["selects"] == 3  # 4 + 4 + 2 rows: the short page ends it
    await tamper(engine, "DELETE FROM audit WHERE seq = 5")  # the first row of the second page
    broken = (await trail.verify(chunk=4)).broken
    assert broken is not None and broken.seq == 5


async def test_the_database_refuses_updates_and_deletes(trail: AuditTrail, engine: AsyncEngine) -> None:
    await filled(trail, 3)
    for statement in ("UPDATE audit SET action = 'send'", "DELETE FROM audit WHERE seq = 2"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text(statement))
    assert (await trail.verify()).entries == 3


async def test_a_malformed_row_is_an_error_naming_it(trail: AuditTrail, engine: AsyncEngine) -> None:
    await filled(trail, 3)
    await tamper(engine, "UPDATE audit SET action = 'Send It' WHERE seq = 2")
    with pytest.raises(StoreError, match="#2"):
        await trail.entries(AuditFilters())


async def test_concurrent_appenders_never_fork_the_chain(database_url: str) -> None:
    # Two stores (two connection pools, as a daemon and a CLI would have), many appenders on each.
    stores = [await Store.open(database_url, network=NETWORK) for _ in range(2)]
    try:

        async def appender(index: int) -> None:
            store = stores[index % 2]
            for batch in range(4):
                base = index * 1000 + batch * 100
                await store.audit.append([decision(base + n) for n in range(25)])

        await asyncio.gather(*(appender(i) for i in range(8)))
        check = await stores[0].audit.verify()
        assert check.ok and check.entries == 8 * 4 * 25
        entries = await stores[1].audit.entries(AuditFilters(limit=1000))
        assert sorted(e.seq for e in entries) == list(range(1, 801))
        assert len({e.event.record for e in entries}) == 800
    finally:
        for store in stores:
            await store.close()


@pytest.mark.parametrize(
    "change",
    [
        {"record": b"short"},
        {"recipient": b"\x01" * 31},
        {"recipient": ""},
        {"recipient": 7},
        {"action": "Send"},
        {"action": ""},
        {"exit": "Gossip!"},
        {"reasons": ["a list"]},
        {"reasons": (1,)},
        {"reasons": ("\ud800",)},
        {"time_ms": -1},
        {"time_ms": True},
    ],
)
@pytest.mark.parametrize("passed_before", [False, True], ids=["fresh", "after-a-valid-twin"])
def test_an_event_no_exit_should_produce_is_refused(change: dict[str, object], passed_before: bool) -> None:
    fields = {
        "record": rid(1),
        "recipient": PEER,
        "action": "send",
        "reasons": ("tlp:green",),
        "time_ms": T0,
        "exit": "gossip",
    }
    if passed_before:
        # The checks of the fields a feed repeats are remembered once passed; the record and time are
        # still checked every time, and a changed field is a new combination.
        AuditEvent(**fields)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="audit event"):
        AuditEvent(**{**fields, **change})  # type: ignore[arg-type]


@given(st.lists(st.text(max_size=12), max_size=4))
def test_the_reasons_column_is_their_json_list(reasons: list[str]) -> None:
    event = AuditEvent(rid(1), PEER, "send", tuple(reasons), T0, "gossip")
    for _ in range(2):  # the second row is built from the remembered text
        assert json.loads(str(_row_values(1, event, GENESIS, GENESIS)[7])) == reasons


async def test_appends_made_at_the_same_moment_share_one_transaction(
    trail: AuditTrail, engine: AsyncEngine
) -> None:
    # Every feed decides about a new record at once; their appends are one group commit, in call order.
    with statements(engine) as counts:
        heads = await asyncio.gather(*(trail.append([decision(n)]) for n in range(1, 6)))
    assert counts["commits"] == 1
    assert {head.seq for head in heads if head is not None} == {5}
    entries = await trail.entries(AuditFilters(limit=10))
    assert [entry.seq for entry in entries] == [5, 4, 3, 2, 1]
    assert [entry.event.record for entry in reversed(entries)] == [rid(n) for n in range(1, 6)]
    assert (await trail.verify()).ok
