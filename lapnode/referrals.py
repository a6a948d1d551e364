"""Referrals on this node: sending a lead to another member, answering one, and their current state.

Rule 1: a referral is always sealed to its one recipient (SPEC §5.2): it names a case and the agency
asked to act on it, so a relay carries only ciphertext. Its TLP is its lead's when that is stricter
than amber, else amber, or what the operator asks if stricter still. A status is sealed back to the
referral's author under the referral's TLP and relay limit (`protocol.referrals.status_scope`).
Rule 2: the lead goes to the recipient only as this node's policy allows: `lapnode.exits.decide_for`
with the recipient as audience (its attributes from the peer book; a node not in it has none, and then
only a lead that names it, or has no audience clause, may go). Withheld is an error naming every reason;
redacted embeds the redacted copy. The decision is appended to the audit trail (exit "referral") before
the referral is signed.
Rule 3: nothing reads a referral's lead before `protocol.referrals.verified_lead` has verified it.
Rule 4: only a referral's recipient answers it, and never again once it is declined or closed. The
current state is the recipient's latest status; statuses by anyone else are ignored
(`protocol.referrals.status_counts`). A referral with no status yet is "sent".
Rule 5: opening needs this node's identity key: listing, showing and answering unlock it. Records that do
not open here are left out (they are not ours to read).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from keys.identity import Identity, node_id_from_public_key
from lapnode.errors import InputError, LapnodeError
from lapnode.exits import (
    Audience,
    PeerEvidence,
    RecordWithheld,
    audience_for_peer,
    audit_events,
    decide_for,
    record_decisions,
)
from lapnode.policy import Policy, Recipient, disclosed_record
from lapnode.publishing import body_fields, publish_record
from lapnode.store import Peer, Store, StoredRecord
from protocol.envelope import Record
from protocol.errors import ProtocolError
from protocol.kinds import ReferralBody, ReferralStatusBody, SealedBody
from protocol.kinds.referral_status import ACCEPTED, CLOSED, DECLINED, FINAL, IN_PROGRESS, RECEIVED
from protocol.referrals import (
    REFERRAL_KIND,
    STATUS_KIND,
    latest_status,
    referral_recipient,
    referral_tlp,
    status_counts,
    status_scope,
    verified_lead,
)
from protocol.scope import SEALED_FLAG, TLP_LEVELS, Scope
from protocol.sealed import open_sealed

SENT: Final = "sent"
REFERRAL_EXIT: Final = "referral"
DEFAULT_REFERRAL_HOPS: Final = 2
Direction = Literal["inbox", "outbox"]


class NotTheRecipient(LapnodeError):
    """Only the member a referral is addressed to can answer it."""


class AlreadyAnswered(LapnodeError):
    """The referral is declined or closed; it cannot be answered again."""


@dataclass(frozen=True, slots=True)
class Referral:
    """A referral this node sent or received, opened, with the statuses that count, oldest first."""

    record: Record
    body: ReferralBody
    direction: Direction
    counterpart: bytes
    received_at: int
    lead: Record | None
    lead_problem: str | None
    statuses: tuple[tuple[Record, ReferralStatusBody], ...] = field(default=())

    @property
    def state(self) -> str:
        latest = latest_status(self.statuses)
        return SENT if latest is None or latest[1].status is None else latest[1].status

    @property
    def recipient(self) -> bytes:
        recipient = referral_recipient(self.record)
        assert recipient is not None, "only addressed referrals are loaded"
        return recipient

    def overdue(self, now_ms: int) -> bool:
        """Its due date has passed and it is neither declined nor closed."""
        return self.body.due is not None and self.body.due < now_ms and self.state not in FINAL


def _open(record: Record, identity: Identity) -> object | None:
    try:
        return open_sealed(record, identity)
    except ProtocolError:
        return None  # not ours to read, or it does not open: left out (Rule 5)


async def load_referrals(store: Store, identity: Identity, *, now_ms: int) -> list[Referral]:
    """Every live referral this node sent or received, with the statuses that count (Rule 4)."""
    held = await store.live_of_kinds([REFERRAL_KIND, STATUS_KIND], now_ms=now_ms)
    ours = identity.public_key.raw
    referrals: list[tuple[StoredRecord, ReferralBody]] = []
    statuses: list[tuple[Record, ReferralStatusBody]] = []
    for item in held:
        record = item.record
        if item.flags or not isinstance(record.body, SealedBody) or ours not in record.body.recipients:
            continue
        opened = _open(record, identity)
        if isinstance(opened, ReferralBody) and referral_recipient(record) is not None:
            referrals.append((item, opened))
        elif isinstance(opened, ReferralStatusBody) and opened.referral is not None:
            statuses.append((record, opened))
    by_referral: dict[str, list[tuple[Record, ReferralStatusBody]]] = {}
    for record, body in statuses:
        by_referral.setdefault(str(body.referral), []).append((record, body))
    return [
        _referral(item, body, ours, by_referral.get(item.record.id.hex(), []), store.network)
        for item, body in referrals
    ]


def _referral(
    item: StoredRecord,
    body: ReferralBody,
    ours: bytes,
    statuses: Iterable[tuple[Record, ReferralStatusBody]],
    network: str,
) -> Referral:
    record = item.record
    recipient = referral_recipient(record)
    outgoing = record.header.author == ours
    try:
        lead, problem = verified_lead(body, network=network), None
    except ProtocolError as exc:
        lead, problem = None, str(exc)
    counting = sorted(
        (pair for pair in statuses if status_counts(pair[0], record)),
        key=lambda pair: (pair[0].header.created, pair[0].header.seq),
    )
    return Referral(
        record,
        body,
        "outbox" if outgoing else "inbox",
        recipient if outgoing and recipient is not None else record.header.author,
        item.received_at,
        lead,
        problem,
        tuple(counting),
    )


def find_referral(referrals: Sequence[Referral], id_or_prefix: str) -> Referral:
    """The referral whose id starts with this prefix (8 hex characters at least)."""
    text = id_or_prefix.strip().lower()
    if len(text) < 8 or any(c not in "0123456789abcdef" for c in text):
        raise InputError(f"{id_or_prefix!r} is not a referral id (give at least 8 hex characters)")
    found = [r for r in referrals if r.record.id.hex().startswith(text)]
    if not found:
        raise InputError(f"no referral {id_or_prefix} that this node sent or received (and can open)")
    if len(found) > 1:
        raise InputError(f"{id_or_prefix} matches more than one referral; give more of the id")
    return found[0]


def recipient_audience(peers: Sequence[Peer], recipient: bytes, evidence: PeerEvidence) -> Audience:
    """The recipient as an audience: its attributes as `evidence` vouches for them (its last credential in
    strict mode, the peer book's pins in legacy mode), or none if it is not in the peer book."""
    for peer in peers:
        if peer.key == recipient:
            return audience_for_peer(peer, "gossip", evidence)
    node_id = node_id_from_public_key(recipient)
    return Audience(Recipient(recipient, None, None, None), "gossip", f"member {node_id}", recipient)


@dataclass(frozen=True, slots=True)
class ReferralRequest:
    """What the operator asks for: `refer LEAD_ID --to NODE_ID --request ... [--due] [--note]`."""

    recipient: bytes
    request: str
    due: int | None = None
    note: str | None = None
    tlp: str | None = None
    relay_hops: int = DEFAULT_REFERRAL_HOPS


def _stricter(first: str, second: str | None) -> str:
    if second is None:
        return first
    return max(first, second.lower(), key=TLP_LEVELS.index)


async def embeddable_lead(
    store: Store, lead_id: str, audience: Audience, *, our_key: bytes, policy: Policy, now_ms: int
) -> Record:
    """The lead as this node may give it to the recipient (Rule 2): the whole record, a redacted copy,
    or RecordWithheld. Records the decision in the audit trail before returning."""
    stored = await store.get(lead_id)
    lead = stored.record
    if lead.header.kind != "lead":
        raise InputError(f"record {lead.id.hex()} is a {lead.header.kind}, not a lead")
    if stored.flags:
        raise RecordWithheld(f"lead {lead.id.hex()} is not passed on: {', '.join(stored.flags)}")
    body = lead.body
    if isinstance(body, SealedBody) and audience.recipient.key not in body.recipients:
        raise RecordWithheld(
            f"lead {lead.id.hex()} is sealed and {audience.label} is not one of its recipients: it could "
            "not read it"
        )
    decision = decide_for(lead.header, stored.hops, audience, our_key=our_key, policy=policy, now_ms=now_ms)
    events = audit_events([(lead.id, decision)], audience, exit_name=REFERRAL_EXIT, time_ms=now_ms)
    await record_decisions(store, events)
    disclosed = disclosed_record(lead, decision)
    if disclosed is None:
        reasons = "; ".join(decision.reasons)
        raise RecordWithheld(f"lead {lead.id.hex()} would be withheld from {audience.label}: {reasons}")
    return disclosed


def referral_scope(lead: Record, request: ReferralRequest) -> Scope:
    """Sealed to the recipient, never less strict than amber nor than the lead (Rule 1)."""
    tlp = _stricter(referral_tlp(lead.header.scope.tlp), request.tlp)
    return Scope.create(tlp, relay_hops=request.relay_hops, members=[request.recipient], flags=[SEALED_FLAG])


async def send_referral(
    store: Store,
    identity: Identity,
    lead: Record,
    request: ReferralRequest,
    *,
    created: int,
) -> Record:
    """Sign and store a referral of `lead` (as disclosed to the recipient) to `request.recipient`."""
    document: dict[str, object] = {
        "lead": lead.id.hex(),
        "lead_record": lead.wire,
        "request": request.request,
        "due": request.due,
        "note": request.note,
    }
    fields = body_fields(REFERRAL_KIND, {k: v for k, v in document.items() if v is not None})
    return await publish_record(
        store,
        identity,
        network=store.network,
        kind=REFERRAL_KIND,
        fields=fields,
        scope=referral_scope(lead, request),
        created=created,
    )


def check_answerable(referral: Referral, ours: bytes) -> None:
    """Rule 4: only the recipient answers, and a declined or closed referral stays so."""
    if referral.recipient != ours:
        recipient = node_id_from_public_key(referral.recipient)
        raise NotTheRecipient(
            f"referral {referral.record.id.hex()[:12]} is addressed to {recipient}; only it can answer"
        )
    if referral.state in FINAL:
        raise AlreadyAnswered(
            f"referral {referral.record.id.hex()[:12]} is {referral.state} already; "
            "it cannot be answered again"
        )


async def answer_referral(
    store: Store,
    identity: Identity,
    referral: Referral,
    status: str,
    details: Mapping[str, object],
    *,
    created: int,
) -> Record:
    """Sign and store a status of `referral` by this node, its recipient, sealed back to its author."""
    check_answerable(referral, identity.public_key.raw)
    document = {"referral": referral.record.id.hex(), "status": status, **details}
    fields = body_fields(STATUS_KIND, {k: v for k, v in document.items() if v is not None})
    return await publish_record(
        store,
        identity,
        network=store.network,
        kind=STATUS_KIND,
        fields=fields,
        scope=status_scope(referral.record.header.scope, referral.record.header.author),
        created=created,
    )


def unanswered(referrals: Iterable[Referral]) -> list[Referral]:
    """Referrals addressed to this node that it has not answered at all (not even `received`)."""
    return [r for r in referrals if r.direction == "inbox" and not r.statuses]


STATES: Final = (SENT, RECEIVED, ACCEPTED, IN_PROGRESS, DECLINED, CLOSED)
