"""Shared fixtures: real databases for the store suites.

Every store test runs against SQLite (a real file) and PostgreSQL (a real server, named by
LAPNODE_TEST_DATABASE_URL). Without that variable the PostgreSQL half is skipped, and says so.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

PG_ENV = "LAPNODE_TEST_DATABASE_URL"


def pytest_configure(config: pytest.Config) -> None:
    """Let the processes the tests start (CLI commands, daemons, their workers) keep their bytecode.

    With PYTHONDONTWRITEBYTECODE set, as on this kind of machine, every `lapnode` process compiled all of
    lapnode's modules from source again: 0.1-0.25 s of CPU each, hundreds of processes a run
    (docs/performance.md, "Test suite time"). Their bytecode goes to a cache outside the source tree.
    """
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        cache = Path(tempfile.gettempdir()) / f"lapnode-test-pycache-{os.getuid()}"
        os.environ.setdefault("PYTHONPYCACHEPREFIX", str(cache))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files marked `long_file` first, each file's tests kept in order.

    `make test` hands files to workers in collection order (`--no-loadscope-reorder`): a long file
    handed out last kept one worker busy for minutes after the others had finished (the expiry test
    waits 90 s for its clock; the leak oracle, a unit test, would otherwise follow every integration file).
    """
    items.sort(key=lambda item: item.get_closest_marker("long_file") is None)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite'}"


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (CI sets it)")
    url = make_url(base)
    name = f"lapnode_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, database=url.database
    )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield url.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if backend == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url
