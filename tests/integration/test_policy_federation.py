"""Local rules between real daemons (issue 4, "Tests"): the four worked examples of docs/policy.md.

One publisher, P (NL, enforcement), runs docs/examples/policy.toml. Four peers subscribe to it:
A (DE enforcement, in the EEA), B (BR: pinned by P as government, but configured as enforcement),
C (AU industry) and D (KP enforcement). A also has an inbound rule that quarantines P's trends.
Every node is a separate `lapnode serve` process with its own home and SQLite file; records are
published through the real CLI while the daemons run. Checks read the SQLite files, the CLI and the
daemons' logs. One federation serves every test; nothing asserts a duration.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from protocol.envelope import verify_record
from tests.integration.federation import (
    NETWORK,
    WAIT_S,
    NodeProcess,
    free_port_pair,
    in_parallel,
    init_nodes,
    stop_all,
    wait_until,
)

EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "docs" / "examples" / "policy.toml"
A_POLICY = """\
[[rule]]
name = "hold-trends-from-nl"
action = "quarantine"
note = "Statistics from NL are checked before use"
record.kind = ["trend"]
sender.jurisdiction = ["NL"]
"""
PERSON = "Jan de Vries"
CONTACT = {
    "organisation": "OPTA",
    "person": PERSON,
    "emails": ["jan.devries@opta.example"],
    "phones": ["+31 70 315 3500"],
    "notes": "Ask for Jan in the mornings.",
    "topics": ["email-spam"],
}
PERSONAL = ["emails", "notes", "person", "phones"]
TREND = [
    "--metric",
    "complaints",
    "--value",
    "12",
    "--unit",
    "count",
    "--period-start",
    "2025-01-01",
    "--period-end",
    "2025-03-31",
]


@dataclass
class Federation:
    p: NodeProcess
    a: NodeProcess
    b: NodeProcess
    c: NodeProcess
    d: NodeProcess
    work: Path
    records: dict[str, str] = field(default_factory=dict)

    @property
    def peers(self) -> tuple[NodeProcess, ...]:
        return (self.a, self.b, self.c, self.d)


def make_node(root: Path, name: str, category: str, jurisdiction: str) -> NodeProcess:
    return NodeProcess(name, root / name, free_port_pair(), jurisdiction=jurisdiction, category=category)


def publish(node: NodeProcess, kind: str, *args: str) -> str:
    out = node.run("publish", kind, "--json", *args).stdout
    record_id: str = json.loads(out)["id"]
    return record_id


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    root = tmp_path_factory.mktemp("policy")
    p = make_node(root, "P", "enforcement", "NL")
    a = make_node(root, "A", "enforcement", "DE")
    b = make_node(root, "B", "enforcement", "BR")  # P pins it as government (below)
    c = make_node(root, "C", "industry", "AU")
    d = make_node(root, "D", "enforcement", "KP")
    init_nodes(p, a, b, c, d)
    shutil.copy(EXAMPLE_POLICY, p.home / "policy.toml")
    (a.home / "policy.toml").write_text(A_POLICY)

    def pin_b_as_government() -> None:
        p.run(
            "peer",
            "add",
            b.node_id,
            b.address,
            "--name",
            "B",
            "--category",
            "government",
            "--jurisdiction",
            "BR",
        )
        b.add_peer(p)
        b.run("subscribe", p.node_id)

    in_parallel(lambda: a.peer_with(p), pin_b_as_government, lambda: c.peer_with(p), lambda: d.peer_with(p))
    nodes = (p, a, b, c, d)
    try:
        in_parallel(*(node.start for node in nodes))
        wait_until(
            lambda: all(node.peer_status(p)["connected"] is True for node in (a, b, c, d)),
            timeout=WAIT_S,
            what="every peer to connect to P",
        )
        yield Federation(p, a, b, c, d, root)
    finally:
        stop_all(nodes)
    for node in nodes:
        assert "Traceback" not in node.logs(), f"{node.name} logged an unhandled exception"


@pytest.fixture(scope="module")
def published(federation: Federation) -> Federation:
    """P publishes one record per example while every daemon runs, then a marker everyone but D gets."""
    f, p = federation, federation.p
    contact_file = f.work / "contact.json"
    contact_file.write_text(json.dumps(CONTACT))
    f.records["personal"] = publish(
        p, "contact", "--from-file", str(contact_file), "--tlp", "green", "--flag", "personal-data"
    )
    f.records["lead"] = publish(
        p,
        "lead",
        "--title",
        "Leads go to authorities",
        "--summary",
        "Spam.",
        "--status",
        "suspected",
        "--tlp",
        "green",
    )
    f.records["commercial"] = publish(
        p, "contact", "--organisation", "OPTA pricing desk", "--tlp", "green",
        "--flag", "commercially-sensitive", "--audience-member", f.c.node_id,
        "--audience-category", "enforcement,government,industry,interest-group",
    )  # fmt: skip
    trend_file = f.work / "trend.json"
    trend_file.write_text(json.dumps({"category": "email-spam", "jurisdiction": "NL"}))
    f.records["trend"] = publish(p, "trend", *TREND, "--from-file", str(trend_file), "--tlp", "clear")
    # B's own config says enforcement, so it refuses this although P (which pinned it as government) sends it.
    f.records["for-government"] = publish(
        p, "lead", "--title", "Government only", "--summary", "For ministries.", "--status", "verified",
        "--tlp", "green", "--audience-category", "government",
    )  # fmt: skip
    # Published last: feeds run in log order, so once a peer holds it, P's feed to it has passed every
    # record above, and their absence there is a decision, not a delay.
    f.records["marker"] = publish(p, "contact", "--organisation", "OPTA front desk", "--tlp", "clear")
    for node in (f.a, f.b, f.c):
        node.wait_for(f.records["marker"])
    head = p.head()
    wait_until(
        lambda: p.peer_status(f.d)["behind_our_feed"] == 0 and p.head() == head,
        timeout=WAIT_S,
        what="P's feed to D to pass the marker",
    )
    return f


def held(node: NodeProcess, f: Federation) -> set[str]:
    names = {record_id: name for name, record_id in f.records.items()}
    return {names[record_id] for record_id in node.record_ids() if record_id in names}


def test_each_peer_holds_exactly_what_the_rules_allow(published: Federation) -> None:
    f = published
    assert held(f.a, f) == {"personal", "lead", "marker"}  # the trend waits in A's quarantine
    assert held(f.b, f) == {"personal", "lead", "trend", "marker"}
    assert held(f.c, f) == {"personal", "commercial", "trend", "marker"}
    assert f.d.record_ids() == set(), "nothing to KP"


def test_personal_data_reaches_non_adequate_countries_redacted_and_still_verifies(
    published: Federation,
) -> None:
    f = published
    record_id = f.records["personal"]
    full = json.loads(f.a.run("show", record_id, "--json").stdout)
    assert full["redacted"] == [] and full["body"]["person"] == PERSON
    for node in (f.b, f.c):
        shown = json.loads(node.run("show", record_id, "--json").stdout)
        assert shown["id"] == record_id and shown["redacted"] == PERSONAL
        assert "person" not in shown["body"] and shown["body"]["organisation"] == "OPTA"
        (wire,) = [
            row[0] for row in node._sql("SELECT wire FROM records WHERE rid = ?", bytes.fromhex(record_id))
        ]
        copy = verify_record(bytes(wire), network=NETWORK)  # the author's signature still holds
        assert copy.id.hex() == record_id and sorted(copy.redacted) == PERSONAL
        assert PERSON.encode() not in bytes(wire) and b"jan.devries" not in bytes(wire)


def test_explain_and_the_as_views_agree_with_what_peers_hold(published: Federation) -> None:
    f, p = published, published.p
    explained = json.loads(
        p.run("policy", "explain", f.records["personal"][:16], "--peer", f.b.node_id, "--json").stdout
    )
    assert explained["decision"] == "redact" and explained["fields"] == PERSONAL
    assert any(r.startswith("rule personal-data-outside-eea (redact") for r in explained["reasons"])
    assert explained["notes"]["personal-data-outside-eea"].startswith("GDPR chapter V")
    text = p.run("policy", "explain", f.records["lead"], "--peer", f.c.node_id).stdout
    assert "withhold" in text and "rule leads-to-authorities (allow-only)" in text

    for node in (f.c, f.d):
        as_peer = json.loads(p.run("query", "--json", "--as", node.node_id).stdout)
        assert {item["id"] for item in as_peer} == node.record_ids()
    shown = json.loads(p.run("show", f.records["personal"], "--as", f.c.node_id, "--json").stdout)
    assert shown["redacted"] == PERSONAL and "person" not in shown["body"]
    refused = p.run("show", f.records["lead"], "--as", f.c.node_id, check=False)
    assert (
        refused.returncode == 1
        and refused.stderr.startswith("error: record ")
        and "leads-to-authorities" in refused.stderr
    )


def test_a_dry_run_names_who_would_receive_what_and_stores_nothing(published: Federation) -> None:
    f, p = published, published.p
    head = p.head()
    contact_file = f.work / "contact.json"
    dry_run = ("--flag", "personal-data", "--tlp", "green", "--dry-run", "--json")
    out = p.run("publish", "contact", "--from-file", str(contact_file), *dry_run).stdout
    decisions = {row["peer"]: row for row in json.loads(out)}
    assert decisions[f.a.node_id]["decision"] == "send"
    for node in (f.b, f.c):
        assert (
            decisions[node.node_id]["decision"] == "redact" and decisions[node.node_id]["fields"] == PERSONAL
        )
    assert decisions[f.d.node_id]["decision"] == "withhold"
    assert any("nothing-to-kp" in reason for reason in decisions[f.d.node_id]["reasons"])
    text = p.run(
        "publish", "lead", "--title", "T", "--summary", "S.", "--status", "suspected", "--dry-run"
    ).stdout
    assert "C [industry, AU]: does not receive it" in text and "nothing was signed or stored" in text
    assert p.head() == head and len(p.record_ids()) == len(f.records)


def test_a_scope_violation_is_refused_and_its_sender_penalised(published: Federation) -> None:
    f = published
    assert not f.b.holds(f.records["for-government"])
    (refused,) = [e for e in f.b.events("records_refused") if "scope.categories" in str(e.get("reason"))]
    assert refused["peer"] == f.p.node_id
    wait_until(lambda: f.b.peer_status(f.p)["score"] == -10, timeout=WAIT_S, what="B to penalise P")


def test_quarantine_holds_until_an_operator_releases(published: Federation) -> None:
    f, a = published, published.a
    record_id = f.records["trend"]
    listed = json.loads(a.run("quarantine", "list", "--json").stdout)
    assert [item["id"] for item in listed] == [record_id]
    assert listed[0]["source"] == f.p.node_id
    assert listed[0]["reasons"] == [
        "rule hold-trends-from-nl (quarantine): kind in [trend]; sender: jurisdiction in [NL]"
    ]
    assert record_id not in a.query_ids() and not a.holds(record_id)
    assert a.run("quarantine", "release", record_id[:12]).stdout.strip() == f"released {record_id}"
    assert record_id in a.query_ids()
    assert json.loads(a.run("quarantine", "list", "--json").stdout) == []


def test_policy_check_and_a_bad_policy_stops_the_daemon(published: Federation) -> None:
    f = published
    checked = f.p.run("policy", "check").stdout
    assert checked.startswith("ok: 8 rules\n") and "set adequacy: 15 jurisdictions, as of" in checked
    (f.d.home / "policy.toml").write_text(
        '[[rule]]\nname = "x"\naction = "deny"\nrecipient.jurisdiction = ["UK"]\n'
    )
    bad = f.d.run("policy", "check", check=False)
    assert bad.returncode == 1 and bad.stdout == ""
    assert (
        bad.stderr.startswith("error: ")
        and "rule 'x': recipient.jurisdiction" in bad.stderr
        and "'GB'" in bad.stderr
    )
    serve = f.d.run("serve", check=False)  # refuses before it opens anything: the running D is untouched
    assert serve.returncode == 1 and serve.stderr == bad.stderr
    assert f.d.status() is not None
