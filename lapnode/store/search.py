"""Full-text search over the records' searchable text (`query --text`; issue #6).

Rule 1: the search matches words. The operator's input and the stored text are split alike into words:
runs of letters and digits (Unicode categories L*, N* and Co); everything else (spaces, punctuation,
symbols, FTS or tsquery syntax) only separates words, except a `*` right after a word (below), so no
input can change the query's meaning.
Every word must match (AND), case-insensitively (both sides are case-folded), as a whole word; a word
of two or more characters written with `*` right after it also matches the words it begins ("pharm*"
finds "pharmacy"). Whole words by default because a prefix is expanded eagerly by FTS5: "spam*" over a
million records cost ten times "spam" (measured on the 100,000-record bench store: 17 ms against 0.8).
Rule 2: on SQLite the index is an FTS5 table over `records.search_text` kept outside the ingest
transaction: `catch_up` indexes the records past the mark in short batches, before a text query and when
the daemon is idle, so ingest pays nothing for it. On PostgreSQL a GIN expression index over the same
words is kept by the database itself.
Rule 3 (SQLite): a row is in the FTS index exactly when its id is at or below the mark, its search text is
not empty and it is not purged. The triggers of migration 0009 keep that true when a record is purged,
its text changes, it moves to a new log position (a relog) or it is deleted.
Rule 4: search never widens what a read may see: callers combine the match with `live_clause`, and a
sealed record has no search text here unless this node could open it (it has none today).
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from typing import Any, Final

from sqlalchemy import Boolean, ColumnElement, literal, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from lapnode.errors import InputError
from lapnode.store.engine import WriteTransaction

log = logging.getLogger(__name__)

# The FTS5 table and its mark (SQLite only; created by migration 0009_search).
FTS_TABLE: Final = "records_search"
STATE_TABLE: Final = "records_search_state"
# The highest `created` among log positions [block << BLOCK_SHIFT, (block + 1) << BLOCK_SHIFT).
BLOCKS_TABLE: Final = "records_search_blocks"
BLOCK_SHIFT: Final = 12
# The expression the PostgreSQL GIN index is built on; a query must repeat it exactly to use the index.
# Punctuation and spaces become spaces first, so that PostgreSQL's parser sees plain words (it would
# otherwise keep "pharma-1.example" or "a@b.example" whole, and "example" would not find them).
PG_VECTOR_SQL: Final = "to_tsvector('simple', regexp_replace(search_text, '[[:punct:][:space:]]+', ' ', 'g'))"

_BEHIND = f"SELECT indexed_to, (SELECT COALESCE(MAX(id), 0) FROM records) FROM {STATE_TABLE}"  # noqa: S608
MAX_WORDS: Final = 16
# A prefix must have this many characters: "a*" would expand to a good part of the vocabulary.
MIN_PREFIX: Final = 2
# A query word, and whether it matches the words it begins (written `word*`).
Word = tuple[str, bool]
BATCH: Final = 5_000
IDLE_INTERVAL_S: Final = 5.0


def words(raw: str) -> list[str]:
    """The words of `raw`, case-folded, in order, without repeats (Rule 1)."""
    return list(dict.fromkeys(word for word, _ in _scan(raw)))


def _scan(raw: str) -> list[tuple[str, bool]]:
    """Each word of `raw`, case-folded, and whether a `*` follows it at once."""
    found: list[tuple[str, bool]] = []
    current: list[str] = []
    for char in raw.casefold() + " ":
        category = unicodedata.category(char)
        if category[0] in "LN" or category == "Co":
            current.append(char)
        elif current:
            found.append(("".join(current), char == "*"))
            current = []
    return found


def query_words(raw: str) -> list[Word]:
    """The words an operator's `--text` input stands for; a one-line error if it has none or too many."""
    found = list(dict.fromkeys((word, star and len(word) >= MIN_PREFIX) for word, star in _scan(raw)))
    if not found:
        raise InputError(
            "--text: give at least one word (letters or digits); other characters separate words"
        )
    if len(found) > MAX_WORDS:
        raise InputError(f"--text: at most {MAX_WORDS} words")
    return found


def fts5_query(found: list[Word]) -> str:
    """An FTS5 MATCH expression: each word a quoted string (so it is never syntax), `*` after a prefix."""
    return " AND ".join(f'"{word}"' + ("*" if prefix else "") for word, prefix in found)


def tsquery(found: list[Word]) -> str:
    """A PostgreSQL to_tsquery expression with the same meaning as `fts5_query` (words hold no quotes)."""
    return " & ".join(f"'{word}'" + (":*" if prefix else "") for word, prefix in found)


class TextMatch(ColumnElement[bool]):
    """`records` rows whose search text has every word (Rule 1); compiled per dialect, so that
    build_query stays one dialect-free statement."""

    type = Boolean()
    inherit_cache = False

    def __init__(self, found: list[Word]) -> None:
        self.words = found


@compiles(TextMatch, "sqlite")
def _match_sqlite(element: TextMatch, compiler: SQLCompiler, **kw: Any) -> str:
    expression = compiler.process(literal(fts5_query(element.words)), **kw)
    return f"records.id IN (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH {expression})"  # noqa: S608


@compiles(TextMatch, "postgresql")
def _match_postgres(element: TextMatch, compiler: SQLCompiler, **kw: Any) -> str:
    expression = compiler.process(literal(tsquery(element.words)), **kw)
    return f"{PG_VECTOR_SQL} @@ to_tsquery('simple', {expression})"


def text_match(raw: str) -> TextMatch:
    return TextMatch(query_words(raw))


class SearchIndex:
    """The SQLite FTS5 index's upkeep (Rule 2). On PostgreSQL every method does nothing."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._lock = asyncio.Lock()

    async def behind(self) -> int:
        """How many log positions past the mark (0: fully indexed)."""
        async with self._engine.connect() as conn:
            return await self.behind_on(conn)

    async def behind_on(self, conn: AsyncConnection) -> int:
        """`behind`, on the caller's connection (a read that must see the whole index checks first)."""
        if not self._sqlite:
            return 0
        row = (await conn.execute(text(_BEHIND))).one()
        return max(int(row[1]) - int(row[0]), 0)

    async def catch_up(self, *, batch: int = BATCH, max_batches: int | None = None) -> int:
        """Index the records past the mark, `batch` log positions a transaction; return how many rows
        were indexed. Each batch holds the write lock briefly, so a daemon's ingest is never held up long.
        """
        if not self._sqlite or await self.behind() == 0:  # the usual case: a read, no write lock
            return 0
        indexed = 0
        done = 0
        async with self._lock:
            while max_batches is None or done < max_batches:
                added, more = await self._one_batch(batch)
                indexed += added
                done += 1
                if not more:
                    break
        return indexed

    async def _one_batch(self, batch: int) -> tuple[int, bool]:
        async with WriteTransaction(self._engine) as conn:
            mark = int((await conn.execute(text(f"SELECT indexed_to FROM {STATE_TABLE}"))).scalar_one())  # noqa: S608
            upper = (
                await conn.execute(
                    text(
                        "SELECT MAX(id) FROM "
                        "(SELECT id FROM records WHERE id > :mark ORDER BY id LIMIT :n) AS b"
                    ),
                    {"mark": mark, "n": batch},
                )
            ).scalar_one()
            if upper is None:
                return 0, False
            added = await conn.execute(
                text(
                    f"INSERT INTO {FTS_TABLE} (rowid, search_text) "  # noqa: S608 - constant names only
                    "SELECT id, search_text FROM records "
                    "WHERE id > :mark AND id <= :upper AND search_text <> '' AND purged IS NULL"
                ),
                {"mark": mark, "upper": upper},
            )
            # Every position counts towards its block's highest `created`, indexed text or not: the
            # figure is only ever used as an upper bound (lapnode/store/ranked.py).
            await conn.execute(
                text(
                    f"INSERT INTO {BLOCKS_TABLE} (block, max_created) "  # noqa: S608 - constant names only
                    f"SELECT id >> {BLOCK_SHIFT}, MAX(created) FROM records "
                    f"WHERE id > :mark AND id <= :upper GROUP BY id >> {BLOCK_SHIFT} "
                    "ON CONFLICT (block) DO UPDATE "
                    "SET max_created = MAX(max_created, excluded.max_created)"
                ),
                {"mark": mark, "upper": upper},
            )
            await conn.execute(text(f"UPDATE {STATE_TABLE} SET indexed_to = :upper"), {"upper": upper})  # noqa: S608
        return int(added.rowcount), True

    async def run(self, *, interval_s: float = IDLE_INTERVAL_S) -> None:
        """The daemon's idle upkeep: catch up every `interval_s`, a few batches at a time."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.catch_up(max_batches=4)
            except SQLAlchemyError as exc:  # pragma: no cover - a database gone away; the next round retries
                log.warning("search index catch-up failed: %s", exc)
