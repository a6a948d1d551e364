"""Errors raised by the keys package.

Invariants:
- Rule 1: every error raised on purpose by ``keys`` is a ``CryptoError``; programming errors (a malformed
  signing domain, a seed of the wrong length) are ``ValueError``/``TypeError`` instead, because no remote
  input can cause them.
- Rule 2: a message is one line written for the operator. It never contains secret material: no seed, no
  derived key, no passphrase, not even a prefix of one. Public values (node ids, file paths) may appear.
- Rule 3: whatever a remote can cause fails with one opaque error toward that remote (``BadSignature``
  carries no detail about *why* a signature failed).
"""

from __future__ import annotations


class CryptoError(Exception):
    """Root of the errors of the keys package: something about identity or trust is not right."""


class InvalidNodeId(CryptoError):
    """The text is not a node id: wrong prefix, wrong length, or a typo caught by the checksum."""


class BadSignature(CryptoError):
    """The signature does not verify for this key, domain and message."""


class KeyFileError(CryptoError):
    """The key file cannot be used: missing, unreadable, corrupt, of an unknown format, or exposed."""


class WrongPassphrase(KeyFileError):
    """The passphrase does not open this key file."""


class PassphraseRequired(KeyFileError):
    """The key file is encrypted and no passphrase was given."""


class KeyAgreementError(CryptoError):
    """An X25519 key cannot be used: not a valid Ed25519 node key, or a low-order point (all-zero secret)."""


class InvalidAuthorityId(CryptoError):
    """The text is not an authority id: wrong prefix, wrong length, or a typo caught by the checksum."""


class UntrustedAuthority(CryptoError):
    """The statement is signed by an authority this node does not trust."""
