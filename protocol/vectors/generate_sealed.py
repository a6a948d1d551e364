"""Rebuild the sealed-record vectors of protocol/SPEC.md §3.7: `python -m protocol.vectors.generate_sealed`.

Rule 1: no randomness and no clock. Authors and recipients are the RFC 8032 §7.1 test keys; every salt,
content key, nonce and ephemeral secret is BLAKE2b of a label; X25519, XChaCha20-Poly1305 and Ed25519 are
deterministic. So the output is a pure function of this file and the protocol code, and
`tests/protocol/test_sealed_vectors.py` compares it with the committed `sealed.json`.
Rule 2: sealed records are made only by `protocol.sealed.build_sealed_record`, the code under test; every
intermediate value beside them is recomputed here from the §3.7 primitives, so a second implementation
can find the first step where it differs. The negative vectors are validly signed by their author: a
verifier must refuse the `invalid` ones, and a recipient must fail to open the `unopenable` ones.
Rule 3: pure until `main`: `render()` returns the file text; only `main` touches the filesystem.
The layout is described in protocol/vectors/README.md.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from keys.identity import Identity
from keys.x25519 import x25519_key_of_node, x25519_shared_secret
from protocol import codec
from protocol.codec import Value
from protocol.envelope import MAX_RECORD_SIZE, RECORD_DOMAIN, Record, commitment
from protocol.kinds.sealed import SEALED_FIELD, sealed_recipients
from protocol.scope import Scope
from protocol.sealed import (
    SealingSecrets,
    associated_data,
    build_sealed_record,
    key_commitment,
    seal_fields,
    wrap_key,
)
from protocol.vectors.generate import NETWORK, SEEDS, T0, friendly, salt_for, write_or_check

FILE_NAME: Final = "sealed.json"
SECRET_PERSON: Final = b"lapnode.vseal.v1"
AUTHOR: Final = "rfc8032-test1"
OUTSIDER: Final = "outsider"


def seed(name: str) -> bytes:
    if name in SEEDS:
        return SEEDS[name]
    return hashlib.blake2b(f"{FILE_NAME}/{name}/seed".encode(), digest_size=32, person=SECRET_PERSON).digest()


def identity(name: str) -> Identity:
    return Identity.from_seed(seed(name))


def secret(label: str, size: int) -> bytes:
    return hashlib.blake2b(label.encode(), digest_size=size, person=SECRET_PERSON).digest()


def sealing_for(name: str) -> SealingSecrets:
    return SealingSecrets(
        content_key=secret(f"{name}/content_key", 32),
        nonce=secret(f"{name}/nonce", 24),
        ephemeral_secret=secret(f"{name}/ephemeral_secret", 32),
    )


@dataclass(frozen=True, slots=True)
class Inputs:
    name: str
    comment: str
    kind: str
    seq: int
    prev: str | None
    created: int
    members: tuple[str, ...]
    tlp: str
    fields: Mapping[str, Value]


RED_LEAD = Inputs(
    "red-lead",
    "A red lead sealed to two named members; the author, not named, is a recipient too (3 wrapped keys).",
    "lead",
    1,
    None,
    T0,
    ("rfc8032-test2", "rfc8032-test3"),
    "red",
    {
        "title": "Card-harvesting site behind the parcel SMS campaign",
        "summary": "The operator's payment account and the hosting provider, from a seized server.",
        "status": "verified",
        "subjects": [
            {"type": "domain", "value": "parcel-track.example"},
            {"type": "payment-account", "value": "NL00 BANK 0123 4567 89"},
        ],
        "requested_assistance": ["investigation"],
    },
)
AMBER_CONTACT = Inputs(
    "amber-contact",
    "An amber contact (seq 2) sealed to one member; the author also names itself, which counts once.",
    "contact",
    2,
    "red-lead",
    T0 + 60_000,
    ("rfc8032-test3", AUTHOR),
    "amber",
    {
        "organisation": "Autoriteit Consument & Markt",
        "person": "J. Jansen",
        "emails": ["j.jansen@acm.example"],
        "jurisdiction": "NL",
        "category": "enforcement",
    },
)
INPUTS: Final = (RED_LEAD, AMBER_CONTACT)


def scope_of(inputs: Inputs) -> Scope:
    members = [identity(name).public_key.raw for name in inputs.members]
    return Scope.create(inputs.tlp, relay_hops=3, members=members, flags=["sealed"])


def build(inputs: Inputs, built: Mapping[str, Record]) -> Record:
    return build_sealed_record(
        identity(AUTHOR),
        network=NETWORK,
        kind=inputs.kind,
        schema=1,
        seq=inputs.seq,
        prev=None if inputs.prev is None else built[inputs.prev].id,
        created=inputs.created,
        scope=scope_of(inputs),
        fields=inputs.fields,
        salt=salt_for(f"{inputs.name}/{SEALED_FIELD}"),
        sealing=sealing_for(inputs.name),
    )


def build_all() -> dict[str, Record]:
    built: dict[str, Record] = {}
    for inputs in INPUTS:
        built[inputs.name] = build(inputs, built)
    return built


def _name_of(key: bytes) -> str:
    return next(name for name in (*SEEDS, OUTSIDER) if identity(name).public_key.raw == key)


def recipient_vectors(inputs: Inputs, record: Record) -> list[dict[str, Any]]:
    sealing = sealing_for(inputs.name)
    payload = record.disclosures[SEALED_FIELD][1]
    author = identity(AUTHOR).public_key.raw
    result = []
    for slot, key in enumerate(sealed_recipients(record.header.scope.members, author)):
        x_key = x25519_key_of_node(key)
        shared = x25519_shared_secret(sealing.ephemeral_secret, x_key)
        result.append(
            {
                "name": _name_of(key),
                "seed_hex": seed(_name_of(key)).hex(),
                "node_key_hex": key.hex(),
                "x25519_public_hex": x_key.hex(),
                "shared_secret_hex": shared.hex(),
                "wrap_key_hex": wrap_key(shared, payload["epk"], x_key, key, sealing.nonce).hex(),
                "wrapped_key_hex": payload["keys"][slot].hex(),
            }
        )
    return result


def record_vector(inputs: Inputs, record: Record) -> dict[str, Any]:
    sealing = sealing_for(inputs.name)
    header = record.header
    salt, payload = record.disclosures[SEALED_FIELD]
    fields = codec.decode(codec.encode(dict(inputs.fields)), max_size=MAX_RECORD_SIZE)
    ad = associated_data(
        network=NETWORK, author=header.author, kind=header.kind, schema=1, seq=header.seq, scope=header.scope
    )
    return {
        "name": inputs.name,
        "comment": inputs.comment,
        "author": {"name": AUTHOR, "seed_hex": seed(AUTHOR).hex(), "node_key_hex": header.author.hex()},
        "inputs": {
            "network": NETWORK,
            "kind": inputs.kind,
            "schema": 1,
            "seq": inputs.seq,
            "prev_hex": None if header.prev is None else header.prev.hex(),
            "created": inputs.created,
            "scope": friendly(codec.decode(codec.encode(header.scope.to_wire()), max_size=MAX_RECORD_SIZE)),
            "fields": {
                name: {"value": friendly(value), "msgpack_hex": codec.encode(value).hex()}
                for name, value in fields.items()
            },
            "salt_hex": salt.hex(),
            "content_key_hex": sealing.content_key.hex(),
            "nonce_hex": sealing.nonce.hex(),
            "ephemeral_secret_hex": sealing.ephemeral_secret.hex(),
        },
        "ephemeral_public_hex": payload["epk"].hex(),
        "recipients": recipient_vectors(inputs, record),
        "associated_data_hex": ad.hex(),
        "plaintext_hex": codec.encode(fields).hex(),
        "key_commitment_hex": key_commitment(sealing.content_key).hex(),
        "ciphertext_hex": payload["ct"].hex(),
        "sealed_msgpack_hex": codec.encode(payload).hex(),
        "header_hex": record.header_bytes.hex(),
        "signature_hex": record.signature.hex(),
        "wire_hex": record.wire.hex(),
        "id_hex": record.id.hex(),
    }


# --- negative vectors ----------------------------------------------------------------------------------


def _forge(record: Record, fields: Mapping[str, Value], **header_changes: Value) -> bytes:
    """`record` with other body fields (and header values), validly signed by its author."""
    header: dict[str, Value] = codec.decode(record.header_bytes, max_size=MAX_RECORD_SIZE)
    salts = {name: salt_for(f"negative/{name}") for name in fields}
    header.update(header_changes)
    header["commit"] = {name: commitment(name, salts[name], value) for name, value in fields.items()}
    header_bytes = codec.encode(header)
    net = NETWORK.encode()
    signature = identity(AUTHOR).sign(RECORD_DOMAIN, bytes([len(net)]) + net + header_bytes)
    disclosures = {name: [salts[name], value] for name, value in fields.items()}
    return codec.encode({"f": disclosures, "h": header_bytes, "s": signature})


def _payload(record: Record, **changes: Value) -> dict[str, Value]:
    payload: dict[str, Value] = dict(record.disclosures[SEALED_FIELD][1])
    payload.update(changes)
    return payload


def _flip(data: bytes, index: int) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 0x01
    return bytes(changed)


def _slot(record: Record, name: str) -> int:
    author = identity(AUTHOR).public_key.raw
    recipients = sealed_recipients(record.header.scope.members, author)
    return recipients.index(identity(name).public_key.raw)


def _sealed_plaintext(record: Record, fields: Mapping[str, Value], label: str) -> dict[str, Value]:
    """A correct §3.7.3 sealing of `fields`, which `build_sealed_record` would refuse as a body."""
    header = record.header
    payload = seal_fields(
        fields,
        network=NETWORK,
        author=header.author,
        kind=header.kind,
        schema=header.schema,
        seq=header.seq,
        scope=header.scope,
        sealing=sealing_for(label),
    )
    return payload.to_wire()


def invalid_vectors(built: Mapping[str, Record]) -> list[dict[str, Any]]:
    lead = built["red-lead"]
    keys = _payload(lead)["keys"]
    relay_tamper = codec.encode(
        {
            "f": {
                SEALED_FIELD: [
                    lead.disclosures[SEALED_FIELD][0],
                    _payload(lead, ct=_flip(_payload(lead)["ct"], 9)),
                ]
            },
            "h": lead.header_bytes,
            "s": lead.signature,
        }
    )
    no_members = {"flags": ["sealed"], "relay_hops": 3, "tlp": "red"}
    # (name, SPEC §3.6 step, rule broken, wire bytes); all based on red-lead
    table: list[tuple[str, int, str, bytes]] = [
        ("sealed-without-members", 2, "§4: the flag sealed with no named members",
         _forge(lead, {SEALED_FIELD: _payload(lead)}, scope=no_members)),
        ("ciphertext-changed-by-a-relay", 4, "§3.3: the sealed field no longer matches its commitment",
         relay_tamper),
        ("extra-committed-field", 5, "§3.7.2: a sealed record commits to a field besides sealed",
         _forge(lead, {SEALED_FIELD: _payload(lead), "title": "In clear beside the ciphertext"})),
        ("a-wrapped-key-short", 5, "§3.7.2: one wrapped key fewer than the recipients",
         _forge(lead, {SEALED_FIELD: _payload(lead, keys=keys[:-1])})),
        ("wrapped-key-47-bytes", 5, "§3.7.2: a wrapped key is not 48 bytes",
         _forge(lead, {SEALED_FIELD: _payload(lead, keys=[*keys[:-1], keys[-1][:47]])})),
        ("ephemeral-key-31-bytes", 5, "§3.7.2: epk is not 32 bytes",
         _forge(lead, {SEALED_FIELD: _payload(lead, epk=_payload(lead)["epk"][:31])})),
        ("unknown-sealed-key", 5, "§3.7.2: a key other than ct, epk, kc, keys, nonce, v",
         _forge(lead, {SEALED_FIELD: _payload(lead, pad=b"")})),
        ("sealed-version-2", 5, "§3.7.2: v is not 1", _forge(lead, {SEALED_FIELD: _payload(lead, v=2)})),
        ("ciphertext-only-a-tag", 5, "§3.7.2: ct is not longer than its 16-byte tag",
         _forge(lead, {SEALED_FIELD: _payload(lead, ct=_payload(lead)["ct"][:16])})),
    ]  # fmt: skip
    return [
        {"name": name, "step": step, "rule": rule, "based_on": "red-lead", "wire_hex": wire.hex()}
        for name, step, rule, wire in table
    ]


def unopenable_vectors(built: Mapping[str, Record]) -> list[dict[str, Any]]:
    lead = built["red-lead"]
    payload = _payload(lead)
    everyone = [AUTHOR, "rfc8032-test2", "rfc8032-test3"]
    second_key = SealingSecrets(secret("second/content_key", 32), sealing_for("red-lead").nonce,
                                sealing_for("red-lead").ephemeral_secret)  # fmt: skip
    other = seal_fields(
        {**RED_LEAD.fields, "title": "A different story for test3"},
        network=NETWORK,
        author=lead.header.author,
        kind="lead",
        schema=1,
        seq=1,
        scope=lead.header.scope,
        sealing=second_key,
    )
    swapped = list(payload["keys"])
    swapped[_slot(lead, "rfc8032-test3")] = other.wrapped_keys[_slot(lead, "rfc8032-test3")]
    flipped = list(payload["keys"])
    flipped[_slot(lead, "rfc8032-test2")] = _flip(flipped[_slot(lead, "rfc8032-test2")], 4)
    missing_status = {name: value for name, value in RED_LEAD.fields.items() if name != "status"}
    # (name, rule, wire, who fails and with which error, who still opens it)
    table: list[tuple[str, str, bytes, list[str], str, list[str]]] = [
        ("not-a-recipient", "§3.7.4: the outsider is neither a named member nor the author",
         lead.wire, [OUTSIDER], "NotARecipient", everyone),
        ("ciphertext-bit-flipped", "§3.7.4: ct does not authenticate",
         _forge(lead, {SEALED_FIELD: _payload(lead, ct=_flip(payload["ct"], 9))}), everyone, "CannotOpen",
         []),
        ("wrapped-key-flipped", "§3.7.4: test2's wrapped key does not authenticate",
         _forge(lead, {SEALED_FIELD: _payload(lead, keys=flipped)}), ["rfc8032-test2"], "CannotOpen",
         [AUTHOR, "rfc8032-test3"]),
        ("key-commitment-changed", "§3.7.4: kc is not the hash of the unwrapped content key",
         _forge(lead, {SEALED_FIELD: _payload(lead, kc=_flip(payload["kc"], 0))}), everyone, "CannotOpen",
         []),
        ("second-content-key", "§3.7.4: test3's slot wraps another content key (key commitment)",
         _forge(lead, {SEALED_FIELD: _payload(lead, keys=swapped)}), ["rfc8032-test3"], "CannotOpen",
         [AUTHOR, "rfc8032-test2"]),
        ("moved-to-seq-2", "§3.7.3: sealed for seq 1, carried by the author's record at seq 2",
         _forge(lead, {SEALED_FIELD: payload}, seq=2, prev=built["red-lead"].id), everyone, "CannotOpen", []),
        ("plaintext-missing-status", "§3.7.4, §5: the plaintext is a lead without its required status",
         _forge(lead, {SEALED_FIELD: _sealed_plaintext(lead, missing_status, "missing-status")}), everyone,
         "InvalidSealedBody", []),
    ]  # fmt: skip
    return [
        {
            "name": name,
            "rule": rule,
            "based_on": "red-lead",
            "fails_for": fails,
            "error": error,
            "opens_for": opens,
            "wire_hex": wire.hex(),
        }
        for name, rule, wire, fails, error, opens in table
    ]


# --- output --------------------------------------------------------------------------------------------


def render() -> dict[str, str]:
    built = build_all()
    document = {
        "description": "Sealed records for protocol/SPEC.md §3.7, laid out as protocol/vectors/README.md "
        f"describes. Verify them as network {NETWORK!r}.",
        "generator": "python -m protocol.vectors.generate_sealed",
        "network": NETWORK,
        "outsider": {"name": OUTSIDER, "seed_hex": seed(OUTSIDER).hex()},
        "records": [record_vector(inputs, built[inputs.name]) for inputs in INPUTS],
        "invalid": invalid_vectors(built),
        "unopenable": unopenable_vectors(built),
    }
    return {FILE_NAME: json.dumps(document, indent=2, ensure_ascii=False) + "\n"}


def main(argv: Sequence[str] | None = None) -> int:
    return write_or_check("python -m protocol.vectors.generate_sealed", __doc__, render(), argv)


if __name__ == "__main__":
    sys.exit(main())
