"""Every exit records its decisions in the audit trail before it discloses (lapnode.exits Rule 3).

In-process through the real dispatcher (lapnode.cli.main.main) against a real node home: real records
signed with the node's key, real peers in the peer book and the example policy.toml (its redaction of
personal data to recipients outside the EEA). The TAXII exit is covered against a running daemon in
tests/integration/test_interop.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest

from keys.keyfile import read_key_file
from lapnode.cli import main as cli_main
from lapnode.exits import audit_label, file_label
from lapnode.publishing import publish_record
from lapnode.store import Store
from lapnode.store.audit import MAX_LABEL_CHARS
from protocol.kinds import body_from_document
from protocol.scope import Scope
from tests.factories import contact_document, identity
from tests.lapnode.interop_corpus import NAMES_ONLY, REFERRAL, TREND

NETWORK: Final = "audit-exits"
EXAMPLE_POLICY: Final = Path(__file__).parents[2] / "docs" / "examples" / "policy.toml"
NL_PEER: Final = identity("audit-exits-nl")  # enforcement in the EEA: personal data may go
AU_PEER: Final = identity("audit-exits-au")  # no adequacy decision: personal fields redacted
STRICT_REASON: Final = "tlp amber+strict: never exported"
REDACT_REASON: Final = (
    "rule personal-data-outside-eea (redact the personal fields): flags include [personal-data]; "
    "recipient: jurisdiction not in [personal-data-ok]"
)


@dataclass
class Site:
    home: Path
    ids: dict[str, str] = field(default_factory=dict)


def dispatch(site: Site, *args: str) -> int:
    """`lapnode ARGS --home HOME` through the dispatcher; its exit code."""
    with pytest.raises(SystemExit) as exited:
        cli_main.main([*args, "--home", str(site.home)])
    assert isinstance(exited.value.code, int)
    return exited.value.code


class Cli:
    """Commands against the site's home, with their output (capsys is per test, the site per module)."""

    def __init__(self, site: Site, capsys: pytest.CaptureFixture[str]) -> None:
        self.site = site
        self._capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self._capsys.readouterr()
        code = dispatch(self.site, *args)
        captured = self._capsys.readouterr()
        return code, captured.out, captured.err

    def entries(self, *args: str) -> list[dict[str, object]]:
        code, out, err = self("audit", "--json", "--limit", "10000", *args)
        assert code == 0, err
        found: list[dict[str, object]] = json.loads(out)
        return found

    def decided(self, *args: str) -> dict[str, dict[str, object]]:
        """The entries that match, by the name of their record; one decision per record."""
        names = {record_id: name for name, record_id in self.site.ids.items()}
        found = self.entries(*args)
        result = {names[str(entry["record"])]: entry for entry in found}
        assert len(result) == len(found), found
        return result

    def head(self) -> str:
        return self("audit", "head")[1]


@pytest.fixture
def cli(site: Site, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(site, capsys)


async def _publish(home: Path) -> dict[str, str]:
    signer = read_key_file(home / "identity.key", None)
    store = await Store.open(f"sqlite+aiosqlite:///{home / 'store.sqlite'}", network=NETWORK)
    plan = [
        ("contact", "contact", contact_document(), Scope.create("green", flags=["personal-data"])),
        ("lead", "lead", REFERRAL, Scope.create("green")),
        ("strict", "lead", {**NAMES_ONLY, "title": "STRICT-SECRET lead"}, Scope.create("amber+strict")),
        ("trend", "trend", TREND, Scope.create("clear")),
    ]
    ids = {}
    try:
        for n, (name, kind, document, scope) in enumerate(plan):
            fields = body_from_document(kind, document)
            created = 1_780_000_000_000 + n
            record = await publish_record(
                store, signer, network=NETWORK, kind=kind, fields=fields, scope=scope, created=created
            )
            ids[name] = record.id.hex()
    finally:
        await store.close()
    return ids


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    site = Site(tmp_path_factory.mktemp("audit-exits") / "home")
    identity_ = ["--org", "OPTA", "--jurisdiction", "NL", "--category", "enforcement"]
    assert dispatch(site, "init", *identity_, "--network", NETWORK, "--no-passphrase") == 0
    shutil.copy(EXAMPLE_POLICY, site.home / "policy.toml")
    for peer, country in ((NL_PEER, "NL"), (AU_PEER, "AU")):
        pinned = ("--category", "enforcement", "--jurisdiction", country)
        assert dispatch(site, "peer", "add", peer.node_id, "127.0.0.1:9", *pinned) == 0
    site.ids = asyncio.run(_publish(site.home))
    yield site


def test_a_bundle_for_a_peer_records_send_redact_and_withhold(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "au.lapb"
    code, _, err = cli("bundle", "export", str(out), "--for", AU_PEER.node_id)
    assert code == 0 and out.exists(), err
    decided = cli.decided("--exit", "bundle-export", "--peer", AU_PEER.node_id)
    assert set(decided) == set(cli.site.ids)
    assert {name: entry["action"] for name, entry in decided.items()} == {
        "contact": "redact",
        "lead": "send",
        "strict": "withhold",
        "trend": "send",
    }
    assert decided["contact"]["reasons"] == ["within the author's scope", REDACT_REASON]
    assert decided["strict"]["reasons"] == [STRICT_REASON]
    allowed = (
        "rule leads-to-authorities (allow-only): recipient matches: category in [enforcement, government]"
    )
    assert decided["lead"]["reasons"] == ["within the author's scope", allowed]
    assert all(entry["recipient"] == AU_PEER.node_id for entry in decided.values())


def test_a_public_bundle_records_each_refusal_for_the_public(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("bundle", "export", str(tmp_path / "public.lapb"), "--public")
    assert code == 0 and "exported 0 records" in err, err
    decided = cli.decided("--exit", "bundle-export", "--recipient", "public-export")
    assert set(decided) == set(cli.site.ids)
    assert {entry["action"] for entry in decided.values()} == {"withhold"}
    # The public has no pinned jurisdiction, so the example's sanctions rule withholds even a clear trend.
    assert decided["trend"]["reasons"] == [
        "rule nothing-to-kp (deny): every record; recipient: jurisdiction in [KP] "
        "(the peer's jurisdiction is not pinned, so the rule applies)"
    ]
    assert "tlp green: never to a public export" in decided["lead"]["reasons"]  # type: ignore[operator]


@pytest.mark.parametrize("fmt", ["stix", "csv", "misp"])
def test_file_exports_record_their_decisions(cli: Cli, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"out-{fmt}"
    code, _, err = cli("export", fmt, "--out", str(out), "--for", NL_PEER.node_id)
    assert code == 0 and out.exists(), err
    decided = cli.decided("--exit", f"export-{fmt}", "--peer", NL_PEER.node_id)
    # In the EEA: the contact goes whole; amber+strict never leaves in a file.
    assert {name: entry["action"] for name, entry in decided.items()} == {
        "contact": "send",
        "lead": "send",
        "strict": "withhold",
        "trend": "send",
    }


def test_an_export_for_this_organisation_names_the_file(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "ours.json"
    code, _, err = cli("export", "stix", "--out", str(out))
    assert code == 0, err
    label = f"export-stix:{out}"
    decided = cli.decided("--recipient", label)
    assert decided["strict"]["action"] == "withhold" and decided["lead"]["action"] == "send"
    code, _, err = cli("export", "csv", "--out", "-", "--kind", "trend")
    assert code == 0, err
    [trend] = cli.entries("--recipient", "export-csv:<stdout>")
    assert trend["record"] == cli.site.ids["trend"] and trend["action"] == "send"


def test_a_file_name_that_is_not_unicode_still_makes_a_valid_label(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "caf\udce9.csv"  # the byte 0xE9 of a Latin-1 name, as Python passes it on
    code, _, err = cli("export", "csv", "--out", str(out), "--kind", "trend")
    assert code == 0 and out.exists(), err
    [trend] = cli.entries("--recipient", f"export-csv:{tmp_path}/caf\ufffd.csv")
    assert trend["record"] == cli.site.ids["trend"]


def test_labels_are_bounded_and_keep_the_end_of_a_long_path() -> None:
    long = "/srv/" + "deep/" * 100 + "leads.json"
    label = file_label("export-stix", long)
    assert len(label) == MAX_LABEL_CHARS and label.startswith("…") and label.endswith("/leads.json")
    assert audit_label("bundle:\udcff") == "bundle:\ufffd" and file_label("export-csv", "-") == (
        "export-csv:<stdout>"
    )


def test_xarf_records_a_refusal_too(cli: Cli, tmp_path: Path) -> None:
    xarf = ("--contact", "abuse@opta.example", "--for", AU_PEER.node_id)
    code, _, err = cli("export", "xarf", cli.site.ids["strict"], *xarf, "--out", str(tmp_path / "x1"))
    assert code == 1 and "withheld by policy" in err and not (tmp_path / "x1").exists()
    code, _, err = cli("export", "xarf", cli.site.ids["lead"], *xarf, "--out", str(tmp_path / "x2"))
    assert code == 0, err
    newest = cli.entries("--exit", "export-xarf", "--peer", AU_PEER.node_id)
    assert [(e["record"], e["action"]) for e in newest] == [
        (cli.site.ids["lead"], "send"),
        (cli.site.ids["strict"], "withhold"),
    ]
    assert newest[1]["reasons"] == [STRICT_REASON]


def test_previews_record_nothing(cli: Cli, tmp_path: Path) -> None:
    trend = tmp_path / "trend.json"
    trend.write_text(json.dumps(TREND))
    before = cli.head()
    as_au = ("--as", AU_PEER.node_id)
    previews = [
        ("query", *as_au),
        ("show", cli.site.ids["contact"], *as_au),
        ("policy", "explain", cli.site.ids["contact"], "--peer", AU_PEER.node_id, "--via", "bundle"),
        ("publish", "trend", "--from-file", str(trend), "--tlp", "green", "--dry-run"),
    ]
    for args in previews:
        code, _, err = cli(*args)
        assert code == 0, (args, err)
    assert "redact" in cli(*previews[2])[1]
    assert cli.head() == before


def test_an_export_refused_for_an_existing_file_records_nothing(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "taken.lapb"
    out.write_text("someone else's file")
    before = cli.head()
    code, _, err = cli("bundle", "export", str(out), "--public")
    assert code == 1 and "already exists" in err
    assert cli.head() == before and out.read_text() == "someone else's file"


@contextlib.contextmanager
def audit_refused(site: Site) -> Iterator[None]:
    """The database refuses every new audit entry (as a full disk or a broken permission would)."""
    with contextlib.closing(sqlite3.connect(site.home / "store.sqlite")) as conn:
        conn.execute(
            "CREATE TRIGGER audit_refused BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        conn.commit()
    try:
        yield
    finally:
        with contextlib.closing(sqlite3.connect(site.home / "store.sqlite")) as conn:
            conn.execute("DROP TRIGGER audit_refused")
            conn.commit()


@pytest.mark.parametrize(
    "command",
    [
        ("bundle", "export", "{out}", "--for", AU_PEER.node_id),
        ("export", "stix", "--out", "{out}", "--public"),
        ("export", "misp", "--out", "{out}"),
        ("bundle", "export", "-", "--public"),
    ],
)
def test_if_the_trail_refuses_the_decisions_nothing_is_disclosed(
    cli: Cli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    out = tmp_path / "never"
    before = cli.head()
    with audit_refused(cli.site):
        code, stdout, err = cli(*(arg.format(out=out) for arg in command))
    assert code == 1 and stdout == "", err
    assert err.startswith("error: could not record the decisions in the audit trail (refused)")
    assert err.endswith("; nothing was disclosed\n") and err.count("\n") == 1
    assert not out.exists() and cli.head() == before
