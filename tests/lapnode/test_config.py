"""lapnode/config.py: validation with one-line errors, the TOML file, and the home layout."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from lapnode.config import Config, load_config, render_config, write_config
from lapnode.errors import ConfigError, HomeError, InputError
from lapnode.home import check_new_home, open_home, resolve_home

VALID = {"org": "OPTA", "jurisdiction": "NL", "category": "enforcement"}


def test_defaults_and_normalisation() -> None:
    config = Config.create(org="  OPTA ", jurisdiction="nl", category="Enforcement")
    assert config == Config("OPTA", "NL", "enforcement", "ucenet", "127.0.0.1:7450", None)


def test_default_database_is_sqlite_in_the_home(tmp_path: Path) -> None:
    config = Config.create(**VALID)
    assert config.database_url(tmp_path) == f"sqlite+aiosqlite:///{tmp_path.resolve()}/store.sqlite"
    url = "postgresql+asyncpg://lapnode@db:5432/lapnode"
    assert Config.create(**VALID, database=url).database_url(tmp_path) == url


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"org": "  "}, "org must not be empty"),
        ({"org": "two\nlines"}, "one line"),
        ({"jurisdiction": "XX"}, "'XX' is not an ISO 3166-1 alpha-2"),
        ({"jurisdiction": "UK"}, "the United Kingdom is 'GB'"),
        ({"jurisdiction": "NLD"}, "not an ISO 3166-1"),
        ({"category": "police"}, "use one of: enforcement, government, industry, interest-group"),
        ({"network": "UCE NET"}, "network id"),
        ({"network": ""}, "network id"),
        ({"listen": "localhost"}, "HOST:PORT"),
        ({"listen": "127.0.0.1:70000"}, "port from 1 to 65535"),
        ({"database": "mysql://root:hunter2@db/x"}, "database URL must start with"),
        ({"database": "sqlite+aiosqlite:///store.sqlite"}, "needs an absolute path"),
    ],
)
def test_invalid_values_are_one_line_errors(changes: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message) as raised:
        Config.create(**{**VALID, **changes})
    assert "\n" not in str(raised.value)
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize("listen", ["0.0.0.0:7450", "[::1]:7450", "node.opta.example:443"])
def test_listen_addresses(listen: str) -> None:
    assert Config.create(**VALID, listen=listen).listen == listen


def test_render_round_trips_through_tomllib_even_with_awkward_text(tmp_path: Path) -> None:
    config = Config.create(
        org='Autoriteit "Consument & Markt" \\ Zoë',
        jurisdiction="NL",
        category="government",
        network="test.net-1",
    )
    assert load_config(_written(tmp_path, render_config(config))) == config
    with_db = Config.create(**VALID, database="postgresql+asyncpg://u:p@h:5432/d")
    assert tomllib.loads(render_config(with_db))["database"] == "postgresql+asyncpg://u:p@h:5432/d"


def _written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('org = "OPTA"\njurisdicton = "NL"\ncategory = "enforcement"\n', "unknown setting 'jurisdicton'"),
        ('org = "OPTA"\ncategory = "enforcement"\n', "setting 'jurisdiction' is missing"),
        ('org = "OPTA"\njurisdiction = "NL"\ncategory = "enforcement"\nlisten = 7450\n', "must be a string"),
        ('org = "OPTA"\njurisdiction = "XX"\ncategory = "enforcement"\n', "'XX' is not an ISO"),
        ("org = OPTA\n", "is not valid TOML"),
    ],
)
def test_bad_config_files_name_the_file_and_the_setting(tmp_path: Path, text: str, message: str) -> None:
    path = _written(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as raised:
        load_config(path)
    assert str(path) in str(raised.value)


def test_write_config_is_private_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    write_config(path, Config.create(**VALID))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ConfigError, match="already exists"):
        write_config(path, Config.create(**VALID))


def test_home_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAPNODE_HOME", str(tmp_path / "from-env"))
    assert resolve_home(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_home(None) == tmp_path / "from-env"
    monkeypatch.delenv("LAPNODE_HOME")
    assert resolve_home(None).name == "lapnode"


def test_a_missing_home_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(HomeError, match=r"no lapnode home at .*; run `lapnode init` first"):
        open_home(tmp_path / "nowhere")


def test_init_refuses_a_used_place(tmp_path: Path) -> None:
    check_new_home(tmp_path / "new")
    check_new_home(tmp_path)  # empty
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(HomeError, match="not empty"):
        check_new_home(tmp_path)
    with pytest.raises(HomeError, match="not a directory"):
        check_new_home(tmp_path / "notes.txt")


def test_retention_and_purge_interval_round_trip(tmp_path: Path) -> None:
    config = Config.create(
        org="OPTA",
        jurisdiction="NL",
        category="enforcement",
        purge_interval="5s",
        retention={"trend": "730d", "lead": "365d", "contact": "0"},
    )
    # "0" keeps for ever, so it is left out; the rest sorted by kind.
    assert config.retention == (("lead", "365d"), ("trend", "730d"))
    assert config.retention_ms() == {"lead": 365 * 86_400_000, "trend": 730 * 86_400_000}
    assert config.purge_interval_s() == 5.0
    path = tmp_path / "config.toml"
    write_config(path, config)
    assert load_config(path) == config
    assert Config.create(org="OPTA", jurisdiction="NL", category="enforcement").purge_interval_s() == 60.0


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ('[retention]\nleed = "3d"\n', "unknown kind 'leed'"),
        ('[retention]\nlead = "3 days"\n', "retention.lead '3 days' must be a duration"),
        ("[retention]\nlead = 365\n", "retention.lead must be a duration in quotes"),
        ('retention = "365d"\n', "'retention' must be a table"),
        ('purge_interval = "0s"\n', "purge_interval '0s' must be a duration"),
        ('purge_interval = "often"\n', "purge_interval 'often' must be a duration"),
    ],
)
def test_bad_retention_settings_are_one_line_errors(tmp_path: Path, tail: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text('org = "OPTA"\njurisdiction = "NL"\ncategory = "enforcement"\n' + tail)
    with pytest.raises(ConfigError, match=message) as raised:
        load_config(path)
    assert "\n" not in str(raised.value)
