"""Membership statements: revocations, key rotations and retractions, which every node keeps and passes
on (protocol/SPEC.md §8.7, §8.8, §8.10).

Rule 1: a statement is `{"b": body bytes, "s": signature, ...}`, the body a canonical map whose `t` names
its type. Each type has its own signing domain and signers; every signature is over
`domain ‖ len(net) ‖ net ‖ b`, with `net` the verifier's network, over the body bytes as they travel.
Rule 2: `verify_statement` is the one verifier for every path (gossip, `membership import`, the CLI that
issues one). It raises `StatementError` naming the first rule broken; `UntrustedStatement` (a revocation
by an authority this node does not trust) is separate, because it is not the sender's fault: federated
nodes trust different authorities.
Rule 3: statements carry no scope and are not records: no policy decides on them, and every node that can
verify one stores it and passes it to every peer (§8.7). They never expire.
Rule 4: a statement's id is BLAKE2b-256 of its whole wire bytes (person `lapnode.stmtid1`): the encoding
is canonical and the signatures are deterministic and strict, so one statement has one id.
Rule 5: a rotation is signed by both keys, the old one (`s`) and the new one (`n`), over the same bytes:
the old key hands over, the new key accepts. No authority is involved, so every node, strict or legacy,
can verify one. It retires the old key for everything after it: `Rotation.allows` is the one test of
whether a record by the old key is within its validity (its creation time and sequence number).
Rule 6: a retraction (a tombstone, §8.10) is signed by a node key, the author of the record it names, and
says nothing confidential: the record id (a hash), the author, the time and a reason code from the closed
vocabulary `RETRACTION_REASONS`. Free text would reach every member of the network, so there is none.
Whether the signer may retract the record (its author, or that author's rotation successor) is decided
where the record is known, by the store; here only the signature is checked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
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
from keys.membership import (
    RETRACTION_DOMAIN,
    REVOCATION_DOMAIN,
    ROTATION_DOMAIN,
    AuthorityId,
    TrustedAuthorities,
    authority_id,
)
from protocol import codec
from protocol.codec import Value
from protocol.credential import network_bytes, signed_message
from protocol.errors import ProtocolError
from protocol.scope import MAX_TIME_MS

STATEMENT_VERSION: Final = 1
MAX_STATEMENT_SIZE: Final = 2048
MAX_REASON_CHARS: Final = 500
REVOCATION_FILE_LABEL: Final = "lapnode-revocation/1"
ROTATION_FILE_LABEL: Final = "lapnode-rotation/1"
REVOKE: Final = "revoke"
ROTATE: Final = "rotate"
RETRACT: Final = "retract"
# Why an author withdrew a record (Rule 6, §8.10): codes only, never an operator's words.
RETRACTION_REASONS: Final = ("error", "duplicate", "withdrawn", "legal", "superseded", "other")
RECORD_ID_BYTES: Final = 32
MAX_SEQ: Final = 2**63 - 1
_ID_PERSON: Final = b"lapnode.stmtid1"
_REVOCATION_KEYS: Final = frozenset({"v", "t", "net", "auth", "node", "reason", "at"})
_ROTATION_KEYS: Final = frozenset({"v", "t", "net", "old", "new", "at", "seq"})
_RETRACTION_KEYS: Final = frozenset({"v", "t", "net", "author", "target", "reason", "at"})

StatementId = bytes


class StatementError(ProtocolError):
    """A membership statement is malformed, for another network, or its signature does not verify."""


class UntrustedStatement(ProtocolError):
    """A well-formed statement by an authority this node does not trust: ignored, not an offence."""


@dataclass(frozen=True, slots=True)
class Revocation:
    """An authority's signed statement that a node key is no longer a member. Only `verify_statement`
    (and `issue_revocation`) make one."""

    network: str
    authority: bytes
    subject: bytes
    reason: str
    issued_at: int
    id: StatementId
    wire: bytes

    @property
    def node_id(self) -> NodeId:
        return node_id_from_public_key(self.subject)

    @property
    def authority_id(self) -> AuthorityId:
        return authority_id(PublicKey(self.authority))


@dataclass(frozen=True, slots=True)
class Rotation:
    """A node's signed statement that its key `old` is replaced by `new` from `rotated_at` on, `old`
    having signed records up to sequence number `last_seq` (0: none). Only `verify_statement`,
    `verify_rotation` and `issue_rotation` make one."""

    network: str
    old: bytes
    new: bytes
    rotated_at: int
    last_seq: int
    id: StatementId
    wire: bytes

    @property
    def old_node_id(self) -> NodeId:
        return node_id_from_public_key(self.old)

    @property
    def new_node_id(self) -> NodeId:
        return node_id_from_public_key(self.new)

    def allows(self, seq: int, created: int) -> bool:
        """Whether a record of the old key at `seq`, created at `created`, is within the key's validity:
        made before the rotation, and not past the last sequence number the old key handed over."""
        return seq <= self.last_seq and created <= self.rotated_at


@dataclass(frozen=True, slots=True)
class Retraction:
    """A record author's signed statement that its record `target` is withdrawn (a tombstone, §8.10).
    Only `verify_statement` (and `issue_retraction`) make one."""

    network: str
    author: bytes
    target: bytes
    reason: str
    retracted_at: int
    id: StatementId
    wire: bytes

    @property
    def author_id(self) -> NodeId:
        return node_id_from_public_key(self.author)


Statement = Revocation | Rotation | Retraction


def statement_id(wire: bytes) -> StatementId:
    return hashlib.blake2b(wire, digest_size=32, person=_ID_PERSON).digest()


def digest(ids: Iterable[StatementId]) -> bytes:
    """What a node says it holds (§8.7): BLAKE2b-256 over its statement ids, sorted, concatenated."""
    hashed = hashlib.blake2b(digest_size=32, person=_ID_PERSON)
    for one in sorted(ids):
        hashed.update(one)
    return hashed.digest()


def issue_revocation(
    authority: Identity, *, network: str, subject: bytes, reason: str, issued_at: int
) -> Revocation:
    """Sign a revocation of `subject` (a node key). Invalid values raise StatementError."""
    body = {
        "v": STATEMENT_VERSION,
        "t": REVOKE,
        "net": network,
        "auth": authority.public_key.raw,
        "node": subject,
        "reason": reason,
        "at": issued_at,
    }
    _check_revocation(body)
    body_bytes = codec.encode(body)
    signature = authority.sign(REVOCATION_DOMAIN, signed_message(network, body_bytes))
    wire = codec.encode({"b": body_bytes, "s": signature})
    made = verify_statement(wire, network=network, trusted=TrustedAuthorities([authority.public_key]))
    assert isinstance(made, Revocation)
    return made


def issue_rotation(old: Identity, new: Identity, *, network: str, rotated_at: int, last_seq: int) -> Rotation:
    """Sign a rotation from `old` to `new` with both keys (Rule 5). Invalid values raise StatementError."""
    body = {
        "v": STATEMENT_VERSION,
        "t": ROTATE,
        "net": network,
        "old": old.public_key.raw,
        "new": new.public_key.raw,
        "at": rotated_at,
        "seq": last_seq,
    }
    _check_rotation(body)
    body_bytes = codec.encode(body)
    message = signed_message(network, body_bytes)
    wire = codec.encode(
        {"b": body_bytes, "n": new.sign(ROTATION_DOMAIN, message), "s": old.sign(ROTATION_DOMAIN, message)}
    )
    return verify_rotation(wire, network=network)


def issue_retraction(
    author: Identity, *, network: str, target: bytes, reason: str, retracted_at: int
) -> Retraction:
    """Sign a tombstone for `target`, a record of `author` (Rule 6). Invalid values raise StatementError."""
    body = {
        "v": STATEMENT_VERSION,
        "t": RETRACT,
        "net": network,
        "author": author.public_key.raw,
        "target": target,
        "reason": reason,
        "at": retracted_at,
    }
    _check_retraction(body)
    body_bytes = codec.encode(body)
    signature = author.sign(RETRACTION_DOMAIN, signed_message(network, body_bytes))
    made = _verify_retraction(
        codec.encode({"b": body_bytes, "s": signature}),
        {"b": body_bytes, "s": signature},
        body,
        body_bytes,
        network=network,
    )
    return made


def verify_statement(raw: bytes, *, network: str, trusted: TrustedAuthorities) -> Statement:
    """Decode and verify one statement as received (Rule 2)."""
    outer, body, body_bytes = _decode(raw)
    kind = body.get("t")
    if kind == REVOKE:
        return _verify_revocation(raw, outer, body, body_bytes, network=network, trusted=trusted)
    if kind == ROTATE:
        return _verify_rotation(raw, outer, body, body_bytes, network=network)
    if kind == RETRACT:
        return _verify_retraction(raw, outer, body, body_bytes, network=network)
    raise StatementError("unknown membership statement type")


def verify_rotation(raw: bytes, *, network: str) -> Rotation:
    """Verify bytes that must be a rotation (the handshake's `rot`, §6.2); anything else is refused."""
    outer, body, body_bytes = _decode(raw)
    if body.get("t") != ROTATE:
        raise StatementError("not a key rotation")
    return _verify_rotation(raw, outer, body, body_bytes, network=network)


def _decode(raw: bytes) -> tuple[dict[str, Value], dict[str, Value], bytes]:
    if not isinstance(raw, bytes):
        raise StatementError("a statement is bytes")
    try:
        outer = codec.decode(raw, max_size=MAX_STATEMENT_SIZE)
        if type(outer) is not dict or type(outer.get("b")) is not bytes:
            raise StatementError("a statement is a map with a body b")
        body = codec.decode(outer["b"], max_size=MAX_STATEMENT_SIZE)
    except StatementError:
        raise
    except ProtocolError as exc:
        raise StatementError(f"statement: {exc}") from None
    if type(body) is not dict:
        raise StatementError("a statement body is a map")
    return outer, body, outer["b"]


def _verify_revocation(
    raw: bytes,
    outer: dict[str, Value],
    body: dict[str, Value],
    body_bytes: bytes,
    *,
    network: str,
    trusted: TrustedAuthorities,
) -> Revocation:
    if set(outer) != {"b", "s"} or type(outer["s"]) is not bytes or len(outer["s"]) != SIGNATURE_BYTES:
        raise StatementError("a revocation is a map with exactly b and a 64-byte s")
    _check_revocation(body)
    if body["net"] != network:
        raise StatementError(f"the revocation is for network {body['net']!r}, not {network!r}")
    try:
        trusted.verify(body["auth"], REVOCATION_DOMAIN, signed_message(network, body_bytes), outer["s"])
    except UntrustedAuthority:
        signer = authority_id(PublicKey(body["auth"]))
        raise UntrustedStatement(
            f"the revocation is signed by {signer}, which this node does not trust"
        ) from None
    except BadSignature:
        raise StatementError("the authority's signature on the revocation does not verify") from None
    return Revocation(
        network=body["net"],
        authority=body["auth"],
        subject=body["node"],
        reason=body["reason"],
        issued_at=body["at"],
        id=statement_id(raw),
        wire=raw,
    )


def _check_revocation(body: dict[str, Value]) -> None:
    _check_common(body, _REVOCATION_KEYS, "revocation")
    for name in ("auth", "node"):
        _check_key(body, name, "revocation")
    reason = body["reason"]
    if not (
        isinstance(reason, str)
        and 0 < len(reason) <= MAX_REASON_CHARS
        and reason == reason.strip()
        and all(ord(c) >= 32 and ord(c) != 127 for c in reason)
    ):
        raise StatementError(f"revocation reason must be one line of 1 to {MAX_REASON_CHARS} characters")
    _check_time(body, "revocation")


def _verify_rotation(
    raw: bytes, outer: dict[str, Value], body: dict[str, Value], body_bytes: bytes, *, network: str
) -> Rotation:
    if set(outer) != {"b", "n", "s"} or not all(
        type(outer[name]) is bytes and len(outer[name]) == SIGNATURE_BYTES for name in ("n", "s")
    ):
        raise StatementError("a rotation is a map with exactly b and two 64-byte signatures n and s")
    _check_rotation(body)
    if body["net"] != network:
        raise StatementError(f"the rotation is for network {body['net']!r}, not {network!r}")
    message = signed_message(network, body_bytes)
    for key, signature, who in ((body["old"], outer["s"], "old"), (body["new"], outer["n"], "new")):
        try:
            PublicKey(key).verify(ROTATION_DOMAIN, message, signature)
        except BadSignature:
            raise StatementError(f"the {who} key's signature on the rotation does not verify") from None
    return Rotation(
        network=body["net"],
        old=body["old"],
        new=body["new"],
        rotated_at=body["at"],
        last_seq=body["seq"],
        id=statement_id(raw),
        wire=raw,
    )


def _check_rotation(body: dict[str, Value]) -> None:
    _check_common(body, _ROTATION_KEYS, "rotation")
    for name in ("old", "new"):
        _check_key(body, name, "rotation")
    if body["old"] == body["new"]:
        raise StatementError("a rotation must change the key")
    _check_time(body, "rotation")
    if type(body["seq"]) is not int or not 0 <= body["seq"] <= MAX_SEQ:
        raise StatementError("rotation seq must be 0 or a sequence number")


def _verify_retraction(
    raw: bytes, outer: dict[str, Value], body: dict[str, Value], body_bytes: bytes, *, network: str
) -> Retraction:
    if set(outer) != {"b", "s"} or type(outer["s"]) is not bytes or len(outer["s"]) != SIGNATURE_BYTES:
        raise StatementError("a retraction is a map with exactly b and a 64-byte s")
    _check_retraction(body)
    if body["net"] != network:
        raise StatementError(f"the retraction is for network {body['net']!r}, not {network!r}")
    try:
        PublicKey(body["author"]).verify(RETRACTION_DOMAIN, signed_message(network, body_bytes), outer["s"])
    except BadSignature:
        raise StatementError("the author's signature on the retraction does not verify") from None
    return Retraction(
        network=body["net"],
        author=body["author"],
        target=body["target"],
        reason=body["reason"],
        retracted_at=body["at"],
        id=statement_id(raw),
        wire=raw,
    )


def _check_retraction(body: dict[str, Value]) -> None:
    _check_common(body, _RETRACTION_KEYS, "retraction")
    _check_key(body, "author", "retraction")
    if type(body["target"]) is not bytes or len(body["target"]) != RECORD_ID_BYTES:
        raise StatementError("retraction target must be a 32-byte record id")
    if body["reason"] not in RETRACTION_REASONS:
        raise StatementError(f"retraction reason must be one of: {', '.join(RETRACTION_REASONS)}")
    _check_time(body, "retraction")


def _check_key(body: dict[str, Value], name: str, what: str) -> None:
    if type(body[name]) is not bytes or len(body[name]) != PUBLIC_KEY_BYTES:
        raise StatementError(f"{what} {name} must be a 32-byte key")


def _check_time(body: dict[str, Value], what: str) -> None:
    """The statement's `at`: a time in milliseconds since the epoch (a boolean is not an int)."""
    if type(body["at"]) is not int or not 0 <= body["at"] < MAX_TIME_MS:
        raise StatementError(f"{what} at is not a valid time in milliseconds")


def _check_common(body: dict[str, Value], keys: frozenset[str], what: str) -> None:
    """The rules every statement body shares: exactly its fields, the version, a network id."""
    if set(body) != keys:
        raise StatementError(f"a {what} body has exactly the fields {', '.join(sorted(keys))}")
    if type(body["v"]) is not int or body["v"] != STATEMENT_VERSION:
        raise StatementError(f"unsupported statement version {body['v']!r}")
    try:
        network_bytes(body["net"])
    except ValueError:
        raise StatementError(f"{what} net must be 1 to 64 bytes of text") from None
