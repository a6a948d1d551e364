"""MISP feed export: PyMISP loads every event, and feed_meta_generator reproduces our manifest and hashes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pymisp import MISPEvent
from pymisp.tools import feed_meta_generator

from lapnode.cli.export_commands import _write_feed
from lapnode.interop import misp
from tests.factories import NETWORK, T0
from tests.lapnode.interop_corpus import AUTHOR, LOCAL, build, disclose, rows


def _feed(tmp_path: Path) -> tuple[Path, dict[str, dict[str, object]]]:
    corpus = build()
    disclosed = disclose(
        rows(corpus.all()),
        LOCAL,
        now_ms=T0 + 10**9,
        our_key=AUTHOR.public_key.raw,
        network=NETWORK,
    )
    events = misp.feed(disclosed, {AUTHOR.public_key.raw: "OPTA"})
    directory = tmp_path / "feed"
    _write_feed(directory, events, force=False)
    return directory, events


def test_pymisp_loads_every_event_with_its_tlp_tag(tmp_path: Path) -> None:
    directory, events = _feed(tmp_path)
    assert len(events) == 3  # the referral, the names-only lead and the green lead; strict and red withheld
    titles = set()
    for path in directory.glob("*.json"):
        if path.name == "manifest.json":
            continue
        event = MISPEvent()
        event.load_file(str(path))
        titles.add(event.info)
        assert [t.name for t in event.tags if t.name.startswith("tlp:")] in (
            ["tlp:amber"],
            ["tlp:clear"],
            ["tlp:green"],
        )
        assert event.orgc.name == "OPTA"
        for attribute in event.attributes:
            assert attribute.type in {
                "domain",
                "ip-src",
                "url",
                "email-src",
                "AS",
                "phone-number",
                "bank-account-nr",
                "text",
                "sha256",
            }
    assert titles == {"Pharmacy spam with a phishing twist", "Boiler-room caller", "Green lead"}
    referral = next(e for e in events.values() if e["Event"]["info"].startswith("Pharmacy"))  # type: ignore[index]
    values = {a["value"] for a in referral["Event"]["Attribute"]}  # type: ignore[index]
    assert {"pharma-spam.example", "198.51.100.7", "sales@pharma-spam.example", "ab" * 32} <= values


def test_feed_meta_generator_reproduces_manifest_and_hashes(tmp_path: Path) -> None:
    directory, _ = _feed(tmp_path)
    copy = tmp_path / "regenerated"
    shutil.copytree(directory, copy)
    (copy / "manifest.json").unlink()
    (copy / "hashes.csv").unlink()
    feed_meta_generator(copy)
    assert json.loads((copy / "manifest.json").read_text()) == json.loads(
        (directory / "manifest.json").read_text()
    )
    ours = sorted((directory / "hashes.csv").read_text().splitlines())
    assert ours and sorted((copy / "hashes.csv").read_text().splitlines()) == ours


def test_a_second_export_gives_the_same_event_ids(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, first = _feed(tmp_path / "a")
    _, second = _feed(tmp_path / "b")
    assert first == second
