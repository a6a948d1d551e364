"""lapnode/membership and lapnode/daemon/membership.py: the authority's home, trusting authorities,
installing a credential, invites and joining, and the one function that describes a peer to policy."""

from __future__ import annotations

import asyncio
import stat
import tomllib
from pathlib import Path

import pytest

from keys.identity import Identity, public_key_from_node_id
from keys.keyfile import NoEncryption, read_key_file, write_key_file
from keys.membership import TrustedAuthorities, authority_id
from lapnode.clock import now_ms
from lapnode.config import Config, load_config, render_config
from lapnode.daemon.membership import Membership, recipient_for
from lapnode.errors import ConfigError, HomeError, InputError
from lapnode.home import CONFIG_NAME, NodeHome, initialise_home, open_home
from lapnode.membership import authority as authority_home
from lapnode.membership.joining import join, make_invite, read_invite
from lapnode.membership.node_credential import (
    credential_path,
    credential_report,
    install_credential,
    installed_credential,
    parse_authority_argument,
    trust,
    untrust,
)
from lapnode.membership.rotation import RotationResult, next_key_path, rotate_key
from lapnode.membership.statements import read_statement_file
from lapnode.store import Peer, Store
from protocol.armor import armor
from protocol.credential import FILE_LABEL, CredentialCheck, issue_credential, verify_credential
from protocol.invite import Invite, encode_invite
from protocol.statements import issue_revocation, issue_rotation
from tests.factories import chain, identity

NETWORK = "test-net"
DAY = 86_400_000
SECRETARIAT, STRANGER = identity("secretariat"), identity("stranger")
SECRETARIAT_ID = authority_id(SECRETARIAT.public_key)


async def _probe(url: str, network: str) -> None:
    await (await Store.open(url, network=network)).close()


def make_home(tmp_path: Path, name: str = "node", *, trusting: tuple[str, ...] = ()) -> NodeHome:
    config = Config.create(
        org=f"Org {name}",
        jurisdiction="NL",
        category="enforcement",
        network=NETWORK,
        listen="127.0.0.1:7450",
        authorities=trusting,
    )
    return asyncio.run(initialise_home(tmp_path / name, config, Identity.generate(), NoEncryption(), _probe))


def credential_file(
    path: Path, home: NodeHome, *, signer: Identity = SECRETARIAT, start: int | None = None, days: int = 30
) -> Path:
    begin = now_ms() if start is None else start
    credential = issue_credential(
        signer,
        network=home.config.network,
        subject=node_key(home),
        org="Org node",
        category="government",
        jurisdiction="GB",
        not_before=begin,
        not_after=begin + days * DAY,
    )
    path.write_text(armor(FILE_LABEL, credential.wire))
    return path


def node_key(home: NodeHome) -> bytes:
    return public_key_from_node_id(home.node_id())


# --- configuration -------------------------------------------------------------------------------------


def test_authorities_round_trip_through_config_toml(tmp_path: Path) -> None:
    other = authority_id(STRANGER.public_key)
    config = Config.create(
        org="OPTA", jurisdiction="NL", category="enforcement", authorities=[other, SECRETARIAT_ID, other]
    )
    assert config.authorities == tuple(sorted({other, SECRETARIAT_ID}))
    text = render_config(config)
    assert tomllib.loads(text)["authorities"] == list(config.authorities)
    (tmp_path / "config.toml").write_text(text)
    assert load_config(tmp_path / "config.toml") == config
    assert "authorities" not in tomllib.loads(render_config(config.with_authorities([])))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('authorities = "lapauth1x"', "must be a list"),
        ("authorities = [1]", "must be a list"),
        ('authorities = ["lap1qqqq"]', "not a valid authority id"),
    ],
)
def test_bad_authorities_in_config_are_errors(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'org = "OPTA"\njurisdiction = "NL"\ncategory = "enforcement"\n{line}\n')
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_trust_and_untrust_rewrite_the_config_atomically(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    id_file = tmp_path / "authority.id"
    id_file.write_text(f"{SECRETARIAT_ID}\n")
    chosen = parse_authority_argument(str(id_file))
    assert chosen == SECRETARIAT_ID == parse_authority_argument(f" {SECRETARIAT_ID.upper()} ")
    assert trust(home, chosen) is True
    reloaded = open_home(home.path)
    assert reloaded.config.authorities == (SECRETARIAT_ID,)
    assert trust(reloaded, chosen) is False
    assert stat.S_IMODE((home.path / CONFIG_NAME).stat().st_mode) == 0o600
    untrust(reloaded, chosen)
    assert open_home(home.path).config.authorities == ()
    with pytest.raises(InputError, match="not a trusted authority"):
        untrust(open_home(home.path), chosen)
    with pytest.raises(InputError, match="not a valid authority id"):
        parse_authority_argument(home.node_id())


# --- the authority's home ----------------------------------------------------------------------------


def test_authority_home_lifecycle(tmp_path: Path) -> None:
    path = tmp_path / "authority"
    with pytest.raises(HomeError, match="authority init"):
        authority_home.open_authority_home(path)
    signer = Identity.generate()
    made = authority_home.initialise_authority_home(path, NETWORK, signer, NoEncryption())
    opened = authority_home.open_authority_home(path)
    assert opened == made and opened.authority_id() == authority_id(signer.public_key)
    assert (path / "authority.id").read_text() == f"{opened.authority_id()}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    with pytest.raises(HomeError, match="already an authority home"):
        authority_home.initialise_authority_home(path, NETWORK, signer, NoEncryption())
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(HomeError, match="not a new or empty directory"):
        authority_home.initialise_authority_home(tmp_path / "busy", NETWORK, signer, NoEncryption())
    with pytest.raises(InputError, match="network id"):
        authority_home.initialise_authority_home(tmp_path / "bad", "Bad Net", signer, NoEncryption())
    assert not (tmp_path / "bad").exists()
    (path / "authority.toml").write_text('network = "x"\nextra = 1\n')
    with pytest.raises(ConfigError, match="exactly one setting"):
        authority_home.open_authority_home(path)


def test_issuing_checks_what_every_receiver_checks(tmp_path: Path) -> None:
    home = authority_home.initialise_authority_home(tmp_path / "a", NETWORK, SECRETARIAT, NoEncryption())
    start, end = authority_home.validity(not_before=1_000, valid_days=2)
    assert end - start == 2 * DAY
    made = authority_home.issue(
        SECRETARIAT,
        home,
        subject=STRANGER.public_key.raw,
        org="ACMA",
        category="enforcement",
        jurisdiction="AU",
        not_before=start,
        not_after=end,
    )
    assert made.org == "ACMA"
    for days in (0, authority_home.MAX_VALID_DAYS + 1):
        with pytest.raises(InputError, match="--valid-days"):
            authority_home.validity(not_before=0, valid_days=days)
    out = tmp_path / "acma.credential"
    authority_home.write_credential_file(out, made, overwrite=False)
    with pytest.raises(InputError, match="already exists"):
        authority_home.write_credential_file(out, made, overwrite=False)


# --- installing a credential -------------------------------------------------------------------------


def test_install_verifies_and_replaces_atomically(tmp_path: Path) -> None:
    home = make_home(tmp_path, trusting=(SECRETARIAT_ID,))
    source = credential_file(tmp_path / "mine.credential", home)
    installed = install_credential(home, source, now_ms=now_ms(), revoked=frozenset())
    assert installed.category == "government"
    assert installed_credential(home) == installed.wire
    assert stat.S_IMODE(credential_path(home).stat().st_mode) == 0o600
    renewed = credential_file(tmp_path / "renewed.credential", home, days=60)
    assert (
        install_credential(home, renewed, now_ms=now_ms(), revoked=frozenset()).not_after
        > installed.not_after
    )


def test_install_refuses_every_unusable_credential_and_keeps_the_old_one(tmp_path: Path) -> None:
    home = make_home(tmp_path, trusting=(SECRETARIAT_ID,))
    good = install_credential(
        home, credential_file(tmp_path / "good", home), now_ms=now_ms(), revoked=frozenset()
    )
    other = make_home(tmp_path, "other", trusting=(SECRETARIAT_ID,))
    damaged = tmp_path / "damaged"
    damaged.write_text("lapnode-credential/1\nnot base64!\n")
    cases = {
        "for another node": (credential_file(tmp_path / "other.credential", other), "not this node"),
        "untrusted authority": (credential_file(tmp_path / "s", home, signer=STRANGER), "does not trust"),
        "expired": (credential_file(tmp_path / "old", home, start=now_ms() - 40 * DAY), "expired"),
        "not yet valid": (credential_file(tmp_path / "new", home, start=now_ms() + 2 * DAY), "not valid yet"),
        "damaged": (damaged, "not base64"),
        "missing": (tmp_path / "missing", "no such file"),
        "a directory": (tmp_path, "is a directory"),
    }
    for why, (source, message) in cases.items():
        with pytest.raises(InputError, match=message):
            install_credential(home, source, now_ms=now_ms(), revoked=frozenset())
        assert installed_credential(home) == good.wire, why
    revoked = credential_file(tmp_path / "revoked", home)
    with pytest.raises(InputError, match="revoked"):
        install_credential(home, revoked, now_ms=now_ms(), revoked=frozenset({good.subject}))


def test_install_needs_a_trusted_authority(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    with pytest.raises(InputError, match="trusts no authority"):
        install_credential(home, credential_file(tmp_path / "c", home), now_ms=now_ms(), revoked=frozenset())


def test_credential_report_and_its_alarms(tmp_path: Path) -> None:
    home = make_home(tmp_path, trusting=(SECRETARIAT_ID,))
    trusted = TrustedAuthorities([SECRETARIAT.public_key])
    key = node_key(home)

    def report(wire: bytes | None, at: int) -> tuple[dict[str, object], list[str]]:
        summary, alarms = credential_report(
            wire, trusted=trusted, network=NETWORK, subject=key, now_ms=at, revoked=frozenset()
        )
        return summary, [alarm["kind"] for alarm in alarms]  # type: ignore[misc]

    assert report(None, now_ms())[1] == ["no-credential"]
    wire = install_credential(
        home, credential_file(tmp_path / "c", home), now_ms=now_ms(), revoked=frozenset()
    ).wire
    summary, alarms = report(wire, now_ms())
    assert alarms == [] and summary["category"] == "government" and summary["mode"] == "strict"
    assert report(wire, now_ms() + 20 * DAY)[1] == ["credential-expiring"]
    assert report(wire, now_ms() + 31 * DAY)[1] == ["credential"]
    legacy = credential_report(
        None, trusted=TrustedAuthorities(), network=NETWORK, subject=key, now_ms=0, revoked=frozenset()
    )
    assert legacy == ({"mode": "legacy", "authorities": [], "installed": False}, [])


# --- invites and joining -----------------------------------------------------------------------------


def test_an_invite_names_the_node_its_address_and_its_credentials_issuer(tmp_path: Path) -> None:
    home = make_home(tmp_path, trusting=(SECRETARIAT_ID,))
    legacy_token = make_invite(home, address=None)
    newcomer = make_home(tmp_path, "newcomer")
    invite = read_invite(newcomer, legacy_token)
    assert invite.address == "127.0.0.1:7450" and invite.authority is None
    install_credential(home, credential_file(tmp_path / "c", home), now_ms=now_ms(), revoked=frozenset())
    token = make_invite(home, address="node.opta.example:7450")
    assert read_invite(newcomer, token).authority == SECRETARIAT.public_key.raw
    with pytest.raises(InputError, match="nobody can dial"):
        make_invite(home, address="0.0.0.0:7450")


def test_read_invite_refuses_what_cannot_work(tmp_path: Path) -> None:
    inviter = make_home(tmp_path, "inviter", trusting=(SECRETARIAT_ID,))
    install_credential(
        inviter, credential_file(tmp_path / "c", inviter), now_ms=now_ms(), revoked=frozenset()
    )
    token = make_invite(inviter, address=None)
    strict = make_home(tmp_path, "strict", trusting=(SECRETARIAT_ID,))
    with pytest.raises(InputError, match="this node has no credential"):
        read_invite(strict, token)
    install_credential(strict, credential_file(tmp_path / "s", strict), now_ms=now_ms(), revoked=frozenset())
    assert read_invite(strict, token).node == node_key(inviter)
    elsewhere = make_home(tmp_path, "elsewhere", trusting=(authority_id(STRANGER.public_key),))
    with pytest.raises(InputError, match="does not trust"):
        read_invite(elsewhere, token)
    with pytest.raises(InputError, match="inviter has no credential"):
        read_invite(strict, make_invite(make_home(tmp_path, "bare"), address=None))
    with pytest.raises(InputError, match="own"):
        read_invite(inviter, token)
    other_network = encode_invite(Invite("other-net", node_key(inviter), "h:1", None))
    with pytest.raises(InputError, match="network 'other-net'"):
        read_invite(strict, other_network)
    with pytest.raises(InputError, match=r"checksum|damaged"):
        read_invite(strict, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    not_dialable = encode_invite(Invite(NETWORK, node_key(inviter), "no-port", SECRETARIAT.public_key.raw))
    with pytest.raises(InputError, match="HOST:PORT"):
        read_invite(strict, not_dialable)


async def test_join_adds_and_subscribes_in_one_step(store: Store) -> None:
    inviter = identity("inviter").public_key.raw
    invite = Invite(NETWORK, inviter, "203.0.113.20:7450", None)
    await join(store, invite, name="opta", kinds=("lead",), now_ms=5)
    peer = await store.peers.get(inviter)
    assert (peer.address, peer.name, peer.subscribed, peer.kinds) == (
        "203.0.113.20:7450",
        "opta",
        True,
        ("lead",),
    )
    assert (peer.org, peer.category, peer.jurisdiction) == (None, None, None)  # nothing pinned
    await store.peers.set_blocked(inviter, True)
    with pytest.raises(InputError, match="blocked"):
        await join(store, invite, name=None, kinds=(), now_ms=6)


# --- the daemon's side ------------------------------------------------------------------------------


def _peer(key: bytes, **pinned: str | None) -> Peer:
    return Peer(key, "h:1", None, pinned.get("org"), pinned.get("category"), pinned.get("jurisdiction"),
                False, True, (), 0, 0, None, 0, 0, 0, None)  # fmt: skip


def test_a_credential_is_the_only_source_of_a_credentialed_peers_attributes() -> None:
    key = STRANGER.public_key.raw
    wire = issue_credential(
        SECRETARIAT, network=NETWORK, subject=key, org="ACMA", category="enforcement", jurisdiction="AU",
        not_before=0, not_after=10 * DAY,
    ).wire  # fmt: skip
    credential = verify_credential(
        wire, network=NETWORK, check=CredentialCheck(TrustedAuthorities([SECRETARIAT.public_key]), DAY)
    )
    pinned = _peer(key, org="Wrong", category="industry", jurisdiction="US")
    assert recipient_for(key, pinned, credential).category == "enforcement"
    assert recipient_for(key, pinned, credential).jurisdiction == "AU"
    assert recipient_for(key, pinned, None).category == "industry"  # legacy mode: the operator's pins
    assert recipient_for(key, None, None).category is None  # nothing known: matches no audience clause


def test_the_presented_credential_is_reread_when_the_file_changes(tmp_path: Path) -> None:
    home = make_home(tmp_path, trusting=(SECRETARIAT_ID,))
    membership = Membership(TrustedAuthorities([SECRETARIAT.public_key]), credential_path(home))
    assert membership.strict and membership.own_credential() is None
    first = install_credential(
        home, credential_file(tmp_path / "a", home), now_ms=now_ms(), revoked=frozenset()
    )
    assert membership.own_credential() == first.wire
    second = install_credential(
        home, credential_file(tmp_path / "b", home, days=90), now_ms=now_ms(), revoked=frozenset()
    )
    assert membership.own_credential() == second.wire
    credential_path(home).write_text("damaged, and one byte longer than before ...........")
    assert membership.own_credential() is None
    check = membership.check(123)
    assert check is not None and check.now_ms == 123
    assert Membership(TrustedAuthorities()).check(123) is None  # legacy mode demands nothing


# --- statement files ------------------------------------------------------------------------------


def test_a_statement_file_is_verified_before_it_is_imported(tmp_path: Path) -> None:
    revocation = issue_revocation(
        SECRETARIAT, network=NETWORK, subject=STRANGER.public_key.raw, reason="left", issued_at=1
    )
    good = tmp_path / "good.revocation"
    authority_home.write_revocation_file(good, revocation, overwrite=False)
    trusted = TrustedAuthorities([SECRETARIAT.public_key])
    assert read_statement_file(good, network=NETWORK, trusted=trusted) == revocation
    with pytest.raises(InputError, match="does not trust"):
        read_statement_file(good, network=NETWORK, trusted=TrustedAuthorities())
    with pytest.raises(InputError, match="network"):
        read_statement_file(good, network="other-net", trusted=trusted)
    credential = tmp_path / "a.credential"
    credential.write_text(armor(FILE_LABEL, b"x"))
    with pytest.raises(InputError, match="not a membership statement file"):
        read_statement_file(credential, network=NETWORK, trusted=trusted)
    with pytest.raises(InputError, match="no such file"):
        read_statement_file(tmp_path / "missing", network=NETWORK, trusted=trusted)


# --- key rotation ------------------------------------------------------------------------------------


def _rotate(home: NodeHome, old: Identity) -> RotationResult:
    async def action() -> RotationResult:
        store = await Store.open(home.database_url, network=NETWORK)
        try:
            return await rotate_key(home, store, old, NoEncryption(), now_ms=T0)
        finally:
            await store.close()

    return asyncio.run(action())


T0 = 1_780_000_000_000


def test_rotating_replaces_the_key_and_stores_the_statement(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    old = read_key_file(home.key_path, None)

    async def publish_two() -> None:
        store = await Store.open(home.database_url, network=NETWORK)
        try:
            for seq, record in enumerate(chain(old, 2, network=NETWORK), start=1):
                assert record.header.seq == seq
                await store.ingest([record.wire])
        finally:
            await store.close()

    asyncio.run(publish_two())
    result = _rotate(home, old)
    assert not result.resumed and result.rotation.last_seq == 2 and result.rotation.rotated_at == T0
    assert home.node_id() == result.new.node_id != old.node_id
    assert read_key_file(home.key_path, None).public_key == result.new.public_key
    assert not next_key_path(home).exists()
    assert stat.S_IMODE(home.key_path.stat().st_mode) == 0o600


def test_an_interrupted_rotation_is_finished_or_started_over(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    old = read_key_file(home.key_path, None)
    # A crash after the statement was stored, before the new key replaced the old one:
    pending = Identity.generate()
    write_key_file(next_key_path(home), pending, NoEncryption())

    async def store_rotation() -> None:
        store = await Store.open(home.database_url, network=NETWORK)
        try:
            made = issue_rotation(old, pending, network=NETWORK, rotated_at=T0, last_seq=0)
            await store.statements.add([made], now_ms=T0)
        finally:
            await store.close()

    asyncio.run(store_rotation())
    finished = _rotate(home, old)
    assert finished.resumed and finished.new.public_key == pending.public_key
    assert home.node_id() == pending.node_id

    # A crash before the statement was stored: the waiting key is nobody's, and a fresh one is made.
    current = read_key_file(home.key_path, None)
    stale = Identity.generate()
    write_key_file(next_key_path(home), stale, NoEncryption())
    fresh = _rotate(home, current)
    assert not fresh.resumed and fresh.new.public_key not in (stale.public_key, current.public_key)
    assert fresh.rotation.old == current.public_key.raw
