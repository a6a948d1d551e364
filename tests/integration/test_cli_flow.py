"""The real `lapnode` CLI, run as subprocesses against real homes and SQLite files: the operator's day.

init -> id -> publish each kind -> query (filters) -> show -> bundle export -> import elsewhere -> verify.
One module-scoped node keeps the suite quick; every command's output is collected so that the last test
can prove the passphrase never appeared anywhere.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from protocol.envelope import verify_record

LAPNODE = Path(sys.executable).parent / "lapnode"
PASSPHRASE = "integration passphrase 7c1d"
HEX_ID = re.compile(r"[0-9a-f]{64}")


@dataclass
class Cli:
    """Runs `lapnode` with a clean environment and remembers everything it printed."""

    outputs: list[str] = field(default_factory=list)

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("LAPNODE_")}
        result = subprocess.run(
            [str(LAPNODE), *args],
            env={**clean, "COLUMNS": "200", **(env or {})},
            input=stdin.decode() if stdin is not None else None,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.outputs += [result.stdout, result.stderr]
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def ok(self, *args: str, env: dict[str, str] | None = None) -> str:
        result = self(*args, env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def init(
        self, home: Path, org: str, jurisdiction: str, *extra: str, env: dict[str, str] | None = None
    ) -> str:
        identity = ("--org", org, "--jurisdiction", jurisdiction, "--category", "enforcement")
        return self.ok("init", "--home", str(home), *identity, *extra, env=env)


WITH_PASSPHRASE = {"LAPNODE_PASSPHRASE": PASSPHRASE}

LEAD_TOML = """\
title = "Pharmacy spam from a bulletproof host"
summary = "Unsolicited email advertising unlicensed medicines."
status = "suspected"
violation_types = ["unsolicited-email"]
victim_locations = ["NL", "GB"]
subjects = [
  { type = "domain", value = "Example.COM." },
  { type = "ip", value = "198.51.100.7" },
]
"""

CONTACT_JSON = {"unit": "Spam enforcement", "emails": ["spam@opta.example"], "topics": ["email-spam"]}


@dataclass
class Node:
    home: Path
    cli: Cli
    records: dict[str, str] = field(default_factory=dict)

    def ok(self, *args: str) -> str:
        return self.cli.ok(*args, "--home", str(self.home), env=WITH_PASSPHRASE)

    def query(self, *args: str) -> list[dict[str, object]]:
        documents = json.loads(self.ok("query", "--json", *args))
        assert isinstance(documents, list)
        return documents


@pytest.fixture(scope="module")
def cli() -> Cli:
    return Cli()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, cli: Cli) -> Iterator[Node]:
    work = tmp_path_factory.mktemp("flow")
    home = work / "opta"
    out = cli.init(home, "OPTA", "NL", env=WITH_PASSPHRASE)
    assert "lap1" in out
    node = Node(home, cli)
    (work / "contact.json").write_text(json.dumps(CONTACT_JSON))
    (work / "lead.toml").write_text(LEAD_TOML)
    node.records["contact"] = node.ok(
        "publish", "contact", "--from-file", str(work / "contact.json"), "--tlp", "green"
    )
    node.records["lead"] = node.ok(
        "publish", "lead", "--from-file", str(work / "lead.toml"), "--status", "verified",
        "--audience-category", "enforcement", "--jurisdiction-allow", "NL,GB", "--expires", "90d",
    )  # fmt: skip
    node.records["trend"] = node.ok(
        "publish", "trend", "--metric", "complaints", "--value", "12.50", "--unit", "percent",
        "--period-start", "2025-01-01", "--period-end", "2025-03-31",
        "--from-file", str(_trend_file(work)), "--tlp", "clear",
    )  # fmt: skip
    node.records = {kind: out.strip() for kind, out in node.records.items()}
    yield node


def _trend_file(work: Path) -> Path:
    path = work / "trend.json"
    path.write_text(json.dumps({"category": "email-spam", "jurisdiction": "NL", "metric": "overridden"}))
    return path


def test_init_creates_a_private_home(node: Node) -> None:
    assert stat.S_IMODE((node.home / "identity.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((node.home / "config.toml").stat().st_mode) == 0o600
    assert stat.S_IMODE(node.home.stat().st_mode) == 0o700
    assert (node.home / "store.sqlite").is_file()
    assert PASSPHRASE.encode() not in (node.home / "identity.key").read_bytes()


def test_id_needs_no_passphrase(node: Node) -> None:
    document = json.loads(node.cli.ok("id", "--json", "--home", str(node.home)))
    assert document["node_id"].startswith("lap1")
    assert {k: document[k] for k in ("org", "jurisdiction", "category", "listen")} == {
        "org": "OPTA",
        "jurisdiction": "NL",
        "category": "enforcement",
        "listen": "127.0.0.1:7450",
    }
    text = node.cli.ok("id", env={"LAPNODE_HOME": str(node.home)})
    assert document["node_id"] in text and "OPTA" in text


def test_publish_prints_the_new_record_id(node: Node) -> None:
    assert all(HEX_ID.fullmatch(record_id) for record_id in node.records.values())


def test_query_json_shape(node: Node) -> None:
    documents = node.query()
    assert [d["kind"] for d in documents] == ["trend", "lead", "contact"]  # newest first
    lead = documents[1]
    assert lead["id"] == node.records["lead"] and lead["seq"] == 2
    assert isinstance(lead["author"], str) and lead["author"].startswith("lap1")
    assert isinstance(lead["created"], str) and lead["created"].endswith("Z")
    assert isinstance(lead["created_ms"], int) and lead["redacted"] == []
    assert lead["scope"] == {
        "tlp": "amber",
        "categories": ["enforcement"],
        "members": [],
        "jurisdictions_allow": ["GB", "NL"],
        "jurisdictions_deny": [],
        "flags": [],
        "relay_hops": 3,
        "embargo_until": None,
        "expires": lead["scope"]["expires"],  # type: ignore[index]
    }
    body = lead["body"]
    assert isinstance(body, dict) and body["status"] == "verified"  # the flag overrode the file
    assert body["subjects"][0] == {"type": "domain", "value": "example.com"}
    contact, trend = documents[2]["body"], documents[0]["body"]
    assert isinstance(contact, dict) and contact["organisation"] == "OPTA"  # defaulted from the node
    assert isinstance(trend, dict) and trend["metric"] == "complaints" and trend["value"] == "12.5"


@pytest.mark.parametrize(
    ("filters", "kinds"),
    [
        (["--kind", "lead"], ["lead"]),
        (["--indicator", "Example.COM."], ["lead"]),
        (["--indicator", "spam@OPTA.example"], ["contact"]),
        (["--jurisdiction", "gb"], ["lead"]),
        (["--text", "UNLICENSED"], ["lead"]),
        (["--since", "1h"], ["trend", "lead", "contact"]),
        (["--until", "2000-01-01"], []),
        (["--limit", "1"], ["trend"]),
    ],
)
def test_query_filters(node: Node, filters: list[str], kinds: list[str]) -> None:
    assert [d["kind"] for d in node.query(*filters)] == kinds


def test_query_by_author(node: Node) -> None:
    author = json.loads(node.cli.ok("id", "--json", "--home", str(node.home)))["node_id"]
    assert len(node.query("--author", author)) == 3


def test_query_table(node: Node) -> None:
    table = node.ok("query")
    assert node.records["lead"][:12] in table and "AMBER" in table and "Pharmacy spam" in table


def test_show_by_prefix(node: Node) -> None:
    record_id = node.records["lead"]
    shown = json.loads(node.ok("show", record_id[:10], "--json"))
    assert shown["id"] == record_id and shown["body"]["title"].startswith("Pharmacy spam")
    text = node.ok("show", record_id[:8].upper())
    assert f"id: {record_id}" in text and "example.com" in text


def test_a_trend_can_be_published_from_flags_alone(cli: Cli, tmp_path: Path) -> None:
    fresh = Node(tmp_path / "bnetza", cli)
    cli.init(fresh.home, "BNetzA", "DE", "--no-passphrase")
    record_id = fresh.ok(
        "publish", "trend", "--category", "telemarketing", "--jurisdiction", "DE", "--metric", "complaints",
        "--value", "4180", "--unit", "count", "--period-start", "2025-01-01", "--period-end", "2025-03-31",
    ).strip()  # fmt: skip
    body = json.loads(fresh.ok("show", record_id, "--json"))["body"]
    assert {k: body[k] for k in ("category", "jurisdiction", "metric", "value", "unit")} == {
        "category": "telemarketing",
        "jurisdiction": "DE",
        "metric": "complaints",
        "value": 4180,
        "unit": "count",
    }
    regional = fresh.ok(
        "publish", "trend", "--category", "phishing", "--region", "EU", "--metric", "reports",
        "--value", "12.5", "--unit", "percent", "--period-start", "2025-01-01", "--period-end", "2025-01-31",
    ).strip()  # fmt: skip
    assert json.loads(fresh.ok("show", regional, "--json"))["body"]["region"] == "EU"


@pytest.fixture(scope="module")
def partner(node: Node, tmp_path_factory: pytest.TempPathFactory) -> Node:
    """A second node, NCSC in GB, that OPTA has in its peer book: bundles are made for a known peer."""
    other = Node(tmp_path_factory.mktemp("partner") / "ncsc", node.cli)
    out = node.cli.init(other.home, "NCSC", "GB", "--no-passphrase")
    node_id = re.search(r"lap1[0-9a-z]+", out)
    assert node_id is not None
    node.ok(
        "peer", "add", node_id.group(), "127.0.0.1:7460", "--category", "enforcement", "--jurisdiction", "GB"
    )
    other.records["node_id"] = node_id.group()
    return other


def test_bundle_round_trip_to_a_second_node(node: Node, partner: Node, tmp_path: Path) -> None:
    bundle = tmp_path / "opta.bundle"
    exported = node.cli(
        "bundle", "export", str(bundle), "--for", partner.records["node_id"], "--home", str(node.home)
    )
    assert (
        exported.returncode == 0
        and "exported 3 records" in exported.stderr
        and "0 withheld" in exported.stderr
    )
    assert bundle.read_text().startswith("lapnode-bundle/1 network=ucenet records=3\n\n")
    other = partner
    imported = other.ok("bundle", "import", str(bundle))
    assert "3 stored, 0 already held, 0 rejected" in imported
    assert [d["id"] for d in other.query()] == [d["id"] for d in node.query()]
    again = other.ok("bundle", "import", str(bundle))
    assert "0 stored, 3 already held" in again
    assert "3 records valid, 0 rejected" in other.ok("verify", str(bundle))
    # verify needs no home at all: the network comes from --network (or the bundle).
    assert "3 records valid" in node.cli.ok(
        "verify", "--network", "ucenet", "--home", str(tmp_path / "none"), str(bundle)
    )


def test_export_filters_and_refuses_to_overwrite(node: Node, partner: Node, tmp_path: Path) -> None:
    bundle = tmp_path / "leads.bundle"
    for_partner = ("--for", partner.records["node_id"])
    node.ok("bundle", "export", str(bundle), "--kind", "lead", *for_partner)
    assert bundle.read_text().startswith("lapnode-bundle/1 network=ucenet records=1\n")
    result = node.cli("bundle", "export", str(bundle), *for_partner, "--home", str(node.home))
    assert result.returncode == 1 and result.stderr.startswith("error: ") and "--force" in result.stderr
    node.ok("bundle", "export", str(bundle), "--force", *for_partner)


def test_export_must_say_who_it_is_for(node: Node, tmp_path: Path) -> None:
    bundle = tmp_path / "nobody.bundle"
    for choice in ((), ("--public", "--for", "lap1x")):
        result = node.cli("bundle", "export", str(bundle), *choice, "--home", str(node.home))
        assert result.returncode == 2 and "--for NODE_ID" in result.stderr and "--public" in result.stderr
        assert result.stderr.count("\n") == 1 and not bundle.exists()
    unknown = Node(tmp_path / "stranger", node.cli)
    stranger = re.search(r"lap1[0-9a-z]+", node.cli.init(unknown.home, "X", "FR", "--no-passphrase"))
    assert stranger is not None
    result = node.cli("bundle", "export", str(bundle), "--for", stranger.group(), "--home", str(node.home))
    assert result.returncode == 1 and "not in the peer book" in result.stderr and not bundle.exists()


def test_a_public_export_holds_clear_records_only(node: Node, tmp_path: Path) -> None:
    bundle = tmp_path / "public.bundle"
    result = node.cli("bundle", "export", str(bundle), "--public", "--home", str(node.home))
    assert (
        result.returncode == 0 and "exported 1 record to" in result.stderr and "2 withheld" in result.stderr
    )
    assert bundle.read_text().startswith("lapnode-bundle/1 network=ucenet records=1\n")
    (line,) = [line for line in bundle.read_text().splitlines()[1:] if line]
    assert verify_record(base64.b64decode(line), network="ucenet").id.hex() == node.records["trend"]


def test_a_tampered_bundle_loses_exactly_one_record(node: Node, partner: Node, tmp_path: Path) -> None:
    bundle = tmp_path / "opta.bundle"
    node.ok("bundle", "export", str(bundle), "--for", partner.records["node_id"])
    data = bytearray(bundle.read_bytes())
    lines = data.split(b"\n")
    target = len(lines[0]) + 1 + 1 + len(lines[2]) + 1 + 1 + 100  # 100 bytes into the second record line
    data[target] ^= 0x01
    bundle.write_bytes(bytes(data))

    result = node.cli("verify", str(bundle), "--home", str(node.home))
    assert result.returncode == 1
    assert "2 records valid, 1 rejected" in result.stdout
    assert re.search(r"rejected: line 5: ", result.stdout)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: 1 of 3 records")

    third = Node(tmp_path / "third", node.cli)
    node.cli.init(third.home, "CCPC", "IE", "--no-passphrase")
    result = node.cli("bundle", "import", str(bundle), "--home", str(third.home))
    assert result.returncode == 1 and "2 stored, 0 already held, 1 rejected" in result.stdout
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert len(third.query()) == 2


def test_the_passphrase_never_appears_in_any_output(node: Node, cli: Cli) -> None:
    node.ok("query")  # at least one command ran in this test too
    assert cli.outputs and not any(PASSPHRASE in output for output in cli.outputs)
