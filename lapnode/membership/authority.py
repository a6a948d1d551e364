"""The authority's home: the network authority's key and settings, and issuing credentials.

    <authority home>/authority.key    the authority's private key (keys.keyfile, mode 0600)
    <authority home>/authority.toml   network = "<network id>"
    <authority home>/authority.id     the authority id (lapauth1...): public, what members trust

Rule 1: the home is chosen by `--authority-home DIR`, else LAPNODE_AUTHORITY_HOME, else the per-user data
directory `lapnode-authority`. It is a separate directory from any node home: the authority's key signs
memberships, and should live on a machine (or at least under an account) of its own.
Rule 2: like a node home, an authority home is initialised exactly when authority.toml exists, which is
written last; a failed init removes what it created.
Rule 3: an issued credential passes the same verifier as every receiver's (`verify_credential`) before it
is written, so the authority can never hand out a credential that nodes would refuse for its form.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import platformdirs

from keys.identity import Identity, PublicKey
from keys.keyfile import NoEncryption, Passphrase, read_public_node_id, write_key_file
from keys.membership import AuthorityId, TrustedAuthorities, authority_id
from lapnode.config import check_network
from lapnode.errors import ConfigError, HomeError, InputError
from lapnode.files import write_private_file
from protocol.armor import armor
from protocol.credential import FILE_LABEL, Credential, CredentialCheck, issue_credential, verify_credential
from protocol.statements import REVOCATION_FILE_LABEL, Revocation, issue_revocation

ENV_AUTHORITY_HOME: Final = "LAPNODE_AUTHORITY_HOME"
KEY_NAME: Final = "authority.key"
CONFIG_NAME: Final = "authority.toml"
ID_NAME: Final = "authority.id"
MAX_VALID_DAYS: Final = 3660
DAY_MS: Final = 86_400_000


def resolve_authority_home(explicit: str | os.PathLike[str] | None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    from_env = os.environ.get(ENV_AUTHORITY_HOME)
    return Path(from_env).expanduser() if from_env else Path(platformdirs.user_data_dir("lapnode-authority"))


@dataclass(frozen=True, slots=True)
class AuthorityHome:
    path: Path
    network: str

    @property
    def key_path(self) -> Path:
        return self.path / KEY_NAME

    def authority_key(self) -> PublicKey:
        """The authority's public key, read from the key file without the passphrase."""
        return PublicKey.from_node_id(read_public_node_id(self.key_path))

    def authority_id(self) -> AuthorityId:
        return authority_id(self.authority_key())


def open_authority_home(path: Path) -> AuthorityHome:
    config = path / CONFIG_NAME
    if not config.is_file():
        raise HomeError(
            f"no authority home at {path}; run `lapnode authority init` first (or --authority-home)"
        )
    try:
        document = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {config}: {exc}") from None
    network = document.get("network")
    if set(document) != {"network"} or not isinstance(network, str):
        raise ConfigError(f'{config} must hold exactly one setting: network = "<network id>"')
    try:
        home = AuthorityHome(path, check_network(network))
    except InputError as exc:
        raise ConfigError(f"{config}: {exc}") from None
    if not home.key_path.exists():
        raise HomeError(f"authority home {path} has no {KEY_NAME}; restore it from your backup")
    return home


def initialise_authority_home(
    path: Path, network: str, identity: Identity, protection: Passphrase | NoEncryption
) -> AuthorityHome:
    """Create the authority home: directory (0700), key file, id file, then authority.toml."""
    if (path / CONFIG_NAME).exists() or (path / KEY_NAME).exists():
        raise HomeError(f"{path} is already an authority home; refusing to initialise it again")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise HomeError(f"{path} is not a new or empty directory; choose another for the authority home")
    home = AuthorityHome(path, check_network(network))
    created = not path.exists()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_key_file(home.key_path, identity, protection)
        write_private_file(path / ID_NAME, f"{authority_id(identity.public_key)}\n".encode(), overwrite=False)
        write_private_file(path / CONFIG_NAME, f'network = "{home.network}"\n'.encode(), overwrite=False)
    except BaseException:
        if created:
            shutil.rmtree(path, ignore_errors=True)
        else:
            for name in (KEY_NAME, ID_NAME, CONFIG_NAME):
                with contextlib.suppress(OSError):
                    (path / name).unlink()
        raise
    return home


def validity(*, not_before: int, valid_days: int) -> tuple[int, int]:
    if not 1 <= valid_days <= MAX_VALID_DAYS:
        raise InputError(f"--valid-days must be from 1 to {MAX_VALID_DAYS}")
    return not_before, not_before + valid_days * DAY_MS


def issue(
    authority: Identity,
    home: AuthorityHome,
    *,
    subject: bytes,
    org: str,
    category: str,
    jurisdiction: str,
    not_before: int,
    not_after: int,
) -> Credential:
    """Sign a credential and check it as every receiver will (Rule 3), at its own start of validity."""
    credential = issue_credential(
        authority,
        network=home.network,
        subject=subject,
        org=org,
        category=category,
        jurisdiction=jurisdiction,
        not_before=not_before,
        not_after=not_after,
    )
    check = CredentialCheck(TrustedAuthorities([authority.public_key]), now_ms=not_before)
    return verify_credential(credential.wire, network=home.network, check=check, subject=subject)


def revoke(
    authority: Identity, home: AuthorityHome, *, subject: bytes, reason: str, now_ms: int
) -> Revocation:
    """Sign a revocation of `subject`; checked by the one statement verifier before it is returned."""
    return issue_revocation(authority, network=home.network, subject=subject, reason=reason, issued_at=now_ms)


def write_revocation_file(path: Path, revocation: Revocation, *, overwrite: bool) -> None:
    # Public: it is meant to reach every node.
    write_private_file(
        path, armor(REVOCATION_FILE_LABEL, revocation.wire).encode("ascii"), overwrite=overwrite, mode=0o644
    )


def write_credential_file(path: Path, credential: Credential, *, overwrite: bool) -> None:
    # A credential is public (peers see it in every handshake); 0644 lets the member copy it around.
    write_private_file(
        path, armor(FILE_LABEL, credential.wire).encode("ascii"), overwrite=overwrite, mode=0o644
    )
