"""Key files: round trips, modes, refusals, and every damaged file failing as KeyFileError without leaking."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nacl.pwhash.argon2id as argon2id
import pytest

from keys.errors import CryptoError, KeyFileError, PassphraseRequired, WrongPassphrase
from keys.identity import Identity
from keys.keyfile import (
    FORMAT,
    INTERACTIVE,
    KdfCost,
    NoEncryption,
    Passphrase,
    key_file_is_encrypted,
    read_key_file,
    read_public_node_id,
    write_key_file,
)

# The cheapest cost libsodium allows, so the suite stays fast; one test uses the real default.
FAST = KdfCost(argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN)
SECRET = b"correct horse battery staple"
SEED = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
IDENTITY = Identity.from_seed(SEED)
OTHER = Identity.from_seed(bytes(32))

# Every form in which the passphrase or the seed could leak into a message.
SECRET_FORMS = [
    SECRET.decode(),
    repr(SECRET),
    SEED.hex(),
    SEED.hex()[:16],
    repr(SEED),
    base64.b64encode(SEED).decode(),
    base64.b64encode(SEED).decode()[:12],
]


def assert_no_secrets(error: BaseException) -> None:
    seen: BaseException | None = error
    while seen is not None:
        for text in (str(seen), repr(seen)):
            for form in SECRET_FORMS:
                assert form not in text, f"{type(seen).__name__} leaks a secret"
        seen = seen.__cause__ or seen.__context__


def expect_key_file_error(path: Path, passphrase: bytes | None = SECRET) -> KeyFileError:
    """Reading must fail with a one-line KeyFileError that leaks nothing."""
    with pytest.raises(KeyFileError) as caught:
        read_key_file(path, passphrase)
    error = caught.value
    assert "\n" not in str(error)
    assert str(path) in str(error)
    assert_no_secrets(error)
    return error


@pytest.fixture
def encrypted(tmp_path: Path) -> Path:
    path = tmp_path / "node.key"
    write_key_file(path, IDENTITY, Passphrase(SECRET), kdf_cost=FAST)
    return path


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    path = tmp_path / "plain.key"
    write_key_file(path, IDENTITY, NoEncryption())
    return path


def put(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.chmod(path, mode)


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


def document(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_bytes())
    return loaded


def put_document(path: Path, doc: dict[str, Any]) -> None:
    put(path, json.dumps(doc).encode())


# --- round trips ----------------------------------------------------------------------------------


def test_round_trip_with_passphrase(encrypted: Path) -> None:
    loaded = read_key_file(encrypted, SECRET)
    assert loaded.public_key == IDENTITY.public_key
    assert loaded.private_seed_for_storage() == SEED
    assert key_file_is_encrypted(encrypted)
    assert read_public_node_id(encrypted) == IDENTITY.node_id
    raw = encrypted.read_bytes()
    for form in SECRET_FORMS:
        assert form.encode() not in raw


def test_round_trip_with_default_cost_records_it(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    write_key_file(path, IDENTITY, Passphrase(SECRET))
    doc = document(path)
    assert doc["format"] == FORMAT == "lapnode-key/1"
    assert doc["protection"] == "argon2id-secretbox"
    assert KdfCost(argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE) == INTERACTIVE
    assert KdfCost(doc["opslimit"], doc["memlimit"]) == INTERACTIVE
    assert read_key_file(path, SECRET).node_id == IDENTITY.node_id


def test_round_trip_without_encryption(plain: Path) -> None:
    assert read_key_file(plain, None).private_seed_for_storage() == SEED
    assert read_key_file(plain, b"ignored for a plain file").node_id == IDENTITY.node_id
    assert not key_file_is_encrypted(plain)
    assert read_public_node_id(plain) == IDENTITY.node_id
    doc = document(plain)
    assert set(doc) == {"format", "node_id", "protection", "seed"}
    assert doc["protection"] == "none"


def test_same_passphrase_gives_a_different_file_each_time(tmp_path: Path) -> None:
    write_key_file(tmp_path / "a", IDENTITY, Passphrase(SECRET), kdf_cost=FAST)
    write_key_file(tmp_path / "b", IDENTITY, Passphrase(SECRET), kdf_cost=FAST)
    first, second = document(tmp_path / "a"), document(tmp_path / "b")
    assert first["salt"] != second["salt"]
    assert first["box"] != second["box"]


def test_path_may_be_given_as_str(tmp_path: Path) -> None:
    path = str(tmp_path / "node.key")
    write_key_file(path, IDENTITY, NoEncryption())  # type: ignore[arg-type]
    assert read_key_file(path, None).node_id == IDENTITY.node_id  # type: ignore[arg-type]


# --- passphrases ----------------------------------------------------------------------------------


def test_wrong_passphrase(encrypted: Path) -> None:
    for wrong in (b"", b"correct horse battery stapl", SECRET + b" ", SECRET.upper()):
        error = expect_key_file_error(encrypted, wrong)
        assert type(error) is WrongPassphrase
        assert str(error) == f"wrong passphrase for key file {encrypted}"


def test_missing_passphrase(encrypted: Path) -> None:
    error = expect_key_file_error(encrypted, None)
    assert type(error) is PassphraseRequired
    assert isinstance(error, CryptoError)


def test_passphrase_must_be_bytes(encrypted: Path) -> None:
    with pytest.raises(TypeError):
        read_key_file(encrypted, SECRET.decode())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Passphrase(SECRET.decode())  # type: ignore[arg-type]


def test_empty_passphrase_is_refused_for_writing() -> None:
    with pytest.raises(ValueError, match="NoEncryption"):
        Passphrase(b"")


def test_passphrase_repr_hides_the_value() -> None:
    phrase = Passphrase(SECRET)
    for shown in (repr(phrase), str(phrase), repr([phrase])):
        assert SECRET.decode() not in shown
        assert "hidden" in shown
    assert phrase != Passphrase(SECRET), "no non-constant-time comparison of passphrases"


def test_protection_must_be_chosen_explicitly(tmp_path: Path) -> None:
    for wrong in (None, SECRET, "none", NoEncryption):
        with pytest.raises(TypeError, match="NoEncryption"):
            write_key_file(tmp_path / "node.key", IDENTITY, wrong)  # type: ignore[arg-type]
    assert not (tmp_path / "node.key").exists()


@pytest.mark.parametrize(
    ("opslimit", "memlimit"),
    [(0, 8192), (1, 8191), (17, 8192), (1, 2**31), (True, 8192), (1.0, 8192), ("2", 8192)],
)
def test_kdf_cost_bounds(opslimit: Any, memlimit: Any) -> None:
    with pytest.raises(ValueError, match="Argon2id"):
        KdfCost(opslimit, memlimit)


# --- the file on disk -----------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077, 0o277, 0o777])
def test_file_mode_is_exactly_0600(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "node.key"
    old = os.umask(umask)
    try:
        write_key_file(path, IDENTITY, NoEncryption())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path, None).node_id == IDENTITY.node_id


def test_refuses_to_overwrite(encrypted: Path) -> None:
    before = encrypted.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(encrypted, OTHER, NoEncryption())
    assert encrypted.read_bytes() == before
    assert sorted(p.name for p in encrypted.parent.iterdir()) == [encrypted.name], "no temporary file left"


def test_refuses_to_overwrite_a_dangling_symlink(tmp_path: Path) -> None:
    link = tmp_path / "node.key"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(link, IDENTITY, NoEncryption())
    assert not (tmp_path / "elsewhere").exists()


def test_overwrite_when_asked(encrypted: Path) -> None:
    write_key_file(encrypted, OTHER, NoEncryption(), overwrite=True)
    assert read_key_file(encrypted, None).public_key == OTHER.public_key
    assert stat.S_IMODE(encrypted.stat().st_mode) == 0o600
    assert sorted(p.name for p in encrypted.parent.iterdir()) == [encrypted.name], "no temporary file left"


def test_write_into_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot write key file") as caught:
        write_key_file(tmp_path / "absent" / "node.key", IDENTITY, Passphrase(SECRET), kdf_cost=FAST)
    assert_no_secrets(caught.value)


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o660, 0o602, 0o620, 0o601, 0o610])
def test_file_others_can_access_is_refused(encrypted: Path, mode: int) -> None:
    os.chmod(encrypted, mode)
    error = expect_key_file_error(encrypted)
    assert f"chmod 600 {encrypted}" in str(error)
    assert f"{mode:04o}" in str(error)
    for reader in (read_public_node_id, key_file_is_encrypted):
        with pytest.raises(KeyFileError, match="chmod 600"):
            reader(encrypted)


@pytest.mark.parametrize("mode", [0o400, 0o600, 0o700])
def test_owner_only_modes_are_accepted(encrypted: Path, mode: int) -> None:
    os.chmod(encrypted, mode)
    assert read_key_file(encrypted, SECRET).node_id == IDENTITY.node_id


def test_missing_file(tmp_path: Path) -> None:
    error = expect_key_file_error(tmp_path / "absent.key")
    assert "does not exist" in str(error)
    with pytest.raises(KeyFileError):
        read_public_node_id(tmp_path / "absent.key")
    with pytest.raises(KeyFileError):
        key_file_is_encrypted(tmp_path / "absent.key")


def test_directory_and_fifo_are_refused(tmp_path: Path) -> None:
    directory = tmp_path / "dir.key"
    directory.mkdir(mode=0o700)
    assert "not a regular file" in str(expect_key_file_error(directory))
    fifo = tmp_path / "fifo.key"
    os.mkfifo(fifo, 0o600)
    assert "not a regular file" in str(expect_key_file_error(fifo))


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.key"
    put(path, b" " * (64 * 1024 + 1))
    assert "too large" in str(expect_key_file_error(path))


# --- damaged files --------------------------------------------------------------------------------


def test_every_truncation_is_a_key_file_error(encrypted: Path, plain: Path) -> None:
    for original in (encrypted, plain):
        data = original.read_bytes()
        damaged = original.with_name("damaged.key")
        # Dropping only the final newline leaves the whole document, which must still load.
        for length in range(len(data) - 1):
            put(damaged, data[:length])
            expect_key_file_error(damaged)


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\n",
        b"\xff\xfe\x00garbage",
        b"null",
        b"[]",
        b'"lapnode-key/1"',
        b"{}",
        b"[" * 50_000,
        b"\x00" * 100,
    ],
)
def test_garbage_is_a_key_file_error(tmp_path: Path, garbage: bytes) -> None:
    path = tmp_path / "garbage.key"
    put(path, garbage)
    expect_key_file_error(path)
    with pytest.raises(KeyFileError):
        read_public_node_id(path)


def test_duplicate_field_is_a_key_file_error(plain: Path) -> None:
    text = plain.read_text()
    put(plain, text.replace('"protection"', f'"node_id": "{OTHER.node_id}", "protection"').encode())
    assert "well-formed" in str(expect_key_file_error(plain, None))


def test_every_byte_of_the_box_is_authenticated(encrypted: Path) -> None:
    doc = document(encrypted)
    box = base64.b64decode(doc["box"])
    for i in range(len(box)):
        put_document(encrypted, doc | {"box": base64.b64encode(flip(box, i)).decode()})
        assert isinstance(expect_key_file_error(encrypted), WrongPassphrase)


def test_tampered_salt_or_cost_cannot_decrypt(encrypted: Path) -> None:
    doc = document(encrypted)
    salt = base64.b64decode(doc["salt"])
    for change in ({"salt": base64.b64encode(flip(salt, 0)).decode()}, {"opslimit": 2}):
        put_document(encrypted, doc | change)
        assert isinstance(expect_key_file_error(encrypted), WrongPassphrase)


@pytest.mark.parametrize("protection", ["encrypted", "plain"])
def test_swapped_node_id_is_detected_after_decryption(encrypted: Path, plain: Path, protection: str) -> None:
    path = encrypted if protection == "encrypted" else plain
    put_document(path, document(path) | {"node_id": OTHER.node_id})
    # The stored id is public and shown without the passphrase; only the seed is trusted.
    assert read_public_node_id(path) == OTHER.node_id
    error = expect_key_file_error(path)
    assert type(error) is KeyFileError
    assert "is corrupt" in str(error)


def edits() -> Iterator[tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]]:
    yield "unknown format", lambda d: d | {"format": "lapnode-key/2"}
    yield "format missing", lambda d: {k: v for k, v in d.items() if k != "format"}
    yield "unknown protection", lambda d: d | {"protection": "rot13"}
    yield "protection is a list", lambda d: d | {"protection": ["none"]}
    yield "protection missing", lambda d: {k: v for k, v in d.items() if k != "protection"}
    yield "extra field", lambda d: d | {"comment": "hello"}
    yield "box missing", lambda d: {k: v for k, v in d.items() if k != "box"}
    yield "salt missing", lambda d: {k: v for k, v in d.items() if k != "salt"}
    yield "node id typo", lambda d: d | {"node_id": d["node_id"][:-2] + d["node_id"][-1] + d["node_id"][-2]}
    yield "node id not a string", lambda d: d | {"node_id": 7}
    yield "box not base64", lambda d: d | {"box": "!!" + d["box"][2:]}
    yield "box short", lambda d: d | {"box": base64.b64encode(base64.b64decode(d["box"])[:-1]).decode()}
    yield "box long", lambda d: d | {"box": base64.b64encode(base64.b64decode(d["box"]) + b"\0").decode()}
    yield "box not a string", lambda d: d | {"box": None}
    yield "salt short", lambda d: d | {"salt": base64.b64encode(b"salt").decode()}
    yield "opslimit huge", lambda d: d | {"opslimit": 2**40}
    yield "memlimit huge", lambda d: d | {"memlimit": 2**60}
    yield "memlimit tiny", lambda d: d | {"memlimit": 1}
    yield "opslimit a string", lambda d: d | {"opslimit": "2"}
    yield "opslimit a bool", lambda d: d | {"opslimit": True}
    yield "opslimit a float", lambda d: d | {"opslimit": 1.0}
    yield "plain and sealed mixed", lambda d: d | {"protection": "none"}


@pytest.mark.parametrize(("name", "edit"), list(edits()))
def test_malformed_document_is_a_key_file_error(
    encrypted: Path, name: str, edit: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    put_document(encrypted, edit(document(encrypted)))
    error = expect_key_file_error(encrypted)
    assert type(error) is KeyFileError, name


def plain_edits() -> Iterator[tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]]:
    yield "seed short", lambda d: d | {"seed": base64.b64encode(SEED[:31]).decode()}
    yield "seed long", lambda d: d | {"seed": base64.b64encode(SEED + b"\0").decode()}
    yield "seed not base64", lambda d: d | {"seed": "*" * 44}
    yield "seed of another key", lambda d: d | {"seed": base64.b64encode(bytes(32)).decode()}
    yield "seed missing", lambda d: {k: v for k, v in d.items() if k != "seed"}
    yield "sealed fields on a plain file", lambda d: d | {"salt": "AAAA", "box": "AAAA"}


@pytest.mark.parametrize(("name", "edit"), list(plain_edits()))
def test_malformed_plain_document_is_a_key_file_error(
    plain: Path, name: str, edit: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    put_document(plain, edit(document(plain)))
    error = expect_key_file_error(plain, None)
    assert type(error) is KeyFileError, name


def test_key_file_error_family() -> None:
    assert issubclass(WrongPassphrase, KeyFileError)
    assert issubclass(PassphraseRequired, KeyFileError)
    assert issubclass(KeyFileError, CryptoError)
