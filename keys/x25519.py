"""X25519 key agreement for sealed records (protocol/SPEC.md §3.7), with libsodium's checks.

Invariants:
- Rule 1: every Diffie-Hellman result is checked: an all-zero shared secret (a low-order public key,
  RFC 7748 §6.1) raises ``KeyAgreementError`` and is never returned. libsodium refuses it too; the
  explicit check does not rely on that. ``tests/keys/test_keys_x25519.py`` runs every Wycheproof case.
- Rule 2: a node is addressed by its Ed25519 node key only, so sealing converts that key to its X25519
  (Montgomery) form with libsodium's birational map, which refuses small-order and non-canonical points.
  The private half is converted inside ``Identity.x25519_agree`` and never leaves it.
- Rule 3: no randomness here. Ephemeral secrets come in as arguments (the lapnode layer draws them).
"""

from __future__ import annotations

import hmac
from typing import Final

import nacl.bindings
import nacl.exceptions

from keys.errors import KeyAgreementError

X25519_KEY_BYTES: Final = 32
_ZERO: Final = bytes(X25519_KEY_BYTES)
_UNUSABLE = "the public key is unusable for X25519 (a low-order point)"


def _check_length(value: bytes, what: str) -> None:
    if type(value) is not bytes or len(value) != X25519_KEY_BYTES:
        # A wrong length is a bug in our own code (wire values are length-checked when parsed).
        raise ValueError(f"an X25519 {what} is {X25519_KEY_BYTES} bytes")


def x25519_public_key(secret: bytes) -> bytes:
    """The X25519 public key of a 32-byte secret (RFC 7748 clamps it)."""
    _check_length(secret, "secret")
    public: bytes = nacl.bindings.crypto_scalarmult_base(secret)
    return public


def x25519_shared_secret(secret: bytes, public: bytes) -> bytes:
    """X25519(secret, public), or ``KeyAgreementError`` if the result is all zeros (Rule 1)."""
    _check_length(secret, "secret")
    _check_length(public, "public key")
    try:
        shared: bytes = nacl.bindings.crypto_scalarmult(secret, public)
    except nacl.exceptions.RuntimeError:
        # libsodium returns -1 for an all-zero result; PyNaCl turns that into this RuntimeError.
        raise KeyAgreementError(_UNUSABLE) from None
    if hmac.compare_digest(shared, _ZERO):
        raise KeyAgreementError(_UNUSABLE)
    return shared


def x25519_key_of_node(node_key: bytes) -> bytes:
    """The X25519 public key that sealing uses for an Ed25519 node key (Rule 2)."""
    if type(node_key) is not bytes or len(node_key) != X25519_KEY_BYTES:
        raise KeyAgreementError(f"an Ed25519 node key is {X25519_KEY_BYTES} bytes")
    try:
        converted: bytes = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(node_key)
    except nacl.exceptions.RuntimeError:
        raise KeyAgreementError("the node key is not a valid Ed25519 public key") from None
    return converted
