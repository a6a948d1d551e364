"""Drafts: imported leads waiting for an operator to review and publish them (lapnode/interop).

Rule 1: a draft is unsigned local data. It is never gossiped, exported or served; only publishing it
(`lapnode publish lead --from-draft ID`) turns it into a signed record, which then follows its scope.
Rule 2: adding is idempotent by fingerprint: importing the same report twice names the draft it made the
first time instead of making a second one.
Rule 3: a published draft stays, with the id of the record it became, so the operator can trace it; it
cannot be published twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from lapnode.errors import InputError
from lapnode.store.engine import WriteTransaction
from lapnode.store.schema import drafts


class UnknownDraft(InputError):
    """No draft with that number; `lapnode drafts list` shows them."""


@dataclass(frozen=True)
class Draft:
    id: int
    kind: str
    source: str
    document: dict[str, object]
    min_tlp: str | None
    created_at: int
    published_rid: bytes | None
    published_at: int | None


@dataclass(frozen=True)
class DraftAdded:
    draft: Draft
    new: bool


def _draft(row: object) -> Draft:
    m = row._mapping  # type: ignore[attr-defined]
    return Draft(
        id=m["id"],
        kind=m["kind"],
        source=m["source"],
        document=json.loads(m["document"]),
        min_tlp=m["min_tlp"],
        created_at=m["created_at"],
        published_rid=m["published_rid"],
        published_at=m["published_at"],
    )


class DraftBook:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add_all(
        self,
        items: list[tuple[bytes, dict[str, object], str | None]],
        *,
        kind: str,
        source: str,
        now_ms: int,
    ) -> list[DraftAdded]:
        """Add (fingerprint, document, min_tlp) drafts in one transaction; existing fingerprints are kept."""
        added: list[DraftAdded] = []
        async with WriteTransaction(self._engine) as conn:
            for fingerprint, document, min_tlp in items:
                row = (await conn.execute(select(drafts).where(drafts.c.fingerprint == fingerprint))).first()
                if row is not None:
                    added.append(DraftAdded(_draft(row), new=False))
                    continue
                values = {
                    "fingerprint": fingerprint,
                    "kind": kind,
                    "source": source,
                    "document": json.dumps(document, ensure_ascii=False, sort_keys=True),
                    "min_tlp": min_tlp,
                    "created_at": now_ms,
                }
                new_id = (
                    await conn.execute(insert(drafts).values(**values).returning(drafts.c.id))
                ).scalar_one()
                row = (await conn.execute(select(drafts).where(drafts.c.id == new_id))).one()
                added.append(DraftAdded(_draft(row), new=True))
        return added

    async def get(self, draft_id: int) -> Draft:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(drafts).where(drafts.c.id == draft_id))).first()
        if row is None:
            raise UnknownDraft(f"no draft {draft_id}; `lapnode drafts list` shows the drafts")
        return _draft(row)

    async def all(self, *, include_published: bool = False) -> list[Draft]:
        query = select(drafts).order_by(drafts.c.id)
        if not include_published:
            query = query.where(drafts.c.published_rid.is_(None))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_draft(row) for row in rows]

    async def mark_published(self, draft_id: int, record_id: bytes, *, now_ms: int) -> None:
        async with WriteTransaction(self._engine) as conn:
            await conn.execute(
                update(drafts)
                .where(drafts.c.id == draft_id, drafts.c.published_rid.is_(None))
                .values(published_rid=record_id, published_at=now_ms)
            )

    async def discard(self, draft_id: int) -> None:
        await self.get(draft_id)
        async with WriteTransaction(self._engine) as conn:
            await conn.execute(delete(drafts).where(drafts.c.id == draft_id))
