"""The verification primitive against every Wycheproof Ed25519 case (vectors/ed25519_test.json, Apache-2.0).

``PublicKey.verify`` refuses an empty domain by design, so the cases run against ``_verify_raw``, the one
primitive it calls. A case libsodium judges differently from Wycheproof fails here, loudly: it is to be
reported, never skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from keys.errors import BadSignature
from keys.identity import PublicKey, _verify_raw

VECTORS = Path(__file__).parent / "vectors" / "ed25519_test.json"


def load_cases() -> list[Any]:
    document = json.loads(VECTORS.read_text(encoding="utf-8"))
    assert document["algorithm"] == "EDDSA"
    cases = [
        pytest.param(group["publicKey"]["pk"], case, id=f"tc{case['tcId']}-{case['result']}")
        for group in document["testGroups"]
        for case in group["tests"]
    ]
    assert len(cases) == document["numberOfTests"]
    return cases


@pytest.mark.parametrize(("public_key", "case"), load_cases())
def test_wycheproof_case(public_key: str, case: dict[str, Any]) -> None:
    raw_key = bytes.fromhex(public_key)
    message = bytes.fromhex(case["msg"])
    signature = bytes.fromhex(case["sig"])
    assert PublicKey(raw_key).raw == raw_key
    if case["result"] == "valid":
        _verify_raw(raw_key, message, signature)
    else:
        assert case["result"] == "invalid", "Ed25519 vectors have no 'acceptable' cases"
        with pytest.raises(BadSignature):
            _verify_raw(raw_key, message, signature)
