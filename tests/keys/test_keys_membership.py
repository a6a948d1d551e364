"""keys/membership.py: authority ids, signing domains and the trusted-authority verifier."""

from __future__ import annotations

import pytest

from keys.errors import BadSignature, InvalidAuthorityId, UntrustedAuthority
from keys.identity import PublicKey
from keys.membership import (
    CREDENTIAL_DOMAIN,
    RETRACTION_DOMAIN,
    REVOCATION_DOMAIN,
    ROTATION_DOMAIN,
    TrustedAuthorities,
    authority_id,
    parse_authority_id,
)
from tests.factories import identity

SECRETARIAT, OTHER = identity("secretariat"), identity("other authority")


def test_authority_id_round_trips_and_is_not_a_node_id() -> None:
    text = authority_id(SECRETARIAT.public_key)
    assert text.startswith("lapauth1") and len(text) == 66
    assert parse_authority_id(text) == SECRETARIAT.public_key
    assert parse_authority_id(f"  {text.upper()} ") == SECRETARIAT.public_key
    with pytest.raises(InvalidAuthorityId, match="must start with 'lapauth1'"):
        parse_authority_id(SECRETARIAT.node_id)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:20] + ("q" if t[20] != "q" else "p") + t[21:],  # one typo
        lambda t: t[:-1],  # truncated
        lambda t: t[:10] + t[11] + t[10] + t[12:],  # two characters swapped
        lambda t: t.replace("lapauth1", "LAPAUTH1"),  # mixed case
        lambda t: t + "q" * 40,  # over the length limit
    ],
)
def test_a_mistyped_authority_id_is_an_error(mangle: object) -> None:
    assert callable(mangle)
    with pytest.raises(InvalidAuthorityId):
        parse_authority_id(mangle(authority_id(SECRETARIAT.public_key)))


def test_domains_are_distinct_and_well_formed() -> None:
    domains = {
        CREDENTIAL_DOMAIN,
        REVOCATION_DOMAIN,
        ROTATION_DOMAIN,
        RETRACTION_DOMAIN,
        b"lapnode/record/v1\x00",
    }
    assert len(domains) == 5
    # A signature in one domain never verifies in another.
    signature = SECRETARIAT.sign(CREDENTIAL_DOMAIN, b"statement")
    with pytest.raises(BadSignature):
        SECRETARIAT.public_key.verify(REVOCATION_DOMAIN, b"statement", signature)


def test_trusted_authorities_verify_only_trusted_signers() -> None:
    trusted = TrustedAuthorities.from_ids([authority_id(SECRETARIAT.public_key)])
    assert trusted and len(trusted) == 1 and SECRETARIAT.public_key.raw in trusted
    signature = SECRETARIAT.sign(CREDENTIAL_DOMAIN, b"m")
    signer = trusted.verify(SECRETARIAT.public_key.raw, CREDENTIAL_DOMAIN, b"m", signature)
    assert signer == SECRETARIAT.public_key
    with pytest.raises(BadSignature):
        trusted.verify(SECRETARIAT.public_key.raw, CREDENTIAL_DOMAIN, b"changed", signature)
    other_signature = OTHER.sign(CREDENTIAL_DOMAIN, b"m")
    with pytest.raises(UntrustedAuthority, match="is not a trusted authority"):
        trusted.verify(OTHER.public_key.raw, CREDENTIAL_DOMAIN, b"m", other_signature)
    with pytest.raises(UntrustedAuthority):
        trusted.key(b"short")


def test_no_trusted_authority_is_legacy_mode() -> None:
    trusted = TrustedAuthorities()
    assert not trusted and trusted.ids() == []
    with pytest.raises(UntrustedAuthority):
        trusted.key(SECRETARIAT.public_key.raw)
    with pytest.raises(TypeError):
        TrustedAuthorities([SECRETARIAT.public_key.raw])  # type: ignore[list-item]


def test_several_authorities_and_their_ids_sorted() -> None:
    trusted = TrustedAuthorities([OTHER.public_key, SECRETARIAT.public_key, OTHER.public_key])
    assert len(trusted) == 2
    assert trusted.ids() == sorted(authority_id(k) for k in (OTHER.public_key, SECRETARIAT.public_key))
    assert set(trusted) == {OTHER.public_key, SECRETARIAT.public_key}
    assert isinstance(next(iter(trusted)), PublicKey)
    assert "lapauth1" in repr(trusted)
