"""Node identities: Ed25519 keys, their text form (node ids), signing and verification.

Invariants:
- Rule 1: a ``NodeId`` is the lowercase BIP-173 bech32 encoding, human-readable part ``lap``, of exactly
  32 public-key bytes. Every function that accepts node id text checks the checksum and the length, so a
  mistyped id raises ``InvalidNodeId``; it never decodes to a different key.
- Rule 2: everything signed is ``domain + message``, where ``domain`` is non-empty ASCII that ends with
  ``b"\\x00"`` and holds no other NUL. The domain is therefore recoverable from the signed bytes (everything
  up to the first NUL), so a signature made in one context can never verify in another.
- Rule 3: verification returns ``None`` or raises ``BadSignature`` with one opaque message; there is no
  boolean to forget to check. ``_verify_raw`` is the single verification primitive.
- Rule 4: the private seed never leaves an ``Identity`` except through ``private_seed_for_storage``, which
  only ``keys.keyfile`` calls, and no ``repr`` or error message shows it.
- Rule 5: the same secret also opens sealed records (protocol/SPEC.md §3.7): ``x25519_agree`` converts it
  to its X25519 form and returns only the Diffie-Hellman result, never the converted secret.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import NewType, NoReturn

import bech32
import nacl.bindings
import nacl.exceptions
import nacl.utils

from keys.errors import BadSignature, CryptoError, InvalidNodeId
from keys.x25519 import x25519_shared_secret

NodeId = NewType("NodeId", str)

NODE_ID_HRP = "lap"
PUBLIC_KEY_BYTES = 32
SEED_BYTES = 32
SIGNATURE_BYTES = 64

# BIP-173 caps a bech32 string at 90 characters, and its checksum guarantees are stated for that length;
# the bech32 package no longer enforces it, so we do. A real node id is 62 characters.
_MAX_BECH32_LENGTH = 90
# Enough of a rejected input to recognise it in a one-line message, without echoing a whole pasted file.
_MAX_SHOWN = 70

_SIGNATURE_DOES_NOT_VERIFY = "signature does not verify"


def _invalid(text: object, what: str, reason: str, error: type[CryptoError]) -> CryptoError:
    shown = repr(text)
    if len(shown) > _MAX_SHOWN:
        shown = shown[: _MAX_SHOWN - 3] + "..."
    return error(f"{shown} is not a valid {what}: {reason}")


def key_to_text(hrp: str, raw: bytes) -> str:
    """The bech32 text of a 32-byte key under a human-readable part (``lap`` for node ids, §1)."""
    words = bech32.convertbits(raw, 8, 5, True)
    assert words is not None  # only 5-to-8 conversion without padding can fail
    return str(bech32.bech32_encode(hrp, words))


def key_from_text(text: str, *, hrp: str, what: str, error: type[CryptoError]) -> bytes:
    """Decode bech32 key text with the given human-readable part to 32 bytes, or raise ``error``.

    The rules of Rule 1 apply to every kind of key text (node ids, authority ids): checksum, exact
    length, no leftover bits, one case.
    """
    if not isinstance(text, str):
        raise _invalid(text, what, f"a {what} is text", error)
    stripped = text.strip()
    if len(stripped) > _MAX_BECH32_LENGTH:
        raise _invalid(text, what, f"longer than {_MAX_BECH32_LENGTH} characters", error)
    found_hrp, words = bech32.bech32_decode(stripped)
    if found_hrp is None or words is None:
        raise _invalid(text, what, "not bech32, or the checksum does not match (a typo?)", error)
    if found_hrp != hrp:
        raise _invalid(text, what, f"it must start with {hrp + '1'!r}", error)
    # pad=False refuses leftover non-zero bits, so exactly one string encodes each key.
    raw = bech32.convertbits(words, 5, 8, False)
    if raw is None or len(raw) != PUBLIC_KEY_BYTES:
        # Length is what stops bech32's known weakness: a 'q' inserted or deleted just before a final 'p'
        # keeps the checksum valid, but changes the number of data characters.
        raise _invalid(text, what, f"it does not hold a {PUBLIC_KEY_BYTES}-byte key", error)
    return bytes(raw)


def node_id_from_public_key(raw: bytes) -> NodeId:
    """Return the node id (``lap1...``) of a 32-byte Ed25519 public key."""
    if not isinstance(raw, bytes) or len(raw) != PUBLIC_KEY_BYTES:
        size = len(raw) if isinstance(raw, bytes) else type(raw).__name__
        raise InvalidNodeId(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes, got {size}")
    return NodeId(key_to_text(NODE_ID_HRP, raw))


def public_key_from_node_id(text: str) -> bytes:
    """Decode node id text to the 32 public-key bytes, or raise ``InvalidNodeId``.

    Surrounding whitespace is ignored and an all-uppercase id is accepted (it is what a QR code carries);
    mixed case is rejected, as BIP-173 requires.
    """
    return key_from_text(text, hrp=NODE_ID_HRP, what="node id", error=InvalidNodeId)


def parse_node_id(text: str) -> NodeId:
    """Validate node id text and return it in its one canonical form (lowercase, no whitespace)."""
    return node_id_from_public_key(public_key_from_node_id(text))


def _check_domain(domain: bytes) -> None:
    # A bad domain is a bug in our own code, never remote input: hence ValueError, not CryptoError.
    if not isinstance(domain, bytes):
        raise TypeError(f"signing domain must be bytes, not {type(domain).__name__}")
    if len(domain) < 2 or not domain.isascii() or domain.find(b"\x00") != len(domain) - 1:
        raise ValueError(
            f"signing domain {domain!r} must be ASCII, end with b'\\x00' and hold no other NUL "
            "(e.g. b'lapnode/record/v1\\x00')"
        )


def _verify_raw(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Verify a bare Ed25519 signature (RFC 8032, libsodium's strict rules) or raise ``BadSignature``.

    Internal: callers outside this module use ``PublicKey.verify``, which adds the domain. Exposed only so
    that tests can check the primitive against Wycheproof and RFC 8032 vectors, which have no domain.
    """
    if type(signature) is not bytes or len(signature) != SIGNATURE_BYTES:
        raise BadSignature(_SIGNATURE_DOES_NOT_VERIFY)
    try:
        # The binding is the fastest path PyNaCl offers (no VerifyKey object, no SignedMessage wrapper);
        # libsodium rejects non-canonical S, small-order keys and small-order R.
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except nacl.exceptions.BadSignatureError:
        raise BadSignature(_SIGNATURE_DOES_NOT_VERIFY) from None


class PublicKey:
    """An Ed25519 public key: the identity of a node as others see it. Immutable, hashable."""

    __slots__ = ("_node_id", "_raw")

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, bytes) or len(raw) != PUBLIC_KEY_BYTES:
            size = len(raw) if isinstance(raw, bytes) else type(raw).__name__
            raise InvalidNodeId(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes, got {size}")
        self._raw = bytes(raw)
        # bech32 in pure Python costs about as much as a verification, so the text form is made on demand.
        self._node_id: NodeId | None = None

    @classmethod
    def from_node_id(cls, text: str) -> PublicKey:
        return cls(public_key_from_node_id(text))

    @property
    def raw(self) -> bytes:
        return self._raw

    @property
    def node_id(self) -> NodeId:
        if self._node_id is None:
            self._node_id = node_id_from_public_key(self._raw)
        return self._node_id

    def verify(self, domain: bytes, message: bytes, signature: bytes) -> None:
        """Return if ``signature`` is this key's signature over ``domain + message``; else raise."""
        _check_domain(domain)
        _verify_raw(self._raw, domain + message, signature)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKey):
            return NotImplemented
        return hmac.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"PublicKey({self.node_id!r})"


class Identity:
    """A node's private Ed25519 key. Make one with ``generate()``, ``from_seed()`` or ``keys.keyfile``."""

    __slots__ = ("_public_key", "_secret_key")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
            # Never echo the value: it may be a real seed of the wrong type or a truncated one.
            raise ValueError(f"an Ed25519 seed is {SEED_BYTES} bytes")
        public, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
        # libsodium's 64-byte secret key is seed || public key; signing with it directly skips the
        # SigningKey wrapper and its SignedMessage copy.
        self._secret_key: bytes = secret
        self._public_key = PublicKey(public)

    @classmethod
    def generate(cls) -> Identity:
        return cls(nacl.utils.random(SEED_BYTES))

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        """Rebuild an identity from its 32-byte seed (for tests and golden vectors)."""
        return cls(seed)

    @property
    def public_key(self) -> PublicKey:
        return self._public_key

    @property
    def node_id(self) -> NodeId:
        return self._public_key.node_id

    def private_seed_for_storage(self) -> bytes:
        """The 32-byte secret seed. Only ``keys.keyfile`` should call this."""
        return self._secret_key[:SEED_BYTES]

    def derive_secret(self, context: bytes) -> bytes:
        """A 32-byte secret derived from the seed for one named purpose (e.g. the Noise static key).

        BLAKE2b keyed with the seed, personalised with ``context`` (exactly 16 bytes), so each purpose
        gets an independent key and the node keeps a single secret at rest.
        """
        if not isinstance(context, bytes) or len(context) != 16:
            raise ValueError("a derivation context is exactly 16 bytes")
        return hashlib.blake2b(
            b"", digest_size=32, key=self._secret_key[:SEED_BYTES], person=context
        ).digest()

    def x25519_agree(self, public: bytes) -> bytes:
        """X25519 of this node's key, in its X25519 form, with ``public`` (SPEC §3.7); raises
        ``KeyAgreementError`` for a low-order ``public``.

        The X25519 form of an Ed25519 key is the clamped SHA-512 half of the seed that Ed25519 signs with:
        the one key this node's peers know it by (Rule 5; SPEC §3.7 says why the key is reused).
        """
        secret: bytes = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(self._secret_key)
        return x25519_shared_secret(secret, public)

    def sign(self, domain: bytes, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature over ``domain + message``."""
        _check_domain(domain)
        return self._sign_raw(domain + message)

    def _sign_raw(self, message: bytes) -> bytes:
        # Internal: no domain. Exists for the RFC 8032 vectors; everything else goes through sign().
        return nacl.bindings.crypto_sign(message, self._secret_key)[:SIGNATURE_BYTES]

    def __reduce__(self) -> NoReturn:
        # Pickling would write the seed wherever the pickle goes (a cache, a queue, another process).
        raise TypeError("an Identity cannot be pickled or copied; store it with keys.keyfile")

    def __repr__(self) -> str:
        return f"Identity({self.node_id!r})"
