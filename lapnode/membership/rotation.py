"""Rotating a node's identity key: `lapnode key rotate` (protocol/SPEC.md §8.8).

Rule 1: the rotation statement is signed by the old key and the new key, states the old key's last
sequence number (the highest this node holds of its own), and is stored in this node's statement book,
from which the daemon shows it in every handshake and passes it to every peer.
Rule 2: crash-safe in three steps: the new key is written to `identity.key.next` (encrypted like the
old one), then the rotation is stored, then `identity.key.next` replaces `identity.key`. A crash leaves
either the old key in use and no rotation (the next run starts over), or a stored rotation and the next
file waiting (the next run finishes the rename). At no point is the only copy of a key in use lost.
Rule 3: the daemon must not run: it holds the old key in memory and would keep presenting it, which every
peer that has the rotation refuses.
Rule 4: the old key file is not kept: after the rotation nothing may be signed with it, and a copy is
only something to steal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from keys.errors import KeyFileError
from keys.identity import Identity
from keys.keyfile import NoEncryption, Passphrase, read_key_file, write_key_file
from lapnode.errors import LapnodeError
from lapnode.home import NodeHome
from lapnode.store import Store
from protocol.statements import Rotation, issue_rotation, verify_rotation

NEXT_KEY_NAME: Final = "identity.key.next"


class RotationError(LapnodeError):
    """The key cannot be rotated now (the daemon runs, or an earlier rotation left something to fix)."""


@dataclass(frozen=True, slots=True)
class RotationResult:
    rotation: Rotation
    new: Identity
    resumed: bool


def next_key_path(home: NodeHome) -> Path:
    return home.path / NEXT_KEY_NAME


async def rotate_key(
    home: NodeHome, store: Store, old: Identity, protection: Passphrase | NoEncryption, *, now_ms: int
) -> RotationResult:
    """Replace the node's key (Rule 2); return the stored rotation and the new identity."""
    pending = next_key_path(home)
    if pending.exists():
        finished = await _resume(home, store, old, protection)
        if finished is not None:
            return finished
        pending.unlink()  # a new key that no rotation names: nothing uses it, start over
    new = Identity.generate()
    write_key_file(pending, new, protection)
    rotation = issue_rotation(
        old,
        new,
        network=home.config.network,
        rotated_at=now_ms,
        last_seq=await store.last_seq(old.public_key.raw),
    )
    await store.statements.add([rotation], now_ms=now_ms)
    _install(home)
    return RotationResult(rotation, new, resumed=False)


async def _resume(
    home: NodeHome, store: Store, old: Identity, protection: Passphrase | NoEncryption
) -> RotationResult | None:
    """Finish a rotation a crash interrupted after storing it, if that is what happened."""
    try:
        pending = read_key_file(
            next_key_path(home), protection.value if isinstance(protection, Passphrase) else None
        )
    except KeyFileError as exc:
        raise RotationError(
            f"{next_key_path(home)} is left from an interrupted rotation and cannot be read ({exc}); "
            "move it aside and run `lapnode key rotate` again"
        ) from None
    wire = await store.statements.rotation_into(pending.public_key.raw)
    if wire is None:
        return None
    rotation = verify_rotation(wire, network=home.config.network)
    if rotation.old != old.public_key.raw:
        return None
    _install(home)
    return RotationResult(rotation, pending, resumed=True)


def _install(home: NodeHome) -> None:
    os.replace(next_key_path(home), home.key_path)
    fd = os.open(home.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
