"""`lapnode audit`, `audit verify` and `audit head` as real CLI processes against a real node home.

The trail is filled through the real store API (as an exit would fill it), then read, filtered, verified
and tampered with straight in the SQLite file; the daemon's own decisions are covered by test_gossip.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from keys.identity import node_id_from_public_key
from lapnode.store import AuditEvent, Store
from tests.integration.federation import NETWORK, NodeProcess, cli, free_port_pair

PEER = bytes(range(32, 64))
OTHER = bytes(range(64, 96))
T0 = 1_780_000_000_000  # 2026-05-28T20:26:40Z
LABEL = "bundle:leads\x1b[31m.lapb"  # a file name can hold anything; the table must not pass it on raw


def rid(n: int) -> bytes:
    return hashlib.sha256(f"cli audit {n}".encode()).digest()


EVENTS = [
    AuditEvent(rid(1), PEER, "send", ("within the author's scope",), T0, "gossip"),
    AuditEvent(rid(2), PEER, "withhold", ("tlp red: recipient is not a named member",), T0 + 1000, "gossip"),
    AuditEvent(rid(1), OTHER, "withhold", ("scope.jurisdictions_deny: excluded",), T0 + 86_400_000, "gossip"),
    AuditEvent(rid(3), LABEL, "send", ("within the author's scope",), T0 + 2 * 86_400_000, "bundle-export"),
]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> NodeProcess:
    root = tmp_path_factory.mktemp("audit")
    node = NodeProcess("auditor", root / "home", free_port_pair())
    node.init()

    async def fill() -> None:
        store = await Store.open(node.database_url, network=NETWORK)
        try:
            await store.audit.append(EVENTS[:2])
            await store.audit.append(EVENTS[2:])
        finally:
            await store.close()

    asyncio.run(fill())
    return node


def listed(node: NodeProcess, *args: str) -> list[dict[str, object]]:
    documents: list[dict[str, object]] = json.loads(node.run("audit", "--json", *args).stdout)
    return documents


def one_line_error(result: object, code: int, contains: str) -> None:
    assert result.returncode == code, result
    stderr: str = result.stderr
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert contains in stderr, stderr


def test_json_lists_every_decision_newest_first(node: NodeProcess) -> None:
    documents = listed(node)
    assert [d["seq"] for d in documents] == [4, 3, 2, 1]
    first = documents[-1]
    assert set(first) == {
        "seq", "time", "time_ms", "exit", "record", "recipient", "action", "reasons", "prev_hash", "hash",
    }  # fmt: skip
    assert first["time"] == "2026-05-28T20:26:40Z" and first["time_ms"] == T0
    assert first["recipient"] == node_id_from_public_key(PEER)
    assert first["record"] == rid(1).hex() and first["action"] == "send" and first["exit"] == "gossip"
    assert first["reasons"] == ["within the author's scope"]
    assert first["prev_hash"] == "00" * 32
    assert documents[-2]["prev_hash"] == first["hash"]
    assert documents[0]["recipient"] == LABEL


def test_the_table_is_one_line_per_entry_and_terminal_safe(node: NodeProcess) -> None:
    result = node.run("audit")
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["#", "time", "(UTC)", "exit"]
    assert len(lines) == 5 and result.stderr.endswith("4 entries\n")
    assert "\x1b" not in result.stdout and "bundle:leads\ufffd[31m.lapb" in lines[1]
    assert "withhold" in lines[2] and rid(1).hex()[:12] in lines[2]


def test_head_and_verify_agree(node: NodeProcess) -> None:
    seq, head = node.run("audit", "head").stdout.split()
    assert seq == "#4" and head == listed(node)[0]["hash"]
    assert node.run("audit", "verify").stdout == f"ok: 4 entries, head {head}\n"
    # The home may come before the subcommand too.
    report = json.loads(cli("audit", "--home", str(node.home), "verify", "--head", head, "--json").stdout)
    assert report == {
        "ok": True,
        "entries": 4,
        "head": {"seq": 4, "hash": head},
        "broken": None,
        "noted_head_found": True,
    }


def test_verify_names_the_entry_an_attacker_edited(node: NodeProcess, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(node.home, copy)
    with contextlib.closing(sqlite3.connect(copy / "store.sqlite")) as conn:
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("UPDATE audit SET action = 'send' WHERE seq = 2")  # hide a withholding
        conn.commit()
    result = cli("audit", "verify", "--json", "--home", str(copy), check=False)
    one_line_error(result, 1, "error: audit entry #2 is broken: its contents do not match its hash")
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["entries"] == 1 and report["broken"]["seq"] == 2


def test_a_noted_head_that_is_gone_fails_verify(node: NodeProcess, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(node.home, copy)
    with contextlib.closing(sqlite3.connect(copy / "store.sqlite")) as conn:
        noted = bytes(conn.execute("SELECT entry_hash FROM audit WHERE seq = 4").fetchone()[0]).hex()
        conn.execute("DROP TRIGGER audit_no_delete")
        conn.execute("DELETE FROM audit WHERE seq = 4")  # the tail: the chain alone still verifies
        conn.commit()
    result = cli("audit", "verify", "--head", noted, "--home", str(copy), check=False)
    one_line_error(result, 1, f"the noted head {noted} is not in the audit trail")
