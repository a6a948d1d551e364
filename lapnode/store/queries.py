"""Translating the operator's query filters into SQL over the store's indexes.

Rule 1: `build_query` is the one translation; `lapnode query`, bundle and file exports, the contacts
directory (`contacts_query`) and the ranked executor (lapnode/store/ranked.py) all start from it.
Rule 2: `--text` matches words, not substrings (lapnode/store/search.py, Rule 1); `--indicator` matches the
normalised indicator among a record's index terms (protocol/indicators.py).
Rule 3: every read sees only records whose content is held and not expired (`held_clause`, judged at
`live_at`, default now): no read ever yields a purged or expired record. Unless `all_versions` is set
(`query --all-versions`, bundle and file exports, which carry every version under its own scope as gossip
does), a read also leaves out versions superseded by a live later one (`live_clause`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select

from lapnode.clock import now_ms as clock_now_ms
from lapnode.errors import InputError
from lapnode.store.schema import authors, records, terms
from lapnode.store.search import text_match
from protocol.errors import SchemaError
from protocol.indicators import guess_term_type, normalise

MAX_LIMIT = 10_000
# What a read returns of each record: its wire bytes, when it arrived, its relay count, why it is purged.
ROW_COLUMNS = (records.c.wire, records.c.received_at, records.c.hops, records.c.purged)


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
    # A contact's topic (`topic` index term), for the contacts directory.
    topic: str | None = None
    # The moment expiry is judged at (ms); None: now (Rule 3).
    live_at: int | None = None
    # Include superseded versions (Rule 3).
    all_versions: bool = False


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InputError(f"--limit must be between 1 and {MAX_LIMIT}")


def build_query(filters: QueryFilters) -> Select[bytes, int, int, str | None]:
    check_limit(filters.limit)
    query = select(*ROW_COLUMNS).where(*conditions(filters))
    return query.order_by(records.c.created.desc(), records.c.id.desc()).limit(filters.limit)


def conditions(filters: QueryFilters, *, probe_terms: bool = False) -> list[ColumnElement[bool]]:
    """The WHERE conditions of `filters` (Rule 3 always among them). A term filter is a set the database
    can start from (IN), or with `probe_terms` one primary-key probe per candidate row (for a caller that
    already has a few candidates: lapnode/store/ranked.py)."""
    now = filters.live_at if filters.live_at is not None else clock_now_ms()
    found: list[ColumnElement[bool]] = [held_clause(now) if filters.all_versions else live_clause(now)]
    if filters.kind is not None:
        found.append(records.c.kind == filters.kind)
    if filters.author is not None:
        author = select(authors.c.id).where(authors.c.key == filters.author).scalar_subquery()
        found.append(records.c.author_id == author)
    if filters.since is not None:
        found.append(records.c.created >= filters.since)
    if filters.until is not None:
        found.append(records.c.created < filters.until)
    wanted = [
        indicator_term(filters.indicator) if filters.indicator is not None else None,
        ("jurisdiction", filters.jurisdiction.upper()) if filters.jurisdiction is not None else None,
        ("topic", filters.topic.strip().lower()) if filters.topic is not None else None,
    ]
    for term in wanted:
        if term is not None:
            found.append(_term_probe(*term) if probe_terms else records.c.id.in_(_term_match(*term)))
    if filters.text is not None:
        found.append(text_match(filters.text))
    return found


# Built once: making an alias sets up its column collection, which cost about 6 ms a query.
_NEWER = records.alias("newer")


def held_clause(now_ms: int) -> ColumnElement[bool]:
    """Records whose content this node holds and may use at `now_ms`: not purged (retracted, expired,
    past retention) and not expired."""
    return and_(records.c.purged.is_(None), or_(records.c.expires.is_(None), records.c.expires > now_ms))


def live_clause(now_ms: int) -> ColumnElement[bool]:
    """The records an operator's read (query, contacts, trends, referrals) uses: `held_clause`, and not
    superseded by a live later version from the same author (a `supersedes` link from anyone else
    changes nothing)."""
    newer = _NEWER
    superseded = exists().where(
        and_(
            newer.c.supersedes == records.c.rid,
            newer.c.author_id == records.c.author_id,
            newer.c.purged.is_(None),
            or_(newer.c.expires.is_(None), newer.c.expires > now_ms),
        )
    )
    return and_(held_clause(now_ms), ~superseded)


def contacts_query(
    *,
    now_ms: int,
    jurisdiction: str | None = None,
    topic: str | None = None,
    text: str | None = None,
    limit: int = 100,
) -> QueryFilters:
    """The contacts directory's read: live contact records, by jurisdiction (upper-cased ISO code), topic
    and words of their text, newest first. Run it with `Store.query`."""
    return QueryFilters(
        kind="contact",
        jurisdiction=jurisdiction,
        topic=topic,
        text=text,
        limit=limit,
        live_at=now_ms,
    )


def _term_match(term_type: str | None, value: str) -> Select[int]:
    match = select(terms.c.record_id).where(terms.c.value == value)
    if term_type is not None:
        match = match.where(terms.c.term_type == term_type)
    return match


def _term_probe(term_type: str | None, value: str) -> ColumnElement[bool]:
    probe = exists().where(terms.c.value == value, terms.c.record_id == records.c.id)
    if term_type is not None:
        probe = probe.where(terms.c.term_type == term_type)
    return probe


def indicator_term(raw: str) -> tuple[str | None, str]:
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
