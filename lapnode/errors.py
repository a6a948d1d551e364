"""Errors raised by the lapnode layer (store, CLI, config, bundles).

Rule 1: every error an operator can cause or fix derives from `LapnodeError`, and its message is one
line that says what is wrong and, where there is one, what to do about it. The CLI dispatcher prints
`error: <message>` and maps the class to an exit code; nothing below the CLI knows about exit codes.

Rule 2: messages never contain secrets (passphrases, private keys).
"""

from __future__ import annotations


class LapnodeError(Exception):
    """Something went wrong in this node; the message tells the operator what and, if possible, why."""


class ConfigError(LapnodeError):
    """The node's config.toml (or a value meant for it) is invalid; fix the named setting."""


class HomeError(LapnodeError):
    """The node home directory is missing, not initialised, already initialised, or unreadable."""


class InputError(LapnodeError):
    """A file or a command-line value given by the operator is malformed, unknown or out of range."""


class PassphraseError(LapnodeError):
    """No passphrase could be obtained (no LAPNODE_PASSPHRASE, no --passphrase-file, and no terminal)."""


class BundleError(LapnodeError):
    """A bundle file cannot be read at all (as opposed to single records in it being rejected)."""
