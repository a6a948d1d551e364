"""Sealed records: a body that only the named members and the author can read (protocol/SPEC.md §3.7).

Rule 1: a sealed record is an ordinary signed record (§3) whose scope has the flag `sealed` and whose one
body field, `sealed`, holds the ciphertext. Every node verifies it like any record (signature, the
commitment to `sealed`, the ciphertext's shape) and can carry it; none but a recipient can read it.
Rule 2: opening is a separate step for recipients, `open_sealed`, and the plaintext passes the kind's own
`parse_body`, exactly as an unsealed body would. Every way opening can fail is a `SealedError`.
Rule 3: every cryptographic failure while opening (low-order ephemeral key, a wrapped key, the key
commitment or the ciphertext that fails to authenticate) is the one opaque `CannotOpen`.
Rule 4: no randomness here: the content key, the nonce and the ephemeral secret come in as
`SealingSecrets` (the lapnode layer draws them); with fixed secrets, sealing is deterministic (vectors).
Rule 5: the construction (§3.7.3) is XChaCha20-Poly1305 for the body under a fresh content key, and one
ephemeral-static X25519 key wrap per recipient, with the recipient's X25519 key converted from its
Ed25519 node key (keys.x25519). The associated data binds the ciphertext and every wrapped key to the
network, author, kind, schema, sequence number and scope, so nothing can be moved into another record.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import nacl.bindings
import nacl.exceptions

from keys.errors import KeyAgreementError
from keys.identity import Identity, node_id_from_public_key
from keys.x25519 import x25519_key_of_node, x25519_public_key, x25519_shared_secret
from protocol import codec
from protocol.codec import Value
from protocol.envelope import MAX_RECORD_SIZE, Record, RecordId, build_record
from protocol.errors import (
    CannotOpen,
    InvalidSealedBody,
    NotARecipient,
    ProtocolError,
    SchemaError,
    SealedContentWithheld,
)
from protocol.kinds import Body, parse_body
from protocol.kinds.sealed import (
    CONTENT_KEY_BYTES,
    EPHEMERAL_KEY_BYTES,
    NONCE_BYTES,
    SEALED_FIELD,
    SealedBody,
    SealedPayload,
    sealed_recipients,
)
from protocol.scope import SEALED_FLAG, Scope

AD_DOMAIN: Final = "lapnode/sealed/v1"
_WRAP_PERSON: Final = b"lapnode.seal.kw1"
_COMMIT_PERSON: Final = b"lapnode.seal.kc1"
# Each wrap key encrypts exactly one content key (§3.7.3), so its nonce can be constant.
_WRAP_NONCE: Final = bytes(NONCE_BYTES)
_CANNOT_OPEN: Final = "the sealed content does not open with this node's key"


@dataclass(frozen=True, slots=True, eq=False)
class SealingSecrets:
    """The randomness one sealed record needs, each value fresh and uniformly random, used once."""

    content_key: bytes
    nonce: bytes
    ephemeral_secret: bytes

    def __post_init__(self) -> None:
        sizes = (
            ("content_key", CONTENT_KEY_BYTES),
            ("nonce", NONCE_BYTES),
            ("ephemeral_secret", EPHEMERAL_KEY_BYTES),
        )
        for name, size in sizes:
            value = getattr(self, name)
            if type(value) is not bytes or len(value) != size:
                raise ValueError(f"SealingSecrets.{name} must be {size} bytes")

    def __repr__(self) -> str:
        return "SealingSecrets(<hidden>)"


def associated_data(*, network: str, author: bytes, kind: str, schema: int, seq: int, scope: Scope) -> bytes:
    """What every AEAD of one sealed record authenticates (§3.7.3): all in the header, none of it sealed."""
    return codec.encode([AD_DOMAIN, network, author, kind, schema, seq, scope.to_wire()])


def key_commitment(content_key: bytes) -> bytes:
    """BLAKE2b-256 of the content key: all recipients must unwrap the same key (§3.7.3, "kc")."""
    return hashlib.blake2b(content_key, digest_size=32, person=_COMMIT_PERSON).digest()


def wrap_key(
    shared: bytes, ephemeral_public: bytes, recipient_x25519: bytes, recipient: bytes, nonce: bytes
) -> bytes:
    """The key that wraps the content key for one recipient (node key `recipient`) (§3.7.3).

    Like libsodium's crypto_kx, a hash of the shared secret and both public keys; the node key is there
    too because two Ed25519 keys (A and -A) share one X25519 key, and the nonce so that a reused
    ephemeral secret still gives fresh wrap keys.
    """
    data = shared + ephemeral_public + recipient_x25519 + recipient + nonce
    return hashlib.blake2b(data, digest_size=32, person=_WRAP_PERSON).digest()


def _encrypt(key: bytes, nonce: bytes, ad: bytes, plaintext: bytes) -> bytes:
    # libsodium through PyNaCl: `cryptography` has ChaCha20-Poly1305 with 96-bit nonces only, and the
    # content nonce is drawn at random, which wants XChaCha20's 192 bits.
    sealed: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce, key)
    return sealed


def _decrypt(key: bytes, nonce: bytes, ad: bytes, ciphertext: bytes) -> bytes:
    """Decrypt and authenticate, or raise CannotOpen (Rule 3)."""
    try:
        plain: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, ad, nonce, key)
    except nacl.exceptions.CryptoError:
        raise CannotOpen(_CANNOT_OPEN) from None
    return plain


def seal_fields(
    fields: Mapping[str, Value],
    *,
    network: str,
    author: bytes,
    kind: str,
    schema: int,
    seq: int,
    scope: Scope,
    sealing: SealingSecrets,
) -> SealedPayload:
    """Encrypt a body's fields to the scope's members and the author (§3.7.3)."""
    ad = associated_data(network=network, author=author, kind=kind, schema=schema, seq=seq, scope=scope)
    ephemeral_public = x25519_public_key(sealing.ephemeral_secret)
    wrapped = []
    for recipient in sealed_recipients(scope.members, author):
        try:
            recipient_x25519 = x25519_key_of_node(recipient)
            shared = x25519_shared_secret(sealing.ephemeral_secret, recipient_x25519)
        except KeyAgreementError as exc:
            shown = node_id_from_public_key(recipient)
            raise SchemaError(f"scope.members: nothing can be sealed to {shown}: {exc}") from None
        key = wrap_key(shared, ephemeral_public, recipient_x25519, recipient, sealing.nonce)
        wrapped.append(_encrypt(key, _WRAP_NONCE, ad, sealing.content_key))
    ciphertext = _encrypt(sealing.content_key, sealing.nonce, ad, codec.encode(dict(fields)))
    return SealedPayload(
        ephemeral_public=ephemeral_public,
        nonce=sealing.nonce,
        key_commitment=key_commitment(sealing.content_key),
        wrapped_keys=tuple(wrapped),
        ciphertext=ciphertext,
    )


def build_sealed_record(
    identity: Identity,
    *,
    network: str,
    kind: str,
    schema: int,
    seq: int,
    prev: RecordId | None,
    created: int,
    scope: Scope,
    fields: Mapping[str, Value],
    salt: bytes,
    sealing: SealingSecrets,
) -> Record:
    """Sign a new sealed record: `fields` (a valid body of `kind`) sealed, `salt` for the `sealed` field.

    The body is checked with the kind's schema first: nobody downstream could tell the author it is wrong.
    """
    if SEALED_FLAG not in scope.flags:
        raise ValueError(f"a sealed record's scope must carry the flag {SEALED_FLAG!r}")
    parse_body(kind, schema, fields, frozenset(fields))
    payload = seal_fields(
        fields,
        network=network,
        author=identity.public_key.raw,
        kind=kind,
        schema=schema,
        seq=seq,
        scope=scope,
        sealing=sealing,
    )
    return build_record(
        identity,
        network=network,
        kind=kind,
        schema=schema,
        seq=seq,
        prev=prev,
        created=created,
        scope=scope,
        fields={SEALED_FIELD: payload.to_wire()},
        salts={SEALED_FIELD: salt},
    )


def can_open(record: Record, node_key: bytes) -> bool:
    """Whether `node_key` is one of the record's recipients (it still has to succeed in opening it)."""
    body = record.body
    return isinstance(body, SealedBody) and node_key in body.recipients


def open_sealed(record: Record, identity: Identity) -> Body:
    """The sealed record's body, decrypted with `identity` and validated like an unsealed body.

    Raises NotARecipient, SealedContentWithheld, CannotOpen (Rule 3) or InvalidSealedBody; ValueError if
    the record is not sealed at all (a caller's mistake: check `isinstance(record.body, SealedBody)`).
    """
    body = record.body
    if not isinstance(body, SealedBody):
        raise ValueError("the record is not sealed")
    me = identity.public_key.raw
    if me not in body.recipients:
        raise NotARecipient("this node is not a recipient of the sealed record")
    payload = body.payload
    if payload is None:
        raise SealedContentWithheld("the sealed content was withheld from the copy held here")
    header = record.header
    ad = associated_data(
        network=header.network,
        author=header.author,
        kind=header.kind,
        schema=header.schema,
        seq=header.seq,
        scope=header.scope,
    )
    try:
        shared = identity.x25519_agree(payload.ephemeral_public)
    except KeyAgreementError:
        raise CannotOpen(_CANNOT_OPEN) from None
    key = wrap_key(shared, payload.ephemeral_public, x25519_key_of_node(me), me, payload.nonce)
    content_key = _decrypt(key, _WRAP_NONCE, ad, payload.wrapped_keys[body.recipients.index(me)])
    # Without this, an author could wrap different keys for different recipients and show each a
    # different body under one signature (Poly1305 does not commit to its key).
    if not hmac.compare_digest(key_commitment(content_key), payload.key_commitment):
        raise CannotOpen(_CANNOT_OPEN)
    plaintext = _decrypt(content_key, payload.nonce, ad, payload.ciphertext)
    return _parse_plaintext(header.kind, header.schema, plaintext)


def _parse_plaintext(kind: str, schema: int, plaintext: bytes) -> Body:
    try:
        fields = codec.decode(plaintext, max_size=MAX_RECORD_SIZE)
        if not isinstance(fields, dict):
            raise SchemaError("not a map of fields")
        return parse_body(kind, schema, fields, frozenset(fields))
    except ProtocolError as exc:
        raise InvalidSealedBody(f"sealed body: {exc}") from None
