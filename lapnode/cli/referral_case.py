"""A referral's case file: its summary, lead and history for a case, and the signed records that prove them.

Rule 1: the case file is JSON: `referral` (summary), `lead` (the embedded lead as `show --json` shows a
record), `history` (every status that counts, oldest first) and `records`: the wire bytes, base64, of
the referral, of the embedded lead as received, and of every status. Each verifies on its own against
its author's key (SPEC §3.6), so the file proves who said what, and when, without this node's word.
(A bundle would carry the same records, but a bundle is for loading into another node; a case file is
for a case: it also holds what the sealed records say, opened.)
Rule 2: a case file is an exit to this node's own organisation: every record in it is decided for that
audience (lapnode.exits, way "bundle") and the decisions are appended to the audit trail before the file
is written; if any record would be withheld, nothing is written.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Final

from keys.identity import Identity, node_id_from_public_key
from lapnode.cli.render import record_document
from lapnode.clock import format_ms
from lapnode.config import Config
from lapnode.exits import (
    RecordWithheld,
    audit_events,
    decide_for,
    file_label,
    local_audience,
    record_decisions,
)
from lapnode.files import write_private_file
from lapnode.policy import Policy
from lapnode.referrals import Referral
from lapnode.sealing import SealedReader
from lapnode.store import Store
from protocol.kinds import body_to_document
from protocol.kinds.documents import render_time

CASE_FILE_FORMAT: Final = "lapnode-referral-case/1"
EXPORT_EXIT: Final = "referral-export"


def case_file(referral: Referral, counterpart: str, now_ms: int, identity: Identity) -> dict[str, object]:
    """The case file's content (Rule 1)."""
    body = referral.body
    record = referral.record
    summary: dict[str, object] = {
        "id": record.id.hex(),
        "direction": referral.direction,
        "from": node_id_from_public_key(record.header.author),
        "to": node_id_from_public_key(referral.recipient),
        "counterpart": counterpart,
        "request": body.request,
        "created": format_ms(record.header.created),
        "due": None if body.due is None else render_time(body.due),
        "overdue": referral.overdue(now_ms),
        "state": referral.state,
        "tlp": record.header.scope.tlp,
        "note": body.note,
        "lead": body.lead,
    }
    lead_document = None
    if referral.lead is not None:
        views = SealedReader(identity.public_key.raw, lambda: identity).views([referral.lead])
        lead_document = record_document(referral.lead, None, views)
    history = []
    for status_record, status in referral.statuses:
        details = body_to_document(status)
        details.pop("referral", None)
        details.pop("status", None)
        history.append(
            {
                "id": status_record.id.hex(),
                "created": format_ms(status_record.header.created),
                "status": status.status,
                "by": node_id_from_public_key(status_record.header.author),
                "details": details,
            }
        )
    wires = [("referral", record), *([("lead", referral.lead)] if referral.lead else [])]
    wires += [("referral-status", status_record) for status_record, _ in referral.statuses]
    return {
        "format": CASE_FILE_FORMAT,
        "network": record.header.network,
        "referral": summary,
        "lead": lead_document if lead_document is not None else {"problem": referral.lead_problem},
        "history": history,
        "records": [
            {"role": role, "id": item.id.hex(), "wire_base64": base64.b64encode(item.wire).decode()}
            for role, item in wires
        ],
    }


async def write_case_file(
    store: Store,
    config: Config,
    referral: Referral,
    document: dict[str, object],
    out: Path,
    *,
    now_ms: int,
    policy: Policy,
) -> None:
    """Decide, audit, then write (Rule 2)."""
    audience = local_audience(config, audit_recipient=file_label(EXPORT_EXIT, str(out)))
    ours = referral.record.header.author if referral.direction == "outbox" else referral.recipient
    records = [
        referral.record,
        *([referral.lead] if referral.lead else []),
        *(r for r, _ in referral.statuses),
    ]
    decided = [
        (record.id, decide_for(record.header, 0, audience, our_key=ours, policy=policy, now_ms=now_ms))
        for record in records
    ]
    await record_decisions(store, audit_events(decided, audience, exit_name=EXPORT_EXIT, time_ms=now_ms))
    refused = [(rid, d) for rid, d in decided if d.withheld]
    if refused:
        rid, decision = refused[0]
        raise RecordWithheld(
            f"record {rid.hex()} may not go into a file for {audience.label}: {'; '.join(decision.reasons)};"
            " nothing was written"
        )
    data = json.dumps(document, indent=2, ensure_ascii=True) + "\n"
    write_private_file(out, data.encode(), overwrite=False)
