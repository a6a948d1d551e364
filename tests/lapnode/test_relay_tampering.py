"""A relay that tampers with what it passes on is caught at the next node (SPEC §3.2, §3.3, §4).

Three attacks, each tried every way a relay can: widen the author's scope (keeping the author's
signature, or signing the wider header itself), re-sign the record, and strip the commitment of a field
(the one it redacted, to hide that anything was withheld, or one it drops with its value). Each forged
copy must fail verification, and a store that receives it from the relay through the daemon's inbound
path (`Store.ingest` with the real screen) must store nothing, report it as invalid (the subscriber then
ends the session and scores the relay, SPEC §6.6), and keep the genuine record as the author signed it.
Re-signing as the relay's own record is the one thing a relay can do, and it only makes a record of the
relay's: another id, the relay as author, nothing of the original's authority.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from keys.identity import Identity
from lapnode.daemon.subscriber import screen_arrival
from lapnode.policy import NO_RULES, InboundDecision, Recipient
from lapnode.store import Arrival, Store
from protocol import codec
from protocol.envelope import MAX_RECORD_SIZE, RECORD_DOMAIN, Record, redact, verify_record
from protocol.errors import InvalidRecord
from protocol.scope import Scope
from tests.factories import NETWORK, T0, contact_document, identity, make_record

AUTHOR = identity("tampering: author")
RELAY = identity("tampering: relay")
US = Recipient(identity("tampering: us").public_key.raw, "Us", "enforcement", "NL")
NOW = T0 + 60_000
# Narrow on purpose: every clause is one a relay would like to lift.
NARROW = Scope.create(
    "amber",
    relay_hops=1,
    categories=["enforcement"],
    members=[US.key],
    jurisdictions_deny=["US"],
    flags=["law-enforcement-only", "personal-data"],
    # Ten years on: the store judges expiry by the wall clock, and an expired record is stored purged.
    expires=T0 + 3650 * 86_400_000,
)
CONTACT = {**contact_document("NL"), "person": "Jan de Vries", "notes": "Ask for Jan."}
GENUINE = make_record(AUTHOR, 1, None, kind="contact", document=CONTACT, scope=NARROW)
# What the relay received: the author's record with the personal fields redacted by an earlier hop.
REDACTED = verify_record(redact(GENUINE, ["person", "notes"]), network=NETWORK)


def envelope(record: Record) -> dict[str, Any]:
    decoded: dict[str, Any] = codec.decode(record.wire, max_size=MAX_RECORD_SIZE)
    return decoded


def header(record: Record) -> dict[str, Any]:
    decoded: dict[str, Any] = codec.decode(record.header_bytes, max_size=MAX_RECORD_SIZE)
    return decoded


def signed(header_map: dict[str, Any], signer: Identity) -> bytes:
    net = NETWORK.encode()
    return signer.sign(RECORD_DOMAIN, bytes([len(net)]) + net + codec.encode(header_map))


def forged(
    record: Record,
    change: Callable[[dict[str, Any]], None],
    *,
    signer: Identity | None = None,
    fields: Any = None,
) -> bytes:
    """`record` with its header changed; the author's signature kept, or the header signed by `signer`."""
    header_map = header(record)
    change(header_map)
    outer = envelope(record)
    outer["h"] = codec.encode(header_map)
    if signer is not None:
        outer["s"] = signed(header_map, signer)
    if fields is not None:
        outer["f"] = fields
    return codec.encode(outer)


def scope_set(**clauses: Any) -> Callable[[dict[str, Any]], None]:
    """Replace the scope by NARROW with these clauses changed (still a canonical, valid scope)."""
    wider = {
        "tlp": NARROW.tlp,
        "relay_hops": NARROW.relay_hops,
        "categories": NARROW.categories,
        "members": NARROW.members,
        "jurisdictions_deny": NARROW.jurisdictions_deny,
        "flags": NARROW.flags,
        "expires": NARROW.expires,
        **clauses,
    }

    def change(header_map: dict[str, Any]) -> None:
        header_map["scope"] = Scope.create(**wider).to_wire()

    return change


WIDENINGS: dict[str, Callable[[dict[str, Any]], None]] = {
    "tlp amber to clear": scope_set(tlp="clear"),
    "relay_hops 1 to 16": scope_set(relay_hops=16),
    "audience opened to every category": scope_set(categories=()),
    "law-enforcement-only dropped": scope_set(flags=["personal-data"]),
    "personal-data flag dropped (local rules match on it)": scope_set(flags=["law-enforcement-only"]),
    "denied jurisdiction lifted": scope_set(jurisdictions_deny=()),
    "the relay's friend named as a member": scope_set(members=[US.key, RELAY.public_key.raw]),
    "expiry removed": scope_set(expires=None),
}


def drop_commitment(*names: str) -> Callable[[dict[str, Any]], None]:
    def change(header_map: dict[str, Any]) -> None:
        for name in names:
            del header_map["commit"][name]

    return change


def without(record: Record, name: str) -> dict[str, Any]:
    return {k: [salt, value] for k, (salt, value) in record.disclosures.items() if k != name}


ATTACKS: dict[str, bytes] = {
    **{f"widen: {label}": forged(GENUINE, change) for label, change in WIDENINGS.items()},
    **{
        f"widen and re-sign: {label}": forged(GENUINE, change, signer=RELAY)
        for label, change in WIDENINGS.items()
    },
    "re-sign the author's header unchanged": forged(GENUINE, lambda h: None, signer=RELAY),
    "re-sign with an author's key of the relay's choosing": forged(
        GENUINE, lambda h: None, signer=identity("tampering: some other author")
    ),
    "strip the commitment of a redacted field": forged(REDACTED, drop_commitment("person")),
    "strip every commitment of the redacted fields": forged(REDACTED, drop_commitment("person", "notes")),
    "strip a redacted field's commitment and re-sign": forged(
        REDACTED, drop_commitment("person"), signer=RELAY
    ),
    "strip a disclosed field with its commitment": forged(
        GENUINE, drop_commitment("emails"), fields=without(GENUINE, "emails")
    ),
}


@pytest.mark.parametrize("wire", list(ATTACKS.values()), ids=list(ATTACKS))
def test_a_tampered_copy_fails_verification(wire: bytes) -> None:
    with pytest.raises(InvalidRecord, match="signature does not verify"):
        verify_record(wire, network=NETWORK)


def test_the_genuine_and_the_redacted_copy_verify_as_the_author_signed_them() -> None:
    assert verify_record(GENUINE.wire, network=NETWORK).header.scope == NARROW
    redacted = verify_record(REDACTED.wire, network=NETWORK)
    assert redacted.id == GENUINE.id and redacted.redacted == {"person", "notes"}
    assert redacted.header.commitments == GENUINE.header.commitments


def test_re_signing_as_the_relay_makes_a_record_of_the_relay_not_a_wider_copy() -> None:
    def as_relay(header_map: dict[str, Any]) -> None:
        header_map["author"] = RELAY.public_key.raw
        scope_set(tlp="clear", relay_hops=16)(header_map)

    own = verify_record(forged(GENUINE, as_relay, signer=RELAY), network=NETWORK)
    assert own.header.author == RELAY.public_key.raw and own.id != GENUINE.id
    # The body is the same bytes, but whoever holds the author's record still holds it as signed.
    assert own.disclosures == GENUINE.disclosures


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url, network=NETWORK)
    await opened.peers.add(RELAY.public_key.raw, "127.0.0.1:9", now_ms=T0, category="enforcement")
    try:
        yield opened
    finally:
        await opened.close()


def screen(arrival: Arrival, hops: int) -> InboundDecision:
    relay = Recipient(RELAY.public_key.raw, "Relay", "enforcement", "NL")
    return screen_arrival(arrival, hops, sender=relay, us=US, policy=NO_RULES, now=NOW)


async def test_a_store_refuses_every_tampered_copy_from_a_relay(store: Store) -> None:
    attacks = list(ATTACKS.values())
    report = await store.ingest(
        attacks, source=RELAY.public_key.raw, hops=[0] * len(attacks), cursor=1, screen=screen
    )
    assert report.stored == [] and report.quarantined == []
    assert [r.index for r in report.rejected] == list(range(len(attacks)))
    assert all(r.invalid and not r.by_policy for r in report.rejected)
    assert await store.count() == 0


async def test_a_tampered_copy_cannot_replace_or_follow_the_genuine_record(store: Store) -> None:
    first = await store.ingest(
        [REDACTED.wire], source=RELAY.public_key.raw, hops=[0], cursor=1, screen=screen
    )
    assert first.stored == [GENUINE.id]
    attacks = list(ATTACKS.values())
    later = await store.ingest(
        attacks, source=RELAY.public_key.raw, hops=[0] * len(attacks), cursor=2, screen=screen
    )
    assert later.stored == []
    # Every forgery changes the signed header or the signature, so it has another id: it is verified
    # (and refused), never taken for a copy of the record held, which stays as it was.
    assert len(later.rejected) == len(attacks) and all(r.invalid for r in later.rejected)
    held = await store.get(GENUINE.id.hex())
    assert held.record.wire == REDACTED.wire and held.record.header.scope == NARROW
    assert await store.count() == 1
