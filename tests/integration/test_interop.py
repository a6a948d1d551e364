"""Standard formats against a real daemon and the real third-party tools (issue 7).

One node runs `lapnode serve` for the whole module; its records were published with its own key into its
real SQLite store before it started, across every kind and every TLP. TAXII clients page through it with
the OASIS taxii2-client; exports and imports go through the real CLI; `taxii pull` reads from the OASIS
reference server, medallion, started here on loopback with a small collection (its in-memory backend
compares every object with every other, so big collections are slow: LESSONS.md).

The secret titles below must never appear in any export or TAXII response.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import stix2
from stix2validator import ValidationOptions, validate_instance
from taxii2client.v21 import Server, as_pages

from keys.keyfile import read_key_file
from lapnode.publishing import publish_record
from lapnode.store import AuditEntry, AuditFilters, Store
from protocol.kinds import body_from_document
from protocol.scope import Scope
from tests.factories import contact_document, identity, make_record
from tests.integration.federation import (
    NETWORK,
    NodeProcess,
    free_port_pair,
    in_parallel,
    stop_all,
    wait_until,
)
from tests.lapnode.interop_corpus import NAMES_ONLY, REFERRAL, TREND
from tests.lapnode.test_interop_imports import ARF_SAMPLE

TAXII_MEDIA = "application/taxii+json;version=2.1"
SECRETS = ("STRICT-SECRET", "RED-SECRET")
PEER = identity("interop-integration-peer")  # in the peer book only: an industry member in the US
RELAYING_AUTHOR = identity("interop-integration-author")


@dataclass
class Site:
    node: NodeProcess
    work: Path
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.node.port}/taxii2/"


async def _publish_all(node: NodeProcess) -> dict[str, str]:
    identity_ = read_key_file(node.home / "identity.key", None)
    store = await Store.open(node.database_url, network=NETWORK)
    ids: dict[str, str] = {}
    plan = [
        ("contact", "contact", contact_document(), Scope.create("green")),
        ("referral", "lead", REFERRAL, Scope.create("amber")),
        (
            "enforcement-only",
            "lead",
            {**NAMES_ONLY, "title": "Enforcement-only lead"},
            Scope.create("amber", categories=["enforcement"]),
        ),
        ("clear", "lead", NAMES_ONLY, Scope.create("clear")),
        ("trend", "trend", TREND, Scope.create("green")),
        ("strict", "lead", {**REFERRAL, "title": "STRICT-SECRET lead"}, Scope.create("amber+strict")),
        (
            "red",
            "lead",
            {**REFERRAL, "title": "RED-SECRET lead"},
            Scope.create("red", members=[PEER.public_key.raw]),
        ),
    ]
    try:
        for n, (name, kind, document, scope) in enumerate(plan):
            fields = body_from_document(kind, document)
            created = 1_780_000_000_000 + n
            record = await publish_record(
                store, identity_, network=NETWORK, kind=kind, fields=fields, scope=scope, created=created
            )
            ids[name] = record.id.hex()
        relayed = make_record(RELAYING_AUTHOR, 1, None, network=NETWORK, scope=Scope.create("green"))
        assert not (await store.ingest([relayed.wire])).rejected
        ids["relayed"] = relayed.id.hex()
    finally:
        await store.close()
    return ids


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    work = tmp_path_factory.mktemp("interop")
    node = NodeProcess("opta", work / "opta", free_port_pair())
    node.init()
    site = Site(node, work)
    site.ids = asyncio.run(_publish_all(node))

    def token(name: str, category: str, jurisdiction: str) -> tuple[str, str]:
        out = node.run(
            "taxii", "token", "add", name, "--as-category", category, "--jurisdiction", jurisdiction
        )
        return name, out.stdout.strip()

    site.tokens = dict(
        in_parallel(
            lambda: token("opencti", "industry", "US"),
            lambda: token("police", "enforcement", "GB"),
            lambda: (
                node.run(
                    "peer",
                    "add",
                    PEER.node_id,
                    "127.0.0.1:9",
                    "--category",
                    "industry",
                    "--jurisdiction",
                    "US",
                ),
                ("", ""),
            )[1],
        )
    )
    node.start()
    try:
        yield site
    finally:
        stop_all([node])


def _request(
    url: str,
    *,
    token: str | None,
    accept: str = TAXII_MEDIA,
    method: str = "GET",
    body: bytes | None = None,
    content_type: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Accept": accept})
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    if content_type is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _everything(site: Site, token: str, per_request: int = 4) -> dict[str, list[dict[str, object]]]:
    """Every object of every collection, paged with the real taxii2-client."""
    server = Server(site.root, user="client", password=token)
    [api_root] = server.api_roots
    found: dict[str, list[dict[str, object]]] = {}
    for collection in api_root.collections:
        assert collection.can_read and not collection.can_write
        objects: list[dict[str, object]] = []
        for envelope in as_pages(collection.get_objects, per_request=per_request):
            assert len(envelope.get("objects", [])) <= per_request
            objects += envelope.get("objects", [])
        found[collection.alias] = objects
    return found


def _record_ids(objects: list[dict[str, object]]) -> set[str]:
    return {ref["external_id"] for obj in objects for ref in obj.get("external_references", [])}  # type: ignore[attr-defined]


def test_taxii2_client_pages_through_every_collection_and_sees_only_what_policy_allows(site: Site) -> None:
    industry = _everything(site, site.tokens["opencti"])
    police = _everything(site, site.tokens["police"], per_request=7)
    assert set(industry) == {"contact", "lead", "trend"}
    seen_by_industry = {kind: _record_ids(objects) for kind, objects in industry.items()}
    seen_by_police = {kind: _record_ids(objects) for kind, objects in police.items()}
    ids = site.ids
    assert seen_by_industry == {
        "contact": {ids["contact"]},
        "lead": {ids["referral"], ids["clear"], ids["relayed"]},
        "trend": {ids["trend"]},
    }
    assert seen_by_police["lead"] == seen_by_industry["lead"] | {ids["enforcement-only"]}
    everything = json.dumps([industry, police])
    assert not any(secret in everything for secret in SECRETS)
    assert ids["strict"] not in everything and ids["red"] not in everything
    for objects in industry.values():
        stix2.parse(
            {"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "objects": objects},
            allow_custom=False,
        )
        # Objects are de-duplicated within a page only; a page boundary may repeat a shared one.
        assert len({o["id"] for o in objects}) >= len(objects) - 8  # type: ignore[index]


def test_manifest_added_after_and_filters(site: Site) -> None:
    token = site.tokens["police"]
    collections_url = f"{site.root}lapnode/collections/"
    status, _, body = _request(collections_url, token=token)
    leads = next(c for c in json.loads(body)["collections"] if c["alias"] == "lead")
    objects_url = f"{collections_url}{leads['id']}/objects/"
    status, headers, body = _request(f"{objects_url}?limit=1000", token=token)
    envelope = json.loads(body)
    assert status == 200 and headers["Content-Type"] == TAXII_MEDIA and envelope["more"] is False
    last = headers["X-TAXII-Date-Added-Last"]
    status, _, body = _request(f"{collections_url}{leads['id']}/manifest/?limit=1000", token=token)
    manifest = json.loads(body)["objects"]
    assert [m["id"] for m in manifest] == [o["id"] for o in envelope["objects"]]
    assert all(m["media_type"] == "application/stix+json;version=2.1" for m in manifest)
    status, headers, body = _request(f"{objects_url}?added_after={last}", token=token)
    # Only the last millisecond again (served twice rather than ever missed), nothing older.
    assert status == 200 and headers["X-TAXII-Date-Added-First"] == last
    assert 0 < len(json.loads(body)["objects"]) < len(envelope["objects"])
    status, _, body = _request(f"{objects_url}?match[type]=indicator,note", token=token)
    assert {o["type"] for o in json.loads(body)["objects"]} == {"indicator", "note"}
    indicator = next(o for o in envelope["objects"] if o["type"] == "indicator")
    status, _, body = _request(f"{objects_url}{indicator['id']}/", token=token)
    assert status == 200 and [o["id"] for o in json.loads(body)["objects"]] == [indicator["id"]]
    status, _, body = _request(f"{objects_url}{indicator['id']}/versions/", token=token)
    assert json.loads(body)["versions"] == [indicator["modified"]]
    # The enforcement-only lead exists, but not for this token: not found, exactly as if it did not.
    hidden = next(
        o for o in envelope["objects"] if o["type"] == "note" and o["abstract"] == "Enforcement-only lead"
    )
    assert _request(f"{objects_url}{hidden['id']}/", token=site.tokens["opencti"])[0] == 404


def test_status_codes_follow_taxii(site: Site) -> None:
    token = site.tokens["opencti"]
    root = f"{site.root}lapnode/"
    status, headers, body = _request(site.root, token=None)
    assert (
        status == 401 and "Bearer" in headers["WWW-Authenticate"] and json.loads(body)["http_status"] == "401"
    )
    assert _request(site.root, token="lapt_" + "A" * 43)[0] == 401
    assert _request(site.root, token=token, accept="text/html")[0] == 406
    assert _request(site.root, token=token, accept="application/taxii+json;version=2.0")[0] == 406
    assert _request(f"{root}collections/00000000-0000-4000-8000-000000000000/objects/", token=token)[0] == 404
    lead_id = next(
        c["id"]
        for c in json.loads(_request(f"{root}collections/", token=token)[2])["collections"]
        if c["alias"] == "lead"
    )
    objects_url = f"{root}collections/{lead_id}/objects/"
    assert (
        _request(objects_url, token=token, method="POST", body=b"{}", content_type="application/json")[0]
        == 415
    )
    assert _request(objects_url, token=token, method="POST", body=b"{}", content_type=TAXII_MEDIA)[0] == 403
    assert _request(f"{objects_url}indicator--00000000-0000-4000-8000-000000000000/", token=token)[0] == 404
    assert _request(f"{root}status/00000000-0000-4000-8000-000000000000/", token=token)[0] == 404
    assert _request(f"{objects_url}?limit=0", token=token)[0] == 400
    assert _request(f"{objects_url}?next=garbage", token=token)[0] == 400
    assert _request(f"{objects_url}?added_after=yesterday", token=token)[0] == 400
    discovery = json.loads(_request(site.root, token=token)[2])
    assert discovery["api_roots"] == [root]


async def _taxii_entries(site: Site, token_name: str, after_seq: int) -> list[AuditEntry]:
    store = await Store.open(site.node.database_url, network=NETWORK)
    try:
        found = await store.audit.entries(AuditFilters(recipient=f"taxii:{token_name}", exit="taxii"))
        return [entry for entry in found if entry.seq > after_seq]
    finally:
        await store.close()


async def _audit_head(site: Site) -> int:
    store = await Store.open(site.node.database_url, network=NETWORK)
    try:
        return (await store.audit.head()).seq
    finally:
        await store.close()


def test_a_taxii_page_is_recorded_in_the_audit_trail_before_it_is_served(site: Site) -> None:
    root = f"{site.root}lapnode/collections/"
    token = site.tokens["opencti"]
    lead_id = next(
        c["id"] for c in json.loads(_request(root, token=token)[2])["collections"] if c["alias"] == "lead"
    )
    before = asyncio.run(_audit_head(site))
    status, _, body = _request(f"{root}{lead_id}/objects/?limit=1000", token=token)
    assert status == 200
    served = _record_ids(json.loads(body)["objects"])
    entries = asyncio.run(_taxii_entries(site, "opencti", before))
    decided = {entry.event.record.hex(): entry.event for entry in entries}
    assert len(decided) == len(entries)  # one page: one decision per record, one append
    assert {rid for rid, event in decided.items() if event.action == "send"} == served
    ids = site.ids
    assert decided[ids["strict"]].action == "withhold"
    assert decided[ids["strict"]].reasons == ("tlp amber+strict: never exported",)
    assert "scope.categories: recipient's category is not in the audience" in (
        decided[ids["enforcement-only"]].reasons
    )
    # If the trail refuses the page's decisions, the client gets no objects at all.
    with contextlib.closing(sqlite3.connect(site.node.database_path)) as conn:
        conn.execute("CREATE TRIGGER refused BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'no'); END")
        conn.commit()
    try:
        status, _, body = _request(f"{root}{lead_id}/objects/", token=token)
    finally:
        with contextlib.closing(sqlite3.connect(site.node.database_path)) as conn:
            conn.execute("DROP TRIGGER refused")
            conn.commit()
    assert status == 503 and "objects" not in json.loads(body)
    assert '"event": "taxii_not_served"' in site.node.log_path.read_text()
    assert not any(secret in body.decode() for secret in ("Pharmacy", *SECRETS))


def _export(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    return site.node.run("export", *args)


def test_every_export_format_obeys_scope(site: Site) -> None:
    work = site.work
    stix_out, public_out, peer_out = work / "all.json", work / "public.json", work / "peer.json"
    ids = site.ids
    xarf = ("xarf", "--contact", "abuse@opta.example")
    *_, refused, report_run = in_parallel(
        lambda: _export(site, "stix", "--out", str(stix_out)),
        lambda: _export(site, "stix", "--out", str(public_out), "--public"),
        lambda: _export(site, "stix", "--out", str(peer_out), "--for", PEER.node_id),
        lambda: _export(site, "misp", "--out", str(work / "feed")),
        lambda: _export(site, "csv", "--out", str(work / "all.csv")),
        lambda: site.node.run("export", xarf[0], ids["strict"], *xarf[1:], check=False),
        lambda: site.node.run("export", xarf[0], ids["referral"], *xarf[1:]),
    )
    bundle = json.loads(stix_out.read_text())
    results = validate_instance(bundle, ValidationOptions(strict=True, version="2.1"))
    assert results.is_valid, results.as_dict()
    assert _record_ids(bundle["objects"]) == {
        ids[n] for n in ("contact", "referral", "enforcement-only", "clear", "trend", "relayed")
    }
    assert _record_ids(json.loads(public_out.read_text())["objects"]) == {ids["clear"]}
    assert _record_ids(json.loads(peer_out.read_text())["objects"]) == {
        ids[n] for n in ("contact", "referral", "clear", "trend", "relayed")
    }
    outputs = [
        p.read_text() for p in (stix_out, public_out, peer_out, work / "all.csv", *(work / "feed").iterdir())
    ]
    for text in outputs:
        assert not any(secret in text for secret in SECRETS)
        assert ids["strict"] not in text and ids["red"] not in text
    assert refused.returncode == 1 and "withheld by policy" in refused.stderr
    report = json.loads(report_run.stdout)
    assert report["source_identifier"] == "198.51.100.7" and "tlp:amber" in report["tags"]


def test_an_arf_report_becomes_a_draft_published_with_one_command(site: Site) -> None:
    report = site.work / "report.eml"
    report.write_bytes(ARF_SAMPLE)
    first = site.node.run("import", "arf", str(report))
    assert first.stdout.startswith("draft ") and "--from-draft" in first.stderr
    draft_id = first.stdout.split()[1].rstrip(":")
    body = json.loads(site.node.run("drafts", "show", draft_id, "--body").stdout)
    edited = site.work / "edited.json"
    edited.write_text(json.dumps(body | {"status": "verified"}))
    published = site.node.run(
        "publish", "lead", "--from-draft", draft_id, "--from-file", str(edited), "--tlp", "green", "--json"
    )
    record = json.loads(published.stdout)
    assert record["body"]["subjects"][0] == {"type": "ip", "value": "192.0.2.1"}
    assert record["body"]["status"] == "verified" and record["scope"]["tlp"] == "green"
    again = site.node.run("publish", "lead", "--from-draft", draft_id, check=False)
    assert again.returncode == 1 and "published already" in again.stderr
    broken = site.work / "broken.eml"
    broken.write_bytes(ARF_SAMPLE.replace(b"Feedback-Type: abuse\n", b""))
    failed = site.node.run("import", "arf", str(broken), check=False)
    assert failed.returncode == 1 and failed.stderr.startswith("error: malformed ARF report")
    # The new record reaches a TAXII client polling with added_after.
    wait_until(
        lambda: record["id"] in json.dumps(_everything(site, site.tokens["opencti"], per_request=50)["lead"]),
        timeout=30,
        what="the published draft on TAXII",
    )


# --- taxii pull from medallion -------------------------------------------------------------------------

MEDALLION_COLLECTION = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
GREEN_V2 = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
RED_V1 = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"
_INDICATORS = [
    (
        "8e2e2d2b",
        "Green phish",
        "[domain-name:value = 'phish.example'] OR [ipv4-addr:value = '203.0.113.9']",
        [GREEN_V2],
    ),
    ("9e2e2d2b", "Red URL", "[url:value = 'http://red.example/x']", [RED_V1]),
    (
        "ae2e2d2b",
        "Unmarked mailer",
        f"[file:hashes.'SHA-256' = '{'ef' * 32}'] AND [email-addr:value = 'x@mailer.example']",
        [],
    ),
]


def _medallion_data(port: int) -> dict[str, object]:
    objects: list[dict[str, object]] = []
    for n, (prefix, name, pattern, markings) in enumerate(_INDICATORS):
        stamp = f"2026-01-0{n + 1}T00:00:00.000Z"
        obj: dict[str, object] = {
            "type": "indicator",
            "spec_version": "2.1",
            "created": stamp,
            "modified": stamp,
        }
        obj |= {"id": f"indicator--{prefix}-17d4-4cbf-938f-98ee46b3cd3f", "name": name, "pattern": pattern}
        obj |= {"pattern_type": "stix", "valid_from": stamp, "labels": ["phishing"]}
        if markings:
            obj["object_marking_refs"] = markings
        objects.append(obj)
    stamp = "2026-01-04T00:00:00.000Z"
    malware = {
        "type": "malware",
        "spec_version": "2.1",
        "id": "malware--fdd60b30-b67c-11e3-b0b9-f01faf20d111",
    }
    objects.append(malware | {"created": stamp, "modified": stamp, "name": "x", "is_family": False})
    media = "application/stix+json;version=2.1"
    manifest = [
        {"id": o["id"], "date_added": o["modified"], "version": o["modified"], "media_type": media}
        for o in objects
    ]
    root = f"http://127.0.0.1:{port}/feeds/"
    information = {
        "title": "feeds",
        "description": "test",
        "versions": [TAXII_MEDIA],
        "max_content_length": 10**6,
    }
    collection = {"id": MEDALLION_COLLECTION, "title": "indicators", "description": "test", "can_read": True}
    collection |= {"can_write": False, "media_types": [media], "objects": objects, "manifest": manifest}
    return {
        "/discovery": {"title": "t", "description": "d", "default": root, "api_roots": [root]},
        "feeds": {"information": information, "status": [], "collections": [collection]},
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def medallion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("medallion")
    port = _free_port()
    (work / "data.json").write_text(json.dumps(_medallion_data(port)))
    backend = {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend"}
    backend["filename"] = str(work / "data.json")
    config = {"backend": backend, "users": {"puller": "pull-secret"}, "taxii": {"max_page_size": 100}}
    (work / "config.json").write_text(json.dumps(config))
    log = (work / "medallion.log").open("wb")
    command = [str(Path(sys.executable).parent / "medallion"), "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        [*command, str(work / "config.json")], stdout=log, stderr=log, stdin=subprocess.DEVNULL
    )

    def answering() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(answering, timeout=30, what="medallion to listen")
        yield f"http://127.0.0.1:{port}/feeds/"
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def test_taxii_pull_from_medallion_makes_drafts_that_keep_the_source_marking(
    site: Site, medallion: str
) -> None:
    password = site.work / "medallion-password"
    password.write_text("pull-secret\n")
    args = ("taxii", "pull", medallion, "--collection", MEDALLION_COLLECTION, "--user", "puller",
            "--password-file", str(password), "--page-size", "2")  # fmt: skip
    pulled = site.node.run(*args)
    assert "4 objects read, 3 indicators" in pulled.stderr
    drafts = {d["body"]["title"]: d for d in json.loads(site.node.run("drafts", "list", "--json").stdout)}
    green, red, unmarked = drafts["Green phish"], drafts["Red URL"], drafts["Unmarked mailer"]
    assert (green["min_tlp"], red["min_tlp"], unmarked["min_tlp"]) == ("green", "red", None)
    assert {(s["type"], s["value"]) for s in green["body"]["subjects"]} == {
        ("domain", "phish.example"),
        ("ip", "203.0.113.9"),
    }
    assert {(s["type"], s["value"]) for s in unmarked["body"]["subjects"]} == {
        ("message-hash", "sha256:" + "ef" * 32),
        ("email", "x@mailer.example"),
    }
    assert green["body"]["violation_types"] == ["phishing"]
    widened = site.node.run("publish", "lead", "--from-draft", str(red["id"]), "--tlp", "amber", check=False)
    assert widened.returncode == 1 and "--tlp red or stricter" in widened.stderr
