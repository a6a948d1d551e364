"""The real CLI on real homes: correct, declassify, query's current versions, show's history, contacts.

Every refusal is one `error:` line, exit code 1, and leaves the store as it was.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from keys.keyfile import read_public_node_id
from tests.integration.federation import cli


@dataclass
class Home:
    path: Path
    node_id: str

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return cli(*args, "--home", str(self.path), check=check)

    def json(self, *args: str) -> object:
        return json.loads(self.run(*args, "--json").stdout)

    def refused(self, *args: str, message: str) -> None:
        before = self.all_ids()
        result = self.run(*args, check=False)
        assert result.returncode == 1, result
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
        assert message in result.stderr, result.stderr
        assert self.all_ids() == before  # nothing was signed or stored

    def all_ids(self) -> list[str]:
        found = self.json("query", "--all-versions", "--limit", "10000")
        assert isinstance(found, list)
        return [item["id"] for item in found]

    def current_ids(self) -> list[str]:
        found = self.json("query", "--limit", "10000")
        assert isinstance(found, list)
        return [item["id"] for item in found]


def make_home(path: Path, org: str, jurisdiction: str) -> Home:
    cli(
        "init",
        "--home",
        str(path),
        "--org",
        org,
        "--jurisdiction",
        jurisdiction,
        "--category",
        "enforcement",
        "--no-passphrase",
    )
    return Home(path, read_public_node_id(path / "identity.key"))


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Home, Home, Path]]:
    base = tmp_path_factory.mktemp("revisions")
    yield (
        make_home(base / "acma", "ACMA", "AU"),
        make_home(base / "acm", "ACM", "NL"),
        base,
    )


def write(path: Path, document: dict[str, object]) -> Path:
    path.write_text(json.dumps(document))
    return path


SMS = {"unit": "SMS team", "emails": ["sms@acma.example"], "topics": ["sms-spam"]}
SMS_FIXED = {"unit": "SMS team", "emails": ["sms-desk@acma.example"], "topics": ["fraud", "sms-spam"]}


def test_correct_shows_the_new_version_and_keeps_the_history(homes: tuple[Home, Home, Path]) -> None:
    acma, _, base = homes
    original = acma.json(
        "publish", "contact", "--from-file", str(write(base / "sms.json", SMS)), "--tlp", "green",
        "--audience-category", "enforcement,government",
    )  # fmt: skip
    assert isinstance(original, dict)
    old_id = original["id"]
    fixed = write(base / "fixed.json", SMS_FIXED)
    acma.refused("correct", old_id, "--from-file", str(fixed), "--tlp", "clear", message="tlp clear is lower")
    acma.refused(
        "correct", old_id, "--from-file", str(fixed), "--audience-category", "industry",
        message="categories would reach beyond the original's",
    )  # fmt: skip
    acma.refused("correct", "0" * 64, "--from-file", str(fixed), message="no record")
    acma.refused(
        "correct", old_id, "--from-file", str(write(base / "bad.json", {"topics": ["spam"]})),
        message="contact.topics[0]",
    )  # fmt: skip
    new_id = acma.run("correct", old_id, "--from-file", str(fixed), "--audience-category", "enforcement")
    new_id_text = new_id.stdout.strip()
    assert acma.current_ids() == [new_id_text]
    assert set(acma.all_ids()) == {old_id, new_id_text}
    corrected = acma.json("show", new_id_text)
    assert isinstance(corrected, dict)
    assert corrected["scope"]["tlp"] == "green" and corrected["scope"]["categories"] == ["enforcement"]
    assert corrected["body"]["emails"] == ["sms-desk@acma.example"]
    assert corrected["body"]["supersedes"] == old_id
    assert [v["id"] for v in corrected["history"]["earlier"]] == [old_id]
    assert corrected["history"]["current"] is True
    shown = acma.run("show", old_id).stdout
    assert f"superseded by {new_id_text} at " in shown
    acma.refused("correct", old_id, "--from-file", str(fixed), message=f"superseded by {new_id_text}")


def test_only_the_author_lowers_a_tlp_and_only_downwards(homes: tuple[Home, Home, Path]) -> None:
    acma, acm, base = homes
    lead = acma.json(
        "publish", "lead", "--title", "SMS phishing wave", "--summary", "Bank impersonation texts.",
        "--status", "suspected", "--tlp", "amber",
    )  # fmt: skip
    assert isinstance(lead, dict)
    acma.refused("declassify", lead["id"], "--tlp", "red", message="is not lower than the record's TLP amber")
    acma.refused("declassify", lead["id"], "--tlp", "amber", message="is not lower")
    # ACM holds a copy (through a bundle for it) and cannot lower it: it is not the author.
    acma.run("peer", "add", acm.node_id, "127.0.0.1:9", "--category", "enforcement", "--jurisdiction", "NL")
    bundle = base / "for-acm.bundle"
    acma.run("bundle", "export", str(bundle), "--for", acm.node_id)
    acm.run("bundle", "import", str(bundle))
    assert lead["id"] in acm.all_ids()
    acm.refused("declassify", lead["id"], "--tlp", "green", message="not by this node: only its author")
    acm.refused("contacts", "confirm", lead["id"], message="only its author")
    lowered = acma.json("declassify", lead["id"], "--tlp", "green")
    assert isinstance(lowered, dict)
    assert lowered["scope"]["tlp"] == "green" and lowered["body"]["title"] == "SMS phishing wave"
    assert lowered["body"]["supersedes"] == lead["id"]
    assert lead["id"] not in acma.current_ids() and lowered["id"] in acma.current_ids()


def test_the_contacts_directory_filters_and_finds_stale_contacts(homes: tuple[Home, Home, Path]) -> None:
    acma, acm, base = homes
    acm.run("publish", "contact", "--from-file", str(write(base / "tm.json", {"topics": ["telemarketing"]})))
    # ACM also holds both versions of ACMA's contact (the bundle of the test before carried every
    # version); its directory shows only the corrected one.
    everyone = acm.json("contacts")
    assert isinstance(everyone, list) and [e["organisation"] for e in everyone] == ["ACMA", "ACM"]
    assert everyone[0]["emails"] == ["sms-desk@acma.example"]
    sms = acma.json("contacts", "--jurisdiction", "au", "--topic", "sms-spam")
    assert isinstance(sms, list) and len(sms) == 1
    assert sms[0]["emails"] == ["sms-desk@acma.example"] and sms[0]["age_days"] == 0
    assert acma.json("contacts", "--text", "SMS TEAM") == sms
    assert acma.json("contacts", "--category", "industry") == []
    assert acma.json("contacts", "stale", "--older-than", "30d") == []
    overdue = acma.json("contacts", "stale", "--older-than", "0s")
    assert isinstance(overdue, list) and [e["id"] for e in overdue] == [sms[0]["id"]]
    acma.refused("contacts", "stale", "--older-than", "soon", message="is not a duration")
    table = acma.run("contacts").stdout
    assert "ACMA" in table and "sms-desk@acma.example" in table and "(today)" in table
    confirmed = acma.run("contacts", "confirm", sms[0]["id"]).stdout.strip()
    again = acma.json("contacts")
    assert isinstance(again, list) and [e["id"] for e in again] == [confirmed]
    assert (
        again[0]["supersedes"] == sms[0]["id"] and again[0]["last_confirmed_ms"] > sms[0]["last_confirmed_ms"]
    )
    changing = ("id", "supersedes", "last_confirmed", "last_confirmed_ms")
    assert {k: v for k, v in again[0].items() if k not in changing} == {
        k: v for k, v in sms[0].items() if k not in changing
    }
