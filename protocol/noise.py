"""Noise_XX_25519_ChaChaPoly_BLAKE2b, written from the Noise Protocol Framework, revision 34.

Names and structure follow the specification's §5 (CipherState, SymmetricState, HandshakeState) so that
the code can be read side by side with it; section numbers below are the Noise specification's.
`tests/protocol/test_noise.py` checks this module against the published cacophony, snow and noise-c vectors.

Rule 1: no randomness here. The ephemeral private key comes in as an argument (the I/O layer draws it
fresh for every connection); `GENERATE_KEYPAIR` is therefore "use the key you were given".
Rule 2: everything a remote party can cause (a message that is short, oversized or fails authentication,
a public key whose Diffie-Hellman result is all zeros) raises `NoiseError`, a `ProtocolError`. Calling
these objects out of turn is a bug in our own code, never remote input, and raises `ValueError`.
Rule 3: a failed decryption changes nothing: the nonce is not incremented (§5.1), and the handshake hash
is not updated (§5.2), but the caller must still abandon the handshake or session, as §5.3 requires.
Rule 4: only the XX pattern (§7.5) is built in, with no pre-messages, PSKs or one-way transport.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from protocol.errors import ProtocolError

PROTOCOL_NAME: Final = b"Noise_XX_25519_ChaChaPoly_BLAKE2b"
DHLEN: Final = 32
HASHLEN: Final = 64
BLOCKLEN: Final = 128
KEYLEN: Final = 32
TAGLEN: Final = 16
MAX_MESSAGE_LEN: Final = 65535  # §3: every Noise message, handshake or transport
MAX_NONCE: Final = 2**64 - 1  # §5.1: reserved; a CipherState refuses to use it
_ZERO_DH: Final = bytes(DHLEN)

# §7.5, XX:  -> e   <- e, ee, s, es   -> s, se
XX: Final[tuple[tuple[str, ...], ...]] = (("e",), ("e", "ee", "s", "es"), ("s", "se"))


class NoiseError(ProtocolError):
    """A Noise message cannot be processed: wrong length, failed authentication, or an unusable key."""


# --- §4: the crypto functions --------------------------------------------------------------------------


def x25519_public(private: bytes) -> bytes:
    """The X25519 public key of a 32-byte private key (RFC 7748 clamps it)."""
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def _dh(private: bytes, public: bytes) -> bytes:
    """DH(key_pair, public_key) (§4.1), refusing all-zero results (low-order points, §12.1)."""
    try:
        peer = X25519PublicKey.from_public_bytes(public)
        shared = X25519PrivateKey.from_private_bytes(private).exchange(peer)
    except ValueError:
        # OpenSSL refuses an all-zero result itself; the check below does not rely on it.
        raise NoiseError("X25519 with the peer's public key gives an all-zero secret") from None
    if hmac.compare_digest(shared, _ZERO_DH):
        raise NoiseError("X25519 with the peer's public key gives an all-zero secret")
    return shared


def _nonce(n: int) -> bytes:
    # §12.3: 32 bits of zeros followed by the little-endian 64-bit counter.
    return b"\x00\x00\x00\x00" + n.to_bytes(8, "little")


def _hash(data: bytes) -> bytes:
    return hashlib.blake2b(data).digest()


def _hkdf2(chaining_key: bytes, input_key_material: bytes) -> tuple[bytes, bytes]:
    """HKDF with two outputs (§4.3), over HMAC-BLAKE2b: HASHLEN 64, BLOCKLEN 128 (blake2b's block_size).

    XX without PSKs never asks for the third output.
    """
    temp_key = hmac.digest(chaining_key, input_key_material, "blake2b")
    output1 = hmac.digest(temp_key, b"\x01", "blake2b")
    output2 = hmac.digest(temp_key, output1 + b"\x02", "blake2b")
    return output1, output2


# --- §5.1: CipherState ---------------------------------------------------------------------------------


class CipherState:
    """A key (or none) and a 64-bit counter nonce. Transport sessions use one per direction."""

    __slots__ = ("_aead", "_n")

    def __init__(self, key: bytes | None = None) -> None:
        self._aead: ChaCha20Poly1305 | None = None
        self._n = 0
        self.initialize_key(key)

    def initialize_key(self, key: bytes | None) -> None:
        if key is not None and len(key) != KEYLEN:
            raise ValueError(f"a ChaChaPoly key is {KEYLEN} bytes")
        self._aead = None if key is None else ChaCha20Poly1305(key)
        self._n = 0

    def has_key(self) -> bool:
        return self._aead is not None

    @property
    def nonce(self) -> int:
        """The nonce the next encryption or decryption will use."""
        return self._n

    def set_nonce(self, nonce: int) -> None:
        """SetNonce (§5.1). Only tests need it, to reach the end of the nonce space."""
        if not 0 <= nonce <= MAX_NONCE:
            raise ValueError("a nonce is a 64-bit unsigned integer")
        self._n = nonce

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self._aead is None:
            return plaintext
        if len(plaintext) + TAGLEN > MAX_MESSAGE_LEN:
            raise ValueError(f"a Noise message is at most {MAX_MESSAGE_LEN} bytes")
        if self._n >= MAX_NONCE:
            raise NoiseError("the nonce space of this cipher state is exhausted")
        ciphertext = self._aead.encrypt(_nonce(self._n), plaintext, ad)
        self._n += 1
        return ciphertext

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self._aead is None:
            return ciphertext
        if self._n >= MAX_NONCE:
            raise NoiseError("the nonce space of this cipher state is exhausted")
        if not TAGLEN <= len(ciphertext) <= MAX_MESSAGE_LEN:
            raise NoiseError(f"ciphertext of {len(ciphertext)} bytes is outside {TAGLEN}..{MAX_MESSAGE_LEN}")
        try:
            plaintext = self._aead.decrypt(_nonce(self._n), ciphertext, ad)
        except InvalidTag:
            raise NoiseError("ciphertext does not authenticate") from None
        self._n += 1
        return plaintext


# --- §5.2: SymmetricState ------------------------------------------------------------------------------


class SymmetricState:
    """The chaining key, the handshake hash and the handshake's CipherState."""

    __slots__ = ("_cipher", "_ck", "_h")

    def __init__(self, protocol_name: bytes) -> None:
        # InitializeSymmetric: a name of up to HASHLEN bytes is zero-padded, a longer one hashed.
        if len(protocol_name) <= HASHLEN:
            self._h = protocol_name.ljust(HASHLEN, b"\x00")
        else:
            self._h = _hash(protocol_name)
        self._ck = self._h
        self._cipher = CipherState()

    @property
    def handshake_hash(self) -> bytes:
        return self._h

    def has_key(self) -> bool:
        return self._cipher.has_key()

    def mix_key(self, input_key_material: bytes) -> None:
        self._ck, temp_k = _hkdf2(self._ck, input_key_material)
        # HASHLEN is 64: truncate temp_k to 32 bytes.
        self._cipher.initialize_key(temp_k[:KEYLEN])

    def mix_hash(self, data: bytes) -> None:
        self._h = _hash(self._h + data)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self._cipher.encrypt_with_ad(self._h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self._cipher.decrypt_with_ad(self._h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        """Return (initiator-to-responder, responder-to-initiator) transport cipher states."""
        temp_k1, temp_k2 = _hkdf2(self._ck, b"")
        return CipherState(temp_k1[:KEYLEN]), CipherState(temp_k2[:KEYLEN])


# --- §5.3: HandshakeState, for XX ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransportCiphers:
    """One side's two transport CipherStates, named by direction."""

    send: CipherState
    receive: CipherState


class HandshakeState:
    """One side of a Noise_XX_25519_ChaChaPoly_BLAKE2b handshake.

    Call `write_message` and `read_message` in turn (the initiator writes first); after the third message
    `complete` is true and `transport()` gives this side's cipher states. Once `read_message` or
    `write_message` has raised, the object refuses every further call: a failed handshake is never
    resumed.
    """

    __slots__ = ("_e", "_failed", "_index", "_initiator", "_re", "_rs", "_s", "_split", "_ss")

    def __init__(
        self, *, initiator: bool, static_private: bytes, ephemeral_private: bytes, prologue: bytes = b""
    ) -> None:
        for name, key in (("static", static_private), ("ephemeral", ephemeral_private)):
            if not isinstance(key, bytes) or len(key) != DHLEN:
                raise ValueError(f"the {name} private key is {DHLEN} bytes")
        self._initiator = initiator
        self._s = (static_private, x25519_public(static_private))
        self._e = (ephemeral_private, x25519_public(ephemeral_private))
        self._rs: bytes | None = None
        self._re: bytes | None = None
        self._index = 0
        self._failed = False
        self._split: tuple[CipherState, CipherState] | None = None
        self._ss = SymmetricState(PROTOCOL_NAME)
        self._ss.mix_hash(prologue)

    @property
    def static_public(self) -> bytes:
        return self._s[1]

    @property
    def remote_static(self) -> bytes | None:
        """The peer's static public key once its "s" token was read (message 2 or 3), else None."""
        return self._rs

    @property
    def handshake_hash(self) -> bytes:
        """h (§5.2). After the last message it identifies this handshake (channel binding, §11.2)."""
        return self._ss.handshake_hash

    @property
    def complete(self) -> bool:
        return self._split is not None

    @property
    def message_index(self) -> int:
        """How many handshake messages this side has written or read (0 to 3)."""
        return self._index

    def is_my_turn(self) -> bool:
        """True if this side writes the next handshake message."""
        return self._split is None and not self._failed and (self._index % 2 == 0) == self._initiator

    def write_message(self, payload: bytes) -> bytes:
        """Write this side's next handshake message around `payload`.

        Raises NoiseError if a DH with the peer's key is all zeros (the responder meets the initiator's
        `e` first here, in "ee"); the handshake has then failed.
        """
        symbols = self._next_tokens(writing=True)
        try:
            message = self._write_tokens(symbols, payload)
        except (NoiseError, ValueError):
            self._failed = True
            raise
        self._advance()
        return message

    def read_message(self, message: bytes) -> bytes:
        """Process the peer's next handshake message and return its payload, or raise NoiseError."""
        symbols = self._next_tokens(writing=False)
        try:
            payload = self._read_tokens(symbols, message)
        except NoiseError:
            self._failed = True
            raise
        self._advance()
        return payload

    def transport(self) -> TransportCiphers:
        """This side's cipher states; only once the handshake is complete (Split, §5.2)."""
        if self._split is None:
            raise ValueError("the handshake is not complete")
        to_responder, to_initiator = self._split
        if self._initiator:
            return TransportCiphers(send=to_responder, receive=to_initiator)
        return TransportCiphers(send=to_initiator, receive=to_responder)

    def _write_tokens(self, symbols: Sequence[str], payload: bytes) -> bytes:
        message = bytearray()
        for symbol in symbols:
            if symbol == "e":
                message += self._e[1]
                self._ss.mix_hash(self._e[1])
            elif symbol == "s":
                message += self._ss.encrypt_and_hash(self._s[1])
            else:
                self._ss.mix_key(self._token_dh(symbol))
        if len(message) + len(payload) + TAGLEN > MAX_MESSAGE_LEN:
            raise ValueError(f"a Noise message is at most {MAX_MESSAGE_LEN} bytes")
        message += self._ss.encrypt_and_hash(payload)
        return bytes(message)

    def _read_tokens(self, symbols: Sequence[str], message: bytes) -> bytes:
        if len(message) > MAX_MESSAGE_LEN:
            raise NoiseError(f"handshake message of {len(message)} bytes is over {MAX_MESSAGE_LEN}")
        offset = 0
        for symbol in symbols:
            if symbol == "e":
                self._re = _take(message, offset, DHLEN, symbol)
                offset += DHLEN
                self._ss.mix_hash(self._re)
            elif symbol == "s":
                size = DHLEN + TAGLEN if self._ss.has_key() else DHLEN
                self._rs = self._ss.decrypt_and_hash(_take(message, offset, size, symbol))
                offset += size
            else:
                self._ss.mix_key(self._token_dh(symbol))
        if self._ss.has_key() and len(message) - offset < TAGLEN:
            raise NoiseError("handshake message is too short for its payload's tag")
        return self._ss.decrypt_and_hash(message[offset:])

    def _next_tokens(self, *, writing: bool) -> Sequence[str]:
        if self._failed:
            raise ValueError("this handshake has failed and cannot continue")
        if self._split is not None:
            raise ValueError("the handshake is already complete")
        if (self._index % 2 == 0) == self._initiator:
            if not writing:
                raise ValueError("it is this side's turn to write, not to read")
        elif writing:
            raise ValueError("it is the other side's turn to write")
        return XX[self._index]

    def _advance(self) -> None:
        self._index += 1
        if self._index == len(XX):
            self._split = self._ss.split()

    def _token_dh(self, symbol: str) -> bytes:
        # §7.1: "es" is DH(e, rs) for the initiator and DH(s, re) for the responder; "se" mirrors it.
        if symbol == "ee":
            private, public = self._e[0], self._re
        elif (symbol == "es") == self._initiator:
            private, public = self._e[0], self._rs
        else:
            private, public = self._s[0], self._re
        assert public is not None  # XX always sends a key before a token uses it
        return _dh(private, public)


def _take(message: bytes, offset: int, size: int, symbol: str) -> bytes:
    if len(message) - offset < size:
        raise NoiseError(f"handshake message is too short for its {symbol!r} token")
    return message[offset : offset + size]
