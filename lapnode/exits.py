"""The exits other than gossip: what a known peer, or the public, may have of the records held here.

Rule 1: `query --as`, `show --as`, `bundle export --for/--public` and `policy explain` decide through
`lapnode.policy.decide`, with the record's stored hop count, the node's policy.toml and the clock, as
the feed does; and they take what leaves from `disclosed_record`. Nothing here chooses by itself.
Rule 2: the peer's attributes come from the peer book (what the operator pinned), never from elsewhere;
a node id that is not in the peer book is an error, not an anonymous recipient.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from keys.identity import node_id_from_public_key, public_key_from_node_id
from lapnode.errors import LapnodeError
from lapnode.policy import (
    PUBLIC,
    Decision,
    Policy,
    Recipient,
    Via,
    decide,
    disclosed_record,
)
from lapnode.store import Peer, Store, StoredRecord
from protocol.envelope import Record


class RecordWithheld(LapnodeError):
    """The record would not go to that recipient; the message gives every reason."""


@dataclass(frozen=True, slots=True)
class Audience:
    """Who an exit serves: a peer from the peer book, or the public; and by which way."""

    recipient: Recipient
    via: Via
    label: str

    @classmethod
    def public(cls) -> Audience:
        return cls(PUBLIC, "public", "a public export")


def peer_recipient(peer: Peer) -> Recipient:
    return Recipient(peer.key, peer.org, peer.category, peer.jurisdiction)


async def peer_audience(store: Store, node_id: str, via: Via) -> Audience:
    """The audience for a peer named by node id; UnknownPeer if the operator never added it (Rule 2)."""
    peer = await store.peers.get(public_key_from_node_id(node_id))
    label = f"peer {node_id_from_public_key(peer.key)}" + (f" ({peer.name})" if peer.name else "")
    return Audience(peer_recipient(peer), via, label)


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
        return StoredRecord(self.record, self.stored.received_at, self.stored.hops)

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
        decision = decide(
            item.record.header,
            audience.recipient,
            now_ms=now_ms,
            our_key=our_key,
            hops=item.hops,
            policy=policy,
            via=audience.via,
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
