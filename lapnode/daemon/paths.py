"""Paths of the daemon's admin side that other processes call (the CLI), in a module light enough for
the CLI to import without loading aiohttp."""

from __future__ import annotations

from typing import Final

STATUS_PATH: Final = "/status"
PEERS_CHANGED_PATH: Final = "/peers/changed"
