"""The query filter options shared by `lapnode query` and `lapnode bundle export`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from keys.identity import public_key_from_node_id
from lapnode.clock import now_ms, parse_past_ms
from lapnode.config import check_jurisdiction
from lapnode.store import QueryFilters

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_QUERY_LIMIT = 100
_TIME_HELP = "ISO date or date-time (UTC), or a duration ago such as 7d or 12h."


def filter_options(*, default_limit: int | None) -> Callable[[F], F]:
    """Decorate a command with the filter options; they arrive bundled as `filters: FilterOptions`."""

    def decorate(command: F) -> F:
        options = [
            click.option(
                "--kind", metavar="KIND", help="Only records of this kind (contact, lead, trend, ...)."
            ),
            click.option("--author", metavar="NODE_ID", help="Only records by this node (lap1...)."),
            click.option(
                "--indicator",
                metavar="VALUE",
                help="Records naming this domain, email, IP, URL, phone... in any form (a domain also "
                "finds the mailboxes and URLs on it; +31 20 123 4567 = +31201234567).",
            ),
            click.option(
                "--jurisdiction", metavar="CC", help="Records about this ISO 3166-1 alpha-2 country."
            ),
            click.option("--since", metavar="TIME", help=f"Created at or after TIME. {_TIME_HELP}"),
            click.option("--until", metavar="TIME", help=f"Created before TIME. {_TIME_HELP}"),
            click.option(
                "--text",
                metavar="WORDS",
                help="Records whose text (titles, summaries, notes, organisations, commentary) has every "
                "one of WORDS as a whole word, in any case; word* also matches the words it begins "
                "(pharm* finds pharmacy). Other punctuation, quotes and operators only separate words.",
            ),
            click.option(
                "--limit",
                type=click.IntRange(min=1),
                default=default_limit,
                show_default=default_limit is not None,
                help="At most this many records, newest first."
                if default_limit
                else "At most this many records.",
            ),
        ]
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@dataclass(frozen=True, slots=True)
class FilterOptions:
    kind: str | None
    author: str | None
    indicator: str | None
    jurisdiction: str | None
    since: str | None
    until: str | None
    text: str | None
    limit: int | None

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]) -> FilterOptions:
        names = ("kind", "author", "indicator", "jurisdiction", "since", "until", "text", "limit")
        return cls(**{name: kwargs.pop(name) for name in names})

    def to_query(self, *, limit: int, now: int | None = None) -> QueryFilters:
        """Validated store filters; a bad node id, country code or time is a one-line error."""
        moment = now_ms() if now is None else now
        return QueryFilters(
            kind=self.kind.strip().lower() if self.kind else None,
            author=public_key_from_node_id(self.author) if self.author else None,
            indicator=self.indicator if self.indicator and self.indicator.strip() else None,
            jurisdiction=check_jurisdiction(self.jurisdiction) if self.jurisdiction else None,
            since=parse_past_ms(self.since, now=moment) if self.since else None,
            until=parse_past_ms(self.until, now=moment) if self.until else None,
            text=self.text if self.text and self.text.strip() else None,
            limit=limit,
        )
