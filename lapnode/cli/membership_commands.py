"""Membership commands: `authority ...` (the secretariat's tools and whom a node trusts),
`credential ...`, `invite` and `join` (docs/operator-guide.md §7).

Rule 1: commands are thin: they parse options and call `lapnode.membership`; every check lives there or
in protocol/, so a mistyped value gets the same one-line error wherever it enters.
Rule 2: files a command writes are written atomically and never overwrite an existing file unless the
operator says `--force` (credentials installed in a node home are replaced: that is renewal).
"""

from __future__ import annotations

from pathlib import Path

import click

from keys.identity import Identity, node_id_from_public_key, public_key_from_node_id
from keys.keyfile import NoEncryption
from keys.membership import authority_id
from lapnode.cli.common import (
    echo_json,
    home_option,
    json_option,
    load_home,
    passphrase_file_option,
    printable,
    run_with_store,
)
from lapnode.cli.network_commands import status_from_daemon, tell_daemon_peers_changed
from lapnode.cli.passphrase import (
    ENV_AUTHORITY_PASSPHRASE,
    protection_for_new_key,
    unlock_for_rotation,
    unlock_identity,
)
from lapnode.clock import format_ms, now_ms, parse_instant_ms
from lapnode.config import DEFAULT_NETWORK, check_category, check_jurisdiction, check_org
from lapnode.errors import InputError
from lapnode.files import write_private_file
from lapnode.membership import authority as authority_home
from lapnode.membership.joining import join as join_invite
from lapnode.membership.joining import make_invite, read_invite
from lapnode.membership.node_credential import (
    install_credential,
    parse_authority_argument,
    read_armored,
    trust,
    trusted_authorities,
    untrust,
)
from lapnode.membership.rotation import RotationError, RotationResult, rotate_key
from lapnode.membership.statements import import_statements, read_statement_file
from lapnode.store import Store
from protocol.armor import armor
from protocol.credential import FILE_LABEL, CredentialBody, decode_credential
from protocol.errors import ProtocolError
from protocol.kinds import KNOWN_KINDS
from protocol.scope import CATEGORIES
from protocol.statements import ROTATION_FILE_LABEL, Retraction, Revocation, Rotation, verify_statement


def authority_home_option(command: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--authority-home",
        "authority_home_path",
        type=click.Path(file_okay=False, path_type=Path),
        envvar=authority_home.ENV_AUTHORITY_HOME,
        help="Authority home directory [env: LAPNODE_AUTHORITY_HOME; default: per-user data directory].",
    )(command)


def _open_authority(path: Path | None) -> authority_home.AuthorityHome:
    return authority_home.open_authority_home(authority_home.resolve_authority_home(path))


def _unlock_authority(home: authority_home.AuthorityHome, passphrase_file: Path | None) -> Identity:
    return unlock_identity(home.key_path, passphrase_file, env=ENV_AUTHORITY_PASSPHRASE, what="authority key")


def _body_lines(body: CredentialBody) -> list[str]:
    return [
        f"node:         {body.node_id}",
        f"org:          {printable(body.org)}",
        f"category:     {body.category}",
        f"jurisdiction: {body.jurisdiction}",
        f"network:      {body.network}",
        f"valid:        {format_ms(body.not_before)} to {format_ms(body.not_after)}",
        f"authority:    {body.authority_id}",
    ]


def _body_document(body: CredentialBody) -> dict[str, object]:
    return {
        "node_id": body.node_id,
        "org": body.org,
        "category": body.category,
        "jurisdiction": body.jurisdiction,
        "network": body.network,
        "not_before": format_ms(body.not_before),
        "not_after": format_ms(body.not_after),
        "authority": body.authority_id,
    }


# --- the authority ---------------------------------------------------------------------------------------


@click.group()
def authority() -> None:
    """The network authority: its key and credentials (secretariat), and whom this node trusts."""


@authority.command("init")
@authority_home_option
@click.option("--network", default=DEFAULT_NETWORK, show_default=True, metavar="ID", help="Network id.")
@click.option("--no-passphrase", is_flag=True, help="Store the key unencrypted (demos and tests only).")
@passphrase_file_option
def authority_init(
    authority_home_path: Path | None, network: str, no_passphrase: bool, passphrase_file: Path | None
) -> None:
    """Create a network authority: its home and its (encrypted) signing key."""
    path = authority_home.resolve_authority_home(authority_home_path)
    protection = protection_for_new_key(
        passphrase_file,
        no_passphrase=no_passphrase,
        env=ENV_AUTHORITY_PASSPHRASE,
        what="authority key",
    )
    identity = Identity.generate()
    home = authority_home.initialise_authority_home(path, network, identity, protection)
    click.echo(f"initialised authority home {home.path} for network {home.network}")
    click.echo(f"authority id: {authority_id(identity.public_key)}")
    click.echo("give this id to every member (they run `lapnode authority trust` with it)", err=True)
    if no_passphrase:
        click.echo("warning: the authority key is NOT encrypted (--no-passphrase); tests only", err=True)


@authority.command("show")
@authority_home_option
@json_option
def authority_show(authority_home_path: Path | None, as_json: bool) -> None:
    """Show this authority's id and network (needs no passphrase)."""
    home = _open_authority(authority_home_path)
    document = {"authority_id": home.authority_id(), "network": home.network, "home": str(home.path)}
    if as_json:
        echo_json(document)
    else:
        click.echo(f"authority id: {document['authority_id']}\nnetwork:      {home.network}")


@authority.command("issue")
@authority_home_option
@click.argument("node_id")
@click.option("--org", required=True, help="The member's organisation, as the secretariat verified it.")
@click.option("--category", required=True, metavar="C", help=f"One of: {', '.join(sorted(CATEGORIES))}.")
@click.option("--jurisdiction", required=True, metavar="CC", help="ISO 3166-1 alpha-2 country code.")
@click.option("--valid-days", required=True, type=int, metavar="N", help="Days of validity.")
@click.option("--not-before", metavar="TIME", help="Start of validity (ISO date or time) [default: now].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="[default: NODE_ID.credential]")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@passphrase_file_option
def authority_issue(
    authority_home_path: Path | None,
    node_id: str,
    org: str,
    category: str,
    jurisdiction: str,
    valid_days: int,
    not_before: str | None,
    out: Path | None,
    force: bool,
    passphrase_file: Path | None,
) -> None:
    """Issue a membership credential for NODE_ID and write it to a file for the member."""
    subject = public_key_from_node_id(node_id)
    attributes = {
        "org": check_org(org),
        "category": check_category(category),
        "jurisdiction": check_jurisdiction(jurisdiction),
    }
    start = parse_instant_ms(not_before) if not_before else now_ms()
    start, end = authority_home.validity(not_before=start, valid_days=valid_days)
    home = _open_authority(authority_home_path)
    target = out if out is not None else Path(f"{node_id_from_public_key(subject)}.credential")
    if target.exists() and not force:
        raise InputError(f"{target} already exists; pass --force to overwrite it")
    signer = _unlock_authority(home, passphrase_file)
    try:
        credential = authority_home.issue(
            signer, home, subject=subject, not_before=start, not_after=end, **attributes
        )
    except ProtocolError as exc:
        raise InputError(f"cannot issue: {exc}") from None
    authority_home.write_credential_file(target, credential, overwrite=force)
    click.echo(f"wrote {target}")
    click.echo("\n".join(_body_lines(credential.body)))
    if end <= now_ms():
        click.echo("warning: this credential has already expired; nodes will refuse it", err=True)


@authority.command("revoke")
@authority_home_option
@click.argument("node_id")
@click.option("--reason", required=True, help="Why, in one line (shown on every node).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="[default: NODE_ID.revocation]")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option(
    "--publish",
    is_flag=True,
    help="Also store it in the node home (--home / LAPNODE_HOME), whose daemon passes it to every peer.",
)
@home_option
@passphrase_file_option
def authority_revoke(
    authority_home_path: Path | None,
    node_id: str,
    reason: str,
    out: Path | None,
    force: bool,
    publish: bool,
    home: Path | None,
    passphrase_file: Path | None,
) -> None:
    """Revoke NODE_ID's membership: a signed revocation that every node acts on and passes on."""
    subject = public_key_from_node_id(node_id)
    authority = _open_authority(authority_home_path)
    node_home = load_home(home) if publish else None
    if node_home is not None and node_home.config.network != authority.network:
        raise InputError(
            f"the node home is on network {node_home.config.network!r}; the authority, {authority.network!r}"
        )
    target = out if out is not None else Path(f"{node_id_from_public_key(subject)}.revocation")
    if target.exists() and not force:
        raise InputError(f"{target} already exists; pass --force to overwrite it")
    signer = _unlock_authority(authority, passphrase_file)
    try:
        revocation = authority_home.revoke(
            signer, authority, subject=subject, reason=reason.strip(), now_ms=now_ms()
        )
    except ProtocolError as exc:
        raise InputError(f"cannot revoke: {exc}") from None
    authority_home.write_revocation_file(target, revocation, overwrite=force)
    click.echo(f"wrote {target}: {revocation.node_id} revoked ({printable(revocation.reason)})")
    if node_home is not None:
        statement = read_statement_file(
            target, network=node_home.config.network, trusted=trusted_authorities(node_home.config)
        )
        new = run_with_store(node_home, lambda store: import_statements(store, [statement], now_ms=now_ms()))
        click.echo("published: the node's daemon passes it to every peer" if new else "already published")
    else:
        click.echo(
            "import it on a node (`lapnode membership import FILE`): it reaches every node from there",
            err=True,
        )


@authority.command("trust")
@home_option
@click.argument("authority_id_or_file")
def authority_trust(home: Path | None, authority_id_or_file: str) -> None:
    """Trust an authority (its id, lapauth1..., or a file holding it): strict credential checks on."""
    node_home = load_home(home)
    chosen = parse_authority_argument(authority_id_or_file)
    if trust(node_home, chosen):
        click.echo(f"trusting authority {chosen}")
        click.echo("peers now need a valid credential from a trusted authority; restart the daemon", err=True)
    else:
        click.echo(f"authority {chosen} is trusted already")


@authority.command("untrust")
@home_option
@click.argument("authority_id")
def authority_untrust(home: Path | None, authority_id: str) -> None:
    """Stop trusting an authority. With none left, the node is back in legacy mode."""
    node_home = load_home(home)
    chosen = parse_authority_argument(authority_id)
    untrust(node_home, chosen)
    click.echo(f"no longer trusting authority {chosen}; restart the daemon")


@authority.command("list")
@home_option
@json_option
def authority_list(home: Path | None, as_json: bool) -> None:
    """The authorities this node trusts."""
    ids = list(load_home(home).config.authorities)
    if as_json:
        echo_json(ids)
    elif ids:
        click.echo("\n".join(ids))
    else:
        click.echo("no trusted authority: legacy mode (peers are admitted only if added with `peer add`)")


# --- this node's credential --------------------------------------------------------------------------


@click.group()
def credential() -> None:
    """This node's membership credential."""


@credential.command("install")
@home_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--authority",
    "authority_arg",
    metavar="ID_OR_FILE",
    help="Also trust this authority (checked against the credential's issuer) before installing.",
)
def credential_install(home: Path | None, file: Path, authority_arg: str | None) -> None:
    """Verify FILE (for this node, network, a trusted authority, valid now) and install it."""
    node_home = load_home(home)
    if authority_arg is not None:
        chosen = parse_authority_argument(authority_arg)
        issuer = _issuer_of(file)
        if issuer != chosen:
            raise InputError(f"{file} is issued by {issuer}, not by {chosen}; check with your secretariat")
        if trust(node_home, chosen):
            click.echo(f"trusting authority {chosen}")
            node_home = load_home(home)
    revoked = run_with_store(node_home, lambda store: store.revoked_keys())
    installed = install_credential(node_home, file, now_ms=now_ms(), revoked=revoked)
    click.echo(f"installed the credential for {installed.body.node_id}")
    click.echo("\n".join(_body_lines(installed.body)))


def _issuer_of(file: Path) -> str:
    try:
        return decode_credential(read_armored(file, FILE_LABEL, "credential")).unverified_body.authority_id
    except ProtocolError as exc:
        raise InputError(f"{file}: {exc}") from None


@credential.command("show")
@home_option
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@json_option
def credential_show(home: Path | None, file: Path | None, as_json: bool) -> None:
    """Show a credential file, or the installed one (without FILE); nothing is checked but its form."""
    if file is None:
        node_home = load_home(home)
        file = node_home.path / "credential"
        if not file.exists():
            raise InputError(
                "this node has no credential; install one with `lapnode credential install FILE`"
            )
    wire = read_armored(file, FILE_LABEL, "credential")
    try:
        body = decode_credential(wire).unverified_body
    except ProtocolError as exc:
        raise InputError(f"{file}: {exc}") from None
    if as_json:
        echo_json(_body_document(body))
    else:
        click.echo("\n".join(_body_lines(body)))


# --- membership statements -----------------------------------------------------------------------------


@click.group()
def membership() -> None:
    """Membership statements this node holds: revocations (and key rotations)."""


@membership.command("import")
@home_option
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def membership_import(home: Path | None, files: tuple[Path, ...]) -> None:
    """Verify and store statement FILES; a running daemon passes them to every peer within a second."""
    node_home = load_home(home)
    trusted = trusted_authorities(node_home.config)
    statements = [read_statement_file(f, network=node_home.config.network, trusted=trusted) for f in files]
    new = run_with_store(node_home, lambda store: import_statements(store, statements, now_ms=now_ms()))
    click.echo(f"{new} new, {len(statements) - new} already held")


@membership.command("list")
@home_option
@json_option
def membership_list(home: Path | None, as_json: bool) -> None:
    """The revocations (and rotations) this node holds, oldest first."""
    node_home = load_home(home)
    rows = run_with_store(node_home, lambda store: store.statements.after(0))
    trusted = trusted_authorities(node_home.config)
    documents = []
    for row in rows:
        try:
            statement = verify_statement(row.wire, network=node_home.config.network, trusted=trusted)
        except ProtocolError:
            continue  # stored while this node trusted another authority
        if isinstance(statement, Retraction):
            continue  # about records, not members: `lapnode show ID` tells of a record's tombstone
        documents.append(_statement_document(statement, row.received_at))
    if as_json:
        echo_json(documents)
    elif not documents:
        click.echo("no membership statements")
    for document in [] if as_json else documents:
        click.echo(
            f"{document['type']}  {document['node_id']}  at {document['at']}  by {document['by']}: "
            f"{printable(str(document['reason']))}"
        )


def _statement_document(statement: Revocation | Rotation, received_at: int) -> dict[str, object]:
    if isinstance(statement, Revocation):
        return {
            "type": "revocation",
            "node_id": statement.node_id,
            "by": statement.authority_id,
            "at": format_ms(statement.issued_at),
            "reason": statement.reason,
            "received": format_ms(received_at),
            "id": statement.id.hex(),
        }
    return {
        "type": "rotation",
        "node_id": statement.old_node_id,
        "by": statement.new_node_id,
        "at": format_ms(statement.rotated_at),
        "reason": f"key replaced by {statement.new_node_id}; its last record was number {statement.last_seq}",
        "received": format_ms(received_at),
        "id": statement.id.hex(),
    }


# --- key rotation ----------------------------------------------------------------------------------------


@click.group()
def key() -> None:
    """This node's identity key."""


@key.command("rotate")
@home_option
@passphrase_file_option
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="[default: NEW_NODE_ID.rotation]"
)
def key_rotate(home: Path | None, passphrase_file: Path | None, out: Path | None) -> None:
    """Replace this node's key: a rotation signed by the old and the new key, which peers follow.

    Stop the daemon first. Afterwards, ask the authority for a credential for the new node id.
    """
    node_home = load_home(home)
    if status_from_daemon(node_home) is not None:
        raise RotationError("the daemon is running; stop it first (it holds the old key), then rotate")
    old, protection = unlock_for_rotation(node_home.key_path, passphrase_file)

    async def action(store: Store) -> RotationResult:
        return await rotate_key(node_home, store, old, protection, now_ms=now_ms())

    result = run_with_store(node_home, action)
    rotation = result.rotation
    target = out if out is not None else Path(f"{rotation.new_node_id}.rotation")
    write_private_file(
        target, armor(ROTATION_FILE_LABEL, rotation.wire).encode("ascii"), overwrite=True, mode=0o644
    )
    click.echo(
        f"{'finished the interrupted rotation' if result.resumed else 'rotated'}: {rotation.old_node_id}"
    )
    click.echo(f"new node id: {rotation.new_node_id}")
    click.echo(f"wrote {target} (records of the old key up to number {rotation.last_seq} stay valid)")
    if trusted_authorities(node_home.config):
        click.echo(
            f"next: send {target} to your secretariat and install the credential they issue for the new id "
            "(`lapnode credential install FILE`), then start the daemon",
            err=True,
        )
    else:
        click.echo("next: start the daemon; peers follow the rotation when they connect", err=True)
    if isinstance(protection, NoEncryption):
        click.echo("warning: the new key is NOT encrypted, like the old one", err=True)


# --- joining -----------------------------------------------------------------------------------------------


@click.command()
@home_option
@click.option("--address", metavar="HOST:PORT", help="Where members dial this node [default: listen].")
def invite(home: Path | None, address: str | None) -> None:
    """Print a token a new member pastes into `lapnode join` to add and subscribe to this node."""
    node_home = load_home(home)
    click.echo(make_invite(node_home, address=address))
    if not trusted_authorities(node_home.config):
        click.echo(
            "note: this node trusts no authority (legacy mode): add the new member with `peer add` too",
            err=True,
        )


@click.command()
@home_option
@click.argument("token")
@click.option("--name", help="A short local name for the inviter.")
@click.option("--kind", "kinds", multiple=True, help="Only these record kinds (repeatable).")
def join(home: Path | None, token: str, name: str | None, kinds: tuple[str, ...]) -> None:
    """Join through a member's invite TOKEN: add that member as a peer and subscribe to its feed."""
    unknown = sorted(set(kinds) - KNOWN_KINDS)
    if unknown:
        raise InputError(f"--kind {unknown[0]!r} is not one of {', '.join(sorted(KNOWN_KINDS))}")
    node_home = load_home(home)
    joined = read_invite(node_home, token)

    async def action(store: Store) -> None:
        await join_invite(store, joined, name=name, kinds=kinds, now_ms=now_ms())

    run_with_store(node_home, action)
    tell_daemon_peers_changed(node_home)
    click.echo(f"joined: subscribed to {node_id_from_public_key(joined.node)} at {joined.address}")
    click.echo("records arrive while `lapnode serve` runs; see `lapnode status`", err=True)
