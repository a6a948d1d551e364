"""Trend reports (lapnode.reports): buckets, exact sums that never mix units, what is left out and why,
the JSON form, the chart files, and the live trends read from a real store."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keys.identity import Identity
from lapnode.cli import main as cli_main
from lapnode.cli.render_trends import Member, report_document
from lapnode.clock import parse_instant_ms
from lapnode.errors import InputError, PassphraseError
from lapnode.reports.chart import chart_format, render_chart
from lapnode.reports.held import live_trends, readable_trends
from lapnode.reports.trends import (
    DAY_MS,
    EMBARGOED,
    LOCKED,
    PERIODS,
    REDACTED,
    SEALED,
    HeldTrend,
    TrendFilters,
    TrendReport,
    bucket_of,
    build_report,
    show_decimal,
    timeline,
)
from lapnode.sealing import SealedReader
from lapnode.store import Store, StoredRecord
from protocol.envelope import redact, verify_record
from protocol.kinds import TrendBody
from protocol.kinds.fields import MAX_TIME_MS
from protocol.scope import Scope
from tests.factories import NETWORK, T0, identity, make_record

JAN_2025 = 1_735_689_600_000  # 2025-01-01T00:00Z
ALICE, BOB, CAROL = "lap1alice", "lap1bob", "lap1carol"


def ms(text: str) -> int:
    return parse_instant_ms(text)


def body(
    value: int | str | None = 10,
    *,
    metric: str | None = "complaints",
    unit: str | None = "count",
    start: int | None = JAN_2025,
    end: int | None = None,
    category: str | None = "sms-spam",
    jurisdiction: str | None = "NL",
) -> TrendBody:
    return TrendBody(
        period_start=start,
        period_end=end if end is not None or start is None else start + DAY_MS,
        category=category,
        metric=metric,
        value=value,
        unit=unit,
        jurisdiction=jurisdiction,
    )


def held(author: str, trend: TrendBody, *redacted: str, n: int = 0) -> HeldTrend:
    return HeldTrend(f"{author}-{n}", author, trend, frozenset(redacted))


# --- buckets ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "period", "label", "start", "end"),
    [
        # ISO weeks run Monday to Sunday; the first week of a year holds its first Thursday.
        ("2020-12-31T23:59:59Z", "week", "2020-W53", "2020-12-28", "2021-01-04"),
        ("2021-01-03T12:00Z", "week", "2020-W53", "2020-12-28", "2021-01-04"),
        ("2021-01-04", "week", "2021-W01", "2021-01-04", "2021-01-11"),
        ("2024-12-30", "week", "2025-W01", "2024-12-30", "2025-01-06"),
        ("2026-01-01", "week", "2026-W01", "2025-12-29", "2026-01-05"),
        ("2024-12-31T23:59:59.999Z", "month", "2024-12", "2024-12-01", "2025-01-01"),
        ("2025-01-01", "month", "2025-01", "2025-01-01", "2025-02-01"),
        ("2024-02-29T10:00Z", "month", "2024-02", "2024-02-01", "2024-03-01"),
        ("2024-12-31T23:59:59.999Z", "quarter", "2024-Q4", "2024-10-01", "2025-01-01"),
        ("2025-01-01", "quarter", "2025-Q1", "2025-01-01", "2025-04-01"),
        ("2025-06-30T23:00Z", "quarter", "2025-Q2", "2025-04-01", "2025-07-01"),
        ("2025-07-01", "quarter", "2025-Q3", "2025-07-01", "2025-10-01"),
        ("1970-01-01", "week", "1970-W01", "1969-12-29", "1970-01-05"),
    ],
)
def test_bucket_rules(instant: str, period: str, label: str, start: str, end: str) -> None:
    bucket = bucket_of(ms(instant), period)
    assert (bucket.label, bucket.start_ms, bucket.end_ms) == (label, ms(start), ms(end))


def test_the_last_instant_a_trend_can_start_has_a_bucket() -> None:
    assert bucket_of(MAX_TIME_MS, "month").label == "9999-12"
    assert bucket_of(MAX_TIME_MS, "quarter").end_ms == MAX_TIME_MS + 1
    assert bucket_of(MAX_TIME_MS, "week").label == "9999-W52"


@settings(max_examples=300)
@given(st.integers(0, MAX_TIME_MS), st.sampled_from(PERIODS))
def test_a_bucket_holds_its_instant_and_the_next_one_follows_it(instant: int, period: str) -> None:
    bucket = bucket_of(instant, period)
    assert bucket.start_ms <= instant < bucket.end_ms
    last = min(bucket.end_ms - 1, MAX_TIME_MS)  # the last week of 9999 runs into the year 10000
    assert bucket_of(bucket.start_ms, period) == bucket == bucket_of(last, period)
    if bucket.end_ms <= MAX_TIME_MS:
        following = bucket_of(bucket.end_ms, period)
        assert following.start_ms == bucket.end_ms and following.label > bucket.label


# --- sums ---------------------------------------------------------------------------------------------

_decimals = st.decimals(
    min_value=-(10**12), max_value=10**12, places=6, allow_nan=False, allow_infinity=False
)


def _wire_number(value: Decimal) -> int | str:
    # The trend kind's canonical form: whole numbers are integers, decimals have no trailing zeros.
    return int(value) if value == value.to_integral_value() else format(value, "f").rstrip("0")


_trends = st.lists(
    st.tuples(
        st.sampled_from([ALICE, BOB, CAROL]),
        st.sampled_from(["complaints", "reports"]),
        st.sampled_from(["count", "percent", "EUR"]),
        st.one_of(st.integers(-(2**63), 2**63 - 1), _decimals.map(_wire_number)),
        st.integers(JAN_2025, JAN_2025 + 400 * DAY_MS),
    ),
    max_size=40,
)


@settings(max_examples=150)
@given(_trends, st.sampled_from(PERIODS))
def test_totals_are_exact_sums_and_no_series_mixes_units(
    trends: list[tuple[str, str, str, int | str, int]], period: str
) -> None:
    inputs = [
        held(author, body(value, metric=metric, unit=unit, start=start), n=n)
        for n, (author, metric, unit, value, start) in enumerate(trends)
    ]
    report = build_report(inputs, period=period)
    expected: defaultdict[tuple[str, str], Fraction] = defaultdict(Fraction)
    for _, metric, unit, value, _ in trends:
        expected[(metric, unit)] += Fraction(str(value))
    assert {(s.metric, s.unit): Fraction(show_decimal(s.total)) for s in report.series} == expected
    assert report.counted == len(trends) and not report.left_out
    for series in report.series:
        # Each bucket adds exactly the inputs of this metric and unit that start in it.
        for total in series.buckets:
            members = [
                t
                for t in trends
                if (t[1], t[2]) == (series.metric, series.unit) and bucket_of(t[4], period) == total.bucket
            ]
            assert total.reports == len(members)
            assert Fraction(show_decimal(total.total)) == sum(
                (Fraction(str(t[3])) for t in members), Fraction()
            )
            assert total.contributors == tuple(sorted({t[0] for t in members}))


def test_sums_of_long_decimals_are_exact() -> None:
    values = ["0.1", "0.2", "12345678901234567890123456789.000000001", 2**63 - 1, "-0.3"]
    report = build_report([held(ALICE, body(v), n=n) for n, v in enumerate(values)], period="month")
    total = sum((Fraction(str(v)) for v in values), Fraction())
    assert Fraction(show_decimal(report.series[0].total)) == total
    assert show_decimal(report.series[0].total) == "12345678910457939926978232596.000000001"


def test_show_decimal_is_canonical() -> None:
    assert [show_decimal(Decimal(text)) for text in ("4.0", "1E+2", "-0.50", "0.000001", "0")] == [
        "4",
        "100",
        "-0.5",
        "0.000001",
        "0",
    ]


def test_a_metric_in_two_units_is_two_series_and_says_so() -> None:
    report = build_report(
        [held(ALICE, body(10)), held(BOB, body("12.5", unit="percent"), n=1)], period="month"
    )
    assert [(s.name, show_decimal(s.total)) for s in report.series] == [
        ("complaints (count)", "10"),
        ("complaints (percent)", "12.5"),
    ]
    assert any("2 units (count, percent)" in note and "never added" in note for note in report.notes())


def test_a_trend_spanning_buckets_counts_whole_where_it_starts() -> None:
    spanning = body(30, start=ms("2025-01-20"), end=ms("2025-02-10"))
    inside = body(5, start=ms("2025-02-01"), end=ms("2025-03-01"))  # half-open: ends as March begins
    report = build_report([held(ALICE, spanning), held(BOB, inside, n=1)], period="month")
    assert [(b.bucket.label, show_decimal(b.total)) for b in report.series[0].buckets] == [
        ("2025-01", "30"),
        ("2025-02", "5"),
    ]
    assert report.spanning == 1
    assert any("1 counted trend spans more than one month" in note for note in report.notes())


# --- redaction and filters ----------------------------------------------------------------------------


def test_redacted_values_are_left_out_and_counted() -> None:
    trends = [
        held(ALICE, body(10)),
        held(BOB, body(None), "value", n=1),
        held(CAROL, body(7, unit=None), "unit", n=2),
        held(CAROL, body(7, start=None, end=None), "period_start", "period_end", n=3),
    ]
    report = build_report(trends, period="month")
    assert report.counted == 1 and show_decimal(report.series[0].total) == "10"
    assert report.left_out == {REDACTED: 3}
    assert "3 trends with redacted values not counted" in " ".join(report.notes())


def test_filters_outside_are_not_counted_and_redacted_filter_fields_are_left_out() -> None:
    trends = [
        held(ALICE, body(10, category="sms-spam", jurisdiction="NL")),
        held(BOB, body(20, category="email-spam", jurisdiction="NL"), n=1),  # outside --category
        held(CAROL, body(40, category=None), "category", n=2),  # cannot tell: left out as redacted
        held(CAROL, body(80, jurisdiction=None, category="sms-spam"), n=3),  # no jurisdiction: outside
        held(BOB, body(160, metric="reports"), n=4),  # outside --metric
        held(ALICE, body(320, start=ms("2024-12-01")), n=5),  # before --since
    ]
    filters = TrendFilters(
        metric="complaints", category="sms-spam", jurisdiction="NL", since=JAN_2025, until=ms("2026-01-01")
    )
    report = build_report(trends, period="quarter", filters=filters)
    assert [show_decimal(s.total) for s in report.series] == ["10"]
    assert report.left_out == {REDACTED: 1}
    assert report.contributors == (ALICE,)


# --- the JSON form ------------------------------------------------------------------------------------


def test_json_document_shape() -> None:
    report = build_report(
        [held(ALICE, body(10)), held(BOB, body("2.5"), n=1), held(BOB, body(None), "value", n=2)],
        period="month",
        left_out={SEALED: 2},
    )
    members = {ALICE: Member(ALICE, "A", "Org A"), BOB: Member(BOB, None, "Org B", this_node=True)}
    document = report_document(report, members, filters=TrendFilters(metric="complaints"), generated_ms=T0)
    assert json.loads(json.dumps(document)) == document  # JSON through and through
    assert document["period"] == "month" and document["counted"] == 2
    assert document["filters"] == {
        "metric": "complaints",
        "category": None,
        "jurisdiction": None,
        "since": None,
        "until": None,
    }
    (series,) = document["series"]  # type: ignore[misc]
    assert series["total"] == "12.5" and series["unit"] == "count" and series["reports"] == 2
    assert series["buckets"] == [
        {
            "bucket": "2025-01",
            "start": "2025-01-01T00:00:00Z",
            "end": "2025-02-01T00:00:00Z",
            "total": "12.5",
            "reports": 2,
            "contributors": [ALICE, BOB],
        }
    ]
    assert document["contributors"] == [
        {"node_id": ALICE, "name": "A", "org": "Org A", "this_node": False},
        {"node_id": BOB, "name": None, "org": "Org B", "this_node": True},
    ]
    assert document["left_out"] == [{"reason": REDACTED, "count": 1}, {"reason": SEALED, "count": 2}]


# --- charts -------------------------------------------------------------------------------------------


def _two_unit_report() -> TrendReport:
    return build_report(
        [
            held(ALICE, body(10)),
            held(BOB, body(4, start=ms("2025-04-02")), n=1),
            held(CAROL, body("12.5", unit="percent"), n=2),
        ],
        period="month",
    )


def test_png_chart_is_a_png() -> None:
    report = _two_unit_report()
    data = render_chart(report, fmt="png", contributors=["Org A", "B $x$"], generated="2026-11-28")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_svg_chart_is_xml_with_its_labels_and_footnote() -> None:
    report = _two_unit_report()
    data = render_chart(report, fmt="svg", contributors=["Org A"], generated="2026-11-28")
    root = ET.fromstring(data)
    assert root.tag.endswith("svg")
    again = render_chart(report, fmt="svg", contributors=["Org A"], generated="2026-11-28")
    assert again == data  # no creation date, no random ids


def test_other_chart_extensions_are_refused() -> None:
    assert chart_format(Path("a.PNG")) == "png" and chart_format(Path("b.svg")) == "svg"
    for name in ("report.pdf", "report", "report.png.txt"):
        with pytest.raises(InputError, match=r"\.png or \.svg"):
            chart_format(Path(name))


def test_nothing_to_plot_is_an_operator_error() -> None:
    with pytest.raises(InputError, match="nothing to plot"):
        render_chart(build_report([], period="week"), fmt="png", contributors=[], generated="now")


def test_timeline_fills_gaps_up_to_a_limit() -> None:
    report = build_report(
        [held(ALICE, body(1)), held(BOB, body(2, start=ms("2025-04-01")), n=1)], period="month"
    )
    assert [b.label for b in timeline(report, limit=10)] == ["2025-01", "2025-02", "2025-03", "2025-04"]
    assert [b.label for b in timeline(report, limit=2)] == ["2025-01", "2025-04"]


def test_cli_refuses_a_bad_plot_extension_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    with pytest.raises(SystemExit):
        cli_main.main(["init", "--home", str(home), "--org", "OPTA", "--jurisdiction", "NL",
                       "--category", "enforcement", "--no-passphrase"])  # fmt: skip
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        cli_main.main(["trends", "--home", str(home), "--plot", str(tmp_path / "chart.pdf")])
    err = capsys.readouterr().err
    assert exited.value.code == 1
    assert err == f"error: --plot {tmp_path / 'chart.pdf'}: give a file name ending in .png or .svg\n"
    assert not (tmp_path / "chart.pdf").exists()


# --- from the store -----------------------------------------------------------------------------------

AUTHOR, US, OTHER = identity("trends author"), identity("trends us"), identity("trends other")


def _trend_document(value: int | str, start: str = "2025-01-01") -> dict[str, object]:
    return {
        "period_start": start,
        "period_end": "2025-01-31",
        "category": "sms-spam",
        "metric": "complaints",
        "value": value,
        "unit": "count",
        "jurisdiction": "NL",
    }


async def test_live_trends_read_from_a_real_store(database_url: str) -> None:
    """Expired and sealed-for-others trends are not counted; sealed-to-us ones are opened; redacted ones
    are left out and counted."""
    to_us = Scope.create("amber", members=[US.public_key.raw], flags=["sealed"])
    to_other = Scope.create("amber", members=[OTHER.public_key.raw], flags=["sealed"])
    expiring = Scope.create("green", expires=T0 + 10 * DAY_MS)
    made = []
    prev = None
    for seq, (value, scope) in enumerate(
        [(5, None), ("2.5", to_us), (100, to_other), (1000, expiring), (7, None)], start=1
    ):
        record = make_record(AUTHOR, seq, prev, kind="trend", document=_trend_document(value), scope=scope)
        made.append(record)
        prev = record.id
    # The last one reaches us with its value redacted.
    wires = [record.wire for record in made[:-1]] + [redact(made[-1], ["value"])]
    store = await Store.open(database_url, network=NETWORK)
    try:
        report_ = await store.ingest(wires)
        assert not report_.rejected
        later = T0 + 20 * DAY_MS  # past the expiry of the fourth
        stored = await live_trends(store, now_ms=later)
    finally:
        await store.close()
    assert len(stored) == 4
    records = [item.record for item in stored]
    views = SealedReader(US.public_key.raw, lambda: US).views(records)
    trends, left_out = readable_trends(stored, views, our_key=US.public_key.raw, now_ms=later)
    report = build_report(trends, period="month", left_out=left_out)
    assert show_decimal(report.series[0].total) == "7.5"
    assert report.left_out == {REDACTED: 1, SEALED: 1}
    # Without the key, the one sealed to us is left out as locked, with the hint.
    locked = SealedReader(US.public_key.raw, _no_key).views(records)
    _, left_out = readable_trends(stored, locked, our_key=US.public_key.raw, now_ms=later)
    assert left_out == {LOCKED: 1, SEALED: 1}


def _no_key() -> Identity:
    raise PassphraseError("locked")


def test_own_trends_under_embargo_are_left_out() -> None:
    scope = Scope.create("green", embargo_until=T0 + DAY_MS)
    record = make_record(US, 1, None, kind="trend", document=_trend_document(3), scope=scope)
    stored = [StoredRecord(verify_record(record.wire, network=NETWORK), T0)]
    trends, left_out = readable_trends(stored, {}, our_key=US.public_key.raw, now_ms=T0)
    assert not trends and left_out == {EMBARGOED: 1}
    trends, left_out = readable_trends(stored, {}, our_key=US.public_key.raw, now_ms=T0 + 2 * DAY_MS)
    assert len(trends) == 1 and not left_out
