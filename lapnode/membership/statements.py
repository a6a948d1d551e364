"""Membership statement files on a node: importing revocations and rotations by hand.

Rule 1: a statement file is imported only after `protocol.statements.verify_statement` accepts it for
this node's network and trusted authorities, the same check as for one received from a peer; a running
daemon then passes it to every peer within a second (lapnode.daemon.statements).
Rule 2: a revocation by an authority this node does not trust is an error here (the operator asked for
it explicitly), where a peer's is silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from keys.identity import node_id_from_public_key
from keys.membership import TrustedAuthorities
from lapnode.errors import InputError
from lapnode.membership.node_credential import read_armored
from lapnode.store import Store
from protocol.armor import MAX_ARMORED_BYTES
from protocol.errors import ProtocolError
from protocol.statements import REVOCATION_FILE_LABEL, ROTATION_FILE_LABEL, Statement, verify_statement

LABELS = (REVOCATION_FILE_LABEL, ROTATION_FILE_LABEL)


def read_statement_file(path: Path, *, network: str, trusted: TrustedAuthorities) -> Statement:
    label = _label_of(path)
    wire = read_armored(path, label, "membership statement")
    try:
        return verify_statement(wire, network=network, trusted=trusted)
    except ProtocolError as exc:
        raise InputError(f"{path}: {exc}") from None


def _label_of(path: Path) -> str:
    try:
        with path.open("rb") as file:
            first = file.read(MAX_ARMORED_BYTES).split(b"\n", 1)[0].rstrip(b"\r").decode("ascii", "replace")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if first not in LABELS:
        raise InputError(f"{path} is not a membership statement file (a revocation or a rotation)")
    return first


async def import_statements(store: Store, statements: Sequence[Statement], *, now_ms: int) -> int:
    """Store the statements not held yet; return how many were new."""
    return len(await store.statements.add(statements, now_ms=now_ms))


def fork_alarms(forks: dict[bytes, list[bytes]]) -> list[dict[str, object]]:
    """`lapnode status` alarms for keys rotated into more than one key: the key is in two hands."""
    return [
        {
            "kind": "key-fork",
            "key": node_id_from_public_key(old),
            "reason": (
                f"{node_id_from_public_key(old)} was rotated into {len(new)} different keys "
                f"({', '.join(node_id_from_public_key(n) for n in new)}); only the first is followed. "
                "Someone else holds that key: ask the authority to revoke the one that is not the member's"
            ),
        }
        for old, new in forks.items()
    ]
