"""Membership credentials: an authority's signed statement of who a node is (protocol/SPEC.md §8.2).

Rule 1: a credential is `{"b": body bytes, "s": signature}`, the body a canonical map (§2). The authority
signs `"lapnode/credential/v1\\x00" ‖ len(net) ‖ net ‖ b` with `net` the verifier's own network id, over
the body bytes exactly as they travel; nothing is ever re-serialised to be checked.
Rule 2: `verify_credential` is the one verifier, used by `credential install`, the handshake (both roles)
and `credential show`. It checks in the order of §8.2 and raises a `CredentialError` subclass that names
the first rule broken; toward a remote peer every one of them becomes the same opaque handshake failure.
Rule 3: no clock here: the time and the revoked keys come in a `CredentialCheck`.
Rule 4: what a verified credential says (organisation, category, jurisdiction) is the only source of a
credentialed peer's recipient attributes; a peer's own claims are never read (DESIGN-NOTES 5).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from keys.errors import BadSignature, UntrustedAuthority
from keys.identity import (
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    Identity,
    NodeId,
    PublicKey,
    node_id_from_public_key,
)
from keys.membership import CREDENTIAL_DOMAIN, AuthorityId, TrustedAuthorities, authority_id
from protocol import codec
from protocol.codec import Value
from protocol.errors import ProtocolError
from protocol.scope import CATEGORIES, MAX_TIME_MS

CREDENTIAL_VERSION: Final = 1
MAX_CREDENTIAL_SIZE: Final = 1024
MAX_NETWORK_BYTES: Final = 64
MAX_ORG_CHARS: Final = 200
MAX_ORG_BYTES: Final = 512
# A credential issued a moment ago on a machine whose clock runs ahead must still install. Only the
# start of validity gets this allowance; expiry is exact (it fails closed).
NOT_BEFORE_SKEW_MS: Final = 60_000
FILE_LABEL: Final = "lapnode-credential/1"

_BODY_KEYS: Final = frozenset({"v", "net", "auth", "node", "org", "cat", "jur", "nbf", "exp"})
_JURISDICTION: Final = re.compile(r"[A-Z]{2}")


class CredentialError(ProtocolError):
    """A credential cannot be used; the subclass says which rule it breaks (SPEC §8.2)."""


class MalformedCredential(CredentialError):
    """The bytes are not a credential: size, encoding, fields or their values."""


class CredentialWrongNetwork(CredentialError):
    """The credential is for another network."""


class CredentialUntrusted(CredentialError):
    """The credential is signed by an authority this node does not trust."""


class CredentialBadSignature(CredentialError):
    """The authority's signature does not verify."""


class CredentialWrongSubject(CredentialError):
    """The credential is for another node."""


class CredentialRevoked(CredentialError):
    """The credential's node has been revoked by an authority."""


class CredentialRetired(CredentialRevoked):
    """The credential's node key was rotated away (SPEC §8.8): the node now has another key."""


class CredentialNotYetValid(CredentialError):
    """The credential's validity has not started."""


class CredentialExpired(CredentialError):
    """The credential's validity has ended."""


@dataclass(frozen=True, slots=True)
class CredentialBody:
    """What a credential states. Fields are validated for form; trust is a separate question."""

    network: str
    authority: bytes
    subject: bytes
    org: str
    category: str
    jurisdiction: str
    not_before: int
    not_after: int

    @property
    def node_id(self) -> NodeId:
        return node_id_from_public_key(self.subject)

    @property
    def authority_id(self) -> AuthorityId:
        return authority_id(PublicKey(self.authority))

    def to_wire(self) -> dict[str, Value]:
        return {
            "v": CREDENTIAL_VERSION,
            "net": self.network,
            "auth": self.authority,
            "node": self.subject,
            "org": self.org,
            "cat": self.category,
            "jur": self.jurisdiction,
            "nbf": self.not_before,
            "exp": self.not_after,
        }


@dataclass(frozen=True, slots=True)
class UnverifiedCredential:
    """Decoded and well-formed; nothing about its signature, issuer or validity is known yet."""

    unverified_body: CredentialBody
    body_bytes: bytes
    signature: bytes
    wire: bytes


@dataclass(frozen=True, slots=True)
class Credential:
    """A credential that passed every check of a `CredentialCheck` at its time. Only
    `verify_credential` (and so `issue_credential`) makes one."""

    body: CredentialBody
    wire: bytes

    @property
    def subject(self) -> bytes:
        return self.body.subject

    @property
    def org(self) -> str:
        return self.body.org

    @property
    def category(self) -> str:
        return self.body.category

    @property
    def jurisdiction(self) -> str:
        return self.body.jurisdiction

    @property
    def not_after(self) -> int:
        return self.body.not_after


@dataclass(frozen=True, slots=True)
class CredentialCheck:
    """What a verifier needs besides the bytes: whom it trusts, the time, and the revoked node keys."""

    trusted: TrustedAuthorities
    now_ms: int
    revoked: frozenset[bytes] = frozenset()
    # Keys rotated away (SPEC §8.8): their credentials are refused; a rotation from one is still followed.
    retired: frozenset[bytes] = frozenset()


def network_bytes(network: str) -> bytes:
    """A network id as signatures carry it; a bad id is a local configuration error (ValueError)."""
    net = network.encode("utf-8") if isinstance(network, str) else b""
    if not 0 < len(net) <= MAX_NETWORK_BYTES:
        raise ValueError(f"a network id is 1 to {MAX_NETWORK_BYTES} bytes of UTF-8 text")
    return net


def signed_message(network: str, body_bytes: bytes) -> bytes:
    """What the authority signs after the domain: `len(net) ‖ net ‖ b` (§8.2)."""
    net = network_bytes(network)
    return bytes([len(net)]) + net + body_bytes


def issue_credential(
    authority: Identity,
    *,
    network: str,
    subject: bytes,
    org: str,
    category: str,
    jurisdiction: str,
    not_before: int,
    not_after: int,
) -> Credential:
    """Sign a credential for `subject` (a node key). Invalid values raise MalformedCredential."""
    body = CredentialBody(
        network=network,
        authority=authority.public_key.raw,
        subject=subject,
        org=org,
        category=category,
        jurisdiction=jurisdiction,
        not_before=not_before,
        not_after=not_after,
    )
    _check_body(body)
    body_bytes = codec.encode(body.to_wire())
    signature = authority.sign(CREDENTIAL_DOMAIN, signed_message(network, body_bytes))
    wire = codec.encode({"b": body_bytes, "s": signature})
    if len(wire) > MAX_CREDENTIAL_SIZE:
        raise MalformedCredential(f"the credential would be over {MAX_CREDENTIAL_SIZE} bytes")
    unverified = decode_credential(wire)
    return Credential(unverified.unverified_body, wire)


def decode_credential(raw: bytes) -> UnverifiedCredential:
    """Check size, encoding and fields (§8.2 steps 1-2); trust, signature and time are not checked."""
    if not isinstance(raw, bytes):
        raise MalformedCredential("a credential is bytes")
    try:
        outer = codec.decode(raw, max_size=MAX_CREDENTIAL_SIZE)
        if type(outer) is not dict or set(outer) != {"b", "s"}:
            raise MalformedCredential("a credential is a map with exactly the fields b and s")
        body_bytes, signature = outer["b"], outer["s"]
        if type(body_bytes) is not bytes or type(signature) is not bytes or len(signature) != SIGNATURE_BYTES:
            raise MalformedCredential("credential body or signature has the wrong type or length")
        body = _parse_body(codec.decode(body_bytes, max_size=MAX_CREDENTIAL_SIZE))
    except CredentialError:
        raise
    except ProtocolError as exc:
        raise MalformedCredential(f"credential: {exc}") from None
    return UnverifiedCredential(body, body_bytes, signature, raw)


def verify_credential(
    raw: bytes, *, network: str, check: CredentialCheck, subject: bytes | None = None
) -> Credential:
    """Fully verify a credential as received; raise the CredentialError of the first rule it breaks.

    `subject` is the node key the credential must be for (the peer the handshake authenticated, or this
    node at install time); None only to inspect a credential without a node (`credential show`).
    """
    unverified = decode_credential(raw)
    body = unverified.unverified_body
    if body.network != network:
        raise CredentialWrongNetwork(f"the credential is for network {body.network!r}, not {network!r}")
    try:
        check.trusted.verify(
            body.authority,
            CREDENTIAL_DOMAIN,
            signed_message(network, unverified.body_bytes),
            unverified.signature,
        )
    except UntrustedAuthority:
        raise CredentialUntrusted(
            f"the credential is issued by {body.authority_id}, which this node does not trust"
        ) from None
    except BadSignature:
        raise CredentialBadSignature("the authority's signature on the credential does not verify") from None
    if subject is not None and body.subject != subject:
        raise CredentialWrongSubject(f"the credential is for {body.node_id}, not this node")
    if body.subject in check.revoked:
        raise CredentialRevoked(f"{body.node_id} has been revoked")
    if body.subject in check.retired:
        raise CredentialRetired(f"{body.node_id} was rotated away; its node now has another key")
    if check.now_ms < body.not_before - NOT_BEFORE_SKEW_MS:
        raise CredentialNotYetValid("the credential is not valid yet")
    if check.now_ms >= body.not_after:
        raise CredentialExpired("the credential has expired")
    return Credential(body, raw)


def _is_int(value: object) -> bool:
    return type(value) is int


def _check_body(body: CredentialBody) -> None:
    """Form rules of §8.2 for every field; the same for issuing and for decoding."""
    if not isinstance(body.network, str):
        raise MalformedCredential("credential net must be text")
    try:
        network_bytes(body.network)
    except ValueError:
        raise MalformedCredential(f"credential net must be 1 to {MAX_NETWORK_BYTES} bytes") from None
    for name, key in (("auth", body.authority), ("node", body.subject)):
        if type(key) is not bytes or len(key) != PUBLIC_KEY_BYTES:
            raise MalformedCredential(f"credential {name} must be a 32-byte key")
    org = body.org
    if not (
        isinstance(org, str)
        and 0 < len(org) <= MAX_ORG_CHARS
        and len(org.encode("utf-8", "surrogatepass")) <= MAX_ORG_BYTES
        and org == org.strip()
        and all(ord(c) >= 32 and ord(c) != 127 for c in org)
    ):
        raise MalformedCredential(
            f"credential org must be one line of 1 to {MAX_ORG_CHARS} characters, without outer spaces"
        )
    if not (isinstance(body.category, str) and body.category in CATEGORIES):
        raise MalformedCredential(f"credential cat must be one of {', '.join(sorted(CATEGORIES))}")
    if not (isinstance(body.jurisdiction, str) and _JURISDICTION.fullmatch(body.jurisdiction)):
        raise MalformedCredential("credential jur must be two uppercase letters (ISO 3166-1 alpha-2)")
    for name, value in (("nbf", body.not_before), ("exp", body.not_after)):
        if not (_is_int(value) and 0 <= value < MAX_TIME_MS):
            raise MalformedCredential(f"credential {name} is not a valid time in milliseconds")
    if body.not_after <= body.not_before:
        raise MalformedCredential("credential exp must be after nbf")


def _parse_body(value: Value) -> CredentialBody:
    if type(value) is not dict or set(value) != _BODY_KEYS:
        raise MalformedCredential(
            f"credential body must have exactly the fields {', '.join(sorted(_BODY_KEYS))}"
        )
    fields: Mapping[str, Value] = value
    if not _is_int(fields["v"]) or fields["v"] != CREDENTIAL_VERSION:
        raise MalformedCredential(f"unsupported credential version {fields['v']!r}")
    body = CredentialBody(
        network=fields["net"],
        authority=fields["auth"],
        subject=fields["node"],
        org=fields["org"],
        category=fields["cat"],
        jurisdiction=fields["jur"],
        not_before=fields["nbf"],
        not_after=fields["exp"],
    )
    _check_body(body)
    return body
