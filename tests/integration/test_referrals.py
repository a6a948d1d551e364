"""Referrals between real `lapnode serve` daemons (issue #6; SPEC §5.2).

Four nodes: A (FR) and B (AU) feed each other; A and C (US, industry) feed each other, and C and D (AU)
too. A is not connected to D. (a) A refers two leads to B: B's daemon answers `received` on its own,
B declines one and accepts and closes the other, and A's outbox shows the final states. (b) A refers a
lead (from a file) to D: C carries the referral as ciphertext and cannot read it, D opens and answers,
and the answers travel back to A through C. Every wait is bounded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
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

# Words that appear only in the lead referred to D, so finding one at C is a leak.
SECRET_TITLE = "Wombat-88 premium SMS subscription trap"
SECRET_SUMMARY = "Silent premium subscriptions billed through carrier Koala-5127."
SECRET_NOTE = "Billing aggregator Numbat-3390 is in your jurisdiction."
SECRETS = ("Wombat-88", "Koala-5127", "Numbat-3390")


@dataclass
class Federation:
    a: NodeProcess
    b: NodeProcess
    c: NodeProcess
    d: NodeProcess


def make_node(root: Path, name: str, jurisdiction: str, category: str = "enforcement") -> NodeProcess:
    return NodeProcess(name, root / name, free_port_pair(), jurisdiction=jurisdiction, category=category)


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    root = tmp_path_factory.mktemp("referrals")
    a, b = make_node(root, "A", "FR"), make_node(root, "B", "AU")
    c, d = make_node(root, "C", "US", "industry"), make_node(root, "D", "AU")
    init_nodes(a, b, c, d)
    in_parallel(
        lambda: a.peer_with(b), lambda: c.peer_with(a), lambda: d.peer_with(c)
    )  # and the other way round:
    in_parallel(lambda: b.run("subscribe", a.node_id), lambda: a.run("subscribe", c.node_id))
    c.run("subscribe", d.node_id)
    try:
        for node in (a, b, c, d):  # one at a time: four importing at once can pass WAIT_S on a busy host
            node.start()
        pairs = ((a, b), (b, a), (a, c), (c, a), (c, d), (d, c))
        wait_until(
            lambda: all(x.peer_status(y)["connected"] is True for x, y in pairs),
            timeout=WAIT_S,
            what="every subscription to connect",
        )
        yield Federation(a, b, c, d)
    finally:
        stop_all((d, c, b, a))
    for node in (a, b, c, d):
        assert "Traceback" not in node.logs(), f"{node.name} logged an unhandled exception"


def referrals(node: NodeProcess, *options: str) -> dict[str, dict[str, object]]:
    rows = json.loads(node.run("referrals", "--json", *options).stdout)
    return {str(row["id"]): row for row in rows}


def wait_for_state(node: NodeProcess, referral: str, state: str) -> dict[str, object]:
    found: dict[str, object] = {}

    def reached() -> bool:
        row = referrals(node).get(referral)
        if row is not None:
            found.update(row)
        return row is not None and row["state"] == state

    wait_until(reached, timeout=WAIT_S, what=f"{node.name} to see referral {referral[:12]} {state}")
    return found


def test_a_referral_round_trip_between_two_jurisdictions(federation: Federation) -> None:
    a, b = federation.a, federation.b
    lead = a.publish("--audience-category", "enforcement", title="Loan-scam robocalls from FR numbers")
    first = a.run("refer", lead, "--to", b.node_id, "--request", "enforcement").stdout.strip()
    second = a.run(
        "refer", lead, "--to", b.node_id, "--request", "takedown", "--due", "30d", "--note", "Urgent"
    ).stdout.strip()
    # "sent" until B's `received` is back; B's daemon may be that quick.
    assert referrals(a, "--outbox")[first]["state"] in {"sent", "received"}

    # B's daemon answers `received` to each by itself, and B's inbox shows it.
    for referral in (first, second):
        row = wait_for_state(b, referral, "received")
        assert row["direction"] == "inbox" and row["counterpart"] == a.name  # its name in B's peer book
        assert row["lead_title"] == "Loan-scam robocalls from FR numbers"
    assert referrals(b, "--inbox", "--status", "received").keys() == {first, second}
    assert referrals(b, "--outbox") == {}

    # Only the recipient answers: A cannot answer its own referral.
    refused = a.run("referral", "accept", first[:12], check=False)
    assert refused.returncode == 1 and refused.stderr.startswith("error: referral ")
    assert "only it can answer" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1

    b.run("referral", "decline", first[:12], "--reason", "The calls originate outside Australia.")
    b.run("referral", "accept", second[:12], "--note", "Assigned to the scam calls team.")
    b.run("referral", "update", second[:12], "--note", "Carrier asked to block the numbers.")
    b.run(
        "referral", "close", second[:12], "--outcome", "Numbers blocked; the caller fined.",
        "--action", "fine", "--amount", "26640", "--currency", "AUD",
    )  # fmt: skip
    again = b.run("referral", "accept", first[:12], check=False)
    assert again.returncode == 1 and "is declined already" in again.stderr

    assert wait_for_state(a, first, "declined")["direction"] == "outbox"
    assert wait_for_state(a, second, "closed")["overdue"] is False
    history = json.loads(a.run("referral", "show", second, "--json").stdout)["history"]
    assert [entry["status"] for entry in history] == ["received", "accepted", "in-progress", "closed"]
    assert history[-1]["details"] == {
        "outcome": "Numbers blocked; the caller fined.",
        "action": "fine",
        "penalty": {"amount": "26640.00", "currency": "AUD"},
    }
    declined = json.loads(a.run("referral", "show", first, "--json").stdout)["history"][-1]
    assert declined["details"] == {"reason": "The calls originate outside Australia."}


def test_the_case_file_holds_the_history_and_the_signed_records(
    federation: Federation, tmp_path: Path
) -> None:
    a, b = federation.a, federation.b
    lead = a.publish("--audience-category", "enforcement", title="Case-file lead")
    referral = a.run("refer", lead, "--to", b.node_id).stdout.strip()
    wait_for_state(a, referral, "received")
    out = tmp_path / "case.json"
    a.run("referral", "export", referral[:12], "--out", str(out))
    case = json.loads(out.read_text(encoding="utf-8"))
    assert case["referral"]["id"] == referral and case["referral"]["state"] == "received"
    assert case["lead"]["body"]["title"] == "Case-file lead"
    assert [r["role"] for r in case["records"]] == ["referral", "lead", "referral-status"]
    audit = json.loads(a.run("audit", "--json", "--exit", "referral-export").stdout)
    assert {entry["record"] for entry in audit} >= {referral, lead}
    refused = a.run("referral", "export", referral[:12], "--out", str(out), check=False)
    assert refused.returncode == 1 and "already exists" in refused.stderr


def test_a_relay_carries_a_referral_as_ciphertext_it_cannot_read(
    federation: Federation, tmp_path: Path
) -> None:
    a, c, d = federation.a, federation.c, federation.d
    lead_file = tmp_path / "lead.json"
    lead_file.write_text(
        json.dumps({"title": SECRET_TITLE, "summary": SECRET_SUMMARY, "status": "verified"}), encoding="utf-8"
    )
    out = a.run(
        "refer", "--from-file", str(lead_file), "--to", d.node_id, "--request", "investigation",
        "--note", SECRET_NOTE, "--json",
    ).stdout  # fmt: skip
    sent = json.loads(out)
    referral, lead = sent["id"], sent["lead"]

    d.wait_for(referral)
    assert d.stored_hops(referral) == 1  # through C: D has no other peer
    row = wait_for_state(d, referral, "received")
    assert row["lead_title"] == SECRET_TITLE and row["counterpart_node_id"] == a.node_id
    assert SECRET_NOTE in d.run("referral", "show", referral[:12]).stdout

    # C holds the referral, not the lead (scoped to D alone, never relayed), and reads nothing of it.
    assert c.holds(referral) and not c.holds(lead) and not d.holds(lead)
    shown_on_c = c.run("show", referral).stdout
    assert "sealed: sealed for 1 member; not readable here" in shown_on_c
    assert c.query_ids("--text", "Wombat") == set()
    assert referrals(c) == {}

    d.run("referral", "accept", referral[:12])
    d.run("referral", "close", referral[:12], "--outcome", "Aggregator suspended.", "--action", "takedown")
    assert wait_for_state(a, referral, "closed")["counterpart_node_id"] == d.node_id
    for status in json.loads(a.run("referral", "show", referral, "--json").stdout)["history"]:
        assert c.holds(status["id"])  # each status came back through C

    for path in [*c.database_path.parent.glob(c.database_path.name + "*"), c.log_path]:
        data = path.read_bytes()
        leaked = [word for word in SECRETS if word.encode() in data]
        assert not leaked, f"C's {path.name} holds plaintext of the referral: {leaked}"
