"""Translating the operator's query filters into SQL over the store's indexes.

Rule 1: `QueryFilters.live_at` set means "only records live at that time" (`live_clause`): what an
operator's `query` shows by default. Left None (bundle and STIX/MISP exports, `query --all-versions`),
superseded and expired versions are included as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select

from lapnode.errors import InputError
from lapnode.store.schema import authors, records, terms
from protocol.errors import SchemaError
from protocol.indicators import guess_term_type, normalise

MAX_LIMIT = 10_000


@dataclass(frozen=True)
class QueryFilters:
    kind: str | None = None
    author: bytes | None = None
    indicator: str | None = None
    jurisdiction: str | None = None
    since: int | None = None
    until: int | None = None
    text: str | None = None
    limit: int = 100
    live_at: int | None = None


def build_query(filters: QueryFilters) -> Select[bytes, int, int]:
    if not 1 <= filters.limit <= MAX_LIMIT:
        raise InputError(f"--limit must be between 1 and {MAX_LIMIT}")
    query = select(records.c.wire, records.c.received_at, records.c.hops)
    if filters.kind is not None:
        query = query.where(records.c.kind == filters.kind)
    if filters.author is not None:
        author = select(authors.c.id).where(authors.c.key == filters.author).scalar_subquery()
        query = query.where(records.c.author_id == author)
    if filters.since is not None:
        query = query.where(records.c.created >= filters.since)
    if filters.until is not None:
        query = query.where(records.c.created < filters.until)
    if filters.indicator is not None:
        query = query.where(records.c.id.in_(_term_match(*_indicator_term(filters.indicator))))
    if filters.jurisdiction is not None:
        query = query.where(records.c.id.in_(_term_match("jurisdiction", filters.jurisdiction.upper())))
    if filters.text is not None:
        needle = filters.text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(records.c.search_text.like(f"%{needle}%", escape="\\"))
    if filters.live_at is not None:
        query = query.where(live_clause(filters.live_at))
    return query.order_by(records.c.created.desc(), records.c.id.desc()).limit(filters.limit)


def live_clause(now_ms: int) -> ColumnElement[bool]:
    """The records an operator's read (query, contacts, trends, referrals, exports) may use: content not
    purged (retracted, expired, past retention), not expired at `now_ms`, and not superseded by a live
    later version from the same author (a `supersedes` link from anyone else changes nothing)."""
    newer = records.alias("newer")
    superseded = exists().where(
        and_(
            newer.c.supersedes == records.c.rid,
            newer.c.author_id == records.c.author_id,
            newer.c.purged.is_(None),
        )
    )
    return and_(
        records.c.purged.is_(None),
        or_(records.c.expires.is_(None), records.c.expires > now_ms),
        ~superseded,
    )


def _term_match(term_type: str | None, value: str) -> Select[int]:
    match = select(terms.c.record_id).where(terms.c.value == value)
    if term_type is not None:
        match = match.where(terms.c.term_type == term_type)
    return match


def _indicator_term(raw: str) -> tuple[str | None, str]:
    """The (type, normalised value) an operator's indicator input stands for."""
    term_type = guess_term_type(raw)
    if term_type is None:
        return None, " ".join(raw.split()).casefold()
    try:
        return term_type, normalise(term_type, raw)
    except SchemaError as exc:
        raise InputError(f"--indicator: {exc}") from exc


def id_range(id_or_prefix: str) -> tuple[bytes, bytes]:
    """The lowest and highest 32-byte ids that start with this hex prefix."""
    text = id_or_prefix.strip().lower()
    if not 8 <= len(text) <= 64 or any(c not in "0123456789abcdef" for c in text):
        raise InputError(f"{id_or_prefix!r} is not a record id (give at least 8 hex characters)")
    low = int(text.ljust(64, "0"), 16).to_bytes(32, "big")
    high = int(text.ljust(64, "f"), 16).to_bytes(32, "big")
    return low, high
