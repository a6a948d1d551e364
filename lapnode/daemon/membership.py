"""Membership while the daemon runs: which credential we present, what we demand, and the one place
that turns a peer into policy recipient attributes (protocol/SPEC.md §8.3-§8.4).

Rule 1: strict mode is on exactly when the operator configured at least one trusted authority. Then
every handshake, in both roles, demands a valid, unexpired, unrevoked credential from a trusted authority
for the very key the handshake authenticated (protocol.handshake Rule 5), and any key that passes (and is
not blocked or serving a ban) is admitted, whether or not the operator added it. With no authority
configured (legacy mode) the node admits only the peers its operator added, as before credentials.
Rule 2: `recipient_for` is the only source of a peer's Recipient. A peer that presented a verified
credential is described by that credential alone; the operator's pinned peer-book values count only in
legacy mode. A peer never describes itself.
Rule 3: the credential we present is re-read from the node home when the file changes, so
`lapnode credential install` renews it without a restart. A damaged file is logged and not presented.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from keys.membership import TrustedAuthorities
from lapnode.errors import LapnodeError
from lapnode.policy import Recipient
from lapnode.store import Peer
from protocol.armor import dearmor
from protocol.credential import FILE_LABEL, Credential, CredentialCheck
from protocol.errors import ProtocolError

log = logging.getLogger("lapnode.membership")


@dataclass
class Membership:
    trusted: TrustedAuthorities
    credential_path: Path | None = None
    # Node keys revoked by a trusted authority; credentials of these keys are refused.
    revoked: frozenset[bytes] = frozenset()
    # Node keys rotated away (SPEC §8.8): they may no longer connect, their new keys may.
    retired: frozenset[bytes] = frozenset()
    # This node's latest rotation into its current key, shown in every handshake (SPEC §8.8).
    own_rotation: bytes | None = None
    _cached: tuple[tuple[int, int] | None, bytes | None] = field(default=(None, None), repr=False)

    @property
    def strict(self) -> bool:
        return bool(self.trusted)

    def check(self, now_ms: int) -> CredentialCheck | None:
        """What a handshake starting now demands of the peer; None in legacy mode."""
        if not self.strict:
            return None
        return CredentialCheck(self.trusted, now_ms, self.revoked, self.retired)

    def refused(self, key: bytes) -> bool:
        """Whether a key may no longer hold a session: revoked, or rotated away."""
        return key in self.revoked or key in self.retired

    def own_credential(self) -> bytes | None:
        """The credential this node presents (unverified bytes), or None if none is installed."""
        if self.credential_path is None:
            return None
        try:
            status = os.stat(self.credential_path)
        except FileNotFoundError:
            self._cached = (None, None)
            return None
        except OSError as exc:
            log.warning('{"event": "credential_unreadable", "reason": "%s"}', exc.strerror)
            return None
        stamp = (status.st_mtime_ns, status.st_size)
        if self._cached[0] != stamp:
            self._cached = (stamp, self._read())
        return self._cached[1]

    def _read(self) -> bytes | None:
        assert self.credential_path is not None
        try:
            return dearmor(FILE_LABEL, self.credential_path.read_bytes())
        except (OSError, ProtocolError, LapnodeError) as exc:
            log.warning('{"event": "credential_unreadable", "reason": "%s"}', type(exc).__name__)
            return None


def recipient_for(key: bytes, pinned: Peer | None, credential: Credential | None) -> Recipient:
    """The recipient attributes policy uses for the peer at the other end of a channel (Rule 2)."""
    if credential is not None:
        assert credential.subject == key, "a channel's credential is always for its authenticated peer"
        return Recipient(key, credential.org, credential.category, credential.jurisdiction)
    if pinned is None:
        return Recipient(key)
    return Recipient(key, pinned.org, pinned.category, pinned.jurisdiction)
