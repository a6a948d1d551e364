"""Named sets of jurisdictions: the shipped ones (EU, EEA, adequacy) and an operator's own.

Rule 1: a set is written as lower-case words (`eu`, `adequacy-led`); a country as its upper-case ISO
3166-1 alpha-2 code (`NL`). The two can never be confused, so `eu` is the Union and `EU` an error.
Rule 2: a set may name other sets; names resolve to plain codes once, when the policy is loaded, and a
cycle or an unknown name is an error. Nothing is resolved while deciding.
Rule 3: shipped sets come from `data/jurisdictions.toml` with the date each list was taken; policy.toml
may add sets but not redefine a shipped one, so `eu` means the same on every node of a release.
"""

from __future__ import annotations

import datetime
import functools
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Final

from lapnode.errors import ConfigError
from protocol.kinds.codes import COUNTRY_CODES, country_hint

SET_NAME: Final = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
MAX_SET_NAME: Final = 32
_DATA: Final = "jurisdictions.toml"


@dataclass(frozen=True, slots=True)
class JurisdictionSet:
    name: str
    codes: frozenset[str]
    description: str = ""
    as_of: datetime.date | None = None
    source: str = ""


class SetError(ConfigError):
    """A jurisdiction set, or a reference to one, is invalid (the message names the set and the entry)."""


def is_set_name(text: str) -> bool:
    """Lower-case words; never a country code in lower case ("nl" is a typo for NL, not a set)."""
    if len(text) == 2 and text.upper() in COUNTRY_CODES:
        return False
    return len(text) <= MAX_SET_NAME and SET_NAME.fullmatch(text) is not None


def _error(where: str, message: str) -> SetError:
    return SetError(f"{where}: {message}" if where else message)


def check_entry(entry: object, where: str = "") -> str:
    """A country code or a set name as written; raises SetError for anything else."""
    if not isinstance(entry, str):
        raise _error(where, f"{entry!r} is not text (a country code like 'NL' or a set name like 'eea')")
    if entry in COUNTRY_CODES or is_set_name(entry):
        return entry
    if len(entry) == 2 and entry.upper() in COUNTRY_CODES:
        raise _error(where, f"write the country code {entry!r} in upper case, {entry.upper()!r}")
    hint = country_hint(entry) or "; use an ISO 3166-1 alpha-2 code like 'NL' or a set name like 'eea'"
    raise _error(where, f"{entry!r} is neither a country code nor a set name{hint}")


def resolve(entries: Sequence[str], sets: Mapping[str, JurisdictionSet], where: str = "") -> frozenset[str]:
    """The country codes that codes and set names stand for; an unknown set is a SetError."""
    codes: set[str] = set()
    for entry in entries:
        if entry in COUNTRY_CODES:
            codes.add(entry)
            continue
        found = sets.get(entry)
        if found is None:
            known = ", ".join(sorted(sets)) or "none"
            raise _error(where, f"no jurisdiction set named {entry!r} (known sets: {known})")
        codes |= found.codes
    return frozenset(codes)


def build_sets(
    written: Mapping[str, Sequence[str]],
    known: Mapping[str, JurisdictionSet],
    *,
    where: str,
    details: Mapping[str, tuple[str, datetime.date | None, str]] | None = None,
) -> dict[str, JurisdictionSet]:
    """Resolve sets written as lists of codes and set names, on top of `known` ones (Rule 2)."""
    resolved = dict(known)
    visiting: list[str] = []

    def visit(name: str) -> JurisdictionSet:
        if name in resolved:
            return resolved[name]
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise SetError(f"{where}.{visiting[0]}: the sets refer to each other in a cycle ({cycle})")
        visiting.append(name)
        codes: set[str] = set()
        for entry in written[name]:
            if entry in COUNTRY_CODES:
                codes.add(entry)
            elif entry in written or entry in resolved:
                codes |= visit(entry).codes
            else:
                known_names = ", ".join(sorted({*resolved, *written}))
                raise SetError(
                    f"{where}.{name}: no jurisdiction set named {entry!r} (known sets: {known_names})"
                )
        visiting.pop()
        description, as_of, source = (details or {}).get(name, ("", None, ""))
        resolved[name] = JurisdictionSet(name, frozenset(codes), description, as_of, source)
        return resolved[name]

    for name in written:
        visit(name)
    return resolved


@functools.cache
def shipped_sets() -> Mapping[str, JurisdictionSet]:
    """The sets in lapnode/policy/data/jurisdictions.toml, resolved and validated."""
    text = resources.files("lapnode.policy").joinpath("data", _DATA).read_text(encoding="utf-8")
    document = tomllib.loads(text)
    written: dict[str, list[str]] = {}
    details: dict[str, tuple[str, datetime.date | None, str]] = {}
    for name, table in document.items():
        assert is_set_name(name) and isinstance(table, dict), name
        members = table["members"]
        assert isinstance(members, list) and members, name
        written[name] = [check_entry(entry, f"{_DATA}: {name}") for entry in members]
        as_of = table.get("as_of")
        assert isinstance(as_of, datetime.date), f"{name}: as_of must be a date"
        details[name] = (str(table.get("description", "")), as_of, str(table.get("source", "")))
    return MappingProxyType(build_sets(written, {}, where=_DATA, details=details))
