"""The code verification workers run, and the in-process verifier of small batches.

Rule 1: this is the only way bytes from outside become records in lapnode: every path calls
protocol.envelope.verify_record and nothing else, so there is one verifier for every entry. It returns a
`RecordRow` (the stored form) or a one-line reason the record was rejected.
Rule 2: this module imports only the standard library, `protocol`, `keys` and `lapnode.verification`: it
is what a worker process loads, and everything a worker
returns must unpickle in the daemon without importing more.
Rule 3: workers ignore SIGINT (the daemon decides when to stop), and exit on their own if the daemon
dies without shutting them down (SIGKILL).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Sequence
from typing import Final

from keys.errors import CryptoError
from keys.identity import PublicKey
from lapnode.verification.rows import RecordRow, row_values
from protocol.envelope import Record, verify_record
from protocol.errors import ProtocolError

_MAX_CACHED_KEYS: Final = 100_000

Verified = RecordRow | str


class AuthorKeys:
    """Cache of authors' public keys: building one decodes a curve point, and a network has few authors."""

    def __init__(self) -> None:
        self._keys: dict[bytes, PublicKey] = {}

    def __call__(self, raw: bytes) -> PublicKey:
        key = self._keys.get(raw)
        if key is None:
            key = PublicKey(raw)
            if len(self._keys) < _MAX_CACHED_KEYS:
                self._keys[raw] = key
        return key


def verify(raw: bytes, network: str, keys: AuthorKeys) -> Record | str:
    """The verified record, or a one-line reason it was rejected."""
    try:
        return verify_record(raw, network=network, key_for=keys)
    except (ProtocolError, CryptoError) as exc:
        return str(exc) or type(exc).__name__


def verify_rows(raws: Sequence[bytes], network: str, keys: AuthorKeys) -> list[Verified]:
    """Stored forms (or rejection reasons) of `raws`, in order."""
    results: list[Verified] = []
    for raw in raws:
        verified = verify(raw, network, keys)
        results.append(verified if isinstance(verified, str) else RecordRow.of(verified))
    return results


_WORKER_KEYS = AuthorKeys()
_watching_parent = False


def worker_init() -> None:
    """Run once in each worker process as it starts."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()


def _exit_with_parent() -> None:
    """End this worker when its parent ends, however it ends.

    A daemon killed with SIGKILL never shuts its pool down, and the pool's queue keeps the workers'
    pipes open, so without this they would wait forever as orphans. The parent's sentinel becomes
    readable when the parent exits, however it exits (multiprocessing gives spawned children
    one).
    """
    global _watching_parent
    parent = multiprocessing.parent_process()
    if parent is None or _watching_parent:
        return
    _watching_parent = True

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def worker_ready() -> None:
    """A task that does nothing: submitting it makes the pool start a worker (see Verifier.warm_up)."""


def worker_rows(raws: list[bytes], network: str) -> list[tuple[object, ...] | str]:
    """One chunk, verified in a worker with that worker's key cache, each row as a plain tuple for the
    pipe (rows.py Rule 2; `lapnode.store.verifier` re-wraps it). The row's `wire` is left out (None): the
    daemon holds the very bytes it sent and puts them back (`rows.with_wire`), so a record's bytes cross the
    pipe once, not twice."""
    results: list[tuple[object, ...] | str] = []
    for raw in raws:
        verified = verify(raw, network, _WORKER_KEYS)
        results.append(verified if isinstance(verified, str) else row_values(verified, keep_wire=False))
    return results
