"""Bringing a store to the newest schema (lapnode/store/engine.py, Rule 3), on SQLite and PostgreSQL.

A store already at the head is recognised without alembic, by reading the migration files as text; these
tests hold that reading to alembic's own, and check that a store behind the head is still upgraded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from lapnode.store import QueryFilters, Store
from lapnode.store.engine import create_engine, migrate, script_head
from tests.factories import NETWORK, identity, lead_document, make_record

# A revision four steps behind the head, from before the index on records.expires (0008).
OLDER = "0007_lifecycle"
HEAD_INDEX = "ix_records_expires"
BEFORE_0015 = "0014_partial_indexes"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "lapnode.store:migrations")
    config.attributes["connection"] = connection
    return config


def test_the_head_read_from_the_files_is_alembics() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == [script_head()]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    opened = create_engine(database_url)
    yield opened
    await opened.dispose()


async def versions(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        return list((await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars())


async def schema(engine: AsyncEngine) -> set[str]:
    """The names of the tables, and of the indexes on records."""

    def names(sync: Connection) -> set[str]:
        inspector = inspect(sync)
        indexes = {str(index["name"]) for index in inspector.get_indexes("records")}
        return set(inspector.get_table_names()) | indexes

    async with engine.connect() as connection:
        return await connection.run_sync(names)


async def test_a_store_behind_the_head_is_upgraded(engine: AsyncEngine, database_url: str) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), OLDER))
    assert await versions(engine) == [OLDER]
    assert HEAD_INDEX not in await schema(engine)

    store = await Store.open(database_url, network=NETWORK)
    await store.close()
    assert await versions(engine) == [script_head()]
    assert HEAD_INDEX in await schema(engine)


async def test_a_store_at_the_head_opens_again_unchanged(engine: AsyncEngine, database_url: str) -> None:
    await migrate(engine)
    before = await schema(engine)
    await migrate(engine)
    store = await Store.open(database_url, network=NETWORK)
    await store.close()
    assert await versions(engine) == [script_head()]
    assert await schema(engine) == before


async def test_the_terms_table_keeps_every_row_through_0015_both_ways(
    engine: AsyncEngine, database_url: str
) -> None:
    # 0015 copies the terms table on SQLite (it drops the foreign key); a query by indicator must find the
    # same records after an upgrade from 0014 with data in it, and after a downgrade to it.
    lead = make_record(identity("alice"), 1, None, kind="lead", document=lead_document())
    store = await Store.open(database_url, network=NETWORK)
    await store.ingest([lead.wire])
    await store.close()
    before = await term_rows(engine)
    assert before

    async with engine.begin() as connection:
        await connection.run_sync(
            lambda sync: command.downgrade(alembic_config(sync), "0014_partial_indexes")
        )
    assert await term_rows(engine) == before
    store = await Store.open(database_url, network=NETWORK)
    try:
        assert [
            found.record.id for found in await store.query(QueryFilters(indicator="pharma-spam.example"))
        ] == [lead.id]
    finally:
        await store.close()
    assert await versions(engine) == [script_head()]
    assert await term_rows(engine) == before


async def term_rows(engine: AsyncEngine) -> list[tuple[str, str, int]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT value, term_type, record_id FROM terms ORDER BY 1, 2, 3")
        )
        return [(str(v), str(t), int(r)) for v, t, r in rows]
