"""Joining by invite: `lapnode invite` makes a token, `lapnode join TOKEN` acts on it (SPEC §8.5).

Rule 1: the token is checked (checksum, form) before anything is stored, and `join` refuses a token for
another network, for this node itself, or, in strict mode, from an inviter whose authority this node does
not trust or who has no credential: the handshake would be refused anyway, and the operator should hear
why now rather than read it in a log later.
Rule 2: `join` does what `peer add` and `subscribe` do, in one transaction each, through the peer book;
the daemon (running or started later) picks the subscription up like any other. The joined peer's
attributes are not pinned: in strict mode they come from its credential at every handshake.
"""

from __future__ import annotations

from collections.abc import Sequence

from keys.identity import PublicKey, node_id_from_public_key, public_key_from_node_id
from keys.membership import authority_id
from lapnode.config import check_listen
from lapnode.errors import InputError
from lapnode.home import NodeHome
from lapnode.membership.node_credential import installed_credential, trusted_authorities
from lapnode.store import Store
from protocol.credential import decode_credential
from protocol.errors import ProtocolError
from protocol.invite import InvalidInvite, Invite, decode_invite, encode_invite

# Addresses a daemon may listen on but nobody can dial; compared, never bound.
_WILDCARD_HOSTS = ("0.0.0.0", "[::]", "::")  # noqa: S104


def make_invite(home: NodeHome, *, address: str | None) -> str:
    """This node's invite token: its key, the address to dial, the network and its credential's issuer."""
    dial = check_listen(address if address is not None else home.config.listen)
    host = dial.rpartition(":")[0]
    if host in _WILDCARD_HOSTS:
        raise InputError(
            f"this node listens on {dial}, which nobody can dial; give the address members should use: "
            "lapnode invite --address HOST:PORT"
        )
    wire = installed_credential(home)
    issuer = None
    if wire is not None:
        try:
            issuer = decode_credential(wire).unverified_body.authority
        except ProtocolError as exc:
            raise InputError(f"the installed credential is damaged ({exc}); install it again") from None
    node = public_key_from_node_id(home.node_id())
    return encode_invite(Invite(home.config.network, node, dial, issuer))


def read_invite(home: NodeHome, token: str) -> Invite:
    """Decode a token and check it against this node (Rule 1)."""
    try:
        invite = decode_invite(token)
    except InvalidInvite as exc:
        raise InputError(str(exc)) from None
    if invite.network != home.config.network:
        raise InputError(
            f"the invite is for network {invite.network!r}; this node is on {home.config.network!r}"
        )
    if invite.node == public_key_from_node_id(home.node_id()):
        raise InputError("the invite is this node's own")
    try:
        check_listen(invite.address)
    except InputError:
        raise InputError(f"the invite's address {invite.address!r} is not HOST:PORT") from None
    trusted = trusted_authorities(home.config)
    if trusted:
        if invite.authority is None:
            raise InputError(
                "the inviter has no credential, and this node only talks to members with one; "
                "ask the inviter to install theirs and invite you again"
            )
        if invite.authority not in trusted:
            raise InputError(
                f"the inviter's credential is from {authority_id(PublicKey(invite.authority))}, which this "
                "node does not trust; check that id with your secretariat, then `lapnode authority trust` it"
            )
        if installed_credential(home) is None:
            raise InputError(
                "this node has no credential, so the inviter will refuse it; "
                "install yours first: lapnode credential install FILE"
            )
    return invite


async def join(store: Store, invite: Invite, *, name: str | None, kinds: Sequence[str], now_ms: int) -> None:
    """Add the inviter as a peer and subscribe to it (Rule 2)."""
    existing = await store.peers.find(invite.node)
    if existing is not None and existing.blocked:
        raise InputError(
            f"{node_id_from_public_key(invite.node)} is blocked on this node; remove and add it again first"
        )
    await store.peers.add(invite.node, invite.address, now_ms=now_ms, name=name)
    await store.peers.set_subscription(invite.node, True, tuple(kinds))
