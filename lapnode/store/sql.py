"""Driver-level SQL for the hot paths of ingest: bulk inserts and `IN (...)` probes.

Why not SQLAlchemy Core here: building and compiling a statement with an expanding `IN` of 500 values,
and processing each row's parameters, cost more than the database itself on the ingest path (measured:
about 50 µs a record for inserts, and a millisecond per probe, session 2 and session 4). These
statements are fixed text with only parameter markers formatted in; every value is a parameter.

Why SQLite statements skip SQLAlchemy's cursor: on aiosqlite every cursor step (create, execute, fetch,
close) is its own round trip to the connection's thread, about four per statement, and a small ingest
is about ten statements; the hand-offs were most of the 3 ms of CPU one relayed record cost a node
(docs/performance.md, "propagate"). `aiosqlite.Connection.execute_fetchall` and `executemany` run a
statement in one trip, on the same sqlite3 connection, so inside the caller's transaction. Errors are
re-raised as SQLAlchemy's, as the rest of the store expects.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

# Values per statement: well under SQLite's 32,766 parameters and asyncpg's 32,767.
CHUNK: Final = 500


def placeholders(conn: AsyncConnection, count: int, *, start: int = 1) -> list[str]:
    """Parameter markers for driver-level SQL, in the driver's own style."""
    if conn.dialect.paramstyle == "qmark":
        return ["?"] * count
    if conn.dialect.paramstyle == "numeric_dollar":
        return [f"${i}" for i in range(start, start + count)]
    raise NotImplementedError(conn.dialect.paramstyle)  # pragma: no cover - only two drivers reach here


async def bulk_insert(
    conn: AsyncConnection, table: Table, columns: Sequence[str], rows: Sequence[tuple[object, ...]]
) -> None:
    """One driver-level executemany (the columns need no type processing)."""
    marks = ", ".join(placeholders(conn, len(columns)))
    statement = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
    if conn.dialect.name != "sqlite":
        await conn.exec_driver_sql(statement, list(rows))
        return
    driver = await _sqlite_driver(conn)
    try:
        await driver.executemany(statement, rows)
    except sqlite3.Error as exc:
        raise sqlite_error(statement, exc) from exc


async def fetch_all(conn: AsyncConnection, template: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
    """Every row of one driver-level SELECT, as plain tuples. `template` has a `{}` where each of
    `params` goes, in order; the driver's own markers are put there."""
    return await _fetch(conn, _marked(conn, template, len(params)), params)


async def _fetch(conn: AsyncConnection, statement: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
    if conn.dialect.name != "sqlite":
        result = await conn.exec_driver_sql(statement, tuple(params))
        return [tuple(row) for row in result.all()]
    driver = await _sqlite_driver(conn)
    try:
        return [tuple(row) for row in await driver.execute_fetchall(statement, tuple(params))]
    except sqlite3.Error as exc:
        raise sqlite_error(statement, exc) from exc


async def execute(conn: AsyncConnection, template: str, params: Sequence[object]) -> None:
    """One driver-level statement that returns no rows (an UPDATE, say); `template` as for `fetch_all`."""
    statement = _marked(conn, template, len(params))
    if conn.dialect.name != "sqlite":
        await conn.exec_driver_sql(statement, tuple(params))
        return
    driver = await _sqlite_driver(conn)
    try:
        await driver.execute(statement, tuple(params))
    except sqlite3.Error as exc:
        raise sqlite_error(statement, exc) from exc


def _marked(conn: AsyncConnection, template: str, count: int) -> str:
    return template.format(*placeholders(conn, count))


async def _sqlite_driver(conn: AsyncConnection) -> Any:
    """The aiosqlite connection under `conn` (Any: aiosqlite ships no types for its context helpers)."""
    raw = await conn.get_raw_connection()
    return raw.driver_connection


def sqlite_error(statement: str, exc: sqlite3.Error) -> BaseException:
    """A sqlite3 error from a statement sent past SQLAlchemy, as the SQLAlchemy error the rest of the
    store expects, without the statement's parameters (they may hold record contents)."""
    return DBAPIError.instance(statement, None, exc, sqlite3.Error, hide_parameters=True)


async def select_in(
    conn: AsyncConnection, template: str, values: Sequence[object], *, fixed: Sequence[object] = ()
) -> list[tuple[Any, ...]]:
    """The rows `template` selects for all of `values`, CHUNK values per statement.

    `template` has two slots: `{fixed}` for the markers of `fixed` (parameters every chunk repeats) and
    `{values}` for those of one chunk of `values`.
    """
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(values), CHUNK):
        chunk = values[start : start + CHUNK]
        fixed_marks = placeholders(conn, len(fixed))
        value_marks = placeholders(conn, len(chunk), start=len(fixed) + 1)
        statement = template.format(fixed=", ".join(fixed_marks), values=", ".join(value_marks))
        found.extend(await _fetch(conn, statement, (*fixed, *chunk)))
    return found
