"""Where the key file's passphrase comes from, in this order:

1. `--passphrase-file FILE` (its first line; the trailing newline is not part of it),
2. the environment variable LAPNODE_PASSPHRASE (LAPNODE_AUTHORITY_PASSPHRASE for an authority's key, so
   that a secretariat running a node and an authority on one machine never mixes the two up),
3. an interactive prompt (hidden input, asked twice for a new key), only when stdin is a terminal.

Rule 1: the passphrase is never echoed, logged or put in an error message; it lives as bytes only as long
as it takes to derive the key.
Rule 2: without a terminal and without 1 or 2, the command fails with a one-line error instead of hanging
on a prompt that nobody will answer (cron jobs, CI, systemd units).
Rule 3: text is normalised to Unicode NFC before it is encoded as UTF-8, so the same passphrase typed on
two systems that compose accents differently opens the same key.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Final

import click

from keys.errors import WrongPassphrase
from keys.identity import Identity
from keys.keyfile import NoEncryption, Passphrase, key_file_is_encrypted, read_key_file
from lapnode.errors import InputError, PassphraseError

ENV_PASSPHRASE: Final = "LAPNODE_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret
ENV_AUTHORITY_PASSPHRASE: Final = "LAPNODE_AUTHORITY_PASSPHRASE"  # noqa: S105 - likewise
MIN_NEW_PASSPHRASE_CHARS: Final = 8
_MAX_FILE_BYTES: Final = 4096
_NO_SOURCE: Final = (
    "the key file is encrypted and no passphrase was given: set LAPNODE_PASSPHRASE, "
    "pass --passphrase-file FILE, or run the command in a terminal"
)

Prompt = Callable[[str, bool], str]


def _click_prompt(text: str, confirm: bool) -> str:
    # err=True: the prompt goes to stderr, so `id=$(lapnode publish ...)` captures only the id.
    value = click.prompt(text, hide_input=True, confirmation_prompt=confirm, err=True)
    return str(value)


def _stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _normalised(text: str) -> bytes:
    return unicodedata.normalize("NFC", text).encode("utf-8", "surrogateescape")


def read_passphrase_file(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read passphrase file {path}: {exc.strerror}") from None
    if len(data) > _MAX_FILE_BYTES:
        raise InputError(f"passphrase file {path} is too large to hold a passphrase")
    first_line = data.split(b"\n", 1)[0].removesuffix(b"\r")
    if not first_line:
        raise InputError(f"passphrase file {path} is empty")
    try:
        return _normalised(first_line.decode("utf-8"))
    except UnicodeDecodeError:
        return first_line


def _from_non_interactive_source(passphrase_file: Path | None, env: str) -> tuple[bytes, str] | None:
    """The passphrase and where it came from (for error messages), or None."""
    if passphrase_file is not None:
        return read_passphrase_file(passphrase_file), f"from --passphrase-file {passphrase_file}"
    from_env = os.environ.get(env)
    if from_env:
        return _normalised(from_env), f"from {env}"
    return None


def passphrase_to_unlock(
    passphrase_file: Path | None,
    *,
    prompt: Prompt = _click_prompt,
    is_terminal: Callable[[], bool] = _stdin_is_terminal,
    env: str = ENV_PASSPHRASE,
    what: str = "node key",
) -> tuple[bytes, str]:
    """The passphrase to open an existing encrypted key file, and where it came from."""
    found = _from_non_interactive_source(passphrase_file, env)
    if found is not None:
        return found
    if not is_terminal():
        raise PassphraseError(
            _NO_SOURCE.replace(ENV_PASSPHRASE, env).replace("the key file", f"the {what} file")
        )
    return _normalised(prompt(f"Passphrase for the {what}", False)), "as typed"


def protection_for_new_key(
    passphrase_file: Path | None,
    *,
    no_passphrase: bool,
    prompt: Prompt = _click_prompt,
    is_terminal: Callable[[], bool] = _stdin_is_terminal,
    env: str = ENV_PASSPHRASE,
    what: str = "node key",
) -> Passphrase | NoEncryption:
    """How `lapnode init` (or `authority init`, `key rotate`) protects a new key: a passphrase, or none
    if explicitly asked."""
    if no_passphrase:
        if passphrase_file is not None:
            raise click.UsageError("--no-passphrase and --passphrase-file cannot be used together")
        return NoEncryption()
    found = _from_non_interactive_source(passphrase_file, env)
    if found is not None:
        value = found[0]
    elif is_terminal():
        value = _normalised(prompt(f"Passphrase for the new {what}", True))
    else:
        raise PassphraseError(
            f"no passphrase for the new key: set {env}, pass --passphrase-file FILE, "
            "run in a terminal, or pass --no-passphrase (demos and tests only)"
        )
    if len(value.decode("utf-8", "replace")) < MIN_NEW_PASSPHRASE_CHARS:
        raise InputError(
            f"the passphrase is too short; use at least {MIN_NEW_PASSPHRASE_CHARS} characters "
            "(a few words are best)"
        )
    return Passphrase(value)


def unlock_identity(
    key_path: Path, passphrase_file: Path | None, *, env: str = ENV_PASSPHRASE, what: str = "node key"
) -> Identity:
    """The identity in a key file; asks for the passphrase only if the key file is encrypted."""
    if not key_file_is_encrypted(key_path):
        return read_key_file(key_path, None)
    passphrase, source = passphrase_to_unlock(passphrase_file, env=env, what=what)
    try:
        return read_key_file(key_path, passphrase)
    except WrongPassphrase as exc:
        # A stale LAPNODE_PASSPHRASE is the usual culprit on a bad day; say where the passphrase came from.
        raise WrongPassphrase(f"{exc} (passphrase {source})") from None


def unlock_for_rotation(
    key_path: Path, passphrase_file: Path | None
) -> tuple[Identity, Passphrase | NoEncryption]:
    """The identity, and the protection its replacement gets: the same passphrase, or none if it had none."""
    if not key_file_is_encrypted(key_path):
        return read_key_file(key_path, None), NoEncryption()
    passphrase, source = passphrase_to_unlock(passphrase_file)
    try:
        return read_key_file(key_path, passphrase), Passphrase(passphrase)
    except WrongPassphrase as exc:
        raise WrongPassphrase(f"{exc} (passphrase {source})") from None
