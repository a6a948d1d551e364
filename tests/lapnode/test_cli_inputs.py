"""Operator input parsed by the CLI layer: passphrase sources, times, documents, scope flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from keys.errors import InvalidNodeId, WrongPassphrase
from keys.identity import Identity
from keys.keyfile import NoEncryption, Passphrase, write_key_file
from lapnode.cli.common import printable
from lapnode.cli.passphrase import passphrase_to_unlock, protection_for_new_key, unlock_identity
from lapnode.clock import format_ms, parse_future_ms, parse_instant_ms, parse_past_ms
from lapnode.errors import InputError, PassphraseError
from lapnode.publishing import ScopeRequest, build_scope, load_document, merge_overrides

SECRET = "correct horse battery staple"
NOW = 1_750_000_000_000  # 2025-06-15T15:06:40Z


def _never_prompt(text: str, confirm: bool) -> str:
    raise AssertionError("must not prompt")


@pytest.fixture(autouse=True)
def _no_env_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAPNODE_PASSPHRASE", raising=False)


# --- passphrase sources -------------------------------------------------------------------------------


def test_passphrase_file_is_its_first_line_without_the_newline(tmp_path: Path) -> None:
    path = tmp_path / "pass"
    path.write_bytes(SECRET.encode() + b"\r\nsecond line ignored\n")
    value, source = passphrase_to_unlock(path, prompt=_never_prompt, is_terminal=lambda: False)
    assert value == SECRET.encode() and "--passphrase-file" in source


def test_the_file_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAPNODE_PASSPHRASE", "from the environment")
    path = tmp_path / "pass"
    path.write_text("from the file\n")
    assert passphrase_to_unlock(path, prompt=_never_prompt)[0] == b"from the file"
    assert passphrase_to_unlock(None, prompt=_never_prompt)[0] == b"from the environment"


def test_prompt_only_on_a_terminal() -> None:
    asked: list[tuple[str, bool]] = []

    def prompt(text: str, confirm: bool) -> str:
        asked.append((text, confirm))
        return SECRET

    assert passphrase_to_unlock(None, prompt=prompt, is_terminal=lambda: True)[0] == SECRET.encode()
    assert asked == [("Passphrase for the node key", False)]
    with pytest.raises(PassphraseError, match="LAPNODE_PASSPHRASE") as raised:
        passphrase_to_unlock(None, prompt=prompt, is_terminal=lambda: False)
    assert "\n" not in str(raised.value)


def test_text_is_nfc_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAPNODE_PASSPHRASE", "Zoe\u0308 zoe\u0308")  # decomposed "ë"
    assert passphrase_to_unlock(None)[0] == "Zoë zoë".encode()


def test_empty_or_missing_passphrase_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(InputError, match="is empty"):
        passphrase_to_unlock(empty)
    with pytest.raises(InputError, match="cannot read passphrase file"):
        passphrase_to_unlock(tmp_path / "missing")


def test_new_key_protection() -> None:
    assert isinstance(protection_for_new_key(None, no_passphrase=True, prompt=_never_prompt), NoEncryption)
    confirmed: list[bool] = []

    def prompt(text: str, confirm: bool) -> str:
        confirmed.append(confirm)
        return SECRET

    made = protection_for_new_key(None, no_passphrase=False, prompt=prompt, is_terminal=lambda: True)
    assert isinstance(made, Passphrase) and made.value == SECRET.encode() and confirmed == [True]
    with pytest.raises(PassphraseError, match="--no-passphrase"):
        protection_for_new_key(None, no_passphrase=False, is_terminal=lambda: False)


def test_new_passphrases_must_not_be_trivial(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAPNODE_PASSPHRASE", "short")
    with pytest.raises(InputError, match="too short") as raised:
        protection_for_new_key(None, no_passphrase=False)
    assert "short'" not in str(raised.value)


def test_wrong_passphrase_says_where_it_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "identity.key"
    identity = Identity.generate()
    write_key_file(key, identity, Passphrase(SECRET.encode()))
    monkeypatch.setenv("LAPNODE_PASSPHRASE", SECRET)
    assert unlock_identity(key, None).node_id == identity.node_id
    monkeypatch.setenv("LAPNODE_PASSPHRASE", "stale passphrase")
    with pytest.raises(WrongPassphrase, match="from LAPNODE_PASSPHRASE") as raised:
        unlock_identity(key, None)
    assert "stale" not in str(raised.value)


def test_an_unencrypted_key_needs_no_passphrase(tmp_path: Path) -> None:
    key = tmp_path / "identity.key"
    write_key_file(key, Identity.generate(), NoEncryption())
    unlock_identity(key, None)


# --- times --------------------------------------------------------------------------------------------


def test_time_formats() -> None:
    assert format_ms(NOW) == "2025-06-15T15:06:40Z"
    assert format_ms(NOW + 5) == "2025-06-15T15:06:40.005Z"
    assert parse_instant_ms("2025-06-15") == 1_749_945_600_000
    assert parse_instant_ms("2025-06-15T15:06:40Z") == NOW
    assert parse_instant_ms("2025-06-15T17:06:40+02:00") == NOW
    assert parse_past_ms("1d", now=NOW) == NOW - 86_400_000
    assert parse_future_ms("90d", now=NOW, what="--expires") == NOW + 90 * 86_400_000
    assert parse_future_ms("2W", now=NOW, what="--expires") == NOW + 14 * 86_400_000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", "is not a date or time"),
        ("2025-06-15T12:00", "has no time zone"),
        ("2025-13-01", "not a date"),
    ],
)
def test_bad_times(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_past_ms(text, now=NOW)


def test_expiry_must_be_in_the_future() -> None:
    with pytest.raises(InputError, match="is in the past"):
        parse_future_ms("2020-01-01", now=NOW, what="--expires")


# --- scope flags --------------------------------------------------------------------------------------


def test_scope_from_flags() -> None:
    member = Identity.generate()
    scope = build_scope(
        ScopeRequest(
            tlp="AMBER+STRICT",
            categories=["enforcement", "government"],
            members=[member.node_id],
            jurisdictions_allow=["nl", "be"],
            jurisdictions_deny=["US"],
            flags=["personal-data"],
            relay_hops=0,
            expires="30d",
            embargo_until="1d",
        ),
        now=NOW,
    )
    assert scope.tlp == "amber+strict" and scope.members == (member.public_key.raw,)
    assert scope.jurisdictions_allow == ("BE", "NL") and scope.relay_hops == 0
    assert scope.expires == NOW + 30 * 86_400_000 and scope.embargo_until == NOW + 86_400_000


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        (ScopeRequest(members=["lap1qqqq"]), InvalidNodeId, "not a valid node id"),
        (ScopeRequest(jurisdictions_allow=["XX"]), InputError, "'XX' is not an ISO"),
        (ScopeRequest(categories=["police"]), InputError, "not a member category"),
        (ScopeRequest(flags=["secret"]), InputError, "scope.flags"),
        (ScopeRequest(flags=["Sealed"]), InputError, "sealed by encrypting it; use --sealed"),
        (
            ScopeRequest(jurisdictions_allow=["NL"], jurisdictions_deny=["NL"]),
            InputError,
            "both allowed and denied",
        ),
        (ScopeRequest(expires="1d", embargo_until="2d"), InputError, "expire .* before its embargo ends"),
    ],
)
def test_bad_scope_flags(request_: ScopeRequest, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        build_scope(request_, now=NOW)


# --- documents ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("lead.json", '{"title": "a", "title": "b"}', "duplicate key 'title'"),
        ("lead.json", '{"title": ', "is not valid JSON"),
        ("lead.json", '["a list"]', "must be a JSON object"),
        ("lead.toml", "title = ", "is not valid TOML"),
        ("lead.txt", "title = ", "is not valid TOML"),
    ],
)
def test_malformed_documents(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=message) as raised:
        load_document(path)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


def test_documents_by_extension_or_content(tmp_path: Path) -> None:
    for name, text in [("a.json", '{"title": "x"}'), ("a.toml", 'title = "x"'), ("a", '  {"title": "x"}')]:
        path = tmp_path / name
        path.write_text(text)
        assert load_document(path) == {"title": "x"}


def test_flags_override_the_file() -> None:
    merged = merge_overrides(
        {"title": "file", "emails": ["a@x.example"]}, {"title": "flag", "emails": (), "x": None}
    )
    assert merged == {"title": "flag", "emails": ["a@x.example"]}
    assert merge_overrides({}, {"emails": ("b@x.example",)}) == {"emails": ["b@x.example"]}


def test_printable_neutralises_terminal_controls() -> None:
    assert printable("ok\x1b[2Jevil\u202etxt.exe\tnext\nline") == "ok\ufffd[2Jevil\ufffdtxt.exe\tnext\nline"
