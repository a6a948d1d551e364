"""lapnode/policy/loader.py and jurisdictions.py: reading policy.toml, and every way it can be wrong.

Each bad file must fail with one line that names the file, the rule and the key, and must never be
half-accepted: a misspelt condition matching everything would be a leak.
"""

from __future__ import annotations

import datetime
import os
import tomllib
from pathlib import Path

import pytest

from lapnode.errors import ConfigError
from lapnode.policy import NO_RULES, PolicyError, load_policy, parse_policy
from lapnode.policy.fields import KIND_FIELDS, PERSONAL_FIELDS
from lapnode.policy.jurisdictions import shipped_sets
from tests.factories import identity

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "policy.toml"
NODE_ID = identity("rules peer").node_id


def parse(text: str) -> object:
    return parse_policy(tomllib.loads(text), source="policy.toml")


def test_the_documented_example_loads() -> None:
    policy = load_policy(EXAMPLE)
    names = [rule.name for rule in policy.rules]
    assert names[:4] == [
        "personal-data-outside-eea",
        "leads-to-authorities",
        "nothing-to-kp",
        "commercial-to-named-only",
    ]
    assert len(policy.outbound) == 6 and len(policy.inbound) == 2
    assert policy.source == str(EXAMPLE)
    personal = policy.rules[0]
    assert personal.action == "redact" and personal.redact_personal and personal.redact == frozenset()
    assert personal.redacted_fields("contact") == PERSONAL_FIELDS["contact"]
    (clause,) = personal.peer
    assert clause.negated and clause.written == ("personal-data-ok",)
    assert clause.codes == shipped_sets()["eea"].codes | shipped_sets()["adequacy"].codes
    commercial = policy.rules[3]
    (flags, author) = commercial.record
    assert author.includes_self and not author.keys and flags.codes == {"commercially-sensitive"}


def test_no_file_means_no_rules(tmp_path: Path) -> None:
    assert load_policy(tmp_path / "policy.toml") is NO_RULES
    assert NO_RULES.rules == () and NO_RULES.source is None


def test_shipped_sets_are_dated_and_consistent() -> None:
    sets = shipped_sets()
    assert {"eu", "eea", "adequacy", "adequacy-led"} <= set(sets)
    assert len(sets["eu"].codes) == 27 and "GR" in sets["eu"].codes and "GB" not in sets["eu"].codes
    assert sets["eea"].codes == sets["eu"].codes | {"IS", "LI", "NO"}
    assert {"GB", "CH", "JP", "KR"} <= sets["adequacy"].codes
    assert not sets["adequacy"].codes & sets["eea"].codes
    for item in sets.values():
        assert isinstance(item.as_of, datetime.date) and item.source.startswith("https://")


def test_sets_may_name_sets_and_lists_may_be_single_strings() -> None:
    policy = parse(
        """
        [sets]
        inner = ["CH", "NO"]
        outer = ["inner", "eu"]
        [[rule]]
        name = "r"
        action = "deny"
        record.kind = "lead"
        recipient.not-jurisdiction = "outer"
        """
    )
    assert isinstance(policy, type(NO_RULES))
    codes = policy.sets["outer"].codes
    assert codes == shipped_sets()["eu"].codes | {"CH", "NO"}
    (kind,) = policy.rules[0].record
    assert kind.codes == {"lead"}


def test_every_kind_has_its_personal_fields_among_its_fields() -> None:
    for kind, personal in PERSONAL_FIELDS.items():
        assert personal <= KIND_FIELDS[kind]
    assert PERSONAL_FIELDS["contact"] >= {"person", "emails", "phones"}
    assert "subjects" in PERSONAL_FIELDS["lead"] and PERSONAL_FIELDS["trend"] == frozenset()


RULE = '[[rule]]\nname = "r"\n'

# (file text, text the one-line error must contain)
BAD: dict[str, tuple[str, str]] = {
    "unknown top-level key": ("rules = []\n", "policy.toml: unknown key 'rules'"),
    "unsupported version": ("version = 2\n", "version: 2 is not supported"),
    "version as text": ('version = "1"\n', "version: '1' is not supported"),
    "sets not a table": ('sets = ["NL"]\n', "sets: write [sets] as a table"),
    "set name with capitals": ('[sets]\nPartners = ["NL"]\n', "sets.Partners: a set name is lower-case"),
    "set name like a code": ('[sets]\nNL = ["NL"]\n', "sets.NL: a set name is lower-case"),
    "set name like a code in lower case": ('[sets]\nnl = ["NL"]\n', "sets.nl: a set name is lower-case"),
    "set redefines a shipped one": ('[sets]\neu = ["NL"]\n', "'eu' is a shipped set and cannot be redefined"),
    "empty set": ("[sets]\nnone = []\n", "sets.none: must be a non-empty list"),
    "set entry not text": ("[sets]\nodd = [1]\n", "sets.odd: 1 is not text"),
    "set entry in lower case": ('[sets]\nodd = ["nl"]\n', "write the country code 'nl' in upper case, 'NL'"),
    "set entry UK": ('[sets]\nodd = ["UK"]\n', "the United Kingdom is 'GB'"),
    "set entry unknown set": ('[sets]\nodd = ["nordics"]\n', "sets.odd: no jurisdiction set named 'nordics'"),
    "sets in a cycle": ('[sets]\na = ["b"]\nb = ["a"]\n', "cycle (a -> b -> a)"),
    "rule not a table": ("rule = 5\n", "rule: write each rule as a [[rule]] table"),
    "rule without a name": ('[[rule]]\naction = "deny"\n', "rule #1: name: every rule needs a name"),
    "rule name with spaces": ('[[rule]]\nname = "no leads"\n', "rule #1: name: every rule needs a name"),
    "duplicate names": (
        RULE + 'action = "deny"\n' + RULE + 'action = "deny"\n',
        "rule 'r': name: another rule has the same name",
    ),
    "unknown rule key": (RULE + 'action = "deny"\nwhen = 1\n', "rule 'r': when: unknown key"),
    "no action": (RULE, "rule 'r': action: None is not one of deny, allow-only, redact"),
    "unknown action": (RULE + 'action = "allow"\n', "rule 'r': action: 'allow' is not one of"),
    "note too long": (RULE + f'action = "deny"\nnote = "{"x" * 201}"\n', "rule 'r': note: must be one line"),
    "note not text": (RULE + 'action = "deny"\nnote = 1\n', "rule 'r': note: must be one line"),
    "record not a table": (
        RULE + 'action = "deny"\nrecord = "lead"\n',
        "rule 'r': record: write it as a table",
    ),
    "unknown record condition": (
        RULE + 'action = "deny"\nrecord.kinds = ["lead"]\n',
        "rule 'r': record.kinds: unknown condition",
    ),
    "recipient condition on the record": (
        RULE + 'action = "deny"\nrecord.category = ["industry"]\n',
        "rule 'r': record.category: unknown condition",
    ),
    "unknown kind": (
        RULE + 'action = "deny"\nrecord.kind = ["leed"]\n',
        "record.kind: 'leed' is not a known kind",
    ),
    "unknown tlp": (
        RULE + 'action = "deny"\nrecord.tlp = ["amber-strict"]\n',
        "'amber-strict' is not a known tlp",
    ),
    "unknown flag": (
        RULE + 'action = "deny"\nrecord.not-flags = ["pii"]\n',
        "record.not-flags: 'pii' is not a known flags",
    ),
    "empty condition": (
        RULE + 'action = "deny"\nrecord.kind = []\n',
        "record.kind: must be a non-empty list",
    ),
    "condition of numbers": (
        RULE + 'action = "deny"\nrecord.tlp = [1]\n',
        "record.tlp: must be a non-empty list of text",
    ),
    "author not a node id": (
        RULE + 'action = "deny"\nrecord.author = ["us"]\n',
        "record.author: 'us' is not a node id",
    ),
    "author with a bad checksum": (
        RULE + f'action = "deny"\nrecord.author = ["{NODE_ID[:-1]}{"q" if NODE_ID[-1] != "q" else "p"}"]\n',
        "is not a node id",
    ),
    "recipient not a table": (
        RULE + 'action = "deny"\nrecipient = 1\n',
        "rule 'r': recipient: write it as a table",
    ),
    "unknown recipient condition": (
        RULE + 'action = "deny"\nrecipient.country = ["NL"]\n',
        "recipient.country: unknown condition",
    ),
    "unknown category": (
        RULE + 'action = "deny"\nrecipient.category = ["police"]\n',
        "recipient.category: 'police' is not a known category",
    ),
    "unknown jurisdiction code": (
        RULE + 'action = "deny"\nrecipient.jurisdiction = ["XX"]\n',
        "recipient.jurisdiction: 'XX' is neither a country code nor a set name",
    ),
    "unknown jurisdiction set": (
        RULE + 'action = "deny"\nrecipient.jurisdiction = ["nordics"]\n',
        "recipient.jurisdiction: no jurisdiction set named 'nordics'",
    ),
    "node not a node id": (
        RULE + 'action = "deny"\nrecipient.node = ["self"]\n',
        "recipient.node: 'self' is not a node id",
    ),
    "named not a boolean": (
        RULE + 'action = "deny"\nrecipient.named = "yes"\n',
        "recipient.named: must be true or false",
    ),
    "sender on an outbound rule": (
        RULE + 'action = "deny"\nsender.category = ["industry"]\n',
        "rule 'r': sender: an outbound rule (deny) takes [rule.recipient], not [rule.sender]",
    ),
    "recipient on an inbound rule": (
        RULE + 'action = "quarantine"\nrecipient.category = ["industry"]\n',
        "an inbound rule (quarantine) takes [rule.sender], not [rule.recipient]",
    ),
    "named on an inbound rule": (
        RULE + 'action = "reject"\nsender.named = true\n',
        "sender.named: unknown condition",
    ),
    "allow-only naming nobody": (
        RULE + 'action = "allow-only"\nrecord.kind = ["lead"]\n',
        "allow-only needs a [rule.recipient]",
    ),
    "redact without fields": (RULE + 'action = "redact"\n', "rule 'r': fields: list the fields to redact"),
    "redact with empty fields": (
        RULE + 'action = "redact"\nfields = []\n',
        "fields: list the fields to redact",
    ),
    "redact of an unknown field": (
        RULE + 'action = "redact"\nfields = ["password"]\n',
        "'password' is not a field of any known kind",
    ),
    "redact of another kind's field": (
        RULE + 'action = "redact"\nfields = ["subjects"]\nrecord.kind = ["contact"]\n',
        "fields: 'subjects' is not a field of a contact",
    ),
    "fields on a deny rule": (
        RULE + 'action = "deny"\nfields = ["person"]\n',
        "only a redact rule lists fields, not deny",
    ),
}


@pytest.mark.parametrize("text, expected", BAD.values(), ids=BAD.keys())
def test_a_bad_policy_is_one_clear_error(text: str, expected: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse(text)
    message = str(caught.value)
    assert expected in message
    assert message.startswith("policy.toml: ") and "\n" not in message
    assert isinstance(caught.value, ConfigError)


def test_too_many_rules() -> None:
    text = "".join(f'[[rule]]\nname = "r{n}"\naction = "deny"\n' for n in range(1001))
    with pytest.raises(PolicyError, match="more than 1000 rules"):
        parse(text)


FILE_PROBLEMS: dict[str, tuple[bytes, str]] = {
    "not TOML": (b"[[rule]\nname = 1\n", "is not valid TOML"),
    "not UTF-8": (b'[[rule]]\nname = "\xff"\n', "is not UTF-8 text"),
    "too large": (b"#" * (1024 * 1024 + 1), "is larger than 1024 KiB"),
}


@pytest.mark.parametrize("data, expected", FILE_PROBLEMS.values(), ids=FILE_PROBLEMS.keys())
def test_a_bad_file_names_itself(tmp_path: Path, data: bytes, expected: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(data)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value).startswith(str(path)) and expected in str(caught.value)


def test_an_unreadable_file_is_an_error_not_no_rules(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.mkdir()  # reading a directory fails on every platform, even as root
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(path)
    if os.geteuid() != 0:  # root reads whatever the mode says
        path.rmdir()
        path.write_text("")
        path.chmod(0)
        with pytest.raises(PolicyError, match="cannot read"):
            load_policy(path)
