"""Sealed records between real `lapnode serve` daemons (issue 4, "Sealed records"; SPEC §3.7).

A feeds B, B feeds C; B is a relay and no recipient. A publishes a red lead sealed to C only, through
the real CLI. It crosses B as ciphertext: C reads it with `lapnode show`, B holds it but can only say it
is sealed, and no byte of the plaintext is in B's database files or logs. Every wait is bounded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from keys.keyfile import read_public_node_id
from tests.integration.federation import (
    WAIT_S,
    NodeProcess,
    cli,
    free_port_pair,
    in_parallel,
    init_nodes,
    stop_all,
    wait_until,
)

# Words that appear nowhere but in the sealed body, so finding one anywhere is a leak.
SECRET_TITLE = "Quokka-7 payment mule ring"
SECRET_SUMMARY = "Mule accounts opened with forged Zanzibar-9431 passports."
SECRET_SUBJECT = "mule-ring-4417.example"
SECRETS = (SECRET_TITLE, SECRET_SUMMARY, "Quokka-7", "Zanzibar-9431", "mule-ring-4417")
NOT_READABLE = "sealed for 1 member; not readable here"


@dataclass
class Line:
    a: NodeProcess
    b: NodeProcess
    c: NodeProcess


def make_node(
    root: Path, name: str, *, category: str = "enforcement", jurisdiction: str = "NL"
) -> NodeProcess:
    return NodeProcess(name, root / name, free_port_pair(), jurisdiction=jurisdiction, category=category)


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Line]:
    root = tmp_path_factory.mktemp("sealed")
    a = make_node(root, "A")
    b = make_node(root, "B", category="industry", jurisdiction="US")  # no audience clause admits B
    c = make_node(root, "C", jurisdiction="GB")
    init_nodes(a, b, c)
    in_parallel(lambda: b.peer_with(a), lambda: c.peer_with(b))  # B subscribes to A, C to B
    try:
        in_parallel(a.start, b.start, c.start)
        wait_until(
            lambda: b.peer_status(a)["connected"] is True and c.peer_status(b)["connected"] is True,
            timeout=WAIT_S,
            what="B and C to connect",
        )
        yield Line(a, b, c)
    finally:
        stop_all((c, b, a))
    for node in (a, b, c):
        assert "Traceback" not in node.logs(), f"{node.name} logged an unhandled exception"


def publish_sealed(node: NodeProcess, *members: str, title: str = SECRET_TITLE) -> str:
    member_options = [option for member in members for option in ("--audience-member", member)]
    out = node.run(
        "publish",
        "lead",
        "--title",
        title,
        "--summary",
        SECRET_SUMMARY,
        "--status",
        "verified",
        "--from-file",
        str(subject_file(node)),
        "--tlp",
        "red",
        "--sealed",
        *member_options,
        "--json",
    ).stdout
    document = json.loads(out)
    # The author is a recipient of its own sealed record.
    assert document["body"]["title"] == title and document["sealed"]["opened"] is True
    record_id: str = document["id"]
    return record_id


def subject_file(node: NodeProcess) -> Path:
    path = node.home.parent / f"{node.name}-subjects.json"
    path.write_text(json.dumps({"subjects": [{"type": "domain", "value": SECRET_SUBJECT}]}), encoding="utf-8")
    return path


def files_of(node: NodeProcess) -> list[Path]:
    """The node's SQLite database with its WAL and shared-memory files, and its daemon log."""
    database = node.database_path
    found = [path for path in database.parent.glob(database.name + "*") if path.is_file()]
    assert database in found
    return [*found, node.log_path]


def test_a_sealed_red_lead_reaches_c_through_b_as_ciphertext(line: Line) -> None:
    record_id = publish_sealed(line.a, line.c.node_id)

    line.c.wait_for(record_id)
    assert line.b.holds(record_id)
    assert line.c.stored_hops(record_id) == 1  # through B: C has no other peer

    on_c = json.loads(line.c.run("show", "--json", record_id[:12]).stdout)
    assert on_c["sealed"] == {
        "members": 1,
        "opened": True,
        "note": "sealed for 1 member; opened with this node's key",
    }
    assert on_c["body"]["title"] == SECRET_TITLE and on_c["body"]["summary"] == SECRET_SUMMARY
    assert on_c["body"]["subjects"] == [{"type": "domain", "value": SECRET_SUBJECT}]
    # Sealed bodies are never indexed, not even on a recipient (lapnode/sealing.py Rule 2).
    assert record_id not in line.c.query_ids("--text", "Quokka")

    shown_on_b = line.b.run("show", record_id).stdout
    assert f"sealed: {NOT_READABLE}" in shown_on_b and "body:\n  (sealed)" in shown_on_b
    listed_on_b = line.b.run("query", "--json").stdout
    (on_b,) = json.loads(listed_on_b)
    assert on_b["id"] == record_id and on_b["body"] is None
    assert on_b["sealed"] == {"members": 1, "opened": False, "note": NOT_READABLE}
    for word in SECRETS:
        assert word not in shown_on_b + listed_on_b

    for node in (line.b, line.c, line.a):
        for path in files_of(node):
            data = path.read_bytes()
            leaked = [word for word in SECRETS if word.encode() in data]
            assert not leaked, f"{node.name}'s {path.name} holds plaintext of the sealed record: {leaked}"


def test_a_recipient_with_a_locked_key_is_told_how_to_open_it(line: Line, tmp_path: Path) -> None:
    """D (an offline node with an encrypted key) gets a record sealed to it and C, by bundle."""
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("correct horse battery staple\n", encoding="utf-8")
    d_home = tmp_path / "D"
    cli("init", "--home", str(d_home), "--org", "Org D", "--jurisdiction", "BE", "--category", "government",
        "--network", "it-net", "--passphrase-file", str(passphrase))  # fmt: skip
    d_id = read_public_node_id(d_home / "identity.key")
    record_id = publish_sealed(line.a, d_id, line.c.node_id, title="Sealed to C and D")
    bundle = tmp_path / "sealed.bundle"
    # D is an air-gapped member: A pins it (the address is never dialled) so the bundle is made for D.
    line.a.run("peer", "add", d_id, "127.0.0.1:9", "--name", "D", "--category", "government",
               "--jurisdiction", "BE")  # fmt: skip
    line.a.run("bundle", "export", str(bundle), "--author", line.a.node_id, "--for", d_id)
    cli("bundle", "import", "--home", str(d_home), str(bundle))

    locked = cli("show", "--home", str(d_home), record_id).stdout  # no terminal, no passphrase
    assert "sealed: sealed for 2 members; addressed to this node, but the node key is locked" in locked
    assert "Sealed to C and D" not in locked
    opened = cli("show", "--home", str(d_home), record_id, "--passphrase-file", str(passphrase)).stdout
    assert "title: Sealed to C and D" in opened
    assert "sealed: sealed for 2 members; opened with this node's key" in opened

    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n", encoding="utf-8")
    refused = cli("show", "--home", str(d_home), record_id, "--passphrase-file", str(wrong), check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("error: ") and len(refused.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("sealing", "message"),
    [
        (("--sealed",), "error: --sealed needs at least one --audience-member NODE_ID"),
        (("--flag", "sealed"), "error: --flag sealed: a record is sealed by encrypting it; use --sealed"),
    ],
    ids=["--sealed", "--flag sealed"],
)
def test_sealing_without_named_members_is_a_usage_error(
    line: Line, sealing: tuple[str, ...], message: str
) -> None:
    before = line.a.record_count()
    result = line.a.run(
        "publish", "lead", "--title", "t", "--summary", "s", "--status", "verified", *sealing, check=False
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert line.a.record_count() == before
