"""Every exit's recipient, decision and audit entries: the one adapter between the exits and the policy.

Rule 1: every exit decides through `lapnode.policy.decide` with the record's stored hop count, the node's
policy.toml and the clock (`decide_for`), and takes what leaves from `disclosed_record` /
`disclosed_wire`. Nothing here chooses by itself. The gossip feed calls `decide` directly on its hot path
with the same arguments (lapnode/daemon/feed.py).
Rule 2: a recipient is described by evidence, never by a claim (DESIGN-NOTES 5). A peer's attributes
come, in strict mode (SPEC §8.4), from the credential it last presented in a verified handshake,
re-verified here at the exit's own time against the authorities, revocations and rotations this node holds
now (`PeerEvidence`); a peer with no credential that still verifies has no attributes and matches no
audience clause. In legacy mode they come from the peer book (what the operator pinned). A TAXII token's
come from what the operator set on it, this node's own organisation's from config.toml; the public has no
attributes. A node id that is not in the peer book is an error, not an anonymous recipient.
Rule 3: every exit that discloses (gossip, `bundle export`, `export stix|misp|xarf|csv`, TAXII pages)
appends each decision it made to the audit trail, once per export or page, and only then writes the file
or sends the response; if the append fails, nothing is disclosed (`AuditNotRecorded`). Previews
(`query --as`, `show --as`, `policy explain`, `publish --dry-run`) disclose nothing and record nothing.
Rule 4: the trail names a node recipient by its key and any other by a label (`Audience.audit_recipient`):
"public-export", "taxii:<token name>", or "<exit>:<file>" for a file made for this node's own
organisation. Labels are made valid, bounded Unicode here, whatever a file name holds.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy.exc import SQLAlchemyError

from keys.identity import node_id_from_public_key, public_key_from_node_id
from keys.membership import TrustedAuthorities
from lapnode.config import Config
from lapnode.errors import LapnodeError
from lapnode.policy import (
    PUBLIC,
    Decision,
    Disclosable,
    Policy,
    Recipient,
    Via,
    decide,
    disclosed_record,
)
from lapnode.store import AuditEvent, Peer, Store, StoredRecord, StoreError
from lapnode.store.audit import MAX_LABEL_CHARS
from protocol.credential import CredentialCheck, CredentialError, verify_credential
from protocol.envelope import Record

PUBLIC_LABEL: Final = "public-export"
STDOUT_NAME: Final = "<stdout>"


class RecordWithheld(LapnodeError):
    """The record would not go to that recipient; the message gives every reason."""


class AuditNotRecorded(LapnodeError):
    """The exit's decisions could not be appended to the audit trail, so nothing was disclosed."""


def _pseudo_key(label: str) -> bytes:
    # Recipients that are not nodes still need a key for `decide`: one that can never be an author's or a
    # named member's (it is a hash, not a point on the curve that any node's key was made from).
    return hashlib.blake2b(label.encode(), digest_size=32, person=b"lapnode.export").digest()


def audit_label(text: str) -> str:
    """`text` as a valid audit recipient label (Rule 4): undecodable bytes of a file name (surrogate
    escapes) become U+FFFD, and a label too long for the trail keeps its end, where a file's name is."""
    clean = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace") or "?"
    if len(clean) <= MAX_LABEL_CHARS:
        return clean
    return "…" + clean[-(MAX_LABEL_CHARS - 1) :]


def file_label(exit_name: str, path: str) -> str:
    """The label of a file made for this node's own organisation: the exit and where the file went."""
    where = STDOUT_NAME if path == "-" else os.path.abspath(path)
    return audit_label(f"{exit_name}:{where}")


@dataclass(frozen=True, slots=True)
class Audience:
    """Who an exit serves, by which way (`via`), how the operator reads it, and how the trail names it."""

    recipient: Recipient
    via: Via
    label: str
    audit_recipient: bytes | str

    @classmethod
    def public(cls) -> Audience:
        return cls(PUBLIC, "public", "a public export", PUBLIC_LABEL)


@dataclass(frozen=True, slots=True)
class PeerEvidence:
    """What vouches for a peer's attributes at an exit without a session (Rule 2): in strict mode, its
    last credential checked against what this node trusts and holds at `now_ms`."""

    network: str
    trusted: TrustedAuthorities
    revoked: frozenset[bytes]
    retired: frozenset[bytes]
    now_ms: int

    @property
    def strict(self) -> bool:
        return bool(self.trusted)

    def recipient(self, peer: Peer) -> tuple[Recipient, str]:
        """The peer's attributes and how the operator reads where they came from."""
        if not self.strict:
            pinned = Recipient(peer.key, peer.org, peer.category, peer.jurisdiction)
            return pinned, "as pinned in the peer book"
        if peer.credential is None:
            return Recipient(peer.key), "no credential on file: it has not connected since it was added"
        check = CredentialCheck(self.trusted, self.now_ms, self.revoked, self.retired)
        try:
            credential = verify_credential(
                peer.credential, network=self.network, check=check, subject=peer.key
            )
        except CredentialError as exc:
            return Recipient(peer.key), f"its last credential no longer holds ({exc})"
        recipient = Recipient(peer.key, credential.org, credential.category, credential.jurisdiction)
        return recipient, "from its credential"


async def peer_evidence(store: Store, config: Config, *, now_ms: int) -> PeerEvidence:
    """The evidence for peers' attributes as this node holds it now."""
    trusted = TrustedAuthorities.from_ids(config.authorities)
    if not trusted:
        return PeerEvidence(config.network, trusted, frozenset(), frozenset(), now_ms)
    revoked = await store.statements.revoked()
    retired = frozenset(await store.statements.retired())
    return PeerEvidence(config.network, trusted, revoked, retired, now_ms)


def audience_for_peer(peer: Peer, via: Via, evidence: PeerEvidence) -> Audience:
    recipient, source = evidence.recipient(peer)
    name = f" ({peer.name})" if peer.name else ""
    label = f"peer {node_id_from_public_key(peer.key)}{name}, attributes {source}"
    return Audience(recipient, via, label, peer.key)


async def peer_audience(store: Store, config: Config, node_id: str, via: Via, *, now_ms: int) -> Audience:
    """The audience for a peer named by node id; UnknownPeer if the operator never added it (Rule 2)."""
    peer = await store.peers.get(public_key_from_node_id(node_id))
    return audience_for_peer(peer, via, await peer_evidence(store, config, now_ms=now_ms))


def local_audience(config: Config, *, audit_recipient: str) -> Audience:
    """This node's own organisation (its MISP, OpenCTI or SIEM), with the attributes from config.toml.

    A file is made for it, so the way is "bundle"; `audit_recipient` names the file (`file_label`).
    """
    recipient = Recipient(_pseudo_key("local"), config.org, config.category, config.jurisdiction)
    label = f"{config.org} (this node's organisation)"
    return Audience(recipient, "bundle", label, audit_label(audit_recipient))


def token_audience(name: str, org: str | None, category: str | None, jurisdiction: str | None) -> Audience:
    """A TAXII client, with the attributes the operator set on its token."""
    recipient = Recipient(_pseudo_key(f"taxii:{name}"), org, category, jurisdiction)
    return Audience(recipient, "bundle", f"TAXII token {name!r}", audit_label(f"taxii:{name}"))


def decide_for(
    header: Disclosable, hops: int, audience: Audience, *, our_key: bytes, policy: Policy, now_ms: int
) -> Decision:
    """The decision for one record (its verified header and stored hop count) and this audience."""
    return decide(
        header, audience.recipient, now_ms=now_ms, our_key=our_key, hops=hops, policy=policy, via=audience.via
    )


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One held record, the decision for an audience, and what would leave: the record, a redacted
    copy, or None."""

    stored: StoredRecord
    decision: Decision
    record: Record | None

    @property
    def shown(self) -> StoredRecord | None:
        if self.record is None:
            return None
        return StoredRecord(self.record, self.stored.received_at, self.stored.hops, self.stored.flags)

    def withheld_fields(self) -> list[str]:
        """The fields this record carries that the decision withholds (none unless it redacts)."""
        if self.decision.action != "redact":
            return []
        return sorted(self.decision.fields & self.stored.record.disclosures.keys())


def disclose(
    items: Iterable[StoredRecord], audience: Audience, *, our_key: bytes, policy: Policy, now_ms: int
) -> list[Disclosure]:
    result = []
    for item in items:
        if item.flags:
            # Its author's key was revoked, or retired before it (SPEC §8.7-8.8): no peer would accept
            # it, and gossip never passes it on, so no other exit does either.
            reasons = tuple(f"{flag}: not passed on" for flag in item.flags)
            result.append(Disclosure(item, Decision("withhold", reasons), None))
            continue
        decision = decide_for(
            item.record.header, item.hops, audience, our_key=our_key, policy=policy, now_ms=now_ms
        )
        result.append(Disclosure(item, decision, disclosed_record(item.record, decision)))
    return result


def shown_or_withheld(disclosure: Disclosure, audience: Audience) -> StoredRecord:
    """The record as the audience would have it; RecordWithheld (with every reason) if it would not."""
    shown = disclosure.shown
    if shown is None:
        record_id = disclosure.stored.record.id.hex()
        reasons = "; ".join(disclosure.decision.reasons)
        raise RecordWithheld(f"record {record_id} would be withheld from {audience.label}: {reasons}")
    return shown


def audit_events(
    decided: Iterable[tuple[bytes, Decision]], audience: Audience, *, exit_name: str, time_ms: int
) -> list[AuditEvent]:
    """One audit event per (record id, decision), all for `audience`, through `exit_name`, at `time_ms`."""
    recipient = audience.audit_recipient
    return [
        AuditEvent(bytes(rid), recipient, decision.action, decision.reasons, time_ms, exit_name)
        for rid, decision in decided
    ]


async def record_decisions(store: Store, events: Sequence[AuditEvent]) -> None:
    """Append an exit's decisions in one transaction (Rule 3); AuditNotRecorded if the store refuses."""
    try:
        await store.audit.append(events)
    except (StoreError, SQLAlchemyError) as exc:
        # The cause goes into the message (the operator must fix it); it holds no secret, only the
        # database's own complaint, on one line.
        cause = " ".join(str(getattr(exc, "orig", None) or exc).split())[:200]
        raise AuditNotRecorded(
            f"could not record the decisions in the audit trail ({cause}); nothing was disclosed"
        ) from None
