"""How a trend report looks to an operator: a table, a bar chart in the terminal, and a JSON document.

Rule 1: every number is printed exactly, in the trend kind's canonical form (lapnode.reports.trends
Rule 1); in JSON, totals are strings so that no reader turns them into floats.
Rule 2: contributors are named by what this node knows of them: the organisation and name the operator
pinned in the peer book (never what a peer says of itself), this node's own organisation from its
config, and always the node id.
Rule 3: the terminal chart is horizontal bars drawn with rich, the library the tables already use. A
terminal plotting library (plotext) was tried and not taken: its 6.0 rewrite changed the whole API, it
draws on module-level global state, and colours need switching off by hand when output is not a
terminal, whereas rich drops styles by itself when piped. Bars also let each exact total stand printed
at the end of its bar.
Rule 4: text that came from records or the peer book goes through `printable` (lapnode.cli.common Rule 3)
and into rich as Text, never as markup.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lapnode.cli.common import one_line
from lapnode.cli.render import short_node_id
from lapnode.clock import format_ms
from lapnode.reports.trends import Series, TrendFilters, TrendReport, show_decimal, timeline

_BAR_WIDTH: Final = 40
_PIPE_WIDTH: Final = 400
_MAX_CHART_ROWS: Final = 60


@dataclass(frozen=True, slots=True)
class Member:
    """A contributor as this node knows it (Rule 2)."""

    node_id: str
    name: str | None = None
    org: str | None = None
    this_node: bool = False

    @property
    def label(self) -> str:
        known = self.org or self.name
        who = f"{one_line(known)} ({short_node_id(self.node_id)})" if known else self.node_id
        return f"{who}, this node" if self.this_node else who

    def document(self) -> dict[str, object]:
        return {"node_id": self.node_id, "name": self.name, "org": self.org, "this_node": self.this_node}


def member(members: Mapping[str, Member], node_id: str) -> Member:
    return members.get(node_id) or Member(node_id)


def report_document(
    report: TrendReport, members: Mapping[str, Member], *, filters: TrendFilters, generated_ms: int
) -> dict[str, object]:
    """The one JSON form of a report (`lapnode trends --json`)."""
    return {
        "generated": format_ms(generated_ms),
        "period": report.period,
        "filters": {
            "metric": filters.metric,
            "category": filters.category,
            "jurisdiction": filters.jurisdiction,
            "since": format_ms(filters.since) if filters.since is not None else None,
            "until": format_ms(filters.until) if filters.until is not None else None,
        },
        "counted": report.counted,
        "series": [_series_document(series) for series in report.series],
        "contributors": [member(members, node).document() for node in report.contributors],
        "left_out": [{"reason": reason, "count": count} for reason, count in report.left_out.items()],
        "notes": report.notes(),
    }


def _series_document(series: Series) -> dict[str, object]:
    return {
        "metric": series.metric,
        "unit": series.unit,
        "total": show_decimal(series.total),
        "reports": series.reports,
        "contributors": list(series.contributors),
        "categories": list(series.categories),
        "jurisdictions": list(series.jurisdictions),
        "buckets": [
            {
                "bucket": total.bucket.label,
                "start": format_ms(total.bucket.start_ms),
                "end": format_ms(total.bucket.end_ms),
                "total": show_decimal(total.total),
                "reports": total.reports,
                "contributors": list(total.contributors),
            }
            for total in series.buckets
        ],
    }


def _console() -> Console:
    # Piped into a file, nothing is cut and no style is written: there is no terminal to respect.
    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else _PIPE_WIDTH)


def print_report(report: TrendReport, members: Mapping[str, Member]) -> None:
    """The table, the terminal chart, who contributed, and the notes."""
    console = _console()
    if report.series:
        console.print(_table(report, members))
        console.print()
        for line in _chart(report):
            console.print(line)
        names = ", ".join(member(members, node).label for node in report.contributors)
        console.print(Text(f"contributors: {names}"))
    else:
        console.print(Text("no trends counted"))
    console.print(Text("notes:"))
    for note in report.notes():
        console.print(Text(f"  - {note}"))
    click.echo(f"{report.counted} trend{'s' if report.counted != 1 else ''} counted", err=True)


def _table(report: TrendReport, members: Mapping[str, Member]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name, justify in (
        ("series", "left"),
        (report.period, "left"),
        ("total", "right"),
        ("reports", "right"),
        ("members", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name != "members")  # type: ignore[arg-type]
    for series in report.series:
        for total in series.buckets:
            names = ", ".join(member(members, node).label for node in total.contributors)
            table.add_row(
                Text(series.name), Text(total.bucket.label), Text(show_decimal(total.total)),
                Text(str(total.reports)), Text(names),
            )  # fmt: skip
        table.add_row(
            Text(series.name), Text("all", style="bold"), Text(show_decimal(series.total), style="bold"),
            Text(str(series.reports)), Text(_members_count(len(series.contributors))),
        )  # fmt: skip
    return table


def _chart(report: TrendReport) -> list[Text]:
    """Horizontal bars, one block per series, one row per bucket from the first to the last (Rule 3)."""
    buckets = timeline(report, limit=_MAX_CHART_ROWS)
    lines: list[Text] = []
    for series in report.series:
        totals = {total.bucket: total.total for total in series.buckets}
        largest = max(abs(total) for total in totals.values()) or Decimal(1)
        lines.append(Text(series.name, style="bold"))
        for bucket in buckets:
            total = totals.get(bucket)
            lines.append(Text(f"  {bucket.label:<9} ") + _bar(total, largest))
        lines.append(Text(""))
    return lines


def _bar(total: Decimal | None, largest: Decimal) -> Text:
    if total is None:
        return Text("·  no reports", style="dim")
    # Integer arithmetic on exact values: the bar length is the only rounded number shown.
    length = int((abs(total) * _BAR_WIDTH / largest).to_integral_value())
    mark = "█" if total >= 0 else "░"  # a negative total (a decrease) is drawn hatched
    # A non-zero total always shows at least one mark, so that it is not read as zero.
    length = max(length, 1) if total else 0
    return Text(mark * length, style="cyan") + Text(f" {show_decimal(total)}")


def _members_count(count: int) -> str:
    return f"{count} member{'s' if count != 1 else ''}"


def print_written(path: str, members: Sequence[str]) -> None:
    click.echo(f"chart written to {one_line(path)} ({_members_count(len(members))} contributing)", err=True)
