"""Scope (protocol/SPEC.md §4): one canonical wire form, and every malformed clause refused.

`Scope.create` is the friendly door (it sorts, de-duplicates and upper-cases); `Scope.from_wire` is the
strict one (what a remote signed must already be canonical).
"""

from __future__ import annotations

from typing import Any

import pytest

from protocol import codec
from protocol.errors import SchemaError
from protocol.scope import CATEGORIES, FLAGS, MAX_AUDIENCE_MEMBERS, MAX_RELAY_HOPS, MAX_TIME_MS, Scope

A = bytes(range(32))
B = bytes(range(1, 33))
C = b"\xff" * 32

FULL_WIRE: dict[str, Any] = {
    "categories": ["enforcement", "government"],
    "embargo_until": 1_780_000_000_000,
    "expires": 1_790_000_000_000,
    "flags": ["law-enforcement-only", "personal-data"],
    "jurisdictions_allow": ["GB", "NL"],
    "jurisdictions_deny": ["US"],
    "members": [A, B],
    "relay_hops": 2,
    "tlp": "amber+strict",
}


def test_create_sorts_and_deduplicates() -> None:
    scope = Scope.create(
        "amber+strict",
        relay_hops=2,
        categories=["government", "enforcement", "government"],
        members=[B, A, B],
        jurisdictions_allow=["nl", "GB", "NL"],
        jurisdictions_deny=["us"],
        flags=["personal-data", "law-enforcement-only", "personal-data"],
        embargo_until=1_780_000_000_000,
        expires=1_790_000_000_000,
    )
    assert scope.categories == ("enforcement", "government")
    assert scope.members == (A, B)
    assert scope.jurisdictions_allow == ("GB", "NL")
    assert scope.jurisdictions_deny == ("US",)
    assert scope.flags == ("law-enforcement-only", "personal-data")
    assert scope.to_wire() == FULL_WIRE
    assert Scope.from_wire(FULL_WIRE) == scope


def test_minimal_scope_omits_empty_clauses() -> None:
    scope = Scope.create("green")
    assert scope.to_wire() == {"tlp": "green", "relay_hops": 3}
    assert codec.encode(scope.to_wire()) == bytes.fromhex("82 aa72656c61795f686f707303 a3746c70 a5677265656e")


def test_round_trip_through_the_codec() -> None:
    scope = Scope.from_wire(FULL_WIRE)
    raw = codec.encode(scope.to_wire())
    assert Scope.from_wire(codec.decode(raw, max_size=4096)) == scope


@pytest.mark.parametrize(
    ("label", "kwargs"),
    [
        ("bad tlp", {"tlp": "white"}),
        ("unknown category", {"tlp": "red", "categories": ["press"]}),
        ("unknown flag", {"tlp": "red", "flags": ["secret"]}),
        ("short member", {"tlp": "red", "members": [b"\x00" * 31]}),
        ("bad jurisdiction", {"tlp": "red", "jurisdictions_allow": ["NLD"]}),
        ("overlap", {"tlp": "red", "jurisdictions_allow": ["nl"], "jurisdictions_deny": ["NL"]}),
        ("too many hops", {"tlp": "red", "relay_hops": MAX_RELAY_HOPS + 1}),
        ("negative expiry", {"tlp": "red", "expires": -1}),
        ("boolean hops", {"tlp": "red", "relay_hops": True}),
        ("boolean expiry", {"tlp": "red", "expires": True}),
        ("member as 32 characters of text", {"tlp": "red", "members": ["k" * 32]}),
        ("sealed without named members", {"tlp": "red", "flags": ["sealed"]}),
    ],
)
def test_create_validates(label: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(SchemaError):
        Scope.create(**kwargs)


ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("minimal", {"tlp": "clear", "relay_hops": 0}),
    ("every tlp: green", {"tlp": "green", "relay_hops": 3}),
    ("every tlp: amber", {"tlp": "amber", "relay_hops": 3}),
    ("every tlp: red", {"tlp": "red", "relay_hops": 3}),
    ("most hops", {"tlp": "red", "relay_hops": MAX_RELAY_HOPS}),
    ("full", FULL_WIRE),
    ("most members", {"tlp": "red", "relay_hops": 0, "members": [bytes([i]) * 32 for i in range(256)]}),
    ("latest time", {"tlp": "red", "relay_hops": 0, "expires": MAX_TIME_MS - 1, "embargo_until": 0}),
    ("every category", {"tlp": "red", "relay_hops": 0, "categories": sorted(CATEGORIES)}),
    # `sealed` needs named members (§3.7).
    ("every flag", {"tlp": "red", "relay_hops": 0, "members": [bytes(32)], "flags": sorted(FLAGS)}),
]


@pytest.mark.parametrize(("label", "wire"), ACCEPTED, ids=[row[0] for row in ACCEPTED])
def test_from_wire_accepts(label: str, wire: dict[str, Any]) -> None:
    scope = Scope.from_wire(wire)
    assert scope.to_wire() == wire


def with_(**changes: Any) -> dict[str, Any]:
    wire = dict(FULL_WIRE)
    wire.update(changes)
    return wire


def without(name: str) -> dict[str, Any]:
    wire = dict(FULL_WIRE)
    del wire[name]
    return wire


MANY_MEMBERS = [i.to_bytes(32, "big") for i in range(MAX_AUDIENCE_MEMBERS + 1)]
LIST_CLAUSES = ("categories", "members", "jurisdictions_allow", "jurisdictions_deny", "flags")

REJECTED: list[tuple[str, Any]] = [
    ("not a map", [("tlp", "red")]),
    ("nil", None),
    ("unknown clause", with_(audience="all")),
    ("unknown clause next to valid ones", with_(tlp="red", x=1)),
    ("clause name not text", {1: "red"}),
    ("tlp missing", without("tlp")),
    ("tlp unknown", with_(tlp="white")),
    ("tlp upper case", with_(tlp="RED")),
    ("tlp as bytes", with_(tlp=b"red")),
    ("tlp nil", with_(tlp=None)),
    ("relay_hops missing", without("relay_hops")),
    ("relay_hops negative", with_(relay_hops=-1)),
    ("relay_hops over the limit", with_(relay_hops=MAX_RELAY_HOPS + 1)),
    ("relay_hops huge", with_(relay_hops=2**64 - 1)),
    ("relay_hops boolean", with_(relay_hops=True)),
    ("relay_hops as text", with_(relay_hops="3")),
    ("relay_hops float", with_(relay_hops=3.0)),
    ("relay_hops nil", with_(relay_hops=None)),
    ("categories unsorted", with_(categories=["government", "enforcement"])),
    ("categories duplicate", with_(categories=["enforcement", "enforcement"])),
    ("categories unknown", with_(categories=["press"])),
    ("categories entry as bytes", with_(categories=[b"enforcement"])),
    ("categories entry as int", with_(categories=[1])),
    ("categories as text", with_(categories="enforcement")),
    ("flags unsorted", with_(flags=["personal-data", "law-enforcement-only"])),
    ("flags duplicate", with_(flags=["personal-data", "personal-data"])),
    ("flags unknown", with_(flags=["top-secret"])),
    ("flags entry boolean", with_(flags=[True])),
    ("members unsorted", with_(members=[B, A])),
    ("members duplicate", with_(members=[A, A])),
    ("members entry 31 bytes", with_(members=[A[:31]])),
    ("members entry 33 bytes", with_(members=[A + b"\x00"])),
    ("members entry empty", with_(members=[b""])),
    ("members entry as text", with_(members=["lap1" + "q" * 58])),
    ("members entry as hex text", with_(members=[A.hex()])),
    ("members over the limit", with_(members=MANY_MEMBERS)),
    ("members as bytes", with_(members=A)),
    ("members entry a list", with_(members=[[A]])),
    ("sealed without named members", {"tlp": "red", "relay_hops": 0, "flags": ["sealed"]}),
    ("jurisdiction lower case", with_(jurisdictions_allow=["nl"])),
    ("jurisdiction alpha-3", with_(jurisdictions_allow=["NLD"])),
    ("jurisdiction one letter", with_(jurisdictions_allow=["N"])),
    ("jurisdiction digits", with_(jurisdictions_allow=["12"])),
    ("jurisdiction with a newline", with_(jurisdictions_deny=["U\n"])),
    ("jurisdiction non-ASCII letters", with_(jurisdictions_deny=["ÜS"])),
    ("jurisdictions unsorted", with_(jurisdictions_allow=["NL", "GB"])),
    ("jurisdictions duplicate", with_(jurisdictions_deny=["US", "US"])),
    ("jurisdiction as int", with_(jurisdictions_allow=[31])),
    ("allow and deny overlap", with_(jurisdictions_allow=["GB", "NL"], jurisdictions_deny=["NL"])),
    ("embargo negative", with_(embargo_until=-1)),
    ("embargo at 2^53", with_(embargo_until=MAX_TIME_MS)),
    ("embargo boolean", with_(embargo_until=False)),
    ("embargo as text", with_(embargo_until="2026-01-01")),
    ("embargo nil", with_(embargo_until=None)),
    ("expires negative", with_(expires=-1)),
    ("expires at 2^53", with_(expires=MAX_TIME_MS)),
    ("expires boolean", with_(expires=True)),
    ("expires as bytes", with_(expires=b"\x01")),
    *[(f"{name} empty list", with_(**{name: []})) for name in LIST_CLAUSES],
    *[(f"{name} nil", with_(**{name: None})) for name in LIST_CLAUSES],
    *[(f"{name} a map", with_(**{name: {}})) for name in LIST_CLAUSES],
]


@pytest.mark.parametrize(("label", "wire"), REJECTED, ids=[row[0] for row in REJECTED])
def test_from_wire_rejects(label: str, wire: Any) -> None:
    # SchemaError is a ProtocolError: a remote's bad scope never surfaces as a TypeError or KeyError.
    with pytest.raises(SchemaError):
        Scope.from_wire(wire)
