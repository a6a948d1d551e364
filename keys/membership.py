"""Network authorities and whom a node trusts: the keys behind membership (protocol/SPEC.md §8).

Invariants:
- Rule 1: an authority is an Ed25519 key like a node's, kept in a key file like a node's
  (``keys.keyfile``). Its text form, the **authority id**, is bech32 with the human-readable part
  ``lapauth``: a different prefix from node ids, so an operator can never trust a node as an authority
  or add an authority as a peer by mistake. The same checksum and length rules as node ids apply.
- Rule 2: every membership statement is signed under its own domain (``identity`` Rule 2): a credential
  can never be read as a revocation, nor a rotation as a record, whatever the bytes.
- Rule 3: ``TrustedAuthorities.verify`` is the one way to check an authority's signature. It raises
  ``UntrustedAuthority`` for a key the node does not trust before it looks at the signature, and
  ``BadSignature`` (opaque) for a signature that does not verify. There is no boolean to forget.
- Rule 4: an empty set of trusted authorities is a valid value: it is the legacy mode, in which a node
  admits only the peers its operator pinned (SPEC §8.4). Callers ask ``bool(trusted)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final, NewType

from keys.errors import InvalidAuthorityId, UntrustedAuthority
from keys.identity import PUBLIC_KEY_BYTES, PublicKey, key_from_text, key_to_text

AuthorityId = NewType("AuthorityId", str)

AUTHORITY_HRP: Final = "lapauth"
CREDENTIAL_DOMAIN: Final = b"lapnode/credential/v1\x00"
REVOCATION_DOMAIN: Final = b"lapnode/revocation/v1\x00"
ROTATION_DOMAIN: Final = b"lapnode/rotation/v1\x00"
# A record's author withdrawing it (a tombstone, SPEC §8.10): signed by a node key, like a record.
RETRACTION_DOMAIN: Final = b"lapnode/retraction/v1\x00"


def authority_id(key: PublicKey) -> AuthorityId:
    """The text form (``lapauth1...``) of an authority's public key."""
    return AuthorityId(key_to_text(AUTHORITY_HRP, key.raw))


def parse_authority_id(text: str) -> PublicKey:
    """Decode an authority id to its key, or raise ``InvalidAuthorityId`` (a typo never names a key)."""
    raw = key_from_text(text, hrp=AUTHORITY_HRP, what="authority id", error=InvalidAuthorityId)
    return PublicKey(raw)


class TrustedAuthorities:
    """The authorities a node trusts (its configuration); immutable."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[PublicKey] = ()) -> None:
        self._keys: dict[bytes, PublicKey] = {}
        for key in keys:
            if not isinstance(key, PublicKey):
                raise TypeError("trusted authorities are keys.identity.PublicKey values")
            self._keys[key.raw] = key

    @classmethod
    def from_ids(cls, ids: Iterable[str]) -> TrustedAuthorities:
        return cls(parse_authority_id(text) for text in ids)

    def __bool__(self) -> bool:
        return bool(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[PublicKey]:
        return iter(self._keys.values())

    def __contains__(self, raw: object) -> bool:
        return isinstance(raw, bytes) and raw in self._keys

    def ids(self) -> list[AuthorityId]:
        return sorted(authority_id(key) for key in self._keys.values())

    def key(self, raw: bytes) -> PublicKey:
        """The trusted key with these bytes, or raise ``UntrustedAuthority``."""
        if not isinstance(raw, bytes) or len(raw) != PUBLIC_KEY_BYTES:
            raise UntrustedAuthority("the signer is not a 32-byte key")
        key = self._keys.get(raw)
        if key is None:
            raise UntrustedAuthority(f"{authority_id(PublicKey(raw))} is not a trusted authority")
        return key

    def verify(self, signer: bytes, domain: bytes, message: bytes, signature: bytes) -> PublicKey:
        """Check that a trusted authority ``signer`` signed ``domain + message``; return its key."""
        key = self.key(signer)
        key.verify(domain, message, signature)
        return key

    def __repr__(self) -> str:
        return f"TrustedAuthorities({self.ids()!r})"
