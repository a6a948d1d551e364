"""The lapnode handshake: Noise XX plus identity binding (protocol/SPEC.md §6.1, §6.2).

Rule 1: the Noise static key (X25519) is a key of its own, passed in; a node's Ed25519 identity vouches for
it with a signature inside the encrypted handshake payload, as libp2p's Noise handshake does. The signed
bytes are `"lapnode/noise-static/v1\\x00" ‖ len(net) ‖ net ‖ static`, and the static key signed is the
one Noise authenticated (`HandshakeState.remote_static`), never a key the payload names.
Rule 2: the receiver checks, in this order: payload shape (canonical map, exact keys and types), network
id, signature, then whom it expected: the initiator accepts only the responder it pinned, the responder
only a peer its `is_allowed` callable admits. The initiator checks the responder before it writes message
3, so an impostor never learns who is calling.
Rule 3: whatever the remote sends that fails raises a `ProtocolError` whose message is for the local log
only; `protocol.session` turns it into one opaque `HandshakeFailed`.
Rule 4: message 1 carries no payload: it travels in clear, before either side knows the other.
Rule 5: membership (SPEC §8.3). Given a `CredentialCheck`, a side refuses a peer whose payload carries no
credential, or one that `protocol.credential.verify_credential` refuses for the node key this handshake
authenticated; the initiator does so before it writes message 3. Without one (legacy mode) a credential is
carried up unverified and grants nothing.
Rule 6: key rotation (SPEC §8.8). A side that has rotated its key sends its latest rotation (`rot`) in
its payload. A receiver that would refuse the presented key accepts it when the rotation verifies (both
keys signed it), is into exactly that key, and is from a key it would accept (the pinned key, an admitted
peer) that is not revoked: a peer pinned to the old key follows the rotation without an operator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from keys.errors import BadSignature
from keys.identity import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, Identity, PublicKey
from protocol import codec
from protocol.credential import (
    MAX_CREDENTIAL_SIZE,
    MAX_NETWORK_BYTES,
    Credential,
    CredentialCheck,
    network_bytes,
    verify_credential,
)
from protocol.errors import ProtocolError
from protocol.noise import DHLEN, TAGLEN, HandshakeState, TransportCiphers
from protocol.statements import Rotation, verify_rotation

__all__ = [
    "HANDSHAKE_MESSAGES",
    "MAX_CREDENTIAL_SIZE",
    "MAX_HANDSHAKE_MESSAGE",
    "MAX_HANDSHAKE_PAYLOAD",
    "MAX_NETWORK_BYTES",
    "MAX_ROTATION_SIZE",
    "PROLOGUE",
    "STATIC_KEY_DOMAIN",
    "BindingError",
    "Handshake",
    "PeerIdentity",
    "encode_binding",
    "network_bytes",
    "static_key_message",
    "verify_binding",
]

STATIC_KEY_DOMAIN: Final = b"lapnode/noise-static/v1\x00"
PROLOGUE: Final = b"lapnode/noise/v1"
MAX_HANDSHAKE_PAYLOAD: Final = 2048
# A rotation is about 340 bytes with the longest network id; the cap keeps payload + credential in bound.
MAX_ROTATION_SIZE: Final = 512
# Message 2 is the longest: e, encrypted s, encrypted payload (§6.1).
MAX_HANDSHAKE_MESSAGE: Final = DHLEN + (DHLEN + TAGLEN) + (MAX_HANDSHAKE_PAYLOAD + TAGLEN)
HANDSHAKE_MESSAGES: Final = 3

_REQUIRED_KEYS: Final = frozenset({"net", "node", "sig"})
_ALLOWED_KEYS: Final = _REQUIRED_KEYS | {"cred", "rot"}

IsAllowed = Callable[[bytes], bool]


class BindingError(ProtocolError):
    """The peer's handshake payload does not bind an identity we accept (wrong network, signature, peer)."""


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """Who is at the other end, once the handshake has checked it."""

    node_key: PublicKey
    # The credential bytes as the peer sent them; checked only when the handshake has a CredentialCheck.
    unverified_credential: bytes | None
    # Set only when a CredentialCheck verified `unverified_credential` for `node_key` (Rule 5).
    credential: Credential | None = None
    # The rotation bytes as the peer sent them, and once verified into `node_key`, the rotation (Rule 6).
    unverified_rotation: bytes | None = None
    rotation: Rotation | None = None


def static_key_message(network: str, static_public: bytes) -> bytes:
    """What the identity key signs, after the domain: `len(net) ‖ net ‖ static` (§6.2)."""
    net = network_bytes(network)
    return bytes([len(net)]) + net + static_public


def encode_binding(
    identity: Identity,
    *,
    network: str,
    static_public: bytes,
    credential: bytes | None = None,
    rotation: bytes | None = None,
) -> bytes:
    """The handshake payload that binds `static_public` to `identity` on `network` (§6.2)."""
    payload: dict[str, object] = {
        "net": network,
        "node": identity.public_key.raw,
        "sig": identity.sign(STATIC_KEY_DOMAIN, static_key_message(network, static_public)),
    }
    if credential is not None:
        payload["cred"] = credential
    if rotation is not None:
        payload["rot"] = rotation
    return codec.encode(payload)


def verify_binding(unverified_payload: bytes, *, network: str, remote_static: bytes) -> PeerIdentity:
    """Check a peer's handshake payload against the static key Noise authenticated; raise BindingError."""
    value = codec.decode(unverified_payload, max_size=MAX_HANDSHAKE_PAYLOAD)
    if type(value) is not dict or not _REQUIRED_KEYS <= value.keys() <= _ALLOWED_KEYS:
        raise BindingError("handshake payload is not a map with the keys net, node, sig (and cred)")
    net, node, sig, cred, rot = value["net"], value["node"], value["sig"], value.get("cred"), value.get("rot")
    if type(net) is not str or type(node) is not bytes or type(sig) is not bytes:
        raise BindingError("handshake payload fields have the wrong types")
    if net != network:
        raise BindingError(f"peer is on network {net[:MAX_NETWORK_BYTES]!r}, not {network!r}")
    if len(node) != PUBLIC_KEY_BYTES or len(sig) != SIGNATURE_BYTES:
        raise BindingError("handshake payload node key or signature has the wrong length")
    if cred is not None and (type(cred) is not bytes or not 0 < len(cred) <= MAX_CREDENTIAL_SIZE):
        raise BindingError(f"handshake credential must be 1 to {MAX_CREDENTIAL_SIZE} bytes")
    if rot is not None and (type(rot) is not bytes or not 0 < len(rot) <= MAX_ROTATION_SIZE):
        raise BindingError(f"handshake rotation must be 1 to {MAX_ROTATION_SIZE} bytes")
    node_key = PublicKey(node)
    try:
        node_key.verify(STATIC_KEY_DOMAIN, static_key_message(network, remote_static), sig)
    except BadSignature:
        raise BindingError(f"{node_key.node_id} did not sign the Noise static key it used") from None
    return PeerIdentity(node_key, cred, unverified_rotation=rot)


class Handshake:
    """One side of the three-message handshake, without framing: `protocol.session` drives it.

    The initiator calls `write()` (message 1), `read()` (message 2), `write()` (message 3); the responder
    `read()`, `write()`, `read()`; `is_my_turn()` says whether `write()` comes next. Once `read()` has
    raised, every further call raises ValueError: a failed handshake is never resumed.
    """

    __slots__ = (
        "_accept",
        "_authenticated",
        "_check",
        "_credential",
        "_failed",
        "_identity",
        "_network",
        "_noise",
        "_peer",
        "_rotation",
    )

    def __init__(
        self,
        noise: HandshakeState,
        *,
        identity: Identity,
        network: str,
        accept: Callable[[PublicKey], None],
        credential: bytes | None,
        credential_check: CredentialCheck | None = None,
        rotation: bytes | None = None,
    ) -> None:
        network_bytes(network)
        if rotation is not None and not (
            isinstance(rotation, bytes) and 0 < len(rotation) <= MAX_ROTATION_SIZE
        ):
            raise ValueError(f"a rotation is 1 to {MAX_ROTATION_SIZE} bytes")
        if credential is not None and not (
            isinstance(credential, bytes) and 0 < len(credential) <= MAX_CREDENTIAL_SIZE
        ):
            raise ValueError(f"a credential is 1 to {MAX_CREDENTIAL_SIZE} bytes")
        self._noise = noise
        self._identity = identity
        self._network = network
        self._accept = accept
        self._credential = credential
        self._check = credential_check
        self._rotation = rotation
        self._peer: PeerIdentity | None = None
        self._authenticated: PublicKey | None = None
        self._failed = False

    @classmethod
    def initiator(
        cls,
        *,
        identity: Identity,
        network: str,
        static_private: bytes,
        ephemeral_private: bytes,
        responder: PublicKey,
        credential: bytes | None = None,
        credential_check: CredentialCheck | None = None,
        rotation: bytes | None = None,
    ) -> Handshake:
        if not isinstance(responder, PublicKey):
            raise TypeError("the pinned responder is a keys.identity.PublicKey")

        def accept(peer: PublicKey) -> None:
            if peer != responder:
                raise BindingError(f"responder is {peer.node_id}, not the pinned {responder.node_id}")

        noise = HandshakeState(
            initiator=True,
            static_private=static_private,
            ephemeral_private=ephemeral_private,
            prologue=PROLOGUE,
        )
        return cls(
            noise,
            identity=identity,
            network=network,
            accept=accept,
            credential=credential,
            credential_check=credential_check,
            rotation=rotation,
        )

    @classmethod
    def responder(
        cls,
        *,
        identity: Identity,
        network: str,
        static_private: bytes,
        ephemeral_private: bytes,
        is_allowed: IsAllowed,
        credential: bytes | None = None,
        credential_check: CredentialCheck | None = None,
        rotation: bytes | None = None,
    ) -> Handshake:
        def accept(peer: PublicKey) -> None:
            if is_allowed(peer.raw) is not True:
                raise BindingError(f"initiator {peer.node_id} is not an allowed peer")

        noise = HandshakeState(
            initiator=False,
            static_private=static_private,
            ephemeral_private=ephemeral_private,
            prologue=PROLOGUE,
        )
        return cls(
            noise,
            identity=identity,
            network=network,
            accept=accept,
            credential=credential,
            credential_check=credential_check,
            rotation=rotation,
        )

    @property
    def complete(self) -> bool:
        """True once all three messages passed and the peer was accepted."""
        return self._noise.complete and self._peer is not None and not self._failed

    @property
    def peer(self) -> PeerIdentity | None:
        """The accepted peer: set by the read of message 2 (initiator) or 3 (responder)."""
        return self._peer

    @property
    def authenticated_peer(self) -> PublicKey | None:
        """The node key whose binding verified, even if the peer was then refused: a refused peer is
        known for certain (it proved its keys), so the I/O layer may score it."""
        return self._authenticated

    @property
    def handshake_hash(self) -> bytes:
        return self._noise.handshake_hash

    def is_my_turn(self) -> bool:
        return not self._failed and self._noise.is_my_turn()

    def write(self) -> bytes:
        """The next handshake message of this side (Noise message, without framing)."""
        if self._failed:
            raise ValueError("this handshake has failed and cannot continue")
        if self._noise.message_index == 0:
            return self._noise.write_message(b"")
        return self._noise.write_message(
            encode_binding(
                self._identity,
                network=self._network,
                static_public=self._noise.static_public,
                credential=self._credential,
                rotation=self._rotation,
            )
        )

    def read(self, message: bytes) -> None:
        """Process the peer's next handshake message; raise a ProtocolError if it is refused."""
        if self._failed:
            raise ValueError("this handshake has failed and cannot continue")
        try:
            self._read(message)
        except ProtocolError:
            self._failed = True
            raise

    def transport(self) -> TransportCiphers:
        if not self.complete:
            raise ValueError("the handshake is not complete")
        return self._noise.transport()

    def _read(self, message: bytes) -> None:
        first = self._noise.message_index == 0
        payload = self._noise.read_message(message)
        if first:
            if payload:
                raise BindingError("handshake message 1 must carry no payload")
            return
        remote_static = self._noise.remote_static
        assert remote_static is not None  # XX sends "s" in messages 2 and 3
        peer = verify_binding(payload, network=self._network, remote_static=remote_static)
        self._authenticated = peer.node_key
        rotation = self._rotation_into(peer)
        try:
            self._accept(peer.node_key)
        except BindingError:
            if rotation is None:
                raise
            # Rule 6: admitted as the key it rotated from.
            self._accept(PublicKey(rotation.old))
        if rotation is not None:
            peer = PeerIdentity(
                peer.node_key, peer.unverified_credential, None, peer.unverified_rotation, rotation
            )
        if self._check is not None:
            if peer.unverified_credential is None:
                raise BindingError(f"{peer.node_key.node_id} presented no credential")
            credential = verify_credential(
                peer.unverified_credential,
                network=self._network,
                check=self._check,
                subject=peer.node_key.raw,
            )
            peer = PeerIdentity(
                peer.node_key, peer.unverified_credential, credential, peer.unverified_rotation, peer.rotation
            )
        self._peer = peer

    def _rotation_into(self, peer: PeerIdentity) -> Rotation | None:
        """The peer's rotation, verified and into the key it presents (Rule 6); None if it sent none."""
        if peer.unverified_rotation is None:
            return None
        rotation = verify_rotation(peer.unverified_rotation, network=self._network)
        if rotation.new != peer.node_key.raw:
            raise BindingError("the peer's rotation is not into the key it presented")
        if self._check is not None and rotation.old in self._check.revoked:
            raise BindingError(f"{peer.node_key.node_id} rotated from a revoked key")
        return rotation
