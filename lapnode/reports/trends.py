"""Trend reports: the trend indicators this node holds, added up by series and period bucket.

Pure: no I/O and no clock. The caller (lapnode.reports.held) hands in verified trend bodies it may read,
with their author and record id, and counts of what it had to leave out and why.

Rule 1: values are added as exact decimals (`decimal.Decimal` under a context that traps any rounding),
never as floats; totals are written in the trend kind's canonical form ("12.5", "3"; SPEC §5).
Rule 2: a series is one (metric, unit). Values in different units are never added: a metric reported in
two units is two series, and the report says so.
Rule 3: a trend is counted whole in the bucket that holds its period_start (UTC; an ISO week from Monday,
a calendar month or a calendar quarter). A trend whose period runs on into later buckets is not split:
splitting would invent a distribution over time that its author never reported. The report counts such
trends and says so.
Rule 4: a trend is counted only if every field the report needs is disclosed: metric, unit, value and
period_start, and each field a filter names. Otherwise it is left out as redacted, and counted as such.
A trend whose disclosed fields do not match a filter is outside the report, not left out.
Rule 5: nothing is left out silently: what the caller could not read (sealed to others, key locked,
under embargo, revoked key, unknown schema) arrives as counts and is reported with its reason.
"""

from __future__ import annotations

import decimal
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Final

from protocol.kinds import TrendBody

PERIODS: Final = ("week", "month", "quarter")
DAY_MS: Final = 86_400_000
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
# 10000-01-01T00:00Z, the end of the last month a trend can start in (MAX_TIME_MS is 9999-12-31).
_END_OF_TIME_MS: Final = (date(9999, 12, 31).toordinal() + 1 - _EPOCH_ORDINAL) * DAY_MS
# Exact arithmetic (Rule 1): a sum that would need rounding raises instead. Values have at most 40
# characters, so 1000 digits hold any sum this node could ever hold.
_EXACT: Final = decimal.Context(
    prec=1000, traps=[decimal.Inexact, decimal.Rounded, decimal.InvalidOperation, decimal.Overflow]
)

# Why trends were left out (Rule 5), in the order reports list them: what the line says, and a hint.
REDACTED: Final = "redacted"
SEALED: Final = "sealed"
LOCKED: Final = "locked"
EMBARGOED: Final = "embargoed"
REVOKED: Final = "revoked"
UNREADABLE: Final = "unreadable"
LEFT_OUT_REASONS: Final[Mapping[str, tuple[str, str]]] = {
    REDACTED: ("with redacted values", " (a field the report needs is withheld from this node)"),
    SEALED: ("sealed for other members", " (this node cannot open them)"),
    LOCKED: (
        "sealed to this node",
        " (the node key is locked: set LAPNODE_PASSPHRASE or pass --passphrase-file)",
    ),
    EMBARGOED: ("under embargo", " (this node's own, until the embargo ends)"),
    REVOKED: ("by revoked or rotated-away keys", ""),
    UNREADABLE: ("of a schema this node cannot read", ""),
}


@dataclass(frozen=True, slots=True, order=True)
class Bucket:
    """One period: [start_ms, end_ms) in UTC, and its label ("2025-W01", "2025-01", "2025-Q1").

    Labels of one period sort in time order as text, and buckets sort by start.
    """

    start_ms: int
    end_ms: int
    label: str


def _day_ms(day: date) -> int:
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY_MS


def _month_start_ms(year: int, month: int) -> int:
    if month > 12:
        year, month = year + 1, month - 12
    return _END_OF_TIME_MS if year > 9999 else _day_ms(date(year, month, 1))


def bucket_of(ms: int, period: str) -> Bucket:
    """The bucket of `period` ("week", "month" or "quarter") holding the instant `ms` (Rule 3)."""
    day = date.fromordinal(_EPOCH_ORDINAL + ms // DAY_MS)
    if period == "week":
        iso = day.isocalendar()
        start = _day_ms(day - timedelta(days=day.weekday()))
        return Bucket(start, start + 7 * DAY_MS, f"{iso.year}-W{iso.week:02d}")
    if period == "month":
        end = _month_start_ms(day.year, day.month + 1)
        return Bucket(_month_start_ms(day.year, day.month), end, f"{day.year}-{day.month:02d}")
    if period == "quarter":
        quarter = (day.month - 1) // 3
        first = 3 * quarter + 1
        start, end = _month_start_ms(day.year, first), _month_start_ms(day.year, first + 3)
        return Bucket(start, end, f"{day.year}-Q{quarter + 1}")
    raise ValueError(f"unknown period {period!r}; known periods are {', '.join(PERIODS)}")


def timeline(report: TrendReport, *, limit: int) -> list[Bucket]:
    """The buckets a chart of `report` runs along: every bucket from its first to its last, empty ones
    too, so that a gap shows as a gap (no report is not a zero); only those with reports if that would be
    more than `limit`."""
    held = sorted({total.bucket for series in report.series for total in series.buckets})
    if not held:
        return []
    found = [held[0]]
    while found[-1].start_ms < held[-1].start_ms:
        if len(found) >= limit:
            return held
        found.append(bucket_of(found[-1].end_ms, report.period))
    return found


def exact_sum(values: Iterable[Decimal]) -> Decimal:
    total = Decimal(0)
    for value in values:
        total = _EXACT.add(total, value)
    return total


def show_decimal(value: Decimal) -> str:
    """The canonical text of an exact value: "12.5", "3", "-0.25"; never an exponent."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value, "f").rstrip("0")


@dataclass(frozen=True, slots=True)
class HeldTrend:
    """A verified trend this node may read; `redacted` names the fields withheld from it."""

    record_id: str
    author: str  # the author's node id
    body: TrendBody
    redacted: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class TrendFilters:
    """What the operator asked for; None means any. since/until bound period_start, [since, until)."""

    metric: str | None = None
    category: str | None = None
    jurisdiction: str | None = None
    since: int | None = None
    until: int | None = None


@dataclass(frozen=True, slots=True)
class BucketTotal:
    bucket: Bucket
    total: Decimal
    reports: int
    contributors: tuple[str, ...]  # node ids, sorted


@dataclass(frozen=True, slots=True)
class Series:
    """One (metric, unit) over time (Rule 2)."""

    metric: str
    unit: str
    buckets: tuple[BucketTotal, ...]
    categories: tuple[str, ...]
    jurisdictions: tuple[str, ...]

    @property
    def total(self) -> Decimal:
        return exact_sum(bucket.total for bucket in self.buckets)

    @property
    def reports(self) -> int:
        return sum(bucket.reports for bucket in self.buckets)

    @property
    def contributors(self) -> tuple[str, ...]:
        return tuple(sorted({node for bucket in self.buckets for node in bucket.contributors}))

    @property
    def name(self) -> str:
        return f"{self.metric} ({self.unit})"


@dataclass(frozen=True, slots=True)
class TrendReport:
    period: str
    series: tuple[Series, ...]
    left_out: Mapping[str, int]  # reason -> count, non-zero only, in LEFT_OUT_REASONS order
    spanning: int  # counted trends whose period runs past their bucket (Rule 3)

    @property
    def counted(self) -> int:
        return sum(series.reports for series in self.series)

    @property
    def contributors(self) -> tuple[str, ...]:
        return tuple(sorted({node for series in self.series for node in series.contributors}))

    def notes(self) -> list[str]:
        """What a reader of the report must know: the bucket rule, unit splits, what was left out."""
        lines = [f"each trend counts whole in the {self.period} that holds its period_start (UTC)"]
        if self.period == "week":
            lines[0] += "; weeks are ISO weeks, Monday to Sunday"
        if self.spanning:
            plural = "s span" if self.spanning != 1 else " spans"
            lines.append(
                f"{self.spanning} counted trend{plural} more than one {self.period}, counted whole "
                f"in the {self.period} where {'they start' if self.spanning != 1 else 'it starts'}, not split"
            )
        units: defaultdict[str, list[str]] = defaultdict(list)
        for series in self.series:
            units[series.metric].append(series.unit)
        for metric, names in units.items():
            if len(names) > 1:
                lines.append(
                    f"metric {metric} is reported in {len(names)} units ({', '.join(names)}): "
                    "separate series, never added together"
                )
        lines += [left_out_line(reason, count) for reason, count in self.left_out.items()]
        return lines


def left_out_line(reason: str, count: int) -> str:
    what, hint = LEFT_OUT_REASONS[reason]
    return f"{count} trend{'s' if count != 1 else ''} {what} not counted{hint}"


_IN, _OUT = "in", "out"


def _selection(trend: HeldTrend, filters: TrendFilters) -> str:
    """_IN, _OUT (outside the filters) or REDACTED (Rule 4)."""
    body = trend.body
    unknown = False
    for wanted, name, have in (
        (filters.metric, "metric", body.metric),
        (filters.category, "category", body.category),
        (filters.jurisdiction, "jurisdiction", body.jurisdiction),
    ):
        if wanted is None:
            continue
        if have is None and name in trend.redacted:
            unknown = True  # it may match: we cannot tell
        elif have != wanted:
            return _OUT
    start = body.period_start
    if start is not None and (
        (filters.since is not None and start < filters.since)
        or (filters.until is not None and start >= filters.until)
    ):
        return _OUT
    needed = (body.metric, body.unit, body.value, start)
    return REDACTED if unknown or any(value is None for value in needed) else _IN


@dataclass
class _Accumulator:
    values: defaultdict[Bucket, list[tuple[Decimal, str]]] = field(default_factory=lambda: defaultdict(list))
    categories: set[str] = field(default_factory=set)
    jurisdictions: set[str] = field(default_factory=set)

    def series(self, metric: str, unit: str) -> Series:
        buckets = tuple(
            BucketTotal(
                bucket,
                exact_sum(value for value, _ in entries),
                len(entries),
                tuple(sorted({author for _, author in entries})),
            )
            for bucket, entries in sorted(self.values.items())
        )
        categories, jurisdictions = tuple(sorted(self.categories)), tuple(sorted(self.jurisdictions))
        return Series(metric, unit, buckets, categories, jurisdictions)


def build_report(
    trends: Iterable[HeldTrend],
    *,
    period: str,
    filters: TrendFilters | None = None,
    left_out: Mapping[str, int] | None = None,
) -> TrendReport:
    """Add up `trends` by (metric, unit) and bucket of `period`; count what is left out and why."""
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}; known periods are {', '.join(PERIODS)}")
    chosen = filters or TrendFilters()
    counts: Counter[str] = Counter(left_out or {})
    groups: defaultdict[tuple[str, str], _Accumulator] = defaultdict(_Accumulator)
    spanning = 0
    for trend in trends:
        selection = _selection(trend, chosen)
        if selection == REDACTED:
            counts[REDACTED] += 1
        if selection != _IN:
            continue
        body = trend.body
        # _selection made sure of these (Rule 4); the asserts tell the type checker.
        assert body.metric is not None and body.unit is not None
        assert body.value is not None and body.period_start is not None
        bucket = bucket_of(body.period_start, period)
        if body.period_end is not None and body.period_end > bucket.end_ms:
            spanning += 1
        group = groups[(body.metric, body.unit)]
        group.values[bucket].append((Decimal(body.value), trend.author))
        if body.category is not None:
            group.categories.add(body.category)
        if body.jurisdiction is not None:
            group.jurisdictions.add(body.jurisdiction)
    series = tuple(groups[key].series(*key) for key in sorted(groups))
    ordered = {reason: counts[reason] for reason in LEFT_OUT_REASONS if counts[reason]}
    return TrendReport(period, series, ordered, spanning)
