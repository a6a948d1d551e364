"""The TAXII 2.1 collections this node serves: one per record kind, paged by log position.

Rule 1: what a client sees is what `disclosure.decide_rows` lets through for its token's recipient
attributes; a withheld record contributes nothing, not even its position in a count.
Rule 2: pages are keyset pages on (log position, object index within the record's objects), encoded in
the opaque `next`. Each request reads at most SCAN_ROWS log rows, whatever the policy withholds, so a
request costs bounded work: a page may hold fewer than `limit` objects and still say `more`.
Rule 3: `added_after` becomes a log position by binary search (lapnode.store.exports), never by
comparing objects with each other; each object's `date_added` is the millisecond the record reached this
node. Many records can share a millisecond (a gossip batch is one transaction), so the millisecond of
`added_after` itself is served again: a client polling with its last `X-TAXII-Date-Added-Last` gets
those objects twice (clients de-duplicate by id and version) and never misses one committed in the same
millisecond after its last poll (polling by time loses late arrivals: LESSONS.md, MISP #3666).
Rule 4: objects made from a record can be found by id (their uuid starts with the record id); an
observable, an author's identity or a country is served inside pages but not by id.
Rule 5: a page carries the decisions it carries out (`Page.decided`), for the server to append to the
audit trail, as one batch, before it answers (lapnode.exits Rule 3): every withheld record the page
passed over, and every record it served objects of. A record the page read but did not reach (past the
cut to `limit`), or whose objects the client's filters all excluded, was not disclosed and is not there.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from lapnode.exits import Audience
from lapnode.interop.disclosure import Disclosed, RowDecision, decide_rows
from lapnode.interop.stix_common import (
    StixObject,
    parse_timestamp,
    record_prefix,
    timestamp,
    tlp_extension_definition,
    tlp_marking,
)
from lapnode.interop.stix_objects import RecordObjects
from lapnode.policy import Decision, Policy
from lapnode.store import ExportRow, Store
from protocol.kinds import KNOWN_KINDS
from protocol.referrals import SEALED_KINDS

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
SCAN_ROWS: Final = 2000
MAX_IDS: Final = 100
_READ_ROWS: Final = 200
_NEXT_RE: Final = re.compile(r"([1-9][0-9]{0,18})\.([0-9]{1,6})")
_COLLECTION_NAMESPACE: Final = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")  # RFC 4122 URL namespace
STIX_MEDIA_TYPE: Final = "application/stix+json;version=2.1"


class BadRequest(ValueError):
    """A filter or paging parameter the server cannot use (HTTP 400)."""


def collection_id(network: str, kind: str) -> str:
    return str(uuid.uuid5(_COLLECTION_NAMESPACE, f"lapnode:{network}:{kind}"))


def collections(network: str) -> dict[str, str]:
    """Collection id -> record kind. Referrals and their statuses are always sealed, and a sealed record
    never leaves through an interop export, so they have no collection."""
    return {collection_id(network, kind): kind for kind in sorted(KNOWN_KINDS - SEALED_KINDS)}


def collection_resource(network: str, kind: str) -> dict[str, object]:
    return {
        "id": collection_id(network, kind),
        "title": f"lapnode {kind} records",
        "description": f"The {kind} records of network {network} that your token may see, as STIX 2.1.",
        "alias": kind,
        "can_read": True,
        "can_write": False,
        "media_types": [STIX_MEDIA_TYPE],
    }


@dataclass(frozen=True)
class Filters:
    added_after: int | None = None
    types: frozenset[str] | None = None
    ids: frozenset[str] | None = None
    versions: frozenset[str] | None = None
    spec_versions: frozenset[str] | None = None

    def accepts(self, obj: StixObject, version: str) -> bool:
        if self.types is not None and obj["type"] not in self.types:
            return False
        if self.ids is not None and obj["id"] not in self.ids:
            return False
        if self.spec_versions is not None and obj.get("spec_version", "2.1") not in self.spec_versions:
            return False
        return not (self.versions is not None and not self.versions & {"first", "last", "all", version})


def parse_filters(query: Mapping[str, str]) -> Filters:
    """TAXII 2.1 §3.4 filters from a query string; BadRequest for what cannot be understood."""

    def listed(name: str) -> frozenset[str] | None:
        value = query.get(name)
        return frozenset(v.strip() for v in value.split(",") if v.strip()) if value is not None else None

    added_after = None
    if "added_after" in query:
        try:
            added_after = parse_timestamp(query["added_after"])
        except ValueError as exc:
            raise BadRequest(f"added_after: {exc}") from None
    ids = listed("match[id]")
    if ids is not None and len(ids) > MAX_IDS:
        raise BadRequest(f"match[id] names more than {MAX_IDS} objects; ask in smaller sets")
    return Filters(
        added_after=added_after,
        types=listed("match[type]"),
        ids=ids,
        versions=listed("match[version]"),
        spec_versions=listed("match[spec_version]"),
    )


def parse_limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or int(text) < 1:
        raise BadRequest("limit must be a positive integer")
    return min(int(text), MAX_LIMIT)


def parse_next(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    match = _NEXT_RE.fullmatch(text)
    if match is None:
        raise BadRequest("next is not a value this server gave out")
    return int(match[1]), int(match[2])


def _inclusive(added_after: int | None) -> int | None:
    return None if added_after is None else added_after - 1  # Rule 3: the same millisecond again


@dataclass(frozen=True)
class Entry:
    obj: StixObject
    date_added: str
    version: str

    def manifest(self) -> dict[str, object]:
        return {
            "id": self.obj["id"],
            "date_added": self.date_added,
            "version": self.version,
            "media_type": STIX_MEDIA_TYPE,
        }


@dataclass
class Page:
    entries: list[Entry] = field(default_factory=list)
    next: str | None = None
    # (record id, decision) of every record this page withheld or served objects of (Rule 5).
    decided: list[tuple[bytes, Decision]] = field(default_factory=list)


@dataclass(frozen=True)
class Reader:
    """One client's view of the store: its audience and what the node needs to build objects."""

    store: Store
    audience: Audience
    our_key: bytes
    network: str
    now_ms: int
    names: Mapping[bytes, str]
    scan_rows: int = SCAN_ROWS
    # This node's local rules (policy.toml): TAXII obeys them exactly as gossip does. No default: a
    # reader that forgot them would serve what they withhold.
    policy: Policy = field(kw_only=True)

    def _decide(self, rows: list[ExportRow]) -> list[RowDecision]:
        return decide_rows(
            rows,
            self.audience,
            policy=self.policy,
            now_ms=self.now_ms,
            our_key=self.our_key,
            network=self.network,
        )

    def _entries(self, item: Disclosed) -> list[Entry]:
        record = item.record
        names = self.names.get(record.header.author)
        group = [tlp_extension_definition(), tlp_marking(record.header.scope.tlp)]
        group += RecordObjects(record, names).objects()
        added = timestamp(item.row.received_at)
        return [Entry(obj, added, str(obj.get("modified") or obj.get("created") or added)) for obj in group]

    async def page(self, kind: str, filters: Filters, *, limit: int, cursor: tuple[int, int] | None) -> Page:
        """One page of a collection (Rules 1-3 and 5)."""
        if filters.ids is not None:
            return await self.by_ids(kind, filters)
        if cursor is None:
            start = (
                0
                if filters.added_after is None
                else await self.store.exports.position_at(filters.added_after - 1)
            )
            cursor = (start + 1, 0)
        position, index = cursor
        page, seen, scanned = Page(), set[object](), 0
        while scanned < self.scan_rows:
            # A record gives several objects: a small page needs few rows verified and turned into STIX.
            wanted = min(_READ_ROWS, self.scan_rows - scanned, max(limit, 8))
            rows = await self.store.exports.page(
                after=position - 1, limit=wanted, kind=kind, received_after=_inclusive(filters.added_after)
            )
            scanned += len(rows)
            for item in self._decide(rows):
                row = item.row
                skip = index if row.position == position else 0
                entries = self._entries(item.disclosed) if item.disclosed is not None else []
                served = False
                for offset in range(skip, len(entries)):
                    entry = entries[offset]
                    if not filters.accepts(entry.obj, entry.version) or entry.obj["id"] in seen:
                        continue
                    if len(page.entries) == limit:
                        page.next = f"{row.position}.{offset}"
                        if served:
                            page.decided.append(item.audited)
                        return page
                    seen.add(entry.obj["id"])
                    page.entries.append(entry)
                    served = True
                if served or item.disclosed is None:  # served from, or withheld (Rule 5)
                    page.decided.append(item.audited)
                position, index = row.position + 1, 0
            if len(rows) < wanted:
                return page  # the end of the log
        page.next = f"{position}.{index}"
        return page

    async def by_ids(self, kind: str, filters: Filters) -> Page:
        """Objects by id (Rule 4): the records behind record-derived ids, then their matching objects."""
        assert filters.ids is not None
        prefixes = {p for p in (record_prefix(i) for i in filters.ids) if p is not None}
        rows: dict[int, ExportRow] = {}
        for prefix in sorted(prefixes):
            rows.update(
                {row.position: row for row in await self.store.exports.by_id_prefix(prefix, kind=kind)}
            )
        page = Page()
        for item in self._decide([rows[p] for p in sorted(rows)]):
            matching = (
                [e for e in self._entries(item.disclosed) if filters.accepts(e.obj, e.version)]
                if item.disclosed is not None
                else []
            )
            if matching or item.disclosed is None:  # served, or withheld (Rule 5)
                page.decided.append(item.audited)
            page.entries += matching
        return page
