"""Bad input of every kind: one line on stderr starting "error: ", a non-zero exit code, no traceback."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

LAPNODE = Path(sys.executable).parent / "lapnode"
PASSPHRASE = "errors suite passphrase 9b2e"
PG_ENV = "LAPNODE_TEST_DATABASE_URL"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LAPNODE_")}
    return subprocess.run(
        [str(LAPNODE), *args],
        env={**clean, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def init(
    home: Path | str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`lapnode init` with valid defaults; a flag in `extra` overrides its default (click: last one wins)."""
    defaults = ("--org", "OPTA", "--jurisdiction", "NL", "--category", "enforcement")
    return run("init", "--home", str(home), *defaults, *extra, env=env)


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], *, code: int = 1, contains: str = ""
) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stderr.startswith("error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert contains in result.stderr, result.stderr
    assert PASSPHRASE not in result.stdout + result.stderr


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("errors") / "home"
    result = init(path, env={"LAPNODE_PASSPHRASE": PASSPHRASE})
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "malformed.json").write_text('{"title": "Spam", "summary": ')
    (tmp_path / "unknown.json").write_text(
        json.dumps({"title": "t", "summary": "s", "status": "suspected", "colour": "red"})
    )
    (tmp_path / "float.json").write_text(json.dumps({"metric": "m", "value": 1.5}))
    (tmp_path / "lead.json").write_text(json.dumps({"title": "t", "summary": "s", "status": "suspected"}))
    (tmp_path / "wrong-pass").write_text("not the passphrase\n")
    return tmp_path


PUBLISH = ("publish", "lead", "--from-file")
ERRORS = {
    "malformed JSON": ([*PUBLISH, "{files}/malformed.json"], "is not valid JSON"),
    "unknown field": ([*PUBLISH, "{files}/unknown.json"], "unknown field 'colour'"),
    "float value": (["publish", "trend", "--from-file", "{files}/float.json"], "float"),
    "missing file": ([*PUBLISH, "{files}/nowhere.json"], "no such file"),
    "wrong passphrase": (
        [*PUBLISH, "{files}/lead.json", "--passphrase-file", "{files}/wrong-pass"],
        "wrong passphrase",
    ),
    "no passphrase and no terminal": ([*PUBLISH, "{files}/lead.json", "--no-env"], "no passphrase was given"),
    "bad node id": (["query", "--author", "lap1qqqqqqqqqqqqqqqqqqqqqqqqq"], "not a valid node id"),
    "bad jurisdiction filter": (["query", "--jurisdiction", "XX"], "'XX' is not an ISO 3166-1"),
    "bad time": (["query", "--since", "last tuesday"], "is not a date or time"),
    "short id": (["show", "abc"], "at least 8 hex characters"),
    "unknown id": (["show", "00000000"], "no record"),
    "missing bundle": (["bundle", "import", "{files}/nowhere.bundle"], "no such file"),
    "not a bundle": (["verify", "{files}/lead.json"], "not a bundle header"),
    "bad audience member": (
        [*PUBLISH, "{files}/lead.json", "--audience-member", "lap1abc"],
        "not a valid node id",
    ),
    "expiry in the past": ([*PUBLISH, "{files}/lead.json", "--expires", "2001-01-01"], "in the past"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_operational_errors_are_one_line(case: str, home: Path, files: Path) -> None:
    args, expected = ERRORS[case]
    env = {"LAPNODE_PASSPHRASE": PASSPHRASE}
    if "--no-env" in args:
        args, env = [a for a in args if a != "--no-env"], {}
    result = run(*[a.format(files=files) for a in args], "--home", str(home), env=env)
    assert_one_line_error(result, contains=expected)


def test_missing_home(tmp_path: Path) -> None:
    assert_one_line_error(run("id", "--home", str(tmp_path / "nowhere")), contains="no lapnode home at")
    assert_one_line_error(
        run("query", env={"LAPNODE_HOME": str(tmp_path / "nowhere")}), contains="lapnode init"
    )


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--jurisdiction", "XX"], "'XX' is not an ISO 3166-1 alpha-2"),
        (["--jurisdiction", "UK"], "'GB'"),
        (["--category", "police"], "not a member category"),
        (["--listen", "localhost"], "HOST:PORT"),
        (["--network", "Bad Net"], "network id"),
        (["--database", "mysql://root:hunter2@db/x"], "database URL"),
    ],
)
def test_init_validates_before_writing_anything(tmp_path: Path, flags: list[str], expected: str) -> None:
    result = init(tmp_path / "home", *flags, "--no-passphrase")
    assert_one_line_error(result, contains=expected)
    assert "hunter2" not in result.stderr
    assert not (tmp_path / "home").exists()


def test_init_with_an_unreachable_database_leaves_nothing_behind(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://lapnode:s3cret@127.0.0.1:9/lapnode"
    result = init(tmp_path / "home", "--database", url, "--no-passphrase")
    assert_one_line_error(result, contains="cannot open the store")
    assert "s3cret" not in result.stderr
    assert not (tmp_path / "home").exists()


def test_init_refuses_an_initialised_home(home: Path) -> None:
    result = init(home, "--no-passphrase")
    assert_one_line_error(result, contains="already a lapnode home")


def test_init_without_any_passphrase_source_refuses(tmp_path: Path) -> None:
    result = run(
        "init", "--home", str(tmp_path / "h"), "--org", "X", "--jurisdiction", "NL", "--category", "industry"
    )
    assert_one_line_error(result, contains="--no-passphrase")
    assert not (tmp_path / "h").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["frobnicate"],
        ["query", "--limit", "0"],
        ["publish", "lead", "--tlp", "purple"],
        ["show"],
        ["init", "--org", "X"],
        [
            "init",
            "--org",
            "X",
            "--jurisdiction",
            "NL",
            "--category",
            "industry",
            "--no-passphrase",
            "--passphrase-file",
            "p",
        ],
    ],
)
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    assert_one_line_error(run(*args, "--home", str(tmp_path / "h")), code=2)


def test_help_and_version_succeed() -> None:
    for args in (["--help"], [], ["publish", "lead", "--help"], ["--version"]):
        result = run(*args)
        assert result.returncode == 0 and result.stdout and not result.stderr


def test_a_corrupt_config_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert init(home, "--no-passphrase").returncode == 0
    (home / "config.toml").write_text('org = "X"\njurisdicton = "NL"\ncategory = "industry"\n')
    assert_one_line_error(run("id", "--home", str(home)), contains="unknown setting 'jurisdicton'")


# --- PostgreSQL: the same commands against a real server, when CI provides one -------------------------


@pytest.fixture
def postgres_url() -> Iterator[str]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (CI sets it)")
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(base)
    name = f"lapnode_cli_{secrets.token_hex(6)}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            database=url.database,
        )
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.postgres
def test_a_node_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    home = str(tmp_path / "home")
    created = init(home, "--database", postgres_url, "--no-passphrase")
    assert created.returncode == 0, created.stderr
    published = run(
        "publish", "lead", "--home", home, "--title", "t", "--summary", "s", "--status", "verified"
    )
    assert published.returncode == 0, published.stderr
    found = json.loads(run("query", "--json", "--home", home).stdout)
    assert [d["id"] for d in found] == [published.stdout.strip()]
