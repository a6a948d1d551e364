"""Driver-level SQL of the ingest path (lapnode/store/sql.py) on both backends: same rows, same errors."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from lapnode.store import Store
from lapnode.store.schema import authors
from lapnode.store.sql import bulk_insert, fetch_all, select_in


async def test_rows_come_back_as_tuples_inside_the_callers_transaction(store: Store) -> None:
    keys = [bytes([n]) * 32 for n in range(3)]
    async with store._write() as conn:
        await bulk_insert(conn, authors, ("key",), [(key,) for key in keys])
        # Not committed yet: only this transaction sees the rows, which shows it is the same one.
        found = await select_in(conn, "SELECT key FROM authors WHERE key IN ({values})", keys[:2])
        assert sorted(bytes(key) for (key,) in found) == keys[:2]
    async with store._write() as conn:
        ((count,),) = await fetch_all(conn, "SELECT COUNT(*) FROM authors", ())
    assert count == 3


async def test_a_failing_statement_raises_sqlalchemys_error_without_its_parameters(store: Store) -> None:
    secret = b"\x07" * 32
    async with store._write() as conn:
        await bulk_insert(conn, authors, ("key",), [(secret,)])
        with pytest.raises(DBAPIError) as raised:
            await bulk_insert(conn, authors, ("key",), [(secret,)])  # the key is unique
    assert secret.hex() not in str(raised.value) and repr(secret) not in str(raised.value)
