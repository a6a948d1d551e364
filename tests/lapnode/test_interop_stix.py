"""STIX 2.1 export: every shape passes stix2-validator (strict) and stix2.parse(allow_custom=False)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import stix2
from stix2validator import ValidationOptions, validate_instance

from lapnode.exits import Audience
from lapnode.interop.stix_bundle import bundle
from lapnode.interop.stix_common import TLP_MARKING_IDS
from tests.factories import NETWORK, T0
from tests.lapnode.interop_corpus import AUTHOR, LOCAL, Corpus, build, disclose, rows

NOW = T0 + 10**9


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return build()


def _bundle(corpus: Corpus, *, public: bool = False) -> dict[str, Any]:
    audience = Audience.public() if public else LOCAL
    disclosed = disclose(
        rows(corpus.all()), audience, now_ms=NOW, our_key=AUTHOR.public_key.raw, network=NETWORK
    )
    return bundle(disclosed, {AUTHOR.public_key.raw: "OPTA"})


def _record_ids(objects: list[dict[str, Any]]) -> set[str]:
    return {ref["external_id"] for obj in objects for ref in obj.get("external_references", [])}


def test_bundle_passes_the_strict_validator_and_parses_back(corpus: Corpus) -> None:
    document = _bundle(corpus)
    results = validate_instance(document, ValidationOptions(strict=True, version="2.1"))
    assert results.is_valid, results.as_dict()
    parsed = stix2.parse(json.dumps(document), allow_custom=False)
    types = {type(obj).__name__ for obj in parsed.objects}
    expected = {"Identity", "Location", "Relationship", "Indicator", "ObservedData", "Note", "Grouping"}
    assert expected <= types
    assert {
        "DomainName",
        "IPv4Address",
        "IPv6Address",
        "URL",
        "EmailAddress",
        "AutonomousSystem",
        "File",
    } <= types


def test_kinds_map_to_the_documented_objects(corpus: Corpus) -> None:
    objects = _bundle(corpus)["objects"]
    by_record: dict[str, set[str]] = {}
    for obj in objects:
        for ref in obj.get("external_references", []):
            by_record.setdefault(ref["external_id"], set()).add(obj["type"])
    assert by_record[corpus.contact.id.hex()] == {"identity", "relationship"}
    assert by_record[corpus.referral.id.hex()] == {"indicator", "observed-data", "relationship", "grouping"}
    assert by_record[corpus.green_lead.id.hex()] == {"indicator", "observed-data", "relationship"}
    assert by_record[corpus.names_only.id.hex()] == {"note"}
    assert by_record[corpus.trend.id.hex()] == {"note"}
    contact = next(o for o in objects if o["type"] == "identity" and "contact_information" in o)
    assert "spam@opta.example" in contact["contact_information"]
    indicator = next(o for o in objects if o["type"] == "indicator" and o["name"].startswith("Pharmacy"))
    assert "[domain-name:value = 'pharma-spam.example']" in indicator["pattern"]
    assert "[ipv6-addr:value ISSUBSET '2001:db8::/32']" in indicator["pattern"]
    assert "id=\\'1\\'" in indicator["pattern"]
    assert "Cheap Pills Ltd" in indicator["description"]


def test_tlp_uses_the_official_tlp2_marking_definitions(corpus: Corpus) -> None:
    objects = _bundle(corpus)["objects"]
    markings = {o["id"]: o for o in objects if o["type"] == "marking-definition"}
    assert set(markings) == {TLP_MARKING_IDS[t] for t in ("clear", "green", "amber")}
    amber = markings["marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"]
    assert amber["name"] == "TLP:AMBER"
    assert (
        amber["extensions"]["extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"]["tlp_2_0"]
        == "amber"
    )
    for obj in objects:
        if obj["type"] not in ("marking-definition", "extension-definition"):
            assert len(obj["object_marking_refs"]) == 1 and obj["object_marking_refs"][0] in markings


def test_ids_are_deterministic_and_observables_use_the_stix_uuidv5(corpus: Corpus) -> None:
    first, second = _bundle(corpus), _bundle(corpus)
    assert first == second
    for obj in first["objects"]:
        if obj["type"] in (
            "domain-name",
            "ipv4-addr",
            "ipv6-addr",
            "url",
            "email-addr",
            "autonomous-system",
            "file",
        ):
            cls = type(stix2.parse(obj, allow_custom=False))
            rebuilt = cls(**{k: v for k, v in obj.items() if k != "id"})
            assert rebuilt.id == obj["id"]


def test_shared_observables_carry_the_least_restrictive_marking(corpus: Corpus) -> None:
    objects = _bundle(corpus)["objects"]
    domain = next(o for o in objects if o["type"] == "domain-name")
    # The amber referral and the green lead both name the domain: the green lead already disclosed it.
    assert domain["object_marking_refs"] == [TLP_MARKING_IDS["green"]]


def test_amber_strict_and_red_never_leave(corpus: Corpus) -> None:
    document = _bundle(corpus)
    text = json.dumps(document)
    assert "STRICT-SECRET" not in text and "RED-SECRET" not in text
    assert corpus.strict.id.hex() not in _record_ids(document["objects"])
    assert corpus.red.id.hex() not in _record_ids(document["objects"])


def test_a_public_bundle_holds_clear_records_only(corpus: Corpus) -> None:
    document = _bundle(corpus, public=True)
    assert _record_ids(document["objects"]) == {corpus.names_only.id.hex()}
    results = validate_instance(document, ValidationOptions(strict=True, version="2.1"))
    assert results.is_valid, results.as_dict()
