"""Text files that carry one signed membership object: credentials, revocations, rotations (SPEC §8.6).

    <label>/<version>\\n
    <standard base64 (RFC 4648 §4, with padding) of the object's wire bytes, one line>\\n

Rule 1: one reading only. The label line must match exactly; the base64 is decoded strictly (alphabet and
padding) and re-encoded, so unused trailing bits or stray characters are an error, not ignored. Only the
final newline is optional (an editor may drop it); nothing else may follow.
Rule 2: decoding a file proves nothing about its contents: the caller verifies the bytes it gets back.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from protocol.errors import Malformed

# Far above any membership object (a credential is at most 1,024 bytes), far below anything that hurts.
MAX_ARMORED_BYTES: Final = 16 * 1024


def armor(label: str, wire: bytes) -> str:
    """The file text for one object under `label` (e.g. `lapnode-credential/1`)."""
    return f"{label}\n{base64.b64encode(wire).decode('ascii')}\n"


def dearmor(label: str, text: bytes) -> bytes:
    """The wire bytes of a file written by `armor(label, ...)`, or raise Malformed (unverified)."""
    if len(text) > MAX_ARMORED_BYTES:
        raise Malformed(f"too large to be a {label} file")
    lines = text.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if not lines or lines[0].rstrip(b"\r") != label.encode("ascii"):
        raise Malformed(f"not a {label} file (the first line must be {label!r})")
    if len(lines) != 2:
        raise Malformed(f"a {label} file has exactly two lines")
    encoded = lines[1].rstrip(b"\r")
    try:
        wire = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise Malformed(f"the second line of a {label} file is not base64") from None
    if base64.b64encode(wire) != encoded or not wire:
        raise Malformed(f"the second line of a {label} file is not canonical base64")
    return wire
