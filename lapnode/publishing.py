"""Publishing this node's own records: from an operator's file and flags to a signed, stored record.

Rule 1: the body is whatever the operator's file says, with command-line flags overriding single fields;
`protocol.kinds.body_from_document` is the one validator, so a file and a flag get the same checks.
Rule 2: randomness and time enter here, never in protocol/: a fresh 16-byte salt per field from
`secrets.token_bytes` (salts make published field digests unguessable; LESSONS.md on unsalted MD5),
the sealing secrets of a sealed record from `lapnode.sealing`, and `created` from `lapnode.clock.now_ms`.
Rule 3: the record is signed inside `Store.publish`, under the store's write lock, so the sequence
number and the previous record's id cannot race with another publish.
Rule 4: a scope with the flag `sealed` publishes the body sealed to the named members and the author
(SPEC §3.7); such a scope must name members (`Scope` refuses it otherwise).
Rule 5: input files are parsed strictly: a duplicate JSON key is an error, not "last one wins". Floats,
dates and the rest are left to `body_from_document`, the one place that repairs friendly input.
"""

from __future__ import annotations

import json
import secrets
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from keys.identity import Identity, public_key_from_node_id
from lapnode.clock import format_ms, parse_future_ms
from lapnode.config import check_category, check_jurisdiction
from lapnode.errors import InputError
from lapnode.sealing import fresh_sealing_secrets
from lapnode.store import Store
from protocol.codec import Value
from protocol.envelope import SALT_SIZE, Record, RecordId, build_record
from protocol.errors import ProtocolError
from protocol.kinds import SCHEMA_VERSIONS, body_from_document
from protocol.scope import DEFAULT_RELAY_HOPS, SEALED_FLAG, Scope
from protocol.sealed import build_sealed_record

DEFAULT_TLP: Final = "amber"
_MAX_INPUT_BYTES: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ScopeRequest:
    """The operator's scope choices, as typed on the command line (validated by `build_scope`)."""

    tlp: str = DEFAULT_TLP
    categories: Sequence[str] = ()
    members: Sequence[str] = ()
    jurisdictions_allow: Sequence[str] = ()
    jurisdictions_deny: Sequence[str] = ()
    flags: Sequence[str] = ()
    relay_hops: int = DEFAULT_RELAY_HOPS
    expires: str | None = None
    embargo_until: str | None = None
    # `--sealed`: the body is encrypted to the named members (publish_record seals it, Rule 4).
    sealed: bool = False


def build_scope(request: ScopeRequest, *, now: int) -> Scope:
    """A validated Scope; times given as durations count from `now`. Raises InputError or CryptoError."""
    embargo = (
        parse_future_ms(request.embargo_until, now=now, what="--embargo-until")
        if request.embargo_until
        else None
    )
    expires = parse_future_ms(request.expires, now=now, what="--expires") if request.expires else None
    flags = list(request.flags)
    if any(flag.strip().lower() == SEALED_FLAG for flag in flags):
        # Relays carry a sealed record even where its TLP forbids relaying, because its body is ciphertext
        # (docs/policy.md): the flag is set only together with the encryption, by `--sealed`.
        raise InputError("--flag sealed: a record is sealed by encrypting it; use --sealed")
    if request.sealed:
        flags.append(SEALED_FLAG)
    if embargo is not None and expires is not None and expires <= embargo:
        raise InputError(
            f"the record would expire ({format_ms(expires)}) before its embargo ends ({format_ms(embargo)})"
        )
    try:
        return Scope.create(
            request.tlp.lower(),
            relay_hops=request.relay_hops,
            categories=[check_category(c) for c in request.categories],
            # A mistyped node id fails its checksum here (InvalidNodeId), never names another node.
            members=[public_key_from_node_id(m) for m in request.members],
            jurisdictions_allow=[check_jurisdiction(j) for j in request.jurisdictions_allow],
            jurisdictions_deny=[check_jurisdiction(j) for j in request.jurisdictions_deny],
            flags=[f.lower() for f in flags],
            embargo_until=embargo,
            expires=expires,
        )
    except ProtocolError as exc:
        raise InputError(str(exc)) from None


def load_document(path: Path) -> dict[str, object]:
    """A record body document from a JSON or TOML file (by extension, else by its first character)."""
    data = _read_input(path)
    text = _decode_utf8(path, data)
    suffix = path.suffix.lower()
    is_json = suffix == ".json" or (suffix != ".toml" and text.lstrip().startswith("{"))
    document = _parse_json(path, text) if is_json else _parse_toml(path, text)
    return document


def merge_overrides(
    document: Mapping[str, object], overrides: Mapping[str, object | None]
) -> dict[str, object]:
    """The document with every flag that was given (not None, not an empty repeatable) replacing its field."""
    merged = dict(document)
    for name, value in overrides.items():
        if value is None or (isinstance(value, tuple | list) and not value):
            continue
        merged[name] = list(value) if isinstance(value, tuple | list) else value
    return merged


def body_fields(kind: str, document: Mapping[str, object], source: Path | None = None) -> Mapping[str, Value]:
    """Validate a body document for `kind` into wire fields; the InputError names the field at fault."""
    try:
        return body_from_document(kind, dict(document))
    except ProtocolError as exc:
        # The message starts with the field path ("lead.subjects[2].value: ..."); add where it came from.
        raise InputError(f"{source if source is not None else 'cannot publish'}: {exc}") from None


async def publish_record(
    store: Store,
    identity: Identity,
    *,
    network: str,
    kind: str,
    fields: Mapping[str, Value],
    scope: Scope,
    created: int,
    supersedes: RecordId | None = None,
) -> Record:
    """Sign and store this node's next record of `kind` (sealed if the scope says so); returns it.
    With `supersedes`, the record is a new version of that one (its body names it, SPEC §5.1)."""
    if supersedes is not None:
        fields = {**fields, "supersedes": bytes(supersedes)}
    salts = {name: secrets.token_bytes(SALT_SIZE) for name in fields}
    sealing = fresh_sealing_secrets() if SEALED_FLAG in scope.flags else None
    sealed_salt = secrets.token_bytes(SALT_SIZE)

    def build(seq: int, prev: RecordId | None) -> Record:
        if sealing is not None:
            return build_sealed_record(
                identity,
                network=network,
                kind=kind,
                schema=SCHEMA_VERSIONS[kind],
                seq=seq,
                prev=prev,
                created=created,
                scope=scope,
                fields=fields,
                salt=sealed_salt,
                sealing=sealing,
            )
        return build_record(
            identity,
            network=network,
            kind=kind,
            schema=SCHEMA_VERSIONS[kind],
            seq=seq,
            prev=prev,
            created=created,
            scope=scope,
            fields=fields,
            salts=salts,
        )

    return await store.publish(identity.public_key.raw, build, supersedes=supersedes)


def _read_input(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(_MAX_INPUT_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > _MAX_INPUT_BYTES:
        raise InputError(f"{path} is larger than {_MAX_INPUT_BYTES // 1024} KiB; a record is at most 64 KiB")
    return data


def _decode_utf8(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text (byte {exc.start})") from None


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise InputError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _parse_json(path: Path, text: str) -> dict[str, object]:
    try:
        document = json.loads(text, object_pairs_hook=_reject_duplicates)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    if not isinstance(document, dict):
        raise InputError(f"{path}: the top level must be a JSON object {{...}} of record fields")
    return document


def _parse_toml(path: Path, text: str) -> dict[str, object]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path} is not valid TOML (nor JSON): {exc}") from None
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
