"""Turning a decision into what actually leaves the node: the whole record, a redacted copy, or nothing.

Rule 1: every exit that holds a decision gets its bytes (or its record) from here, so a `redact`
decision can never be sent whole by mistake.
Rule 2: a redacted copy drops disclosures only (protocol/SPEC.md §3.3): it keeps the author's header
and signature, so it verifies and has the same record id. Fields the record does not carry, or that
were redacted before it reached us, need no removing.
Rule 3: the common path (a whole record) touches no bytes; only a redaction decodes the record.
"""

from __future__ import annotations

from dataclasses import dataclass

from lapnode.policy.decision import Decision
from protocol.envelope import Record, redact, verify_record
from protocol.scope import Scope


@dataclass(frozen=True, slots=True)
class Draft:
    """A record not signed yet (`publish --dry-run`): its author, kind and scope are all a decision reads."""

    author: bytes
    kind: str
    scope: Scope


def disclosed_wire(wire: bytes, decision: Decision, *, network: str) -> bytes | None:
    """The bytes `decision` lets out of a stored record's `wire`, or None when it is withheld."""
    if decision.action == "send":
        return wire
    if decision.action != "redact":
        return None  # withhold, or an action this code does not know: fail closed
    # The stored bytes were verified when they were stored; decoding them is how disclosures are dropped.
    return _redacted(verify_record(wire, network=network), decision.fields)


def disclosed_record(record: Record, decision: Decision) -> Record | None:
    """The verified record `decision` lets out: `record`, its redacted copy, or None."""
    if decision.action == "send":
        return record
    if decision.action != "redact":
        return None  # withhold, or an action this code does not know: fail closed
    return verify_record(_redacted(record, decision.fields), network=record.header.network)


def _redacted(record: Record, fields: frozenset[str]) -> bytes:
    present = fields & record.disclosures.keys()
    return redact(record, present) if present else record.wire
