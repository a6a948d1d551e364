"""`lapnode audit` filters and bad input, in-process through the real dispatcher (lapnode.cli.main.main).

The real-process runs are in tests/integration/test_cli_audit.py; these matrices run in-process so that
each case costs milliseconds, not a Python start-up.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from keys.identity import node_id_from_public_key
from lapnode.cli import main as cli_main
from lapnode.store import AuditEvent, Store

PEER = bytes(range(32, 64))
OTHER = bytes(range(64, 96))
T0 = 1_780_000_000_000  # 2026-05-28T20:26:40Z
DAY = 86_400_000
NETWORK = "audit-inputs"


def rid(n: int) -> bytes:
    return hashlib.sha256(f"audit inputs {n}".encode()).digest()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit-inputs") / "home"
    identity = ["--org", "OPTA", "--jurisdiction", "NL", "--category", "enforcement"]
    with pytest.raises(SystemExit) as exited:
        cli_main.main(["init", "--home", str(path), *identity, "--network", NETWORK, "--no-passphrase"])
    assert exited.value.code == 0

    async def fill() -> None:
        store = await Store.open(f"sqlite+aiosqlite:///{path / 'store.sqlite'}", network=NETWORK)
        try:
            await store.audit.append(
                [
                    AuditEvent(rid(1), PEER, "send", ("within the author's scope",), T0, "gossip"),
                    AuditEvent(rid(2), PEER, "withhold", ("tlp red",), T0 + 1000, "gossip"),
                    AuditEvent(rid(1), OTHER, "withhold", ("scope.categories",), T0 + DAY, "gossip"),
                    AuditEvent(rid(3), "public-export", "redact", ("personal-data",), T0 + 2 * DAY, "stix"),
                ]
            )
        finally:
            await store.close()

    asyncio.run(fill())
    return path


def run(home: Path, args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        cli_main.main(["audit", "--home", str(home), *args])
    captured = capsys.readouterr()
    assert isinstance(exited.value.code, int)
    return exited.value.code, captured.out, captured.err


@pytest.mark.parametrize(
    ("args", "seqs"),
    [
        (["--record", rid(1).hex()[:12]], [3, 1]),
        (["--record", rid(2).hex()], [2]),
        (["--peer", node_id_from_public_key(PEER)], [2, 1]),
        (["--peer", node_id_from_public_key(OTHER), "--action", "send"], []),
        (["--recipient", "public-export"], [4]),
        (["--action", "withhold"], [3, 2]),
        (["--action", "redact"], [4]),
        (["--exit", "gossip", "--action", "send"], [1]),
        (["--since", "2026-05-29"], [4, 3]),
        (["--until", "2026-05-29"], [2, 1]),
        (["--since", "2026-05-29T00:00Z", "--until", "2026-05-30"], [3]),
        (["--limit", "1"], [4]),
    ],
)
def test_filters(home: Path, args: list[str], seqs: list[int], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(home, ["--json", *args], capsys)
    assert code == 0, err
    assert [entry["seq"] for entry in json.loads(out)] == seqs


def test_no_match_says_so_on_stderr(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(home, ["--exit", "bundle-export"], capsys) == (0, "", "no audit entries match\n")


@pytest.mark.parametrize(
    ("args", "code", "contains"),
    [
        (["--peer", "lap1nottheright"], 1, "not a valid node id"),
        (["--record", "zz"], 1, "is not a record id"),
        (["--record", "abcd"], 1, "give at least 8 hex characters"),
        (["--since", "yesterday"], 1, "is not a date or time"),
        (["--recipient", "  "], 1, "--recipient needs a label"),
        (["--action", "leak"], 2, "'leak' is not one of 'send', 'withhold', 'redact'"),
        (["--limit", "0"], 2, "0 is not in the range"),
        (["--peer", "x", "--recipient", "y"], 2, "give --peer or --recipient, not both"),
        (["--json", "verify"], 2, "--json belongs to `lapnode audit` itself"),
        (["--action", "send", "head"], 2, "--action belongs to `lapnode audit` itself"),
        (["verify", "--head", "abc"], 1, "is not an entry hash"),
        (["nonsense"], 2, "No such command"),
    ],
)
def test_bad_input_is_one_line(
    home: Path, args: list[str], code: int, contains: str, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code, out, err = run(home, args, capsys)
    assert exit_code == code, err
    assert err.startswith("error: ") and err.count("\n") == 1 and contains in err, err
    assert out == ""
