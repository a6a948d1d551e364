"""Sealed records on this node: the randomness to seal one, and opening them for the operator (SPEC §3.7).

Rule 1: randomness enters here, never in protocol/: the content key, nonce and ephemeral secret of every
sealed record come from `secrets.token_bytes`, fresh for each record.
Rule 2: a sealed record is opened only to show it to this node's operator, and only when this node is a
recipient (a named member or the author). The plaintext is never written anywhere: the store keeps the
ciphertext as received and indexes nothing of it, so `query --text` and `--indicator` do not find
sealed records, on relays and recipients alike.
Rule 3: the node key is unlocked only when a record addressed to this node is about to be shown, and at
most once per command. Without a passphrase source (no terminal, no LAPNODE_PASSPHRASE, no
--passphrase-file), the record is shown as sealed, with a note saying how to open it; a wrong passphrase
is an error.
Rule 4: a record that does not open (tampered, malformed plaintext) is still a valid record: it is shown
as sealed with the reason, never as an error that hides the rest of a query.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from keys.identity import Identity
from lapnode.errors import PassphraseError
from protocol.envelope import Record, RecordId
from protocol.errors import SealedError
from protocol.kinds import Body, SealedBody
from protocol.kinds.sealed import CONTENT_KEY_BYTES, EPHEMERAL_KEY_BYTES, NONCE_BYTES
from protocol.sealed import SealingSecrets, open_sealed

NOT_READABLE = "not readable here"


def fresh_sealing_secrets() -> SealingSecrets:
    """New randomness for one sealed record (Rule 1)."""
    return SealingSecrets(
        content_key=secrets.token_bytes(CONTENT_KEY_BYTES),
        nonce=secrets.token_bytes(NONCE_BYTES),
        ephemeral_secret=secrets.token_bytes(EPHEMERAL_KEY_BYTES),
    )


@dataclass(frozen=True, slots=True)
class SealedView:
    """How a sealed record looks here: its opened body, or why it stays closed."""

    members: int
    body: Body | None
    note: str

    @property
    def opened(self) -> bool:
        return self.body is not None

    def line(self) -> str:
        """One line for a table or a detail view: "sealed for 2 members; not readable here"."""
        plural = "s" if self.members != 1 else ""
        return f"sealed for {self.members} member{plural}; {self.note}"


class SealedReader:
    """Opens the sealed records addressed to this node; `unlock` is called at most once, when needed."""

    def __init__(self, our_key: bytes, unlock: Callable[[], Identity]) -> None:
        self._our_key = our_key
        self._unlock = unlock
        self._identity: Identity | None = None
        self._locked: str | None = None

    def views(self, records: Iterable[Record]) -> dict[RecordId, SealedView]:
        """A view for every sealed record among `records` (unsealed ones are left out)."""
        return {record.id: self.view(record) for record in records if isinstance(record.body, SealedBody)}

    def view(self, record: Record) -> SealedView:
        body = record.body
        if not isinstance(body, SealedBody):
            raise ValueError("the record is not sealed")
        if self._our_key not in body.recipients:
            return SealedView(body.members, None, NOT_READABLE)
        identity = self._identity_or_none()
        if identity is None:
            return SealedView(body.members, None, f"addressed to this node, but {self._locked}")
        try:
            return SealedView(body.members, open_sealed(record, identity), "opened with this node's key")
        except SealedError as exc:
            return SealedView(body.members, None, f"addressed to this node, but it does not open: {exc}")

    def _identity_or_none(self) -> Identity | None:
        if self._identity is None and self._locked is None:
            try:
                self._identity = self._unlock()
            except PassphraseError:
                self._locked = "the node key is locked: set LAPNODE_PASSPHRASE or pass --passphrase-file"
        return self._identity
