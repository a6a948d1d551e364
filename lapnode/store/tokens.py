"""TAXII API tokens: names, hashed secrets, and the recipient attributes each one stands for.

Rule 1: the token itself is never stored; only `token_hash`, computed by lapnode.interop.tokens.
Rule 2: a token's category and jurisdiction are what the operator pinned with `lapnode taxii token add`;
the TAXII server hands them to the policy decision as the recipient's attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from lapnode.errors import InputError
from lapnode.store.engine import WriteTransaction
from lapnode.store.schema import taxii_tokens


class UnknownToken(InputError):
    """No TAXII token by that name; `lapnode taxii token list` shows them."""


@dataclass(frozen=True)
class TokenEntry:
    name: str
    token_hash: bytes
    org: str | None
    category: str | None
    jurisdiction: str | None
    created_at: int


def _entry(row: object) -> TokenEntry:
    m = row._mapping  # type: ignore[attr-defined]
    return TokenEntry(m["name"], m["token_hash"], m["org"], m["category"], m["jurisdiction"], m["created_at"])


class TokenBook:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, entry: TokenEntry) -> None:
        try:
            async with WriteTransaction(self._engine) as conn:
                await conn.execute(
                    insert(taxii_tokens).values(
                        name=entry.name,
                        token_hash=entry.token_hash,
                        org=entry.org,
                        category=entry.category,
                        jurisdiction=entry.jurisdiction,
                        created_at=entry.created_at,
                    )
                )
        except IntegrityError:
            raise InputError(f"a TAXII token named {entry.name!r} exists; remove it first") from None

    async def find(self, token_hash: bytes) -> TokenEntry | None:
        """The token with this hash, or None. The hash is looked up by index; the caller compared nothing."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(taxii_tokens).where(taxii_tokens.c.token_hash == token_hash))
            ).first()
        return _entry(row) if row is not None else None

    async def all(self) -> list[TokenEntry]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(taxii_tokens).order_by(taxii_tokens.c.name))).all()
        return [_entry(row) for row in rows]

    async def remove(self, name: str) -> None:
        async with WriteTransaction(self._engine) as conn:
            gone = await conn.execute(delete(taxii_tokens).where(taxii_tokens.c.name == name))
        if gone.rowcount == 0:
            raise UnknownToken(f"no TAXII token named {name!r}; `lapnode taxii token list` shows them")
