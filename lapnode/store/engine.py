"""Opening the database: engine settings per backend and schema migration.

Rule 1: SQLite runs in WAL mode with a large page cache, so the CLI and the daemon can share one file
and bulk ingest keeps its pace as the store grows.
Rule 2: write transactions that must not interleave (publishing the next sequence number, appending to
the audit chain) take the write lock at BEGIN (`BEGIN IMMEDIATE` on SQLite, an advisory lock on
PostgreSQL: the store's write lock, or the audit trail's own).
Rule 3: the schema is always brought to the newest alembic revision before anything else runs. A store
already there is recognised without alembic: its recorded revision is compared with the head of the
migration files, read as text. Importing alembic was a fifth of every CLI command's start-up; it is
imported when there is something to migrate, or when the files cannot be read that simply.
"""

from __future__ import annotations

import ast
import asyncio
import re
import sqlite3
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolResetState
from sqlalchemy.util import await_

from lapnode.errors import LapnodeError
from lapnode.store.sql import sqlite_error

IMMEDIATE = "lapnode_begin_immediate"
# Enough to keep the random-keyed id index of a few million records hot; measured: 8 MiB per connection
# kept ingest at pace, where 64 MiB made a serving daemon's memory grow with every record it served.
_SQLITE_PAGE_CACHE_KIB = 8192


class StoreError(LapnodeError):
    """The store's database cannot be opened, reached or upgraded."""


def create_engine(url: str) -> AsyncEngine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"database URL {url!r} is not valid") from exc
    if parsed.drivername == "sqlite+aiosqlite":
        # hide_parameters: a failed statement's error must not carry record contents (personal data,
        # case details) into logs or an operator's terminal.
        # No rollback on every return to the pool: `_configure_sqlite` rolls back only a connection that
        # is still in a transaction (see `_on_reset`).
        # LIFO: the connection returned last is taken next. SQLite drops a connection's whole page cache
        # when another connection has written since its last transaction, so with the default FIFO every
        # transaction of a busy writer started cold on the next connection of the pool and read its pages
        # back from the OS (bench sync: the publisher read 8.5 KB a record it sent, 3.1 KB with LIFO).
        engine = create_async_engine(
            parsed,
            connect_args={"timeout": 30},
            hide_parameters=True,
            pool_reset_on_return=None,
            pool_use_lifo=True,
        )
        _configure_sqlite(engine)
        return engine
    if parsed.drivername == "postgresql+asyncpg":
        return create_async_engine(parsed, pool_pre_ping=True, hide_parameters=True)
    raise StoreError(
        f"unsupported database driver {parsed.drivername!r}: use sqlite+aiosqlite or postgresql+asyncpg"
    )


def _bind_as_is(value: None) -> None:
    return value


def _skip_adaptation_lookup() -> None:
    """Register identity adapters for bytes and None in Python's sqlite3 module (process-wide).

    Why: on Python 3.11, binding a bytes or None parameter asks the sqlite3 adaptation protocol for an
    adapter; with none registered it looks up `__adapt__` on a type, and that raises and formats an
    AttributeError every time before clearing it. A record row binds about ten such values (ids, scope,
    wire bytes, NULLs): measured with callgrind, a twentieth of the daemon's instructions per ingested
    record. A registered adapter is found by one dict lookup instead. Values are bound exactly as
    before: `bytes` returns an exact bytes object unchanged, and None stays None (NULL).
    """
    sqlite3.register_adapter(bytes, bytes)
    sqlite3.register_adapter(type(None), _bind_as_is)


def _configure_sqlite(engine: AsyncEngine) -> None:
    _skip_adaptation_lookup()

    # pysqlite's own transaction handling would defer BEGIN; we take control of it so that a writer
    # can take the lock up front (SQLAlchemy docs, "Serializable isolation / Savepoints" for SQLite).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA cache_size=-{_SQLITE_PAGE_CACHE_KIB}")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Checkpoint at 64 MiB of WAL rather than SQLite's 4 MiB: a bulk write transaction is bigger than
        # 4 MiB, so each one was followed by a checkpoint that copied its pages into the database and
        # synced it; an index page rewritten by several transactions is now copied once (bench sync: the
        # subscriber wrote 9.9 KB a record to its files, 7.2 KB with this and LIFO).
        cursor.execute("PRAGMA wal_autocheckpoint=16384")
        cursor.close()

    # Why both handlers talk to aiosqlite directly: through SQLAlchemy's cursor a BEGIN is three round
    # trips to the connection's thread (cursor, execute, close) and the pool's rollback on return a
    # fourth, even after a commit; every read and write transaction paid them, and on a relaying daemon
    # those hand-offs were a large share of its CPU (docs/performance.md, "propagate").
    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(IMMEDIATE, False)
        statement = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        try:
            driver = connection.connection.driver_connection
            assert driver is not None, "a connection that begins has its driver connection"
            await_(driver.execute(statement))
        except sqlite3.Error as exc:
            raise sqlite_error(statement, exc) from exc

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
        # The pool's own reset is off (pool_reset_on_return=None); a connection returned inside a
        # transaction (a failure half-way, say) is rolled back here, one that is not costs nothing.
        # SQLite itself says which (`in_transaction` reads its autocommit flag, no round trip). A reset
        # the garbage collector starts is not asyncio-safe: the pool then discards the connection.
        driver = dbapi_connection.driver_connection
        if state.asyncio_safe and not state.terminate_only and driver.in_transaction:
            dbapi_connection.rollback()


_VERSIONS = Path(__file__).parent / "migrations" / "versions"
# A module-level `revision = "..."` or `down_revision = ...` line, type annotation allowed.
_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


def script_head() -> str | None:
    """The newest revision of the migration files, or None unless that is clear-cut: every file names
    one revision and one earlier revision (or None) as plain strings, and exactly one revision is
    nobody's predecessor. None sends `migrate` to alembic, which decides in full."""
    revisions: set[str] = set()
    predecessors: set[str] = set()
    for path in _VERSIONS.glob("*.py"):
        if path.name == "__init__.py":
            continue
        found: dict[str, list[object]] = {"revision": [], "down_revision": []}
        for name, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            try:
                found[name].append(ast.literal_eval(value))
            except (ValueError, SyntaxError):
                return None
        match found["revision"], found["down_revision"]:
            case [str(revision)], [str(down)]:
                revisions.add(revision)
                predecessors.add(down)
            case [str(revision)], [None]:
                revisions.add(revision)
            case _:
                return None
    heads = revisions - predecessors
    return heads.pop() if len(heads) == 1 else None


def _at_head(connection: Connection) -> bool:
    if not inspect(connection).has_table("alembic_version"):
        return False
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    head = script_head()
    return head is not None and [row[0] for row in rows] == [head]


def _upgrade(connection: Connection) -> None:
    if _at_head(connection):
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "lapnode.store:migrations")
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _require_fts5(connection: Connection) -> None:
    """Text search needs SQLite's FTS5 (built into the SQLite of every mainstream Python); say so plainly
    rather than fail half-way through a migration."""
    try:
        connection.exec_driver_sql("CREATE VIRTUAL TABLE temp.lapnode_fts5_probe USING fts5(x)")
    except OperationalError as exc:
        raise StoreError(
            "this Python's SQLite has no FTS5 full-text search, which the store needs; use a Python whose "
            "sqlite3 module has FTS5 (python.org and distribution builds do) or a PostgreSQL database"
        ) from exc
    connection.exec_driver_sql("DROP TABLE temp.lapnode_fts5_probe")


async def migrate(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            await connection.run_sync(_require_fts5)
        await connection.run_sync(_upgrade)


# Arbitrary keys shared by every lapnode writer of one database: the store's one write lock, and the audit
# trail's own (so that recording decisions never waits behind a long ingest on PostgreSQL; SQLite has
# a single write lock whatever the key).
PG_WRITE_LOCK = 0x1A9_0DE
PG_AUDIT_LOCK = 0x1A9_0DF


class WriteTransaction:
    """A connection in a transaction that holds the write lock from its first statement (Rule 2).

    Every read-then-write goes through this: a deferred SQLite transaction that read first fails at once
    with "database is locked" if another process wrote in between, whatever the busy timeout.

    On SQLite the writers of one process also queue on an asyncio lock before BEGIN IMMEDIATE. SQLite
    makes a writer that finds its lock taken sleep and retry (1, 2, 5, ... up to 100 ms a sleep), so on a
    relaying daemon, where every subscription's ingest and every audit append want the lock within
    milliseconds of each other, the loser slept on well after the lock was free; the asyncio lock hands
    it over at once. Other processes still meet SQLite's own lock and its busy timeout.
    """

    def __init__(self, engine: AsyncEngine, *, lock: int = PG_WRITE_LOCK) -> None:
        self._engine = engine
        self._lock = lock
        self._conn: AsyncConnection | None = None
        self._local: asyncio.Lock | None = None

    async def __aenter__(self) -> AsyncConnection:
        if self._engine.dialect.name == "sqlite":
            self._local = _local_write_lock(self._engine)
            await self._local.acquire()
        try:
            conn = await self._engine.connect()
            try:
                conn = await conn.execution_options(**{IMMEDIATE: True})
                await conn.begin()
                if conn.dialect.name == "postgresql":
                    # One writer at a time, as on SQLite: sequence numbers and author rows are read, then
                    # written.
                    await conn.execute(select(func.pg_advisory_xact_lock(self._lock)))
            except BaseException:
                await conn.close()
                raise
        except BaseException:
            self._release()
            raise
        self._conn = conn
        return conn

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._conn is not None
        try:
            if exc_type is None:
                await self._conn.commit()
            else:
                await self._conn.rollback()
        finally:
            try:
                await self._conn.close()
            finally:
                self._release()

    def _release(self) -> None:
        if self._local is not None:
            self._local.release()
            self._local = None


# One asyncio lock per SQLite engine and event loop (an asyncio lock belongs to one loop; tests run
# several loops over one engine).
_WRITE_LOCKS: weakref.WeakKeyDictionary[
    Engine, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
] = weakref.WeakKeyDictionary()


def _local_write_lock(engine: AsyncEngine) -> asyncio.Lock:
    by_loop = _WRITE_LOCKS.setdefault(engine.sync_engine, weakref.WeakKeyDictionary())
    loop = asyncio.get_running_loop()
    lock = by_loop.get(loop)
    if lock is None:
        lock = by_loop[loop] = asyncio.Lock()
    return lock
