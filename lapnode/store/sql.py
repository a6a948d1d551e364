"""Driver-level SQL for the hot paths of ingest: bulk inserts and `IN (...)` probes.

Why not SQLAlchemy Core here: building and compiling a statement with an expanding `IN` of 500 values,
and processing each row's parameters, cost more than the database itself on the ingest path (measured:
about 50 µs a record for inserts, and a millisecond per probe, session 2 and session 4). These
statements are fixed text with only parameter markers formatted in; every value is a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import Table
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
    await conn.exec_driver_sql(statement, list(rows))


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
        result = await conn.exec_driver_sql(statement, (*fixed, *chunk))
        found.extend(tuple(row) for row in result.all())
    return found
