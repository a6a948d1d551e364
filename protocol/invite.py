"""Invite tokens: how a member tells a newcomer where to join, in one line (protocol/SPEC.md §8.5).

    token   = "lapinvite1." base64url( payload ‖ check )         (RFC 4648 §5, no padding)
    payload = canonical [1, net, node, address, authority]        (§2; authority is nil without one)
    check   = the first 4 bytes of BLAKE2b-256(person = "lapnode.invite1", data = payload)

Rule 1: a token is checked before anything is read from it: a mistyped, truncated or pasted-twice token
fails the checksum (1 in 2^32 slips through) and is an error, never another node or address.
Rule 2: a token is a pointer, not a secret and not a credential: it grants nothing. The joining node still
authenticates the inviter by the node key in the token (pinning, §6.2) and, in strict mode, by its
credential; the inviter admits the newcomer only for the newcomer's own credential (§8.3).
Rule 3: no I/O and no judgement of addresses: the caller checks that `address` is one it can dial.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Final

from keys.identity import PUBLIC_KEY_BYTES
from protocol import codec
from protocol.credential import MAX_NETWORK_BYTES
from protocol.errors import ProtocolError

PREFIX: Final = "lapinvite1."
VERSION: Final = 1
CHECK_BYTES: Final = 4
MAX_ADDRESS_LENGTH: Final = 255
MAX_TOKEN_LENGTH: Final = 1024
_PERSON: Final = b"lapnode.invite1"


class InvalidInvite(ProtocolError):
    """The text is not a valid invite token (a typo, a truncated copy, or not a token at all)."""


@dataclass(frozen=True, slots=True)
class Invite:
    network: str
    node: bytes
    address: str
    authority: bytes | None


def _check(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=32, person=_PERSON).digest()[:CHECK_BYTES]


def encode_invite(invite: Invite) -> str:
    _validate(invite)
    payload = codec.encode([VERSION, invite.network, invite.node, invite.address, invite.authority])
    return PREFIX + base64.urlsafe_b64encode(payload + _check(payload)).decode("ascii").rstrip("=")


def decode_invite(text: str) -> Invite:
    """Parse and check a token; raise InvalidInvite with a one-line reason."""
    if not isinstance(text, str):
        raise InvalidInvite("an invite token is text")
    token = "".join(text.split())  # a token wrapped by a mail client or a terminal is still one token
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidInvite("too long to be an invite token")
    if not token.startswith(PREFIX):
        raise InvalidInvite(f"an invite token starts with {PREFIX!r}")
    body = token[len(PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise InvalidInvite("the invite token is damaged: not base64url (a typo?)") from None
    if base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") != body or len(raw) <= CHECK_BYTES:
        raise InvalidInvite("the invite token is damaged (a typo, or only part of it was copied?)")
    payload, check = raw[:-CHECK_BYTES], raw[-CHECK_BYTES:]
    if _check(payload) != check:
        raise InvalidInvite("the invite token's checksum does not match (a typo, or only part of it?)")
    try:
        value = codec.decode(payload, max_size=MAX_TOKEN_LENGTH)
    except ProtocolError:
        raise InvalidInvite("the invite token does not hold an invite") from None
    if type(value) is not list or len(value) != 5:
        raise InvalidInvite("the invite token does not hold an invite")
    version, network, node, address, authority = value
    if type(version) is not int or version != VERSION:
        raise InvalidInvite(f"unsupported invite token version {version!r}; upgrade lapnode")
    invite = Invite(network, node, address, authority)
    _validate(invite)
    return invite


def _validate(invite: Invite) -> None:
    net = invite.network
    if not (isinstance(net, str) and 0 < len(net.encode("utf-8", "surrogatepass")) <= MAX_NETWORK_BYTES):
        raise InvalidInvite(f"invite network must be 1 to {MAX_NETWORK_BYTES} bytes of text")
    if type(invite.node) is not bytes or len(invite.node) != PUBLIC_KEY_BYTES:
        raise InvalidInvite("invite node must be a 32-byte key")
    address = invite.address
    if not (
        isinstance(address, str)
        and 0 < len(address) <= MAX_ADDRESS_LENGTH
        and address.isascii()
        and address.isprintable()
        and " " not in address
    ):
        raise InvalidInvite(f"invite address must be 1 to {MAX_ADDRESS_LENGTH} printable ASCII characters")
    if invite.authority is not None and (
        type(invite.authority) is not bytes or len(invite.authority) != PUBLIC_KEY_BYTES
    ):
        raise InvalidInvite("invite authority must be a 32-byte key or absent")
