"""Fixtures shared by the store tests of this package."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lapnode.store import Store
from tests.factories import NETWORK


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A fresh store on each backend the run covers (`database_url` is parametrised in tests/conftest.py)."""
    opened = await Store.open(database_url, network=NETWORK)
    try:
        yield opened
    finally:
        await opened.close()
