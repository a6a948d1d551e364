"""What may leave this node in a standard format (file exports and the TAXII server), read from log rows.

The recipient (`lapnode.exits.Audience`), the decision (`lapnode.exits.decide_for`, which asks
`lapnode.policy.decide`) and what leaves (`lapnode.policy.disclosed_record`) are the ones every exit
uses; this module adds only what is particular to these formats.

Rule 1: every row passes the decision for the audience, exactly as gossip does; a withheld record is
dropped before its body is even decoded (the decision reads only the signed scope, the author and the
relay hops that the log copied from the verified header).
Rule 2: these formats add one rule that only ever withholds more (DESIGN-NOTES 4): a sealed record never
leaves in them, since its body is ciphertext no STIX, MISP or CSV reader could use. The decision itself
already keeps `amber+strict` and `red` out of every file, and everything but `clear` out of a public one.
Rule 3: a record that may go is verified from its stored bytes, and a redaction is verified again, so an
exporter only ever sees a verified record with the withheld fields gone.
Rule 4: every row's decision is kept (`RowDecision`), withheld ones too: the exit records them all in
the audit trail before it writes or sends anything (lapnode.exits Rule 3).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from lapnode.exits import Audience, decide_for
from lapnode.policy import Decision, Policy, disclosed_record
from lapnode.store import ExportRow
from protocol.envelope import Record, verify_record
from protocol.scope import SEALED_FLAG

TLP_ORDER: Final = ("clear", "green", "amber", "amber+strict", "red")
SEALED_REASON: Final = "sealed: its body is for its named members only; never exported in a standard format"


@dataclass(frozen=True)
class Disclosed:
    """A record that may go out, as it may go out (redacted if the decision said so)."""

    record: Record
    row: ExportRow


@dataclass(frozen=True)
class RowDecision:
    """One log row, the decision for the audience, and what may go out of it (None: withheld)."""

    row: ExportRow
    decision: Decision
    disclosed: Disclosed | None

    @property
    def audited(self) -> tuple[bytes, Decision]:
        """The (record id, decision) pair the audit trail records (lapnode.exits.audit_events)."""
        return self.row.rid, self.decision


def judge(row: ExportRow, audience: Audience, *, policy: Policy, now_ms: int, our_key: bytes) -> Decision:
    """The decision for one record and this audience: `decide`, then this module's format rule (Rule 2)."""
    decision = decide_for(row, row.hops, audience, our_key=our_key, policy=policy, now_ms=now_ms)
    if SEALED_FLAG not in row.scope.flags:
        return decision
    earlier = decision.reasons if decision.action == "withhold" else ()
    return Decision("withhold", (*earlier, SEALED_REASON))


def decide_rows(
    rows: Iterable[ExportRow],
    audience: Audience,
    *,
    policy: Policy,
    now_ms: int,
    our_key: bytes,
    network: str,
) -> list[RowDecision]:
    """Every row's decision, with the verified (and redacted) record for those that may go (Rules 1-3)."""
    out: list[RowDecision] = []
    for row in rows:
        decision = judge(row, audience, policy=policy, now_ms=now_ms, our_key=our_key)
        disclosed = None
        if decision.action != "withhold":  # decided on the scope alone: a withheld body is never decoded
            record = disclosed_record(verify_record(row.wire, network=network), decision)
            disclosed = Disclosed(record, row) if record is not None else None
        out.append(RowDecision(row, decision, disclosed))
    return out


def tlp_rank(tlp: str) -> int:
    return TLP_ORDER.index(tlp)
