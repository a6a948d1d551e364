"""Turning imported material into draft lead documents that the lead schema accepts.

Rule 1: every draft document passes `protocol.kinds.body_from_document("lead", ...)` before it is
stored, so publishing a draft can only fail on what the operator changes, never on what the import made.
Rule 2: subjects are normalised once here (protocol.indicators) and de-duplicated; values that no
subject type accepts are kept in the summary text, never dropped silently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from lapnode.errors import InputError
from protocol.errors import ProtocolError
from protocol.kinds import body_from_document, body_to_document, parse_body
from protocol.kinds.lead import MAX_SUBJECTS, MAX_SUMMARY_LEN, MAX_TITLE_LEN

SUBJECT_ALIASES: Final = {"payment": "payment-account", "hash": "message-hash", "ipv4": "ip", "ipv6": "ip"}


def fingerprint(source: str, *parts: bytes) -> bytes:
    digest = hashlib.blake2b(source.encode(), digest_size=32, person=b"lapnode.draft")
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.digest()


def normalise_subject(subject_type: str, value: str) -> dict[str, str]:
    """A canonical lead subject, or InputError naming what is wrong with it."""
    kind = SUBJECT_ALIASES.get(subject_type.strip().lower(), subject_type.strip().lower())
    probe = {
        "title": "x",
        "summary": "x",
        "status": "suspected",
        "subjects": [{"type": kind, "value": value}],
    }
    try:
        fields = body_from_document("lead", probe)
    except ProtocolError as exc:
        message = str(exc).replace("lead.subjects[0].", "").replace("lead.subjects[0]", "subject")
        raise InputError(message) from None
    subjects = fields["subjects"]
    assert isinstance(subjects, list) and isinstance(subjects[0], dict)
    return {"type": str(subjects[0]["type"]), "value": str(subjects[0]["value"])}


@dataclass
class DraftLead:
    """A lead being assembled from an import."""

    title: str
    summary_lines: list[str] = field(default_factory=list)
    subjects: list[dict[str, str]] = field(default_factory=list)
    violation_types: set[str] = field(default_factory=set)
    evidence: list[dict[str, str]] = field(default_factory=list)
    first_seen: str | None = None
    last_seen: str | None = None

    def add_subject(self, subject_type: str, value: str) -> bool:
        """Add a subject; False (and a line in the summary) if no subject type accepts the value."""
        try:
            subject = normalise_subject(subject_type, value)
        except InputError as exc:
            self.summary_lines.append(f"Not indexed ({subject_type} {value!r}): {exc}")
            return False
        if subject not in self.subjects:
            self.subjects.append(subject)
        return True

    def add_subjects(self, pairs: Iterable[tuple[str, str]]) -> None:
        for subject_type, value in pairs:
            self.add_subject(subject_type, value)

    def document(self) -> dict[str, object]:
        """The validated document (Rule 1), in the display form `lapnode show` uses."""
        if len(self.subjects) > MAX_SUBJECTS:
            raise InputError(f"{len(self.subjects)} subjects; a lead holds at most {MAX_SUBJECTS}")
        summary = "\n".join(self.summary_lines).strip() or "Imported; review before publishing."
        document: dict[str, object] = {
            "title": " ".join(self.title.split())[:MAX_TITLE_LEN],
            "summary": summary[:MAX_SUMMARY_LEN],
            "status": "suspected",
            "violation_types": sorted(self.violation_types),
            "subjects": self.subjects,
            "evidence": self.evidence,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }
        try:
            fields = body_from_document("lead", document)
        except ProtocolError as exc:
            raise InputError(f"the imported lead is not valid: {exc}") from None
        return body_to_document(parse_body("lead", 1, fields, frozenset(fields)))
