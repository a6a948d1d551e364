"""X-ARF v4 `messaging/spam` reports in and out, checked by the `xarf` reference library.

Rule 1: import: `xarf.parse` validates the report against the X-ARF v4 schemas first; a report with any
validation error, or of another category or type, is refused with one line naming the first problems.
Rule 2: export: the report is built from a disclosed lead and checked with `xarf.parse` before anything
is written; a report the library would refuse is never written.
Rule 3: an exported report never claims what the lead does not say. X-ARF requires a source port for
`protocol: smtp`, and a lead has none, so email spam is reported as `protocol: other` with a
`violation:unsolicited-email` tag; the sender address still goes in `smtp_from`.
Rule 4: the `xarf` library is imported when first used, not with the CLI: its schema checkers take
seconds to import, which every other `lapnode` command would pay.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from types import ModuleType
from typing import TYPE_CHECKING, Final

from lapnode.errors import InputError, LapnodeError
from lapnode.interop.drafting import DraftLead
from protocol.envelope import Record
from protocol.indicators import url_host
from protocol.kinds import LeadBody
from protocol.kinds.documents import render_time

MAX_REPORT_BYTES: Final = 5 * 1024 * 1024
if TYPE_CHECKING:
    import xarf
_SHOWN_ERRORS: Final = 3


class XarfError(InputError):
    """The file is not a valid X-ARF v4 messaging/spam report."""


def _xarf() -> ModuleType:
    import xarf  # Rule 4

    return xarf


def _problems(errors: list[xarf.ValidationError]) -> str:
    shown = [f"{e.field or 'report'}: {e.message}" for e in errors[:_SHOWN_ERRORS]]
    more = f" (and {len(errors) - _SHOWN_ERRORS} more)" if len(errors) > _SHOWN_ERRORS else ""
    return "; ".join(shown) + more


def parse_xarf(text: str, *, source: str) -> dict[str, object]:
    """The draft lead document for an X-ARF v4 spam report (Rule 1)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise XarfError(f"{source} is not JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise XarfError(f"{source}: an X-ARF report is a JSON object")
    result = _xarf().parse(data)
    # Only the schema's verdict counts: xarf 1.0 also builds a typed model, which fails on valid reports
    # (it types `confidence` as an integer where the schema allows 0.92) and then returns no model.
    if result.errors:
        raise XarfError(f"{source} is not a valid X-ARF v4 report: {_problems(result.errors)}")
    if (data.get("category"), data.get("type")) != ("messaging", "spam"):
        raise XarfError(
            f"{source} is an X-ARF {data.get('category')}/{data.get('type')} report, not messaging/spam"
        )
    return _draft(data)


def _draft(data: dict[str, object]) -> dict[str, object]:
    source = str(data["source_identifier"])
    lead = DraftLead(title=f"X-ARF spam report: {data.get('subject') or source}")
    protocol = str(data.get("protocol"))
    lead.violation_types.add("unsolicited-sms" if protocol == "sms" else "unsolicited-email")
    reporter = data.get("reporter")
    org = reporter.get("org") if isinstance(reporter, dict) else None
    lead.summary_lines.append(f"Imported from X-ARF report {data.get('report_id')} by {org} ({protocol}).")
    for name in ("subject", "description", "evidence_source", "message_id"):
        if data.get(name):
            lead.summary_lines.append(f"{name}: {data[name]}")
    lead.add_subject("ip" if _looks_like_ip(source) else "domain", source)
    if data.get("smtp_from"):
        lead.add_subject("email", str(data["smtp_from"]))
    indicators = data.get("spam_indicators")
    links = indicators.get("suspicious_links") if isinstance(indicators, dict) else None
    lead.add_subjects(("url", str(link)) for link in links or [])
    lead.first_seen = lead.last_seen = str(data["timestamp"])
    for item in data.get("evidence") or []:  # type: ignore[attr-defined]
        payload = str(item.get("payload", "")).encode()
        digest = "sha256:" + hashlib.sha256(payload).hexdigest()
        description = str(item.get("description") or item.get("content_type") or "evidence")
        lead.evidence.append({"digest": digest, "description": f"X-ARF evidence (as sent): {description}"})
    return lead.document()


def _looks_like_ip(value: str) -> bool:
    return value.replace(".", "").isdigit() or ":" in value


def report_for(record: Record, *, org: str, contact: str) -> dict[str, object]:
    """An X-ARF v4 messaging/spam report for one disclosed lead (Rules 2 and 3)."""
    body = record.body
    if not isinstance(body, LeadBody):
        raise InputError(
            f"record {record.id.hex()[:12]} is a {record.header.kind}; X-ARF reports are made from leads"
        )
    subjects = {(s.type, s.value) for s in body.subjects or ()}
    by_type = {
        kind: [v for t, v in sorted(subjects) if t == kind] for kind in ("ip", "domain", "email", "url")
    }
    source = (by_type["ip"] or by_type["domain"] or [])[:1]
    if not source and by_type["email"]:
        source = [by_type["email"][0].rpartition("@")[2]]
    if not source and by_type["url"]:
        source = [url_host(by_type["url"][0])[1]]
    if not source:
        raise InputError("the lead names no IP address, domain, email or URL to report as the source")
    when = body.first_seen if body.first_seen is not None else record.header.created
    violations = list(body.violation_types or ())
    tags = [f"tlp:{record.header.scope.tlp}"] + [f"violation:{v}" for v in violations]
    report: dict[str, object] = {
        "xarf_version": _xarf().SPEC_VERSION,
        "report_id": str(uuid.UUID(bytes=bytes(record.id)[:16], version=4)),
        "timestamp": _iso_seconds(when),
        "reporter": {"org": org, "contact": contact, "domain": contact.rpartition("@")[2]},
        "sender": {"org": org, "contact": contact, "domain": contact.rpartition("@")[2]},
        "source_identifier": source[0],
        "category": "messaging",
        "type": "spam",
        "protocol": "sms" if "unsolicited-sms" in violations else "other",
        "description": "\n\n".join(p for p in (body.title, body.summary) if p)[:1000] or "lapnode lead",
        "tags": tags[:20],
    }
    if by_type["email"]:
        report["smtp_from"] = by_type["email"][0]
    if by_type["url"]:
        report["spam_indicators"] = {"suspicious_links": by_type["url"]}
    result = _xarf().parse(report)
    if result.errors:
        raise LapnodeError(f"the X-ARF report for this lead does not validate: {_problems(result.errors)}")
    return report


def _iso_seconds(ms: int) -> str:
    text = render_time(ms)
    return text if "T" in text else f"{text}T00:00:00Z"
