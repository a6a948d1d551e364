"""ARF (RFC 5965) feedback reports to draft leads: `lapnode import arf FILE.eml`.

An ARF report is a `multipart/report; report-type=feedback-report` message of three parts: a
human-readable text, the machine-readable `message/feedback-report` fields, and the original message
(`message/rfc822`, or only its headers as `text/rfc822-headers`).
Rule 1: the draft keeps Source-IP, every Reported-Domain and Reported-URI, Original-Mail-From and
Arrival-Date as subjects and times, and a SHA-256 digest of the original message as evidence (the
message itself stays with the operator: it may hold a victim's personal data).
Rule 2: a report that is not ARF, or lacks a field RFC 5965 §3.1 requires (Feedback-Type, User-Agent,
Version), is refused with one line naming the problem; nothing is stored.
Rule 3: Original-Rcpt-To names the victim and is personal data; it is not copied into the draft.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Final

from lapnode.errors import InputError
from lapnode.interop.drafting import DraftLead
from protocol.kinds.documents import render_time

MAX_REPORT_BYTES: Final = 10 * 1024 * 1024
_VIOLATIONS: Final = {
    "abuse": "unsolicited-email",
    "fraud": "fraud",
    "virus": "malware",
    "auth-failure": "spoofing",
    "other": "other",
}


class ArfError(InputError):
    """The file is not a well-formed ARF feedback report (RFC 5965)."""


def _report_fields(part: Message) -> Message:
    """The feedback-report fields as a header block, whether the parser nested them or not."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        raise ArfError("the message/feedback-report part is empty")
    return email.message_from_bytes(raw.strip() + b"\n\n", policy=email.policy.compat32)


def _original_digest(part: Message | None) -> str | None:
    if part is None:
        return None
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        original = payload[0]
        assert isinstance(original, Message)
        data = original.as_bytes(policy=email.policy.compat32)
    else:
        decoded = part.get_payload(decode=True)
        data = decoded if isinstance(decoded, bytes) else b""
    return "sha256:" + hashlib.sha256(data).hexdigest() if data else None


def _one(fields: Message, name: str, *, required: bool = False) -> str | None:
    values = fields.get_all(name) or []
    if required and not values:
        raise ArfError(f"malformed ARF report: the feedback report has no {name} field (RFC 5965 §3.1)")
    return " ".join(str(values[0]).split()) if values else None


def parse_arf(data: bytes, *, source: str) -> dict[str, object]:
    """The draft lead document for an ARF report (Rules 1-3)."""
    if len(data) > MAX_REPORT_BYTES:
        raise ArfError(f"{source} is larger than {MAX_REPORT_BYTES // 1024 // 1024} MiB; not an ARF report")
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    if message.get_content_type() != "multipart/report" or not message.is_multipart():
        raise ArfError(f"{source} is not an ARF report: its type is {message.get_content_type()}")
    if (message.get_param("report-type") or "") != "feedback-report":
        raise ArfError(f"{source} is a multipart/report but not report-type=feedback-report")
    payload = message.get_payload()
    parts = [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []
    reports = [p for p in parts if p.get_content_type() == "message/feedback-report"]
    if len(reports) != 1:
        raise ArfError(f"{source} has {len(reports)} message/feedback-report parts; ARF has exactly one")
    originals = [p for p in parts if p.get_content_type() in ("message/rfc822", "text/rfc822-headers")]
    fields = _report_fields(reports[0])
    feedback_type = (_one(fields, "Feedback-Type", required=True) or "").lower()
    agent = _one(fields, "User-Agent", required=True)
    _one(fields, "Version", required=True)
    if feedback_type == "not-spam":
        raise ArfError(f"{source} is a not-spam report: it withdraws a complaint and makes no lead")
    return _draft(fields, feedback_type, agent, _original_digest(originals[0] if originals else None))


def _draft(fields: Message, feedback_type: str, agent: str | None, digest: str | None) -> dict[str, object]:
    source_ip = _one(fields, "Source-IP")
    domains = [str(v).strip() for v in fields.get_all("Reported-Domain") or []]
    title_about = source_ip or (domains[0] if domains else "unknown source")
    lead = DraftLead(title=f"ARF {feedback_type} report: {title_about}")
    lead.violation_types.add(_VIOLATIONS.get(feedback_type, "other"))
    lead.summary_lines.append(f"Imported from an ARF feedback report ({feedback_type}) made by {agent}.")
    for name in ("Reporting-MTA", "Incidents", "Authentication-Results"):
        value = _one(fields, name)
        if value:
            lead.summary_lines.append(f"{name}: {value}")
    if source_ip:
        lead.add_subject("ip", source_ip)
    lead.add_subjects(("domain", d) for d in domains)
    for uri in (str(v).strip() for v in fields.get_all("Reported-URI") or []):
        if uri.lower().startswith("mailto:"):
            lead.add_subject("email", uri[len("mailto:") :].split("?")[0])
        else:
            lead.add_subject("url", uri)
    sender = (_one(fields, "Original-Mail-From") or "").strip("<> ")
    if sender:
        lead.add_subject("email", sender)
    arrival = _one(fields, "Arrival-Date") or _one(fields, "Received-Date")
    if arrival:
        try:
            moment = parsedate_to_datetime(arrival)
        except (TypeError, ValueError):
            raise ArfError(
                f"malformed ARF report: Arrival-Date {arrival!r} is not an RFC 5322 date"
            ) from None
        if moment.tzinfo is None:
            raise ArfError(f"malformed ARF report: Arrival-Date {arrival!r} has no time zone")
        lead.first_seen = lead.last_seen = render_time(int(moment.timestamp() * 1000))
        lead.summary_lines.append(f"Arrival-Date: {lead.first_seen}")
    if digest is not None:
        lead.evidence.append(
            {"digest": digest, "description": "original message, as enclosed in the ARF report"}
        )
    return lead.document()
