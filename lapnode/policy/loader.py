"""Reading policy.toml into a compiled `Policy` (the file format: docs/policy.md, "Reference").

    version = 1                         # optional; the only version
    [sets]                              # optional: jurisdiction sets of your own
    partners = ["eea", "CH", "GB"]      # country codes and set names
    [[rule]]
    name = "leads-to-enforcement"       # letters, digits, '.', '_', '-'; unique
    action = "allow-only"               # deny | allow-only | redact | quarantine | reject
    note = "Why, for the explanation"   # optional
    fields = ["personal"]               # redact only: "personal" and/or field names
    [rule.record]                       # optional: which records (kind, tlp, flags, author; not-...)
    kind = ["lead"]
    [rule.recipient]                    # outbound actions: category, jurisdiction, node, named; not-...
    category = ["enforcement", "government"]
                                        # inbound actions use [rule.sender] (no `named`)

Rule 1: everything is checked; the first problem is a `PolicyError` of one line that names the file,
the rule and the key (`policy.toml: rule 'leads': record.kind: 'leed' is not a known kind ...`).
Unknown keys are errors, never ignored: a misspelt condition must not silently match everything.
Rule 2: a list may be written as a single string (`kind = "lead"`); an empty list is an error, since
"any of nothing" is never what an operator means.
Rule 3: no policy.toml means no local rules: only the authors' scopes apply.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Final, cast

from keys.errors import CryptoError
from keys.identity import public_key_from_node_id
from lapnode.errors import ConfigError
from lapnode.home import POLICY_NAME
from lapnode.policy.fields import ALL_FIELDS, KIND_FIELDS
from lapnode.policy.jurisdictions import (
    JurisdictionSet,
    SetError,
    build_sets,
    check_entry,
    is_set_name,
    resolve,
    shipped_sets,
)
from lapnode.policy.rules import (
    INBOUND_ACTIONS,
    NO_RULES,
    OUTBOUND_ACTIONS,
    PEER_SUBJECTS,
    RECORD_SUBJECTS,
    SELF,
    Action,
    Condition,
    Policy,
    Rule,
)
from protocol.kinds import KNOWN_KINDS
from protocol.scope import CATEGORIES, FLAGS, TLP_LEVELS

VERSION: Final = 1
MAX_RULES: Final = 1000
MAX_NOTE_LEN: Final = 200
RULE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PERSONAL: Final = "personal"
_TOP_KEYS: Final = ("version", "sets", "rule")
_RULE_KEYS: Final = ("name", "action", "note", "fields", "record", "recipient", "sender")
_MAX_FILE_BYTES: Final = 1024 * 1024


class PolicyError(ConfigError):
    """policy.toml is invalid; the message names the rule and the key to fix."""


def load_policy(path: Path) -> Policy:
    """The compiled rules in `path`, or NO_RULES if there is no such file (Rule 3)."""
    try:
        with path.open("rb") as file:
            data = file.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return NO_RULES
    except OSError as exc:
        raise PolicyError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > _MAX_FILE_BYTES:
        raise PolicyError(f"{path} is larger than {_MAX_FILE_BYTES // 1024} KiB")
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path} is not valid TOML: {exc}") from None
    return parse_policy(document, source=str(path))


def parse_policy(document: Mapping[str, object], *, source: str = POLICY_NAME) -> Policy:
    """Validate a parsed policy document and compile it; raises PolicyError (Rule 1)."""
    _check_keys(document, _TOP_KEYS, source)
    version = document.get("version", VERSION)
    if type(version) is not int or version != VERSION:
        raise PolicyError(f"{source}: version: {version!r} is not supported (only {VERSION})")
    try:
        sets = _sets(document.get("sets", {}), source)
    except SetError as exc:
        raise PolicyError(str(exc)) from None
    written = document.get("rule", [])
    if not isinstance(written, list) or not all(isinstance(item, dict) for item in written):
        raise PolicyError(f"{source}: rule: write each rule as a [[rule]] table")
    if len(written) > MAX_RULES:
        raise PolicyError(f"{source}: more than {MAX_RULES} rules")
    rules: list[Rule] = []
    names: set[str] = set()
    for number, table in enumerate(written, start=1):
        rule = _RuleReader(source, number, table, sets).read()
        if rule.name in names:
            raise PolicyError(f"{source}: rule {rule.name!r}: name: another rule has the same name")
        names.add(rule.name)
        rules.append(rule)
    return Policy.compile(tuple(rules), sets, source)


def _check_keys(table: Mapping[str, object], known: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise PolicyError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(known)}")


def _sets(written: object, source: str) -> dict[str, JurisdictionSet]:
    shipped = shipped_sets()
    if not isinstance(written, dict):
        raise PolicyError(f"{source}: sets: write [sets] as a table of name = [codes or set names]")
    lists: dict[str, list[str]] = {}
    for name, entries in written.items():
        where = f"{source}: sets.{name}"
        if not is_set_name(name):
            raise PolicyError(
                f"{where}: a set name is lower-case letters, digits and '-', "
                "not a country code (e.g. 'partners')"
            )
        if name in shipped:
            raise PolicyError(
                f"{where}: {name!r} is a shipped set and cannot be redefined; "
                f"name yours differently, e.g. {name}-plus = [{name!r}, ...]"
            )
        entries = [entries] if isinstance(entries, str) else entries
        if not isinstance(entries, list) or not entries:
            raise PolicyError(f"{where}: must be a non-empty list of country codes and set names")
        lists[name] = [check_entry(entry, where) for entry in entries]
    return build_sets(lists, shipped, where=f"{source}: sets")


class _RuleReader:
    """Reads one [[rule]] table; every error names the rule (by name once known, else by number)."""

    def __init__(
        self, source: str, number: int, table: Mapping[str, object], sets: Mapping[str, JurisdictionSet]
    ):
        self.source = source
        self.table = table
        self.sets = sets
        self.label = f"rule #{number}"

    def fail(self, key: str, message: str) -> PolicyError:
        return PolicyError(f"{self.source}: {self.label}: {key}: {message}")

    def read(self) -> Rule:
        name = self.table.get("name")
        if not isinstance(name, str) or RULE_NAME.fullmatch(name) is None:
            raise self.fail(
                "name", "every rule needs a name of letters, digits, '.', '_' or '-' (e.g. 'leads-to-police')"
            )
        self.label = f"rule {name!r}"
        unknown = sorted(set(self.table) - set(_RULE_KEYS))
        if unknown:
            raise self.fail(unknown[0], f"unknown key; known keys: {', '.join(_RULE_KEYS)}")
        action = self._action()
        outbound = action in OUTBOUND_ACTIONS
        peer_key, wrong_key = ("recipient", "sender") if outbound else ("sender", "recipient")
        if wrong_key in self.table:
            direction = "an outbound" if outbound else "an inbound"
            raise self.fail(
                wrong_key, f"{direction} rule ({action}) takes [rule.{peer_key}], not [rule.{wrong_key}]"
            )
        record = self._conditions("record", RECORD_SUBJECTS, named=False)
        peer = self._conditions(peer_key, PEER_SUBJECTS, named=outbound)
        if action == "allow-only" and not peer:
            raise self.fail("recipient", "allow-only needs a [rule.recipient] table saying who may receive")
        redact, personal = self._redact(action, record)
        return Rule(
            name=name,
            action=action,
            record=record,
            peer=peer,
            redact=redact,
            redact_personal=personal,
            note=self._note(),
        )

    def _action(self) -> Action:
        action = self.table.get("action")
        actions = (*OUTBOUND_ACTIONS, *INBOUND_ACTIONS)
        if action not in actions:
            raise self.fail("action", f"{action!r} is not one of {', '.join(actions)}")
        return cast(Action, action)

    def _note(self) -> str | None:
        note = self.table.get("note")
        if note is None:
            return None
        if not isinstance(note, str) or not note.strip() or len(note) > MAX_NOTE_LEN or "\n" in note:
            raise self.fail("note", f"must be one line of text of at most {MAX_NOTE_LEN} characters")
        return note.strip()

    def _conditions(self, key: str, subjects: tuple[str, ...], *, named: bool) -> tuple[Condition, ...]:
        table = self.table.get(key)
        if table is None:
            return ()
        if not isinstance(table, dict):
            raise self.fail(key, f"write it as a table: [rule.{key}]")
        allowed = [*subjects, *(f"not-{s}" for s in subjects), *(["named"] if named else [])]
        conditions = []
        for clause, value in table.items():
            where = f"{key}.{clause}"
            if clause not in allowed:
                raise self.fail(where, f"unknown condition; known: {', '.join(allowed)}")
            if clause == "named":
                if not isinstance(value, bool):
                    raise self.fail(where, "must be true or false")
                conditions.append(Condition("named", (str(value).lower(),), negated=not value))
                continue
            negated = clause.startswith("not-")
            subject = clause.removeprefix("not-")
            conditions.append(self._condition(where, subject, negated, value))
        return tuple(conditions)

    def _condition(self, where: str, subject: str, negated: bool, value: object) -> Condition:
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise self.fail(where, "must be a non-empty list of text (or one text)")
        written = tuple(dict.fromkeys(cast(list[str], values)))
        if subject in ("author", "node"):
            return self._keys(where, subject, negated, written)
        if subject == "jurisdiction":
            try:
                codes = resolve([check_entry(entry) for entry in written], self.sets)
            except SetError as exc:
                raise self.fail(where, str(exc)) from None
            return Condition(subject, written, negated, codes=codes)
        vocabulary = {
            "kind": KNOWN_KINDS,
            "tlp": frozenset(TLP_LEVELS),
            "flags": FLAGS,
            "category": CATEGORIES,
        }
        known = vocabulary[subject]
        for entry in written:
            if entry not in known:
                raise self.fail(
                    where, f"{entry!r} is not a known {subject}; use one of: {', '.join(sorted(known))}"
                )
        return Condition(subject, written, negated, codes=frozenset(written))

    def _keys(self, where: str, subject: str, negated: bool, written: tuple[str, ...]) -> Condition:
        keys = set()
        includes_self = False
        for entry in written:
            if subject == "author" and entry == SELF:
                includes_self = True
                continue
            try:
                keys.add(public_key_from_node_id(entry.strip()))
            except CryptoError as exc:
                extra = " or 'self'" if subject == "author" else ""
                raise self.fail(where, f"{entry!r} is not a node id (lap1...){extra}: {exc}") from None
        return Condition(subject, written, negated, keys=frozenset(keys), includes_self=includes_self)

    def _redact(self, action: Action, record: tuple[Condition, ...]) -> tuple[frozenset[str], bool]:
        value = self.table.get("fields")
        if action != "redact":
            if value is not None:
                raise self.fail("fields", f"only a redact rule lists fields, not {action}")
            return frozenset(), False
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise self.fail(
                "fields", f"list the fields to redact, or {PERSONAL!r} for the kind's personal fields"
            )
        kinds = [c for c in record if c.subject == "kind" and not c.negated]
        # Field names must exist in a kind the rule can match: a typo would redact nothing.
        candidates = frozenset().union(*(KIND_FIELDS[k] for k in kinds[0].codes)) if kinds else ALL_FIELDS
        fields = set()
        for name in cast(list[str], values):
            if name == PERSONAL:
                continue
            if name not in candidates:
                where = f"a {' or '.join(sorted(kinds[0].codes))}" if kinds else "any known kind"
                raise self.fail("fields", f"{name!r} is not a field of {where}")
            fields.add(name)
        return frozenset(fields), PERSONAL in values
