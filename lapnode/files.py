"""Writing the node's small files (configuration, credentials, authority files) safely.

Rule 1: a file is written under a fresh temporary name in the same directory with its final mode from
the first instant (0600 unless asked otherwise), fsynced, then moved into place, so a crash leaves the
old file or the new one, never half of one, and nobody reads it in between with looser permissions.
Rule 2: without `overwrite`, an existing file is never replaced, not even one created meanwhile (link()
refuses an existing name where rename() would clobber it).
(keys.keyfile does the same for key files; keys may not import lapnode, so it keeps its own copy.)
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from lapnode.errors import InputError


def write_private_file(path: Path, data: bytes, *, overwrite: bool, mode: int = 0o600) -> None:
    """Write `data` to `path` atomically; InputError (naming the file) if it exists and not `overwrite`."""
    if not overwrite and os.path.lexists(path):
        raise InputError(f"{path} already exists; refusing to overwrite it")
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)  # the umask may have cleared bits; make it exact
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    except FileExistsError:
        raise InputError(f"{path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
