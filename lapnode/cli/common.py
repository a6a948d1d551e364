"""Pieces shared by the commands: common options, the home, the store, output.

Rule 1: commands stay thin. They parse options, call lapnode's core (home, publishing, bundle, store)
and print; they never catch errors: the dispatcher in `lapnode.cli.main` turns every error into one line.
Rule 2: async store calls run through `run_with_store`, the single asyncio.run edge, which always closes
the store.
Rule 3: text that came from records (remote input) is passed through `printable` before it reaches a
terminal, so a record cannot move the cursor, recolour the screen or reorder text (bidi controls).
"""

from __future__ import annotations

import asyncio
import json
import unicodedata
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from lapnode.home import ENV_HOME, NodeHome, open_home, resolve_home
from lapnode.store import Store

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

# Explicit direction controls (Trojan Source, CVE-2021-42574) besides the C0/C1 controls.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def home_option(command: F) -> F:
    """`--home DIR` (or LAPNODE_HOME): the node home to use."""
    return click.option(
        "--home",
        "home",
        type=click.Path(file_okay=False, path_type=Path),
        envvar=ENV_HOME,
        help="Node home directory [env: LAPNODE_HOME; default: the per-user data directory].",
    )(command)


def json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(command)


def passphrase_file_option(command: F) -> F:
    return click.option(
        "--passphrase-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Key passphrase: first line of FILE [else env LAPNODE_PASSPHRASE, else a prompt].",
    )(command)


def load_home(home: Path | None) -> NodeHome:
    return open_home(resolve_home(home))


def run_with_store(home: NodeHome, action: Callable[[Store], Awaitable[T]]) -> T:
    """Open the home's store, run `action` on it, close it: the one place the CLI enters asyncio."""

    async def session() -> T:
        store = await Store.open(home.database_url, network=home.config.network)
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(session())


def echo_json(value: object) -> None:
    # ensure_ascii: every non-ASCII or control character is escaped, so JSON output is terminal-safe too.
    click.echo(json.dumps(value, indent=2, ensure_ascii=True, sort_keys=False))


def printable(text: str) -> str:
    """`text` with control and direction-override characters replaced by U+FFFD (Rule 3), and lone
    surrogates too: they stand for the undecodable bytes of a file name and no terminal can show them."""
    return "".join(
        "\ufffd"
        if (unicodedata.category(c) == "Cc" and c not in "\n\t")
        or c in _BIDI_CONTROLS
        or "\ud800" <= c <= "\udfff"
        else c
        for c in text
    )


def one_line(text: str) -> str:
    return printable(text).replace("\n", " ").replace("\t", " ")
