"""What may leave this node through an export or the TAXII server: the one adapter every such exit uses.

Rule 1: every record passes `lapnode.policy.decide` for the recipient the export is for, exactly as gossip
does; a withheld record is dropped before its body is even decoded (the decision reads only the signed
scope, the author and the relay hops that the log copied from the verified header).
Rule 2: exports add rules that only ever withhold more (DESIGN-NOTES 4): `amber+strict` and `red` never
leave through any export or TAXII response, and a public file (anyone may read it) gets `clear` only,
so `green` (community only) and everything above it never reaches one.
Rule 3: when the decision asks for redactions, they are applied with `protocol.envelope.redact` and the
result is verified again, so an exporter only ever sees a verified record with the withheld fields gone.
Rule 4: the recipient is described by evidence, never by a claim (DESIGN-NOTES 5): a peer's pinned
attributes from the peer book, a TAXII token's attributes set by the operator, this node's own
organisation from config.toml, or "the public", which matches no audience clause at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from lapnode.config import Config
from lapnode.policy import Decision, Policy, Recipient, decide
from lapnode.store import ExportRow, Peer
from protocol.envelope import Record, redact, verify_record
from protocol.scope import SEALED_FLAG

NEVER_EXPORTED: Final = frozenset({"amber+strict", "red"})
PUBLIC_TLP: Final = frozenset({"clear"})
TLP_ORDER: Final = ("clear", "green", "amber", "amber+strict", "red")


def _pseudo_key(label: str) -> bytes:
    # Recipients that are not nodes still need a key for `decide`: one that can never be an author's or a
    # named member's (it is a hash, not a point on the curve that any node's key was made from).
    return hashlib.blake2b(label.encode(), digest_size=32, person=b"lapnode.export").digest()


@dataclass(frozen=True)
class Audience:
    """Who an export is for: the recipient `decide` judges, and whether the output is public."""

    recipient: Recipient
    public: bool
    label: str
    # This node's local rules (policy.toml): an export obeys them exactly as gossip does.
    policy: Policy


def audience_for_peer(peer: Peer, node_id: str, *, policy: Policy) -> Audience:
    recipient = Recipient(peer.key, peer.org, peer.category, peer.jurisdiction)
    return Audience(recipient, public=False, label=f"peer {node_id}", policy=policy)


def audience_local(config: Config, *, policy: Policy) -> Audience:
    """This node's own organisation (its MISP, OpenCTI or SIEM), with the attributes from config.toml."""
    recipient = Recipient(_pseudo_key("local"), config.org, config.category, config.jurisdiction)
    return Audience(recipient, public=False, label=f"{config.org} (this node's organisation)", policy=policy)


def audience_public(*, policy: Policy) -> Audience:
    return Audience(Recipient(_pseudo_key("public")), public=True, label="a public file", policy=policy)


def audience_for_token(
    name: str, org: str | None, category: str | None, jurisdiction: str | None, *, policy: Policy
) -> Audience:
    recipient = Recipient(_pseudo_key(f"taxii:{name}"), org, category, jurisdiction)
    return Audience(recipient, public=False, label=f"TAXII token {name!r}", policy=policy)


@dataclass(frozen=True)
class Disclosed:
    """A record that may go out, as it may go out (redacted if the decision said so)."""

    record: Record
    row: ExportRow


def judge(row: ExportRow, audience: Audience, *, now_ms: int, our_key: bytes) -> Decision:
    """The decision for one record and this audience: `decide`, then the export-only rules (Rule 2)."""
    decision = decide(
        row,
        audience.recipient,
        now_ms=now_ms,
        our_key=our_key,
        hops=row.hops,
        policy=audience.policy,
        via="public" if audience.public else "bundle",
    )
    extra: list[str] = []
    if row.scope.tlp in NEVER_EXPORTED:
        extra.append(f"tlp {row.scope.tlp}: never leaves through an export")
    if SEALED_FLAG in row.scope.flags:
        # Its body is ciphertext for its named members: there is nothing a STIX, MISP or CSV reader could
        # use, and the header alone would tell a TAXII client who sealed what to whom.
        extra.append("sealed: its body is for its named members only; never exported")
    if audience.public and row.scope.tlp not in PUBLIC_TLP:
        extra.append(f"tlp {row.scope.tlp}: not for a public file (only clear is)")
    if not extra:
        return decision
    earlier = decision.reasons if decision.action == "withhold" else ()
    return Decision("withhold", (*earlier, *extra))


def withheld_fields(decision: Decision) -> frozenset[str] | None:
    """None when the record may not go at all; else the fields to withhold from it (none for "send").

    The policy rework adds a "redact" action whose `fields` name what to withhold; anything this adapter
    does not recognise is treated as "withhold" (fail closed).
    """
    if decision.action == "send":
        return frozenset()
    fields = getattr(decision, "fields", None) if decision.action != "withhold" else None
    return frozenset(fields) if fields else None


def apply_decision(record: Record, decision: Decision, *, network: str) -> Record | None:
    """The record as it may go out under `decision` (Rule 3), or None."""
    withheld = withheld_fields(decision)
    if withheld is None:
        return None
    withheld &= frozenset(record.header.commitments)
    return verify_record(redact(record, withheld), network=network) if withheld else record


def disclose(
    rows: Iterable[ExportRow], audience: Audience, *, now_ms: int, our_key: bytes, network: str
) -> list[Disclosed]:
    """The rows that may go to `audience`, verified, with redactions applied (Rules 1-3)."""
    out: list[Disclosed] = []
    for row in rows:
        decision = judge(row, audience, now_ms=now_ms, our_key=our_key)
        if withheld_fields(decision) is None:
            continue  # decided on the scope alone: a withheld body is never even decoded
        record = apply_decision(verify_record(row.wire, network=network), decision, network=network)
        if record is not None:
            out.append(Disclosed(record, row))
    return out


def tlp_rank(tlp: str) -> int:
    return TLP_ORDER.index(tlp)
