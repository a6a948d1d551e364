"""Golden vectors (protocol/SPEC.md Appendix B): rebuilt byte for byte from their inputs, and kept in step.

These tests read the JSON as a second implementation would: they rebuild every record from the inputs
written in the file (not from the generator's tables), then check that the generator still writes
exactly the committed files, so neither the code nor the files can drift unnoticed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from keys.identity import Identity, node_id_from_public_key
from protocol import codec
from protocol.codec import Value
from protocol.envelope import (
    MAX_RECORD_SIZE,
    RECORD_DOMAIN,
    Record,
    RecordId,
    build_record,
    check_signature,
    commitment,
    complete,
    decode_unverified,
    redact,
    verify_record,
)
from protocol.errors import InvalidRecord, ProtocolError
from protocol.kinds import SCHEMA_VERSIONS, OpaqueBody
from protocol.scope import Scope
from protocol.vectors import generate

DIRECTORY = Path(generate.__file__).parent
RECORDS: dict[str, Any] = json.loads((DIRECTORY / "records.json").read_text(encoding="utf-8"))
INVALID: dict[str, Any] = json.loads((DIRECTORY / "invalid.json").read_text(encoding="utf-8"))
NETWORK: str = RECORDS["network"]
BUILT = [vector for vector in RECORDS["records"] if "inputs" in vector]
REDACTED = [vector for vector in RECORDS["records"] if "redacted_from" in vector]
BY_NAME = {vector["name"]: vector for vector in RECORDS["records"]}

RFC8032_TEST1_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC8032_TEST1_NODE_ID = "lap16adfsqvzky9t042tlmfujeq88g8wzuhnm2nzxfd0qgdx3ac82ydqzjz234"


def ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [vector["name"] for vector in vectors]


def friendly(value: Value) -> Any:
    """The README's JSON form of a value: bytes as lowercase hex, everything else as JSON has it."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {key: friendly(item) for key, item in value.items()}
    if isinstance(value, list):
        return [friendly(item) for item in value]
    return value


def from_hex(msgpack_hex: str) -> Value:
    return codec.decode(bytes.fromhex(msgpack_hex), max_size=MAX_RECORD_SIZE)


def scope_from_json(scope: dict[str, Any]) -> Scope:
    """§4 fixes every clause's type, so the JSON form is unambiguous: only members are bytes (hex)."""
    wire = dict(scope)
    if "members" in wire:
        wire["members"] = [bytes.fromhex(member) for member in wire["members"]]
    return Scope.from_wire(wire)


def rebuild(vector: dict[str, Any]) -> Record:
    inputs = vector["inputs"]
    fields = {name: from_hex(field["msgpack_hex"]) for name, field in inputs["fields"].items()}
    return build_record(
        Identity.from_seed(bytes.fromhex(vector["seed_hex"])),
        network=inputs["network"],
        kind=inputs["kind"],
        schema=inputs["schema"],
        seq=inputs["seq"],
        prev=None if inputs["prev_hex"] is None else RecordId(bytes.fromhex(inputs["prev_hex"])),
        created=inputs["created"],
        scope=scope_from_json(inputs["scope"]),
        fields=fields,
        salts={name: bytes.fromhex(salt) for name, salt in inputs["salts_hex"].items()},
    )


# --- node ids ----------------------------------------------------------------------------------------------


def test_rfc8032_test1_node_id() -> None:
    # Pinned here, independently of the file: the node id of RFC 8032 §7.1 TEST 1's public key.
    test1 = RECORDS["node_ids"][0]
    assert test1["public_key_hex"] == RFC8032_TEST1_PUBLIC
    assert test1["node_id"] == RFC8032_TEST1_NODE_ID


@pytest.mark.parametrize("vector", RECORDS["node_ids"], ids=ids(RECORDS["node_ids"]))
def test_node_id_vectors(vector: dict[str, Any]) -> None:
    identity = Identity.from_seed(bytes.fromhex(vector["seed_hex"]))
    assert identity.public_key.raw.hex() == vector["public_key_hex"]
    assert identity.node_id == vector["node_id"]
    assert node_id_from_public_key(bytes.fromhex(vector["public_key_hex"])) == vector["node_id"]


# --- records -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", BUILT, ids=ids(BUILT))
def test_rebuild_byte_for_byte(vector: dict[str, Any]) -> None:
    record = rebuild(vector)
    assert record.header_bytes.hex() == vector["header_hex"]
    assert record.signature.hex() == vector["signature_hex"]
    assert record.wire.hex() == vector["wire_hex"]
    assert record.id.hex() == vector["id_hex"]
    assert {name: c.hex() for name, c in record.header.commitments.items()} == vector["commitments_hex"]


@pytest.mark.parametrize("vector", BUILT, ids=ids(BUILT))
def test_vector_is_self_consistent(vector: dict[str, Any]) -> None:
    inputs = vector["inputs"]
    public_key = bytes.fromhex(vector["public_key_hex"])
    assert Identity.from_seed(bytes.fromhex(vector["seed_hex"])).public_key.raw == public_key
    assert node_id_from_public_key(public_key) == vector["node_id"]
    header = bytes.fromhex(vector["header_hex"])
    net = inputs["network"].encode()
    assert bytes.fromhex(vector["signed_bytes_hex"]) == RECORD_DOMAIN + bytes([len(net)]) + net + header
    signature = bytes.fromhex(vector["signature_hex"])
    digest = hashlib.blake2b(header + signature, digest_size=32, person=b"lapnode.recid.v1")
    assert digest.hexdigest() == vector["id_hex"]
    assert list(inputs["fields"]) == list(vector["commitments_hex"]) == list(inputs["salts_hex"])
    for name, field in inputs["fields"].items():
        value = from_hex(field["msgpack_hex"])
        assert friendly(value) == field["value"], name
        salt = bytes.fromhex(inputs["salts_hex"][name])
        assert commitment(name, salt, value).hex() == vector["commitments_hex"][name]
    assert codec.decode(bytes.fromhex(vector["wire_hex"]), max_size=MAX_RECORD_SIZE)["h"] == header


@pytest.mark.parametrize("vector", BUILT + REDACTED, ids=ids(BUILT + REDACTED))
def test_every_vector_verifies(vector: dict[str, Any]) -> None:
    record = verify_record(bytes.fromhex(vector["wire_hex"]), network=NETWORK)
    assert record.id.hex() == vector["id_hex"]
    assert record.author_id == BY_NAME[vector.get("redacted_from", vector["name"])]["node_id"]
    assert sorted(record.redacted) == vector.get("redacted", [])
    if "inputs" in vector and vector["inputs"]["kind"] not in SCHEMA_VERSIONS:
        assert isinstance(record.body, OpaqueBody)


@pytest.mark.parametrize("vector", REDACTED, ids=ids(REDACTED))
def test_redacted_copies(vector: dict[str, Any]) -> None:
    source = BY_NAME[vector["redacted_from"]]
    full = verify_record(bytes.fromhex(source["wire_hex"]), network=NETWORK)
    assert redact(full, vector["redacted"]).hex() == vector["wire_hex"]
    assert vector["id_hex"] == source["id_hex"]


def test_chains_name_their_predecessor() -> None:
    by_author_seq = {(v["node_id"], v["inputs"]["seq"]): v for v in BUILT}
    chained = [v for v in BUILT if v["inputs"]["seq"] > 1]
    assert chained
    for vector in chained:
        predecessor = by_author_seq[(vector["node_id"], vector["inputs"]["seq"] - 1)]
        assert vector["inputs"]["prev_hex"] == predecessor["id_hex"], vector["name"]


def test_the_vectors_cover_what_appendix_b_promises() -> None:
    kinds = {vector["inputs"]["kind"] for vector in BUILT}
    assert set(SCHEMA_VERSIONS) <= kinds
    assert kinds - set(SCHEMA_VERSIONS), "an unknown (opaque) kind"
    assert any(vector["inputs"]["seq"] == 2 for vector in BUILT)
    assert REDACTED
    lead = next(v for v in BUILT if v["inputs"]["kind"] == "lead" and "detriment" in v["inputs"]["fields"])
    assert lead["inputs"]["fields"]["subjects"]["value"]
    clauses = set().union(*(vector["inputs"]["scope"] for vector in BUILT))
    assert clauses == set(Scope("red").to_wire()) | {
        "categories",
        "members",
        "jurisdictions_allow",
        "jurisdictions_deny",
        "flags",
        "embargo_until",
        "expires",
    }


# --- invalid records ---------------------------------------------------------------------------------------


def failing_step(wire: bytes, network: str) -> int:
    """The SPEC §3.6 step at which verification stops: 2 stands for steps 1 and 2, 0 for none."""
    try:
        unverified = decode_unverified(wire, network=network)
    except ProtocolError:
        return 2
    try:
        signed = check_signature(unverified)
    except ProtocolError:
        return 3
    try:
        complete(signed, wire)
    except InvalidRecord as exc:
        return 5 if str(exc).startswith("body: ") else 4
    return 0


@pytest.mark.parametrize("vector", INVALID["records"], ids=ids(INVALID["records"]))
def test_invalid_vectors_are_rejected(vector: dict[str, Any]) -> None:
    wire = bytes.fromhex(vector["wire_hex"])
    with pytest.raises(ProtocolError):
        verify_record(wire, network=INVALID["network"])
    assert failing_step(wire, INVALID["network"]) == max(vector["step"], 2), vector["rule"]


def test_invalid_vectors_have_unique_names() -> None:
    names = ids(INVALID["records"])
    assert len(names) == len(set(names))
    assert INVALID["network"] == NETWORK


# --- the files are what the generator writes -----------------------------------------------------------


def test_generator_output_matches_the_committed_files() -> None:
    rendered = generate.render()
    assert set(rendered) == {"records.json", "invalid.json"}
    for name, text in rendered.items():
        assert (DIRECTORY / name).read_text(encoding="utf-8") == text, (
            f"protocol/vectors/{name} is stale: run `python -m protocol.vectors.generate` and review the diff"
        )
