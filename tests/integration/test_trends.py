"""Trend reports across real daemons (issue 6, "Tests"): three members publish, one trend is withheld.

Members A (DE), B (FR) and C (GB) each publish monthly complaint counts; B also publishes a percentage,
which must stay a series of its own. C publishes one more count whose scope denies NL, the observer O's
jurisdiction. O (NL) subscribes to all three. Every node is a separate `lapnode serve` process with its
own home and SQLite file; records are published through the real CLI while the daemons run, and O's
report is read through the real CLI. Nothing asserts a duration.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.federation import (
    WAIT_S,
    NodeProcess,
    free_port_pair,
    in_parallel,
    init_nodes,
    stop_all,
    wait_until,
)


@dataclass
class Federation:
    o: NodeProcess
    a: NodeProcess
    b: NodeProcess
    c: NodeProcess
    work: Path
    records: dict[str, str] = field(default_factory=dict)

    @property
    def members(self) -> tuple[NodeProcess, ...]:
        return (self.a, self.b, self.c)


def make_node(root: Path, name: str, jurisdiction: str) -> NodeProcess:
    return NodeProcess(name, root / name, free_port_pair(), jurisdiction=jurisdiction)


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    root = tmp_path_factory.mktemp("trends")
    o = make_node(root, "O", "NL")
    a, b, c = make_node(root, "A", "DE"), make_node(root, "B", "FR"), make_node(root, "C", "GB")
    nodes = (o, a, b, c)
    init_nodes(*nodes)
    in_parallel(*(lambda member=member: o.peer_with(member) for member in (a, b, c)))
    try:
        for node in nodes:  # one at a time: on a loaded machine four at once can miss the start wait
            node.start()
        wait_until(
            lambda: all(o.peer_status(member)["connected"] is True for member in (a, b, c)),
            timeout=WAIT_S,
            what="O to connect to A, B and C",
        )
        yield Federation(o, a, b, c, root)
    finally:
        stop_all(nodes)
    for node in nodes:
        assert "Traceback" not in node.logs(), f"{node.name} logged an unhandled exception"


def publish_trend(
    f: Federation, node: NodeProcess, name: str, value: str, month: str, *scope: str, unit: str = "count"
) -> None:
    document = f.work / f"{name}.json"
    document.write_text(
        json.dumps(
            {
                "category": "sms-spam",
                "jurisdiction": node.jurisdiction,
                "period_start": f"2025-{month}-01",
                "period_end": f"2025-{month}-28",
            }
        )
    )
    out = node.run(
        "publish", "trend", "--from-file", str(document), "--metric", "complaints",
        "--value", value, "--unit", unit, "--tlp", "green", "--json", *scope,
    ).stdout  # fmt: skip
    f.records[name] = json.loads(out)["id"]


@pytest.fixture(scope="module")
def published(federation: Federation) -> Federation:
    f = federation

    def by_a() -> None:
        publish_trend(f, f.a, "a-jan", "120", "01")
        publish_trend(f, f.a, "a-feb", "30", "02")

    def by_b() -> None:
        publish_trend(f, f.b, "b-jan", "45.5", "01")
        publish_trend(f, f.b, "b-jan-percent", "12.5", "01", unit="percent")

    def by_c() -> None:
        # Withheld from O by its scope. Published first: C's feed runs in log order, so once O holds
        # C's later trends, the absence of this one is C's decision, not a delay.
        publish_trend(f, f.c, "c-withheld", "999", "01", "--jurisdiction-deny", "NL")
        publish_trend(f, f.c, "c-jan", "200", "01")
        publish_trend(f, f.c, "c-feb", "7", "02")

    in_parallel(by_a, by_b, by_c)
    for name, record_id in f.records.items():
        if name != "c-withheld":
            f.o.wait_for(record_id)
    return f


def test_the_report_adds_exactly_the_visible_trends_of_three_members(published: Federation) -> None:
    f, o = published, published.o
    withheld = f.records["c-withheld"]
    assert f.c.holds(withheld) and not o.holds(withheld)
    # C's own preview of what O may have agrees: the trend is withheld from O by its scope.
    as_o = json.loads(f.c.run("query", "--json", "--kind", "trend", "--as", o.node_id).stdout)
    assert withheld not in {item["id"] for item in as_o} and f.records["c-jan"] in {i["id"] for i in as_o}

    report = json.loads(o.run("trends", "--json", "--period", "month").stdout)
    assert report["period"] == "month" and report["counted"] == 6 and report["left_out"] == []
    count, percent = report["series"]
    assert (count["metric"], count["unit"], count["total"], count["reports"]) == (
        "complaints",
        "count",
        "402.5",
        5,
    )
    assert [(b["bucket"], b["total"], b["reports"]) for b in count["buckets"]] == [
        ("2025-01", "365.5", 3),  # 120 + 45.5 + 200; C's withheld 999 is not there
        ("2025-02", "37", 2),
    ]
    assert count["buckets"][0]["contributors"] == sorted([f.a.node_id, f.b.node_id, f.c.node_id])
    assert count["buckets"][1]["contributors"] == sorted([f.a.node_id, f.c.node_id])
    assert (percent["unit"], percent["total"], percent["contributors"]) == ("percent", "12.5", [f.b.node_id])
    assert count["jurisdictions"] == ["DE", "FR", "GB"]
    contributors = {entry["node_id"]: entry for entry in report["contributors"]}
    assert set(contributors) == {f.a.node_id, f.b.node_id, f.c.node_id}
    assert {entry["name"] for entry in contributors.values()} == {"A", "B", "C"}  # from O's peer book
    assert any("2 units (count, percent)" in note for note in report["notes"])


def test_filters_narrow_the_report(published: Federation) -> None:
    o = published.o
    german = json.loads(o.run("trends", "--json", "--jurisdiction", "de", "--period", "quarter").stdout)
    (series,) = german["series"]
    assert [(b["bucket"], b["total"]) for b in series["buckets"]] == [("2025-Q1", "150")]
    assert german["filters"]["jurisdiction"] == "DE"
    none = json.loads(o.run("trends", "--json", "--metric", "refunds").stdout)
    assert none["series"] == [] and none["counted"] == 0


def test_the_table_chart_and_plot(published: Federation) -> None:
    f, o = published, published.o
    shown = o.run("trends", "--metric", "complaints", "--period", "month")
    assert "complaints (count)" in shown.stdout and "402.5" in shown.stdout and "365.5" in shown.stdout
    assert "█" in shown.stdout and "\x1b[" not in shown.stdout  # piped: bars, but no terminal styles
    assert "6 trends counted" in shown.stderr
    chart = f.work / "report.png"
    plotted = o.run("trends", "--period", "month", "--plot", str(chart))
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "chart written to" in plotted.stderr
    again = o.run("trends", "--plot", str(chart), check=False)
    assert (
        again.returncode == 1
        and again.stderr == f"error: {chart} already exists; pass --force to overwrite it\n"
    )
    refused = o.run("trends", "--plot", str(f.work / "report.jpg"), check=False)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and ".png or .svg" in refused.stderr
