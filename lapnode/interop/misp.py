"""A MISP feed of disclosed leads: one event file per lead, `manifest.json` and `hashes.csv`.

The layout is MISP's "feed" format (what PyMISP's `MISPEvent.to_feed` writes and
`pymisp.tools.feed_meta_generator` indexes); MISP and OpenCTI subscribe to such a directory over HTTP.
Rule 1: the events come only from `disclosure.decide_rows`; TLP travels as a `tlp:` tag on every event.
Rule 2: ids are deterministic (event uuid from the record id, attribute uuid from record id and subject),
so a re-export updates the same events in MISP instead of duplicating them.
Rule 3: hand-written rather than built with PyMISP: the format is a few flat JSON maps, and PyMISP would
add a large dependency tree to the node for them. The tests load every event with PyMISP and check that
`feed_meta_generator` reproduces our manifest and hashes exactly.
Note: `hashes.csv` holds unsalted MD5 digests of attribute values because MISP's feed cache reads them.
They reveal nothing beyond the event files next to them, which hold the values in clear.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from keys.identity import node_id_from_public_key
from lapnode.interop.disclosure import Disclosed
from protocol.envelope import Record
from protocol.kinds import LeadBody, Subject

_TLP_COLOURS: Final[Mapping[str, str]] = {
    "clear": "#ffffff",
    "green": "#33FF00",
    "amber": "#FFC000",
    "amber+strict": "#FFC000",
    "red": "#FF2B2B",
}
# lapnode subject type -> (MISP attribute type, category, to_ids).
_ATTRIBUTES: Final[Mapping[str, tuple[str, str, bool]]] = {
    "domain": ("domain", "Network activity", True),
    "ip": ("ip-src", "Network activity", True),
    "url": ("url", "Network activity", True),
    "email": ("email-src", "Payload delivery", True),
    "asn": ("AS", "Network activity", False),
    "phone": ("phone-number", "Person", False),
    "payment-account": ("bank-account-nr", "Financial fraud", False),
    "name": ("text", "Attribution", False),
}
_HASH_TYPES: Final = frozenset({"md5", "sha1", "sha256", "sha512", "sha3-256", "sha3-512"})
_ANALYSIS: Final[Mapping[str | None, int]] = {"verified": 2, "suspected": 1}
_THREAT_LEVEL_UNDEFINED: Final = 4


def _uuid(*parts: bytes) -> str:
    digest = hashlib.blake2b(b"\x00".join(parts), digest_size=16, person=b"lapnode.misp.v1").digest()
    return str(uuid.UUID(bytes=digest, version=4))


def _tag(name: str, colour: str) -> dict[str, object]:
    return {"colour": colour, "local": False, "name": name, "relationship_type": ""}


def _attribute(record: Record, subject: Subject, stamp: str) -> dict[str, object] | None:
    if subject.type == "message-hash":
        algorithm, _, digest = subject.value.rpartition(":")
        if algorithm not in _HASH_TYPES:
            return None
        kind, category, to_ids, value = algorithm, "Payload delivery", True, digest
    else:
        kind, category, to_ids = _ATTRIBUTES[subject.type]
        value = subject.value
    return {
        "category": category,
        "comment": subject.type if kind == "text" else "",
        "deleted": False,
        "disable_correlation": False,
        "timestamp": stamp,
        "to_ids": to_ids,
        "type": kind,
        "uuid": _uuid(bytes(record.id), subject.type.encode(), subject.value.encode()),
        "value": value,
    }


def event(record: Record, org_name: str | None) -> dict[str, object] | None:
    """The feed form of one lead, or None for records that are not leads."""
    body = record.body
    if not isinstance(body, LeadBody):
        return None
    created_s = record.header.created // 1000
    stamp = str(created_s)
    day_ms = body.first_seen if body.first_seen is not None else record.header.created
    tlp = record.header.scope.tlp
    tags = [_tag(f"tlp:{tlp}", _TLP_COLOURS[tlp])]
    tags += [_tag(f'lapnode:violation-type="{v}"', "#0088cc") for v in body.violation_types or ()]
    attributes = [a for s in body.subjects or () if (a := _attribute(record, s, stamp)) is not None]
    author = record.header.author
    info = body.title or f"lapnode lead {record.id.hex()[:12]}"
    return {
        "Event": {
            "analysis": str(_ANALYSIS.get(body.status, 0)),
            "date": datetime.fromtimestamp(day_ms // 1000, tz=UTC).date().isoformat(),
            "extends_uuid": "",
            "info": info,
            "protected": False,
            "publish_timestamp": stamp,
            "published": True,
            "threat_level_id": str(_THREAT_LEVEL_UNDEFINED),
            "timestamp": stamp,
            "uuid": _uuid(bytes(record.id)),
            "Orgc": {"name": org_name or node_id_from_public_key(author), "uuid": _uuid(b"org", author)},
            "Tag": tags,
            "Attribute": attributes,
        }
    }


def manifest_entry(feed_event: Mapping[str, object]) -> dict[str, object]:
    """What `manifest.json` says about one event (the fields and types MISP's feed reader expects)."""
    inner = feed_event["Event"]
    assert isinstance(inner, dict)
    return {
        "Orgc": inner["Orgc"],
        "Tag": inner["Tag"],
        "info": inner["info"],
        "date": inner["date"],
        "analysis": int(inner["analysis"]),
        "threat_level_id": int(inner["threat_level_id"]),
        "timestamp": int(inner["timestamp"]),
    }


def value_hashes(feed_event: Mapping[str, object]) -> list[str]:
    inner = feed_event["Event"]
    assert isinstance(inner, dict)
    return [
        hashlib.md5(str(a["value"]).encode(), usedforsecurity=False).hexdigest() for a in inner["Attribute"]
    ]


def feed(disclosed: list[Disclosed], names: Mapping[bytes, str]) -> dict[str, dict[str, object]]:
    """Event uuid -> feed event, for the disclosed leads (other kinds have no MISP event form)."""
    events: dict[str, dict[str, object]] = {}
    for item in disclosed:
        built = event(item.record, names.get(item.record.header.author))
        if built is not None:
            inner = built["Event"]
            assert isinstance(inner, dict)
            events[str(inner["uuid"])] = built
    return events
