"""New versions of this node's own records: corrections, declassifications, re-confirmations (SPEC §5.1).

Rule 1: only the author makes a new version of a record. The record must be this node's own and live
(not superseded, expired or purged), or the command fails with one line and nothing is signed. Another
node cannot do it at all: the scope is in the signed header, and a version from another author changes
nothing about the original (lapnode.store.versions Rule 1).
Rule 2: a new version never reaches anyone the old one could not (`protocol.scope.widenings`), with one
exception, a declassification, which lowers the TLP and changes nothing else.
Rule 3: a sealed original gives a sealed new version: its scope keeps the `sealed` flag and members.
Rule 4: a re-published version (declassify, confirm) carries the old body, read from the author's own
full copy (opened with the node key when sealed); only its `supersedes` changes, to the old id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Final

from keys.identity import Identity
from lapnode.errors import InputError
from lapnode.publishing import ScopeRequest, build_scope, publish_record
from lapnode.sealing import SealedReader
from lapnode.store import Store, StoredRecord
from protocol.codec import Value
from protocol.envelope import Record
from protocol.errors import ProtocolError
from protocol.kinds import KNOWN_KINDS, SealedBody, body_from_document, body_to_document
from protocol.scope import Scope, tlp_rank, widenings

# Scope options that have a default on the command line: given or not, click passes a value.
DEFAULTED_SCOPE_OPTIONS: Final = frozenset({"tlp", "relay_hops"})


def short_id(record: Record) -> str:
    return record.id.hex()[:16]


async def own_live_version(store: Store, id_or_prefix: str, *, our_key: bytes, now: int) -> StoredRecord:
    """The record, if this node authored it and it is live now; else an InputError saying why not."""
    found = await store.get(id_or_prefix)
    record = found.record
    if record.header.author != our_key:
        raise InputError(
            f"record {short_id(record)} was published by {record.author_id}, not by this node:"
            " only its author can make a new version of it"
        )
    if record.header.kind not in KNOWN_KINDS:
        raise InputError(f"record {short_id(record)} is of kind {record.header.kind!r}, unknown here")
    history = await store.history(record.id, now_ms=now)
    if not history.live:
        newest = history.newest
        if newest is not None:
            raise InputError(
                f"record {short_id(record)} has been superseded by {newest.id.hex()}; start from that one"
            )
        raise InputError(f"record {short_id(record)} is no longer live (expired or retracted)")
    return found


def current_fields(record: Record, identity: Identity) -> dict[str, Value]:
    """The body of this node's own record as wire fields, without its `supersedes` (Rule 4)."""
    body = record.body
    if isinstance(body, SealedBody):
        opened = SealedReader(identity.public_key.raw, lambda: identity).view(record)
        if opened.body is None:
            raise InputError(f"record {short_id(record)}: {opened.line()}")
        body = opened.body
    if record.redacted:
        # The author keeps full copies; a redacted copy of its own record cannot be re-signed.
        raise InputError(f"record {short_id(record)}: this copy lacks {', '.join(sorted(record.redacted))}")
    document = body_to_document(body)
    document.pop("supersedes", None)
    try:
        return body_from_document(record.header.kind, document)
    except ProtocolError as exc:  # pragma: no cover - a displayed body always reads back (documents Rule 3)
        raise InputError(f"record {short_id(record)}: {exc}") from None


def corrected_scope(original: Scope, request: ScopeRequest, *, given: frozenset[str], now: int) -> Scope:
    """The original scope with the operator's scope options applied, as long as they only narrow it.

    Lists that restrict by naming who may receive (categories, members, allowed jurisdictions) are
    replaced by the ones given; those that restrict by exclusion (denied jurisdictions, flags) are added
    to. `given` names the options with a default that the operator actually typed.
    """
    parsed = build_scope(request, now=now)
    try:
        scope = Scope.create(
            parsed.tlp if "tlp" in given else original.tlp,
            relay_hops=parsed.relay_hops if "relay_hops" in given else original.relay_hops,
            categories=parsed.categories or original.categories,
            members=parsed.members or original.members,
            jurisdictions_allow=parsed.jurisdictions_allow or original.jurisdictions_allow,
            jurisdictions_deny={*parsed.jurisdictions_deny, *original.jurisdictions_deny},
            flags={*parsed.flags, *original.flags},
            embargo_until=parsed.embargo_until
            if parsed.embargo_until is not None
            else original.embargo_until,
            expires=parsed.expires if parsed.expires is not None else original.expires,
        )
    except ProtocolError as exc:
        raise InputError(str(exc)) from None
    wider = widenings(original, scope)
    if wider:
        raise InputError(
            "a correction must not reach anyone the original could not: "
            + "; ".join(wider)
            + " (to lower the TLP alone, use `lapnode declassify`)"
        )
    return scope


def declassified_scope(original: Scope, label: str) -> Scope:
    """The original scope with a strictly lower TLP, and nothing else changed."""
    label = label.lower()
    if tlp_rank(label) >= tlp_rank(original.tlp):
        raise InputError(
            f"--tlp {label} is not lower than the record's TLP {original.tlp}: declassifying only lowers it"
        )
    lowered = replace(original, tlp=label)
    lowered.validate()  # only the TLP changed, to a known label: this cannot fail, but checks cost little
    return lowered


async def publish_version(
    store: Store,
    identity: Identity,
    *,
    network: str,
    old: Record,
    fields: Mapping[str, Value],
    scope: Scope,
    created: int,
) -> Record:
    """Sign and store a new version of `old` (the caller checked it with `own_live_version`)."""
    return await publish_record(
        store,
        identity,
        network=network,
        kind=old.header.kind,
        fields=fields,
        scope=scope,
        created=created,
        supersedes=old.id,
    )
