"""A node's own credential and the authorities it trusts.

    <home>/credential    this node's membership credential (protocol/armor.py text, label
                         `lapnode-credential/1`), written by `lapnode credential install`

Rule 1: `install_credential` verifies the file exactly as a peer's handshake would (the one verifier,
`protocol.credential.verify_credential`): for this node's key, this network, from an authority this node
trusts, not revoked, valid now. Only then does it replace the installed one, atomically. A running daemon
picks the new file up at its next handshake (`lapnode.daemon.membership`), so renewing needs no restart.
Rule 2: whom the node trusts is the `authorities` setting of config.toml (lapnode.config Rule 4);
`trust` and `untrust` edit it and nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from keys.errors import InvalidAuthorityId
from keys.identity import public_key_from_node_id
from keys.membership import AuthorityId, TrustedAuthorities, authority_id, parse_authority_id
from lapnode.config import Config, update_config
from lapnode.errors import InputError
from lapnode.files import write_private_file
from lapnode.home import CONFIG_NAME, NodeHome
from protocol.armor import MAX_ARMORED_BYTES, armor, dearmor
from protocol.credential import FILE_LABEL, Credential, CredentialCheck, verify_credential
from protocol.errors import ProtocolError

CREDENTIAL_NAME: Final = "credential"


def credential_path(home: NodeHome) -> Path:
    return home.path / CREDENTIAL_NAME


def trusted_authorities(config: Config) -> TrustedAuthorities:
    return TrustedAuthorities.from_ids(config.authorities)


def read_armored(path: Path, label: str, what: str) -> bytes:
    """The wire bytes of a membership file (unverified); InputError naming the file otherwise."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_ARMORED_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not a {what} file") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return dearmor(label, data)
    except ProtocolError as exc:
        raise InputError(f"{path}: {exc}") from None


def install_credential(home: NodeHome, source: Path, *, now_ms: int, revoked: frozenset[bytes]) -> Credential:
    """Verify `source` for this node and install it as the node's credential (Rule 1)."""
    trusted = trusted_authorities(home.config)
    if not trusted:
        raise InputError(
            "this node trusts no authority yet: run `lapnode authority trust AUTHORITY_ID` with the id your "
            "secretariat gave you (or pass --authority to this command)"
        )
    wire = read_armored(source, FILE_LABEL, "credential")
    check = CredentialCheck(trusted, now_ms, revoked)
    try:
        credential = verify_credential(
            wire,
            network=home.config.network,
            check=check,
            subject=public_key_from_node_id(home.node_id()),
        )
    except ProtocolError as exc:
        raise InputError(f"{source}: {exc}") from None
    write_private_file(credential_path(home), armor(FILE_LABEL, wire).encode("ascii"), overwrite=True)
    return credential


def installed_credential(home: NodeHome) -> bytes | None:
    """The installed credential's bytes (unverified), None if there is none; InputError if damaged."""
    path = credential_path(home)
    if not path.exists():
        return None
    return read_armored(path, FILE_LABEL, "credential")


def parse_authority_argument(text: str) -> AuthorityId:
    """An authority id, given as text or as a file holding it (authority.id); InputError otherwise."""
    candidate = Path(text).expanduser()
    if not text.strip().startswith("lapauth1") and candidate.is_file():
        try:
            with candidate.open("rb") as file:
                first = file.read(1024).split(b"\n", 1)[0].decode("ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{candidate} does not hold an authority id: {exc}") from None
        text = first
    try:
        return authority_id(parse_authority_id(text))
    except InvalidAuthorityId as exc:
        raise InputError(str(exc)) from None


def trust(home: NodeHome, authority: AuthorityId) -> bool:
    """Add an authority to config.toml; False if it was trusted already."""
    if authority in home.config.authorities:
        return False
    update_config(
        home.path / CONFIG_NAME, home.config.with_authorities([*home.config.authorities, authority])
    )
    return True


def untrust(home: NodeHome, authority: AuthorityId) -> None:
    if authority not in home.config.authorities:
        raise InputError(f"{authority} is not a trusted authority of this node")
    remaining = [a for a in home.config.authorities if a != authority]
    update_config(home.path / CONFIG_NAME, home.config.with_authorities(remaining))


# Warn this long before the node's own credential runs out (status alarm): a renewal takes days.
EXPIRY_WARNING_MS: Final = 14 * 86_400_000


def credential_report(
    wire: bytes | None,
    *,
    trusted: TrustedAuthorities,
    network: str,
    subject: bytes,
    now_ms: int,
    revoked: frozenset[bytes],
) -> tuple[dict[str, object], list[dict[str, object]]]:
    """This node's membership for `lapnode status`: a summary, and the alarms it raises."""
    report: dict[str, object] = {
        "mode": "strict" if trusted else "legacy",
        "authorities": list(trusted.ids()),
        "installed": wire is not None,
    }
    alarms: list[dict[str, object]] = []
    if wire is None:
        if trusted:
            alarms.append(
                {"kind": "no-credential", "reason": "peers will refuse this node: install a credential"}
            )
        return report, alarms
    try:
        credential = verify_credential(
            wire, network=network, check=CredentialCheck(trusted, now_ms, revoked), subject=subject
        )
    except ProtocolError as exc:
        report["problem"] = str(exc)
        alarms.append({"kind": "credential", "reason": f"peers will refuse this node: {exc}"})
        return report, alarms
    body = credential.body
    report |= {
        "org": body.org,
        "category": body.category,
        "jurisdiction": body.jurisdiction,
        "authority": body.authority_id,
        "not_before": body.not_before,
        "not_after": body.not_after,
    }
    if body.not_after - now_ms < EXPIRY_WARNING_MS:
        alarms.append(
            {"kind": "credential-expiring", "reason": "the credential expires soon: ask for a new one"}
        )
    return report, alarms
