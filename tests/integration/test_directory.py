"""The contact directory across real daemons (issues #5 and #6): corrections, re-confirmation, stale
contacts and declassification travel by gossip, and a third node works out the current versions itself.

A (AU) and B (NL) publish; C (GB) subscribes to both and only reads. Every node is a separate
`lapnode serve` process with its own home, SQLite file and keys. B's oldest contact was made 200 days ago:
it is signed with B's real key and put into B's real store before B starts, as an import would. Every
wait is bounded (federation.wait_until); nothing asserts a duration.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from keys.keyfile import read_key_file
from protocol.envelope import build_record
from protocol.kinds import body_from_document
from protocol.scope import Scope
from tests.integration.federation import (
    NETWORK,
    NodeProcess,
    free_port_pair,
    in_parallel,
    init_nodes,
    stop_all,
    wait_until,
)

DAY_MS = 86_400_000
# The machine may be loaded: waits poll, so a generous bound costs nothing when things are quick.
WAIT = 180.0


@dataclass
class Directory:
    a: NodeProcess
    b: NodeProcess
    c: NodeProcess
    old_contact: str


def old_contact_of(node: NodeProcess, created: int) -> tuple[bytes, str]:
    """A contact of `node`'s own, signed with its real key at sequence 1, made at `created`."""
    identity = read_key_file(node.home / "identity.key", None)
    fields = body_from_document(
        "contact",
        {"organisation": "ACM", "jurisdiction": "NL", "category": "enforcement", "unit": "Telemarketing"},
    )
    record = build_record(
        identity,
        network=NETWORK,
        kind="contact",
        schema=1,
        seq=1,
        prev=None,
        created=created,
        scope=Scope.create("green"),
        fields=fields,
        salts={name: bytes([n]) * 16 for n, name in enumerate(fields)},
    )
    return record.wire, record.id.hex()


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    root = tmp_path_factory.mktemp("directory")
    a = NodeProcess("A", root / "A", free_port_pair(), jurisdiction="AU")
    b = NodeProcess("B", root / "B", free_port_pair(), jurisdiction="NL")
    c = NodeProcess("C", root / "C", free_port_pair(), jurisdiction="GB")
    init_nodes(a, b, c)
    wire, old_id = old_contact_of(b, int(time.time() * 1000) - 200 * DAY_MS)
    b.seed([wire])
    in_parallel(lambda: c.peer_with(a), lambda: c.peer_with(b))
    try:
        in_parallel(a.start, b.start, c.start)
        yield Directory(a, b, c, old_id)
    finally:
        stop_all((c, b, a))
    for node in (a, b, c):
        assert "Traceback" not in node.logs(), f"{node.name} logged an unhandled exception"


def write(path: Path, document: dict[str, object]) -> str:
    path.write_text(json.dumps(document))
    return str(path)


def published(node: NodeProcess, *args: str) -> dict[str, object]:
    document = json.loads(node.run(*args, "--json").stdout)
    assert isinstance(document, dict)
    return document


def test_a_third_node_shows_exactly_the_current_contacts(federation: Directory, tmp_path: Path) -> None:
    a, b, c = federation.a, federation.b, federation.c
    sms = write(
        tmp_path / "sms.json", {"unit": "SMS team", "emails": ["sms@acma.example"], "topics": ["sms-spam"]}
    )
    first = published(a, "publish", "contact", "--from-file", sms, "--tlp", "green")
    fixed = write(
        tmp_path / "fixed.json",
        {"unit": "SMS team", "emails": ["sms-desk@acma.example"], "topics": ["fraud", "sms-spam"]},
    )
    corrected = published(a, "correct", str(first["id"]), "--from-file", fixed)
    email = write(tmp_path / "email.json", {"unit": "Email team", "topics": ["email-spam"]})
    fresh = published(b, "publish", "contact", "--from-file", email, "--tlp", "green")
    expected = {corrected["id"]: corrected, fresh["id"]: fresh}
    for record_id in (first["id"], corrected["id"], fresh["id"], federation.old_contact):
        c.wait_for(str(record_id), timeout=WAIT)

    listed = json.loads(c.run("contacts", "--json").stdout)
    by_id = {entry["id"]: entry for entry in listed}
    assert set(by_id) == {*expected, federation.old_contact}
    for record_id, record in expected.items():
        assert by_id[record_id]["last_confirmed_ms"] == record["created_ms"]
        assert by_id[record_id]["author"] == record["author"]
    assert by_id[str(corrected["id"])]["emails"] == ["sms-desk@acma.example"]
    assert by_id[federation.old_contact]["age_days"] == 200

    sms_in_au = json.loads(c.run("contacts", "--jurisdiction", "AU", "--topic", "sms-spam", "--json").stdout)
    assert [entry["id"] for entry in sms_in_au] == [corrected["id"]]
    stale = json.loads(c.run("contacts", "stale", "--older-than", "180d", "--json").stdout)
    assert [entry["id"] for entry in stale] == [federation.old_contact]

    # B re-confirms its old contact; C then shows it confirmed now, and nothing is stale any more.
    confirmed = published(b, "contacts", "confirm", federation.old_contact)
    c.wait_for(str(confirmed["id"]), timeout=WAIT)
    assert json.loads(c.run("contacts", "stale", "--older-than", "180d", "--json").stdout) == []
    after = {entry["id"]: entry for entry in json.loads(c.run("contacts", "--json").stdout)}
    assert set(after) == {*expected, confirmed["id"]}
    assert after[str(confirmed["id"])]["last_confirmed_ms"] == confirmed["created_ms"]
    assert after[str(confirmed["id"])]["unit"] == "Telemarketing"


def test_a_declassified_record_travels_with_its_history(federation: Directory) -> None:
    a, c = federation.a, federation.c
    lead = published(
        a, "publish", "lead", "--title", "SMS phishing wave", "--summary", "Bank impersonation texts.",
        "--status", "suspected", "--tlp", "amber", "--audience-category", "enforcement",
    )  # fmt: skip
    c.wait_for(str(lead["id"]), timeout=WAIT)
    lowered = published(a, "declassify", str(lead["id"]), "--tlp", "green")
    c.wait_for(str(lowered["id"]), timeout=WAIT)
    shown = json.loads(c.run("show", str(lowered["id"]), "--json").stdout)
    assert shown["scope"]["tlp"] == "green" and shown["body"]["title"] == "SMS phishing wave"
    assert [version["id"] for version in shown["history"]["earlier"]] == [lead["id"]]
    assert shown["history"]["earlier"][0]["tlp"] == "amber"
    older = json.loads(c.run("show", str(lead["id"]), "--json").stdout)
    assert older["history"]["superseded_by"]["id"] == lowered["id"]
    assert lead["id"] not in c.query_ids("--kind", "lead") and lowered["id"] in c.query_ids("--kind", "lead")
    # C is not the author: it cannot lower (or raise) the TLP of A's record.
    refused = c.run("declassify", str(lowered["id"]), "--tlp", "clear", check=False)
    assert refused.returncode == 1 and "only its author" in refused.stderr


def test_a_retracted_contact_leaves_the_directory(federation: Directory, tmp_path: Path) -> None:
    a, c = federation.a, federation.c
    doc = write(tmp_path / "phish.json", {"unit": "Phishing desk", "topics": ["phishing"]})
    contact = published(a, "publish", "contact", "--from-file", doc, "--tlp", "green")
    c.wait_for(str(contact["id"]), timeout=WAIT)
    assert contact["id"] in {e["id"] for e in json.loads(c.run("contacts", "--json").stdout)}
    a.run("retract", str(contact["id"]), "--reason", "error")

    def gone() -> bool:
        return contact["id"] not in {e["id"] for e in json.loads(c.run("contacts", "--json").stdout)}

    wait_until(gone, timeout=WAIT, what="C to drop the retracted contact")
    assert json.loads(c.run("contacts", "--topic", "phishing", "--json").stdout) == []
