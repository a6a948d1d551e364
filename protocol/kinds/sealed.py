"""The body of a sealed record as every node sees it: ciphertext for named recipients (SPEC §3.7).

Rule 1: a record whose scope has the flag `sealed` commits to exactly one body field, `sealed`, whatever
its kind; the kind and schema in the header name what the plaintext is, and they are checked as names
only (protocol.kinds.opaque Rule 2). Any other committed field is a `SchemaError`.
Rule 2: the `sealed` value is parsed strictly, at every node, relays included: exactly the keys below,
each of its exact type and length, and exactly one wrapped key per recipient. A relay cannot read the
body, but it can refuse a malformed one, so garbage never travels under a valid signature.
Rule 3: the recipients are the scope's named members and the author, sorted bytewise without duplicates;
wrapped key i belongs to recipient i. That order says nothing the signed scope does not already say.
Rule 4: a `SealedBody` is never interpreted here: no index terms, no search text, nothing readable.
Opening it is `protocol.sealed.open_sealed`, for recipients only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from protocol.codec import Value
from protocol.errors import SchemaError
from protocol.frozen import quick_init
from protocol.kinds.opaque import check_names

SEALED_FIELD: Final = "sealed"
SEALED_VERSION: Final = 1
EPHEMERAL_KEY_BYTES: Final = 32
NONCE_BYTES: Final = 24
KEY_COMMITMENT_BYTES: Final = 32
TAG_BYTES: Final = 16
CONTENT_KEY_BYTES: Final = 32
WRAPPED_KEY_BYTES: Final = CONTENT_KEY_BYTES + TAG_BYTES
_KEYS: Final = frozenset({"v", "epk", "nonce", "kc", "keys", "ct"})


@quick_init
@dataclass(frozen=True, slots=True)
class SealedPayload:
    """The parsed `sealed` field: well-formed, not yet opened (SPEC §3.7.2)."""

    ephemeral_public: bytes
    nonce: bytes
    key_commitment: bytes
    wrapped_keys: tuple[bytes, ...]
    ciphertext: bytes

    def to_wire(self) -> dict[str, Value]:
        return {
            "ct": self.ciphertext,
            "epk": self.ephemeral_public,
            "kc": self.key_commitment,
            "keys": list(self.wrapped_keys),
            "nonce": self.nonce,
            "v": SEALED_VERSION,
        }


@quick_init
@dataclass(frozen=True, slots=True)
class SealedBody:
    """A sealed record's body. `payload` is None when a relay withheld the `sealed` field."""

    kind: str
    schema: int
    recipients: tuple[bytes, ...]
    members: int
    payload: SealedPayload | None

    def index_terms(self) -> list[tuple[str, str]]:
        return []

    def search_text(self) -> str:
        return ""

    def summary_line(self) -> str:
        return f"(sealed for {self.members} member{'s' if self.members != 1 else ''})"


def sealed_recipients(members: Iterable[bytes], author: bytes) -> tuple[bytes, ...]:
    """Who can open a sealed record, in wrapped-key order (Rule 3)."""
    return tuple(sorted({*members, author}))


def parse(
    kind: str,
    schema: int,
    fields: Mapping[str, Value],
    committed: frozenset[str],
    *,
    members: tuple[bytes, ...],
    author: bytes,
) -> SealedBody:
    """Validate a sealed record's body (SPEC §3.6 step 5 for sealed records), or raise SchemaError."""
    check_names(kind, schema)
    if committed != {SEALED_FIELD}:
        raise SchemaError(f"{kind}: a sealed record commits to exactly one field, {SEALED_FIELD!r}")
    recipients = sealed_recipients(members, author)
    value = fields.get(SEALED_FIELD)
    payload = None if SEALED_FIELD not in fields else parse_payload(value, len(recipients))
    return SealedBody(kind, schema, recipients, len(members), payload)


def parse_payload(value: Value, recipients: int) -> SealedPayload:
    """The `sealed` field's value, checked shape by shape (Rule 2)."""
    if not isinstance(value, dict):
        raise SchemaError("sealed: not a map")
    if set(value) != _KEYS:
        raise SchemaError(f"sealed: the map must have exactly the keys {', '.join(sorted(_KEYS))}")
    version = value["v"]
    if type(version) is not int or version != SEALED_VERSION:
        raise SchemaError(f"sealed.v: unsupported version (this node reads {SEALED_VERSION})")
    ephemeral = _exact_bytes(value, "epk", EPHEMERAL_KEY_BYTES)
    nonce = _exact_bytes(value, "nonce", NONCE_BYTES)
    key_commitment = _exact_bytes(value, "kc", KEY_COMMITMENT_BYTES)
    wrapped = value["keys"]
    if not isinstance(wrapped, list) or len(wrapped) != recipients:
        raise SchemaError(f"sealed.keys: must hold one wrapped key for each of the {recipients} recipients")
    if not all(type(key) is bytes and len(key) == WRAPPED_KEY_BYTES for key in wrapped):
        raise SchemaError(f"sealed.keys: every wrapped key is {WRAPPED_KEY_BYTES} bytes")
    ciphertext = value["ct"]
    # An empty body encodes as one byte, so a real ciphertext is longer than its tag.
    if type(ciphertext) is not bytes or len(ciphertext) <= TAG_BYTES:
        raise SchemaError(f"sealed.ct: must be bytes, longer than the {TAG_BYTES}-byte tag")
    return SealedPayload(ephemeral, nonce, key_commitment, tuple(wrapped), ciphertext)


def to_document(body: SealedBody) -> dict[str, object]:
    """What can be shown of a sealed body without opening it: its size and audience, never content."""
    return {
        "sealed_for_members": body.members,
        "ciphertext_bytes": len(body.payload.ciphertext) if body.payload is not None else None,
    }


def _exact_bytes(value: Mapping[str, Value], name: str, size: int) -> bytes:
    item = value[name]
    if type(item) is not bytes or len(item) != size:
        raise SchemaError(f"sealed.{name}: must be {size} bytes")
    return item
