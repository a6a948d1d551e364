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


class SealedError(ProtocolError):
    """A sealed record cannot be opened by this node (SPEC §3.7). The record itself may be valid."""


class NotARecipient(SealedError):
    """This node is neither the author nor a named member of the sealed record."""


class SealedContentWithheld(SealedError):
    """The copy held here lacks the sealed field (a relay withheld it), so there is nothing to open."""


class CannotOpen(SealedError):
    """The sealed content does not decrypt with this node's key. One opaque error for every cause."""


class InvalidSealedBody(SealedError):
    """The sealed content decrypts, but the plaintext is not a valid body of the record's kind."""
