"""STIX 2.1 building blocks: deterministic identifiers, TLP 2.0 markings and timestamps.

Rule 1: every id is deterministic, so exporting a record twice yields the same objects and MISP, OpenCTI
or a TAXII client merges them instead of duplicating them. Observables (SCOs) use the UUIDv5 of their ID
contributing properties that STIX 2.1 §2.9 prescribes; every other object uses a UUID whose version
bits say 4 (what validators expect of domain objects) and whose other bits are a hash of what it stands
for. Objects made from a record start with the first 6 bytes of the record id, so the TAXII server can
find the record behind an object id with one index lookup.
Rule 2: TLP uses the official TLP 2.0 marking definitions (OASIS cti-stix-common-objects), by their
published ids; nothing else marks what we export.
Rule 3: pure functions; no I/O.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

StixObject = dict[str, object]

SPEC_VERSION: Final = "2.1"
ID_PREFIX_BYTES: Final = 6
_SCO_NAMESPACE: Final = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")
_PERSON: Final = b"lapnode.stix.v1"

TLP_EXTENSION_ID: Final = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP_MARKING_IDS: Final[Mapping[str, str]] = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP_BY_MARKING_ID: Final[Mapping[str, str]] = {v: k for k, v in TLP_MARKING_IDS.items()}
# TLP 1.0 markings that stix2 and many feeds still use; only read (taxii pull), never written.
TLP1_MARKING_IDS: Final[Mapping[str, str]] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "clear",
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "green",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "amber",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "red",
}
_TLP_CREATED: Final = "2022-10-01T00:00:00.000Z"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def tlp_extension_definition() -> StixObject:
    """The TLP 2.0 extension definition, as OASIS published it, so a bundle is self-contained."""
    return {
        "type": "extension-definition",
        "spec_version": SPEC_VERSION,
        "id": TLP_EXTENSION_ID,
        "created_by_ref": "identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01",
        "created": _TLP_CREATED,
        "modified": _TLP_CREATED,
        "name": "TLP 2.0",
        "description": "This defines TLP 2.0 as a STIX extension",
        "schema": "https://github.com/oasis-open/cti-stix-common-objects/tree/main/extension-definition-specifications/tlp-2.0",
        "version": "1.0.0",
        "extension_types": ["property-extension"],
    }


def tlp_marking(tlp: str) -> StixObject:
    return {
        "type": "marking-definition",
        "spec_version": SPEC_VERSION,
        "id": TLP_MARKING_IDS[tlp],
        "created": _TLP_CREATED,
        "name": f"TLP:{tlp.upper()}",
        "extensions": {TLP_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": tlp}},
    }


def object_id(object_type: str, prefix: bytes, *parts: bytes) -> str:
    """`type--uuid` for a domain object: `prefix` (up to 6 bytes) then a hash of `parts` (Rule 1)."""
    digest = hashlib.blake2b(b"\x00".join([object_type.encode(), *parts]), digest_size=16, person=_PERSON)
    raw = prefix[:ID_PREFIX_BYTES] + digest.digest()[len(prefix[:ID_PREFIX_BYTES]) :]
    return f"{object_type}--{uuid.UUID(bytes=raw, version=4)}"


def record_prefix(stix_id: str) -> bytes | None:
    """The record-id prefix inside a record-derived object id, or None if the id is not a UUID."""
    try:
        value = uuid.UUID(stix_id.partition("--")[2])
    except ValueError:
        return None
    return value.bytes[:ID_PREFIX_BYTES]


def observable_id(object_type: str, contributing: Mapping[str, object]) -> str:
    """The deterministic SCO id of STIX 2.1 §2.9: UUIDv5 over the canonical JSON (RFC 8785) of the ID
    contributing properties. Our values are text, integers and flat maps, for which sorted keys and no
    blanks are the RFC 8785 form."""
    canonical = json.dumps(contributing, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{object_type}--{uuid.uuid5(_SCO_NAMESPACE, canonical)}"


def timestamp(ms: int) -> str:
    """A STIX timestamp with millisecond precision (STIX 2.1 §3.2 requires it for created/modified)."""
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def parse_timestamp(text: str) -> int:
    """A STIX or TAXII timestamp to milliseconds; ValueError if it is not one."""
    cleaned = text.strip()
    if not cleaned.endswith("Z"):
        raise ValueError(f"{text!r} is not a UTC timestamp ending in Z")
    moment = datetime.fromisoformat(cleaned[:-1] + "+00:00")
    return (moment - _EPOCH) // timedelta(milliseconds=1)
