"""TAXII API tokens: made from 32 random bytes, shown once, stored only as a hash.

Rule 1: a token is `lapt_` and 43 characters of URL-safe base64 (32 bytes from `secrets`). Only its
BLAKE2b-256 hash (personalised for this use) is stored; the token itself is printed once, at creation.
Rule 2: a fast hash is enough (no password KDF): the token has 256 bits of entropy, so the stored hash
cannot be reversed by guessing, and each request hashes the presented token once.
Rule 3: the presented token's hash is looked up by index and the stored hash is then compared with
`hmac.compare_digest`; what an attacker could time is the lookup of a hash of a random secret, which
tells nothing about any valid token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Final

TOKEN_PREFIX: Final = "lapt_"  # noqa: S105 - a prefix that marks a token, not a secret
_TOKEN_RE: Final = re.compile(r"lapt_[A-Za-z0-9_-]{43}")
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def new_token() -> str:
    return TOKEN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")


def is_token_shaped(text: str) -> bool:
    return _TOKEN_RE.fullmatch(text) is not None


def token_hash(token: str) -> bytes:
    return hashlib.blake2b(token.encode("ascii"), digest_size=32, person=b"lapnode.taxii").digest()


def same_hash(presented: bytes, stored: bytes) -> bool:
    return hmac.compare_digest(presented, stored)


def valid_name(name: str) -> bool:
    return _NAME_RE.fullmatch(name) is not None
