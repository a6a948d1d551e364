"""Sealed-record vectors (protocol/SPEC.md §3.7): rebuilt from their inputs, every step recomputed.

The JSON is read as a second implementation would: each intermediate value (X25519 keys, shared secrets
on both sides, wrap keys, wrapped keys, associated data, key commitment, ciphertext) is recomputed here
from the SPEC's formulas with PyNaCl directly, the record is rebuilt byte for byte by
`build_sealed_record`, and the generator must still write exactly the committed file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import nacl.bindings
import pytest

from keys.identity import Identity
from protocol import codec
from protocol.envelope import (
    MAX_RECORD_SIZE,
    RecordId,
    check_signature,
    complete,
    decode_unverified,
    verify_record,
)
from protocol.errors import (
    CannotOpen,
    InvalidRecord,
    InvalidSealedBody,
    NotARecipient,
    ProtocolError,
    SealedError,
)
from protocol.kinds import SealedBody, parse_body
from protocol.scope import Scope
from protocol.sealed import SealingSecrets, build_sealed_record, open_sealed
from protocol.vectors import generate_sealed

VECTOR_FILE = Path(generate_sealed.__file__).parent / "sealed.json"
DOCUMENT: dict[str, Any] = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))
NETWORK: str = DOCUMENT["network"]
RECORDS: list[dict[str, Any]] = DOCUMENT["records"]
ERRORS: dict[str, type[SealedError]] = {
    "NotARecipient": NotARecipient,
    "CannotOpen": CannotOpen,
    "InvalidSealedBody": InvalidSealedBody,
}


def ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [vector["name"] for vector in vectors]


def seeds() -> dict[str, bytes]:
    found = {DOCUMENT["outsider"]["name"]: bytes.fromhex(DOCUMENT["outsider"]["seed_hex"])}
    for vector in RECORDS:
        found[vector["author"]["name"]] = bytes.fromhex(vector["author"]["seed_hex"])
        found.update({r["name"]: bytes.fromhex(r["seed_hex"]) for r in vector["recipients"]})
    return found


IDENTITIES = {name: Identity.from_seed(seed) for name, seed in seeds().items()}


def scope_from_json(scope: dict[str, Any]) -> Scope:
    wire = dict(scope)
    wire["members"] = [bytes.fromhex(member) for member in wire["members"]]
    return Scope.from_wire(wire)


def fields_of(vector: dict[str, Any]) -> dict[str, Any]:
    return {
        name: codec.decode(bytes.fromhex(field["msgpack_hex"]), max_size=MAX_RECORD_SIZE)
        for name, field in vector["inputs"]["fields"].items()
    }


def hex_of(vector: dict[str, Any], key: str) -> bytes:
    return bytes.fromhex(vector[key])


@pytest.mark.parametrize("vector", RECORDS, ids=ids(RECORDS))
def test_rebuild_byte_for_byte(vector: dict[str, Any]) -> None:
    inputs = vector["inputs"]
    record = build_sealed_record(
        Identity.from_seed(bytes.fromhex(vector["author"]["seed_hex"])),
        network=inputs["network"],
        kind=inputs["kind"],
        schema=inputs["schema"],
        seq=inputs["seq"],
        prev=None if inputs["prev_hex"] is None else RecordId(bytes.fromhex(inputs["prev_hex"])),
        created=inputs["created"],
        scope=scope_from_json(inputs["scope"]),
        fields=fields_of(vector),
        salt=bytes.fromhex(inputs["salt_hex"]),
        sealing=SealingSecrets(
            bytes.fromhex(inputs["content_key_hex"]),
            bytes.fromhex(inputs["nonce_hex"]),
            bytes.fromhex(inputs["ephemeral_secret_hex"]),
        ),
    )
    assert record.header_bytes.hex() == vector["header_hex"]
    assert record.signature.hex() == vector["signature_hex"]
    assert record.wire.hex() == vector["wire_hex"]
    assert record.id.hex() == vector["id_hex"]


@pytest.mark.parametrize("vector", RECORDS, ids=ids(RECORDS))
def test_every_step_follows_the_spec(vector: dict[str, Any]) -> None:
    inputs = vector["inputs"]
    author = bytes.fromhex(vector["author"]["node_key_hex"])
    scope = scope_from_json(inputs["scope"])
    ad = codec.encode(
        [
            "lapnode/sealed/v1",
            NETWORK,
            author,
            inputs["kind"],
            inputs["schema"],
            inputs["seq"],
            scope.to_wire(),
        ]
    )
    assert ad == hex_of(vector, "associated_data_hex")
    ephemeral = bytes.fromhex(inputs["ephemeral_secret_hex"])
    epk = nacl.bindings.crypto_scalarmult_base(ephemeral)
    assert epk == hex_of(vector, "ephemeral_public_hex")
    content_key, nonce = bytes.fromhex(inputs["content_key_hex"]), bytes.fromhex(inputs["nonce_hex"])
    assert [bytes.fromhex(r["node_key_hex"]) for r in vector["recipients"]] == sorted(
        {*scope.members, author}
    )
    for recipient in vector["recipients"]:
        node_key = bytes.fromhex(recipient["node_key_hex"])
        x_key = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(node_key)
        assert x_key == hex_of(recipient, "x25519_public_hex")
        shared = nacl.bindings.crypto_scalarmult(ephemeral, x_key)
        assert shared == hex_of(recipient, "shared_secret_hex")
        assert IDENTITIES[recipient["name"]].x25519_agree(epk) == shared
        data = shared + epk + x_key + node_key + nonce
        wrap = hashlib.blake2b(data, digest_size=32, person=b"lapnode.seal.kw1").digest()
        assert wrap == hex_of(recipient, "wrap_key_hex")
        wrapped = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(content_key, ad, bytes(24), wrap)
        assert wrapped == hex_of(recipient, "wrapped_key_hex")
    plaintext = codec.encode(fields_of(vector))
    assert plaintext == hex_of(vector, "plaintext_hex")
    kc = hashlib.blake2b(content_key, digest_size=32, person=b"lapnode.seal.kc1").digest()
    assert kc == hex_of(vector, "key_commitment_hex")
    ciphertext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce, content_key)
    assert ciphertext == hex_of(vector, "ciphertext_hex")
    sealed = {
        "ct": ciphertext,
        "epk": epk,
        "kc": kc,
        "keys": [hex_of(r, "wrapped_key_hex") for r in vector["recipients"]],
        "nonce": nonce,
        "v": 1,
    }
    assert codec.encode(sealed) == hex_of(vector, "sealed_msgpack_hex")
    wire = codec.decode(hex_of(vector, "wire_hex"), max_size=MAX_RECORD_SIZE)
    assert wire["f"] == {"sealed": [bytes.fromhex(inputs["salt_hex"]), sealed]}


@pytest.mark.parametrize("vector", RECORDS, ids=ids(RECORDS))
def test_verified_anywhere_opened_by_recipients_only(vector: dict[str, Any]) -> None:
    record = verify_record(hex_of(vector, "wire_hex"), network=NETWORK)
    assert isinstance(record.body, SealedBody) and record.id.hex() == vector["id_hex"]
    fields = fields_of(vector)
    expected = parse_body(vector["inputs"]["kind"], 1, fields, frozenset(fields))
    recipients = {r["name"] for r in vector["recipients"]}
    for name, identity in IDENTITIES.items():
        if name in recipients:
            assert open_sealed(record, identity) == expected
        else:
            with pytest.raises(NotARecipient):
                open_sealed(record, identity)


@pytest.mark.parametrize("vector", DOCUMENT["invalid"], ids=ids(DOCUMENT["invalid"]))
def test_invalid_vectors_are_refused_by_every_node(vector: dict[str, Any]) -> None:
    wire = hex_of(vector, "wire_hex")
    with pytest.raises(InvalidRecord):
        verify_record(wire, network=NETWORK)
    assert failing_step(wire) == vector["step"], vector["rule"]


def failing_step(wire: bytes) -> int:
    """The SPEC §3.6 step that refuses `wire` (2 stands for steps 1 and 2), as in test_vectors.py."""
    try:
        unverified = decode_unverified(wire, network=NETWORK)
    except ProtocolError:
        return 2
    try:
        complete(check_signature(unverified), wire)
    except InvalidRecord as exc:
        return 5 if str(exc).startswith("body: ") else 4
    return 0


@pytest.mark.parametrize("vector", DOCUMENT["unopenable"], ids=ids(DOCUMENT["unopenable"]))
def test_unopenable_vectors_verify_but_do_not_open(vector: dict[str, Any]) -> None:
    record = verify_record(hex_of(vector, "wire_hex"), network=NETWORK)
    for name in vector["fails_for"]:
        with pytest.raises(ERRORS[vector["error"]]):
            open_sealed(record, IDENTITIES[name])
    for name in vector["opens_for"]:
        open_sealed(record, IDENTITIES[name])


def test_the_vectors_cover_what_the_spec_promises() -> None:
    assert {vector["inputs"]["kind"] for vector in RECORDS} == {"lead", "contact"}
    assert any(vector["inputs"]["seq"] > 1 for vector in RECORDS)
    steps = {vector["step"] for vector in DOCUMENT["invalid"]}
    assert steps == {2, 4, 5}
    assert {vector["error"] for vector in DOCUMENT["unopenable"]} == set(ERRORS)


def test_generator_output_matches_the_committed_file() -> None:
    assert generate_sealed.render() == {"sealed.json": VECTOR_FILE.read_text(encoding="utf-8")}, (
        "protocol/vectors/sealed.json is stale: run `python -m protocol.vectors.generate_sealed`"
    )
