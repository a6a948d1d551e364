"""Key files: a node's identity at rest. The only module of ``keys`` that touches the filesystem.

Invariants:
- Rule 1: a key file is never accessible to anyone but its owner, not even for an instant. It is created
  with mode 0600 under a fresh temporary name in the same directory (``O_CREAT | O_EXCL``), written,
  fsynced and only then moved into place, so a crash leaves the old file or the new one, never half of one.
- Rule 2: writing demands an explicit choice, ``Passphrase(...)`` or ``NoEncryption()``; there is no default.
- Rule 3: reading refuses a file that group or others may access (as ssh does), and checks that the
  decrypted seed derives the node id the file records.
- Rule 4: every failure is a ``KeyFileError`` with a one-line message naming the file; no passphrase and no
  secret byte ever appears in a message or a ``repr``.
- Rule 5: the node id is stored in the clear, so ``lapnode id`` can show it without the passphrase. It is
  not trusted for anything else: the key it names is always re-derived from the seed.

File format ``lapnode-key/1``, UTF-8 JSON with exactly these fields:
    {"format": "lapnode-key/1", "node_id": "lap1...", "protection": "argon2id-secretbox",
     "opslimit": int, "memlimit": int, "salt": base64(16 bytes), "box": base64(SecretBox nonce + ciphertext)}
or, unencrypted, {"format": ..., "node_id": ..., "protection": "none", "seed": base64(32 bytes)}.
The Argon2id cost is stored so that a later version can raise it without breaking old files.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id
import nacl.utils
from nacl.secret import SecretBox

from keys.errors import InvalidNodeId, KeyFileError, PassphraseRequired, WrongPassphrase
from keys.identity import SEED_BYTES, Identity, NodeId, parse_node_id

FORMAT = "lapnode-key/1"
PROTECTION_ARGON2ID = "argon2id-secretbox"
PROTECTION_NONE = "none"

_FIELDS = {
    PROTECTION_ARGON2ID: {"format", "node_id", "protection", "opslimit", "memlimit", "salt", "box"},
    PROTECTION_NONE: {"format", "node_id", "protection", "seed"},
}
# A key file is a few hundred bytes; the cap keeps a wrong path (a log, a disk image) from being slurped.
_MAX_FILE_BYTES = 64 * 1024
_BOX_BYTES = SecretBox.NONCE_SIZE + SecretBox.MACBYTES + SEED_BYTES
# Upper bounds on a stored cost: a damaged or hostile file must not make the node hang for hours or
# exhaust memory before it can even say "wrong passphrase". 16 passes over 1 GiB is far above SENSITIVE.
_MAX_OPSLIMIT = 4 * argon2id.OPSLIMIT_SENSITIVE
_MAX_MEMLIMIT = argon2id.MEMLIMIT_SENSITIVE


@dataclass(frozen=True, slots=True, eq=False)
class Passphrase:
    """Encrypt the key with this passphrase (bytes; encode text as UTF-8). Its repr hides the value."""

    value: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.value, bytes):
            raise TypeError("a passphrase is bytes; encode text as UTF-8")
        if not self.value:
            raise ValueError("an empty passphrase protects nothing; say NoEncryption() if that is meant")

    def __repr__(self) -> str:
        return "Passphrase(<hidden>)"


@dataclass(frozen=True, slots=True)
class NoEncryption:
    """Store the seed in the clear, guarded only by the file mode (tests, or a disk encrypted as a whole)."""


@dataclass(frozen=True, slots=True)
class KdfCost:
    """Argon2id work factors: passes over memory (opslimit) and bytes of memory (memlimit)."""

    opslimit: int
    memlimit: int

    def __post_init__(self) -> None:
        for name, value, low, high in (
            ("opslimit", self.opslimit, argon2id.OPSLIMIT_MIN, _MAX_OPSLIMIT),
            ("memlimit", self.memlimit, argon2id.MEMLIMIT_MIN, _MAX_MEMLIMIT),
        ):
            if type(value) is not int or not low <= value <= high:
                raise ValueError(f"Argon2id {name} must be an integer from {low} to {high}")


INTERACTIVE = KdfCost(argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE)


@dataclass(frozen=True, slots=True)
class _PlainKey:
    node_id: NodeId
    seed: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class _SealedKey:
    node_id: NodeId
    cost: KdfCost
    salt: bytes
    box: bytes


def write_key_file(
    path: Path,
    identity: Identity,
    protection: Passphrase | NoEncryption,
    *,
    overwrite: bool = False,
    kdf_cost: KdfCost = INTERACTIVE,
) -> None:
    """Store ``identity`` at ``path`` (mode 0600, atomic); an existing file is kept unless ``overwrite``."""
    path = Path(path)
    seed = identity.private_seed_for_storage()
    document: dict[str, object] = {"format": FORMAT, "node_id": identity.node_id}
    if isinstance(protection, Passphrase):
        salt = nacl.utils.random(argon2id.SALTBYTES)
        box = SecretBox(_derive_key(path, protection.value, salt, kdf_cost)).encrypt(seed)
        document |= {
            "protection": PROTECTION_ARGON2ID,
            "opslimit": kdf_cost.opslimit,
            "memlimit": kdf_cost.memlimit,
            "salt": _b64encode(salt),
            "box": _b64encode(bytes(box)),
        }
    elif isinstance(protection, NoEncryption):
        document |= {"protection": PROTECTION_NONE, "seed": _b64encode(seed)}
    else:
        raise TypeError("protection must be Passphrase(...) or NoEncryption()")
    data = (json.dumps(document, indent=2) + "\n").encode("utf-8")
    _write_atomically(path, data, overwrite=overwrite)


def read_key_file(path: Path, passphrase: bytes | None) -> Identity:
    """Load the identity stored at ``path``. ``passphrase`` is ignored if the file is not encrypted."""
    path = Path(path)
    stored = _load(path)
    if isinstance(stored, _SealedKey):
        if passphrase is None:
            raise PassphraseRequired(f"key file {path} is encrypted; a passphrase is required")
        if not isinstance(passphrase, bytes):
            raise TypeError("a passphrase is bytes; encode text as UTF-8")
        key = _derive_key(path, passphrase, stored.salt, stored.cost)
        try:
            seed = SecretBox(key).decrypt(stored.box)
        except nacl.exceptions.CryptoError:
            # A changed salt, cost or box is indistinguishable from a wrong passphrase: that is the point.
            raise WrongPassphrase(f"wrong passphrase for key file {path}") from None
    else:
        seed = stored.seed
    identity = Identity.from_seed(seed)
    if identity.node_id != stored.node_id:
        raise KeyFileError(f"key file {path} is corrupt: its key does not match the node id it records")
    return identity


def read_public_node_id(path: Path) -> NodeId:
    """The node id recorded in the key file, read without the passphrase."""
    return _load(Path(path)).node_id


def key_file_is_encrypted(path: Path) -> bool:
    return isinstance(_load(Path(path)), _SealedKey)


def _derive_key(path: Path, passphrase: bytes, salt: bytes, cost: KdfCost) -> bytes:
    try:
        return argon2id.kdf(
            SecretBox.KEY_SIZE, passphrase, salt, opslimit=cost.opslimit, memlimit=cost.memlimit
        )
    except (MemoryError, nacl.exceptions.RuntimeError):
        raise KeyFileError(
            f"cannot derive the key for key file {path}: Argon2id needs {cost.memlimit} bytes of memory"
        ) from None


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _load(path: Path) -> _PlainKey | _SealedKey:
    return _parse(path, _read_private_file(path))


def _read_private_file(path: Path) -> bytes:
    try:
        # O_NONBLOCK: opening a FIFO placed at the key path must not hang the node.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    try:
        # fstat on the open file, not stat on the name: the file checked is the file read.
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise KeyFileError(f"key file {path} is not a regular file")
        if status.st_mode & 0o077:
            mode = stat.S_IMODE(status.st_mode)
            raise KeyFileError(
                f"key file {path} is accessible by other users (mode {mode:04o}); run: chmod 600 {path}"
            )
        data = b""
        while len(data) <= _MAX_FILE_BYTES and (chunk := os.read(fd, _MAX_FILE_BYTES + 1 - len(data))):
            data += chunk
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > _MAX_FILE_BYTES:
        raise KeyFileError(f"key file {path} is too large to be a key file")
    return data


def _parse(path: Path, data: bytes) -> _PlainKey | _SealedKey:
    def corrupt(reason: str) -> KeyFileError:
        return KeyFileError(f"key file {path} is corrupt: {reason}")

    try:
        document = json.loads(data.decode("utf-8"), object_pairs_hook=_without_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError):
        # `from None` everywhere below: a decoder's message may quote the file, and the file holds secrets.
        raise corrupt("not a well-formed JSON document (truncated?)") from None
    if not isinstance(document, dict):
        raise corrupt("not a JSON object")
    if document.get("format") != FORMAT:
        raise KeyFileError(f"key file {path} is not in the {FORMAT!r} format")
    protection = document.get("protection")
    if not isinstance(protection, str) or protection not in _FIELDS:
        raise corrupt("unknown protection")
    if set(document) != _FIELDS[protection]:
        raise corrupt(f"expected exactly the fields {', '.join(sorted(_FIELDS[protection]))}")

    def text(name: str) -> str:
        value = document[name]
        if not isinstance(value, str):
            raise corrupt(f"{name} is not a string")
        return value

    def decoded(name: str, size: int) -> bytes:
        try:
            raw = base64.b64decode(text(name), validate=True)
        except (binascii.Error, ValueError):
            raise corrupt(f"{name} is not base64") from None
        if len(raw) != size:
            raise corrupt(f"{name} is not {size} bytes")
        return raw

    try:
        node_id = parse_node_id(text("node_id"))
    except InvalidNodeId:
        raise corrupt("node_id is not a valid node id") from None
    if protection == PROTECTION_NONE:
        return _PlainKey(node_id, decoded("seed", SEED_BYTES))
    try:
        cost = KdfCost(document["opslimit"], document["memlimit"])
    except ValueError as exc:
        raise corrupt(str(exc)) from None
    return _SealedKey(node_id, cost, decoded("salt", argon2id.SALTBYTES), decoded("box", _BOX_BYTES))


def _without_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # JSON lets a later duplicate silently win; a key file has one reading only.
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("duplicate field")
    return document


def _write_atomically(path: Path, data: bytes, *, overwrite: bool) -> None:
    if not overwrite and os.path.lexists(path):
        # Early and friendly; os.link below is what makes the refusal race-free.
        raise KeyFileError(f"key file {path} already exists; refusing to overwrite it")
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        # 0600 from the first instant. O_EXCL: a file or symlink planted at the name makes this fail
        # instead of writing the key through it.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise KeyFileError(f"cannot write key file {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o600)  # the umask may have cleared the owner's bits; make it exact
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            # link() fails if the name exists, where replace() would clobber a file created meanwhile.
            os.link(temporary, path)
        _fsync_directory(path.parent)
    except FileExistsError:
        raise KeyFileError(f"key file {path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise KeyFileError(f"cannot write key file {path}: {exc.strerror or exc}") from None
    finally:
        # Gone already after replace(); still there after link() or a failure.
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def _fsync_directory(directory: Path) -> None:
    # Makes the new name durable. Some filesystems refuse fsync on a directory (EINVAL); the file itself
    # is complete and in place by now, so that refusal is not worth failing the write for.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)
