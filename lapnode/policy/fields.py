"""Which body fields each known kind has, and which of them are personal data (docs/policy.md).

Rule 1: `redact = "personal"` in a rule means exactly the fields listed here for the record's kind. The
lists are deliberately wide: free text that usually names people (a lead's summary, a contact's notes)
counts as personal, because a redaction that misses a name is a disclosure.
Rule 2: a kind this node cannot read (an opaque body) has no known personal fields, so a rule that
must redact them withholds the whole record instead (docs/policy.md, "fail closed").
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from protocol.kinds import contact, lead, trend

KIND_FIELDS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        contact.KIND: contact.SCHEMA_TABLE.known,
        lead.KIND: lead.SCHEMA_TABLE.known,
        trend.KIND: trend.SCHEMA_TABLE.known,
    }
)

PERSONAL_FIELDS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        # A named person, their direct mailboxes and numbers, and free text about them.
        contact.KIND: frozenset({"person", "emails", "phones", "notes"}),
        # Subjects name people, mailboxes, phones and payment accounts; the summary and the evidence
        # descriptions are free text written about them.
        lead.KIND: frozenset({"subjects", "summary", "evidence"}),
        # Aggregates: no field is about one person.
        trend.KIND: frozenset(),
    }
)

ALL_FIELDS: Final[frozenset[str]] = frozenset().union(*KIND_FIELDS.values())

assert KIND_FIELDS.keys() == PERSONAL_FIELDS.keys()
assert all(PERSONAL_FIELDS[kind] <= KIND_FIELDS[kind] for kind in KIND_FIELDS)
