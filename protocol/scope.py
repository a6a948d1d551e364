"""The author's signed scope: who may receive a record (protocol/SPEC.md §4).

Rule 1: a scope is part of the signed header, so only the author can set it. Relays never rewrite it;
the receiver always re-reads it from the verified header.
Rule 2: every set-like list is sorted and free of duplicates on the wire, and empty or absent optional
clauses are omitted, so one scope has exactly one encoding.
Rule 3: this module defines and validates scope. Enforcement lives in the policy decision function.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from protocol import codec
from protocol.codec import Value
from protocol.errors import SchemaError

TLP_LEVELS: Final = ("clear", "green", "amber", "amber+strict", "red")
CATEGORIES: Final = frozenset({"enforcement", "government", "industry", "interest-group"})
# `sealed`: the body is encrypted to the named members and the author (SPEC §3.7); it needs members.
SEALED_FLAG: Final = "sealed"
FLAGS: Final = frozenset({"personal-data", "commercially-sensitive", "law-enforcement-only", SEALED_FLAG})
MAX_RELAY_HOPS: Final = 16
DEFAULT_RELAY_HOPS: Final = 3
MAX_AUDIENCE_MEMBERS: Final = 256
MAX_TIME_MS: Final = 2**53
MAX_SCOPE_SIZE: Final = 16 * 1024

_JURISDICTION = re.compile(r"[A-Z]{2}")
_KEYS: Final = frozenset(
    {
        "tlp",
        "categories",
        "members",
        "jurisdictions_allow",
        "jurisdictions_deny",
        "flags",
        "embargo_until",
        "relay_hops",
        "expires",
    }
)


@dataclass(frozen=True, slots=True)
class Scope:
    """A validated scope. Build it with `Scope.create` (sorts and checks) or `Scope.from_wire`."""

    tlp: str
    relay_hops: int = DEFAULT_RELAY_HOPS
    categories: tuple[str, ...] = ()
    members: tuple[bytes, ...] = field(default=())
    jurisdictions_allow: tuple[str, ...] = ()
    jurisdictions_deny: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    embargo_until: int | None = None
    expires: int | None = None

    @classmethod
    def create(
        cls,
        tlp: str,
        *,
        relay_hops: int = DEFAULT_RELAY_HOPS,
        categories: Iterable[str] = (),
        members: Iterable[bytes] = (),
        jurisdictions_allow: Iterable[str] = (),
        jurisdictions_deny: Iterable[str] = (),
        flags: Iterable[str] = (),
        embargo_until: int | None = None,
        expires: int | None = None,
    ) -> Scope:
        """Build a scope from loose input: lists are sorted and de-duplicated, then validated."""
        scope = cls(
            tlp=tlp,
            relay_hops=relay_hops,
            categories=tuple(sorted(set(categories))),
            members=tuple(sorted(set(members))),
            jurisdictions_allow=tuple(sorted({j.upper() for j in jurisdictions_allow})),
            jurisdictions_deny=tuple(sorted({j.upper() for j in jurisdictions_deny})),
            flags=tuple(sorted(set(flags))),
            embargo_until=embargo_until,
            expires=expires,
        )
        scope.validate()
        return scope

    def validate(self) -> None:
        """Raise SchemaError unless every clause is well-formed and canonical."""
        if self.tlp not in TLP_LEVELS:
            raise SchemaError(f"scope.tlp: {self.tlp!r} is not one of {', '.join(TLP_LEVELS)}")
        # Types first: `validate` also guards `create`, whose input has not been through `from_wire`, and
        # a boolean or a 32-character string must not pass for an integer or a key (§2 rule 1).
        if not (_is_int(self.relay_hops) and 0 <= self.relay_hops <= MAX_RELAY_HOPS):
            raise SchemaError(f"scope.relay_hops: must be between 0 and {MAX_RELAY_HOPS}")
        _check_set("scope.categories", self.categories, lambda c: c in CATEGORIES, "a member category")
        _check_set("scope.flags", self.flags, lambda f: f in FLAGS, "a known flag")
        _check_set("scope.members", self.members, _is_member_key, "a 32-byte node key")
        if len(self.members) > MAX_AUDIENCE_MEMBERS:
            raise SchemaError(f"scope.members: more than {MAX_AUDIENCE_MEMBERS} named members")
        if SEALED_FLAG in self.flags and not self.members:
            raise SchemaError(
                "scope.flags: a sealed record needs named members to seal it to (scope.members)"
            )
        for name in ("jurisdictions_allow", "jurisdictions_deny"):
            values = getattr(self, name)
            _check_set(f"scope.{name}", values, _is_jurisdiction, "an ISO 3166-1 alpha-2 code")
        if set(self.jurisdictions_allow) & set(self.jurisdictions_deny):
            raise SchemaError("scope: a jurisdiction is both allowed and denied")
        for name in ("embargo_until", "expires"):
            value = getattr(self, name)
            if value is not None and not (_is_int(value) and 0 <= value < MAX_TIME_MS):
                raise SchemaError(f"scope.{name}: not a valid time in milliseconds")

    def to_wire(self) -> dict[str, Value]:
        wire: dict[str, Value] = {"tlp": self.tlp, "relay_hops": self.relay_hops}
        for name in ("categories", "members", "jurisdictions_allow", "jurisdictions_deny", "flags"):
            values = getattr(self, name)
            if values:
                wire[name] = list(values)
        for name in ("embargo_until", "expires"):
            value = getattr(self, name)
            if value is not None:
                wire[name] = value
        return wire

    @classmethod
    def from_wire(cls, wire: Value) -> Scope:
        if not isinstance(wire, Mapping):
            raise SchemaError("scope: not a map")
        unknown = set(wire) - _KEYS
        if unknown:
            raise SchemaError(f"scope: unknown clause {sorted(unknown)[0]!r}")
        lists = {}
        for name in ("categories", "members", "jurisdictions_allow", "jurisdictions_deny", "flags"):
            values = wire.get(name, [])
            if not isinstance(values, list) or (name in wire and not values):
                raise SchemaError(f"scope.{name}: must be a non-empty list when present")
            lists[name] = tuple(values)
        scope = cls(
            tlp=_typed(wire, "tlp", str),
            relay_hops=_typed(wire, "relay_hops", int),
            embargo_until=_optional_int(wire, "embargo_until"),
            expires=_optional_int(wire, "expires"),
            **lists,
        )
        for name in ("categories", "jurisdictions_allow", "jurisdictions_deny", "flags"):
            if not all(isinstance(v, str) for v in getattr(scope, name)):
                raise SchemaError(f"scope.{name}: entries must be text")
        if not all(isinstance(m, bytes) for m in scope.members):
            raise SchemaError("scope.members: entries must be bytes")
        scope.validate()
        return scope


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_member_key(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == 32


def _is_jurisdiction(value: object) -> bool:
    return isinstance(value, str) and _JURISDICTION.fullmatch(value) is not None


def _check_set(name: str, values: tuple[object, ...], valid: object, what: str) -> None:
    assert callable(valid)
    for value in values:
        if not valid(value):
            raise SchemaError(f"{name}: {value!r} is not {what}")
    if list(values) != sorted(set(values)):  # type: ignore[type-var]
        raise SchemaError(f"{name}: must be sorted and without duplicates")


def _typed(wire: Mapping[str, Value], name: str, kind: type) -> Value:
    value = wire.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise SchemaError(f"scope.{name}: missing or of the wrong type")
    return value


def _optional_int(wire: Mapping[str, Value], name: str) -> int | None:
    if name not in wire:
        return None
    value = _typed(wire, name, int)
    assert isinstance(value, int)
    return value


@functools.lru_cache(maxsize=1024)
def scope_from_canonical(encoded: bytes) -> Scope:
    """Parse a scope from its canonical encoding. Cached: a feed has few distinct scopes, and parsing
    one is a third of the cost of reading a record header (measured on the ingest and feed paths)."""
    return Scope.from_wire(codec.decode(encoded, max_size=MAX_SCOPE_SIZE))


@functools.lru_cache(maxsize=4096)
def canonical_scope(scope: Scope) -> bytes:
    """The canonical encoding of a scope. Cached for the same reason as `scope_from_canonical`."""
    return codec.encode(scope.to_wire())


def tlp_rank(tlp: str) -> int:
    """0 for clear up to 4 for red: a higher rank reaches fewer people (TLP 2.0)."""
    return TLP_LEVELS.index(tlp)


def _widened_set(older: tuple[object, ...], newer: tuple[object, ...]) -> bool:
    """An allow-list clause widens if it was set and is now absent or names something new."""
    return bool(older) and (not newer or not set(newer) <= set(older))


def widenings(original: Scope, candidate: Scope) -> list[str]:
    """The clauses in which `candidate` could reach someone `original` could not (empty: it only
    narrows). A new version of a record must not reach people the earlier one did not (SPEC §5.1),
    except by an explicit declassification, which changes the TLP alone."""
    found = []
    if tlp_rank(candidate.tlp) < tlp_rank(original.tlp):
        found.append(f"tlp {candidate.tlp} is lower than {original.tlp}")
    if candidate.relay_hops > original.relay_hops:
        found.append(f"relay hops {candidate.relay_hops} is more than {original.relay_hops}")
    for name in ("categories", "members", "jurisdictions_allow"):
        if _widened_set(getattr(original, name), getattr(candidate, name)):
            found.append(f"{name.replace('_', ' ')} would reach beyond the original's")
    for name in ("jurisdictions_deny", "flags"):
        dropped = set(getattr(original, name)) - set(getattr(candidate, name))
        if dropped:
            found.append(f"{name.replace('_', ' ')} would drop {', '.join(sorted(map(str, dropped)))}")
    if original.embargo_until is not None and (
        candidate.embargo_until is None or candidate.embargo_until < original.embargo_until
    ):
        found.append("the embargo would end earlier")
    if original.expires is not None and (candidate.expires is None or candidate.expires > original.expires):
        found.append("it would expire later")
    return found
