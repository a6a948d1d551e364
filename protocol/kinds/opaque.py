"""Bodies of kinds, or schema versions, that this node does not know.

Rule 1: a node stores and relays what it cannot read: a newer peer's records must survive an older hop.
So an unknown kind or a newer schema of a known kind becomes an `OpaqueBody` that keeps the disclosed
fields exactly as received, and is never interpreted: no index terms, no search text.
Rule 2: only the names are checked: the kind must look like a kind name and the schema version must be
a positive integer. Anything else is garbage, not the future.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from protocol.codec import Value
from protocol.errors import SchemaError
from protocol.frozen import quick_init
from protocol.indicators import show

MAX_KIND_LEN: Final = 32
MAX_SCHEMA_VERSION: Final = 2**32 - 1
_KIND_RE: Final = re.compile(rf"[a-z][a-z0-9-]{{0,{MAX_KIND_LEN - 1}}}")


@quick_init
@dataclass(frozen=True, slots=True)
class OpaqueBody:
    """A body kept as received. `fields` is read-only, compared but not hashed (a dict cannot be)."""

    kind: str
    schema: int
    fields: Mapping[str, Value] = field(hash=False)

    def index_terms(self) -> list[tuple[str, str]]:
        return []

    def search_text(self) -> str:
        return ""

    def summary_line(self) -> str:
        return f"({self.kind} schema {self.schema}, {len(self.fields)} fields not shown)"


def check_names(kind: str, schema: int) -> None:
    if type(kind) is not str or not _KIND_RE.fullmatch(kind):
        raise SchemaError(f"{show(kind)} is not a valid kind name")
    if type(schema) is not int or not 1 <= schema <= MAX_SCHEMA_VERSION:
        raise SchemaError(f"{kind}: schema version {show(schema)} is not a positive integer")


def parse(kind: str, schema: int, fields: Mapping[str, Value]) -> OpaqueBody:
    check_names(kind, schema)
    return OpaqueBody(kind, schema, MappingProxyType(dict(fields)))


def to_document(body: OpaqueBody) -> dict[str, object]:
    """The fields as received; bytes, which JSON cannot carry, as lowercase hex strings."""
    return {name: _displayable(value) for name, value in body.fields.items()}


def _displayable(value: Value) -> object:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {key: _displayable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_displayable(item) for item in value]
    return value
