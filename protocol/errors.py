"""Errors raised by the wire layer.

Rule 1: everything a remote party can cause while we decode or verify its bytes is a `ProtocolError`
subclass. Callers that face a remote turn any of them into one opaque refusal; the message is for the
local log and the local operator only.
"""


class ProtocolError(Exception):
    """A record or message does not conform to protocol/SPEC.md."""


class NonCanonical(ProtocolError):
    """The bytes decode, but are not the one canonical encoding of their value (SPEC §2)."""


class Malformed(ProtocolError):
    """The bytes are not valid msgpack in the lapnode profile, or are over a size or depth limit."""


class SchemaError(ProtocolError):
    """A decoded value has the wrong fields or field types for its schema."""


class InvalidRecord(ProtocolError):
    """A record envelope fails verification: signature, commitment, network or chain rule (SPEC §3)."""
