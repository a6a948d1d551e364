"""Membership with real daemons (issue 5): joining by token, and refusing peers without a valid credential.

One federation serves every test here. Every node is a real `lapnode serve` process with its own home,
SQLite file and keys, and trusts the network authority `X` (a real authority home made with the CLI):

- `hub` (enforcement, NL) got its credential with `authority issue` and `credential install`;
- `member` (government, GB) joins the hub with `lapnode join <token from lapnode invite>`; the hub's
  operator once pinned it, wrongly, as industry: its credential must win;
- `nocred` has no credential; `expired` has one that expired (the hub's operator added it back when it
  was valid); `foreign` has one from authority `Y`, which it trusts besides `X` and the hub does not.
  Each subscribes to the hub, and each must be refused: no record reaches it, and it learns nothing;
- `m2` subscribes to the member and `m3` to `m2` (a line away from the hub), `m4` to the hub, and all
  four of hub, `m4`, and `rogue` are linked: the hub and `m4` subscribe to `rogue`, `rogue` to the hub.
  The authority revokes `rogue`, and the revocation is published at the far end of the line (`m3`): it
  must reach all five other members against and along the subscriptions, and cut `rogue` off everywhere;
- then `m2` rotates its key: `m3`, pinned to the old key and linked to nothing else, must follow it, and
  the old key's records stay valid for the time before the rotation, on every node.

Setup steps that are not under test (credentials of the refused nodes, trusting X on them) call the same
library functions as the CLI, in-process, to keep the suite fast; the flows under test use the CLI.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from keys.identity import Identity
from keys.keyfile import NoEncryption, read_key_file
from lapnode.clock import now_ms
from lapnode.config import Config
from lapnode.daemon.subscriber import BACKOFF_MAX
from lapnode.home import initialise_home, open_home
from lapnode.membership import authority as authority_home
from lapnode.membership.node_credential import (
    credential_path,
    install_credential,
    parse_authority_argument,
    trust,
)
from lapnode.store import Store
from protocol.armor import armor
from protocol.credential import FILE_LABEL, issue_credential
from protocol.envelope import RecordId
from tests.factories import make_record
from tests.integration.federation import (
    NETWORK,
    WAIT_S,
    NodeProcess,
    cli,
    free_port_pair,
    in_parallel,
    init_nodes,
    stop_all,
    wait_until,
)

DAY_MS = 86_400_000


@dataclass
class Authority:
    home: Path

    @property
    def id(self) -> str:
        return (self.home / "authority.id").read_text().strip()

    def identity(self) -> Identity:
        return read_key_file(self.home / "authority.key", None)

    def issue_cli(self, node: NodeProcess, out: Path, *extra: str) -> None:
        cli(
            "authority", "issue", node.node_id, "--authority-home", str(self.home),
            "--org", f"Org {node.name}", "--category", node.category, "--jurisdiction", node.jurisdiction,
            "--valid-days", "30", "--out", str(out), *extra,
        )  # fmt: skip

    def credential_directly(self, node: NodeProcess) -> None:
        """`authority issue` and `credential install`, in-process: the same library calls and checks."""
        source = node.home.parent / f"{node.name}.credential"
        self.install_directly(node, not_before=now_ms(), not_after=now_ms() + 30 * DAY_MS, path=source)
        install_credential(open_home(node.home), source, now_ms=now_ms(), revoked=frozenset())

    def install_directly(
        self, node: NodeProcess, *, not_before: int, not_after: int, path: Path | None = None
    ) -> None:
        """Write a credential into a node home as `credential install` would, skipping its checks (for
        credentials that install refuses, such as an expired one)."""
        credential = issue_credential(
            self.identity(),
            network=NETWORK,
            subject=node.key,
            org=f"Org {node.name}",
            category=node.category,
            jurisdiction=node.jurisdiction,
            not_before=not_before,
            not_after=not_after,
        )
        target = path if path is not None else credential_path(open_home(node.home))
        target.write_text(armor(FILE_LABEL, credential.wire))


def make_authority(root: Path, name: str, *, with_cli: bool) -> Authority:
    if with_cli:
        cli(
            "authority", "init", "--authority-home", str(root / name), "--network", NETWORK, "--no-passphrase"
        )
    else:
        authority_home.initialise_authority_home(root / name, NETWORK, Identity.generate(), NoEncryption())
    return Authority(root / name)


def init_directly(node: NodeProcess) -> None:
    """`lapnode init --no-passphrase`, in-process (the same library calls)."""
    config = Config.create(
        org=f"Org {node.name}",
        jurisdiction=node.jurisdiction,
        category=node.category,
        network=NETWORK,
        listen=node.address,
    )

    async def probe(url: str, network: str) -> None:
        await (await Store.open(url, network=network)).close()

    identity = Identity.generate()
    asyncio.run(initialise_home(node.home, config, identity, NoEncryption(), probe))
    node.node_id = identity.node_id


def trust_directly(node: NodeProcess, *authorities: Authority) -> None:
    for authority in authorities:
        trust(open_home(node.home), parse_authority_argument(authority.id))


def add_peer_directly(node: NodeProcess, peer: NodeProcess, *, category: str | None, subscribe: bool) -> None:
    """What `peer add` (and `subscribe`) write, in-process: a row in the node's peer book."""

    async def add() -> None:
        store = await Store.open(node.database_url, network=NETWORK)
        try:
            await store.peers.add(peer.key, peer.address, now_ms=0, name=peer.name, category=category)
            if subscribe:
                await store.peers.set_subscription(peer.key, True)
        finally:
            await store.close()

    asyncio.run(add())


@dataclass
class Federation:
    x: Authority
    hub: NodeProcess
    member: NodeProcess
    refused: dict[str, NodeProcess]
    m2: NodeProcess
    m3: NodeProcess
    m4: NodeProcess
    rogue: NodeProcess


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    root = tmp_path_factory.mktemp("membership")

    def node(name: str, category: str = "enforcement", jurisdiction: str = "NL") -> NodeProcess:
        return NodeProcess(name, root / name, free_port_pair(), category=category, jurisdiction=jurisdiction)

    hub, member = node("hub"), node("member", "government", "GB")
    refused = {name: node(name, "industry") for name in ("nocred", "expired", "foreign")}
    m2, m3, m4, rogue = node("m2"), node("m3"), node("m4"), node("rogue", "industry", "US")
    everyone = (hub, member, *refused.values(), m2, m3, m4, rogue)
    x = in_parallel(lambda: make_authority(root, "X", with_cli=True), lambda: init_nodes(hub, member))[0]
    y = make_authority(root, "Y", with_cli=False)
    for each in (*refused.values(), m2, m3, m4, rogue):
        init_directly(each)

    # The hub and the member: the secretariat issues, the member installs (trusting X on the way).
    for joining in (hub, member):
        x.issue_cli(joining, root / f"{joining.name}.credential")
    in_parallel(
        *(
            lambda n=joining: n.run(
                "credential", "install", str(root / f"{n.name}.credential"), "--authority", x.id
            )
            for joining in (hub, member)
        )
    )
    add_peer_directly(hub, member, category="industry", subscribe=False)  # pinned wrongly, long ago
    # The refused: all trust X (so they accept the hub and show it their credential, or its absence).
    for bad in refused.values():
        trust_directly(bad, x)
    x.install_directly(refused["expired"], not_before=1_577_836_800_000, not_after=1_577_836_800_000 + DAY_MS)
    trust_directly(refused["foreign"], y)
    y.install_directly(refused["foreign"], not_before=1_577_836_800_000, not_after=4_102_444_800_000)
    add_peer_directly(hub, refused["expired"], category="industry", subscribe=False)  # a member once
    for bad in refused.values():
        add_peer_directly(bad, hub, category=None, subscribe=True)
    # The line and the rogue: credentials installed in-process, links as `join` makes them.
    for each in (m2, m3, m4, rogue):
        trust_directly(each, x)
        x.credential_directly(each)
    for subscriber, publisher in ((m2, member), (m3, m2), (m4, hub), (m4, rogue), (hub, rogue), (rogue, hub)):
        add_peer_directly(subscriber, publisher, category=None, subscribe=True)
    try:
        in_parallel(*(n.start for n in everyone))
        yield Federation(x, hub, member, refused, m2, m3, m4, rogue)
    finally:
        stop_all(everyone)
    for each in everyone:
        assert "Traceback" not in each.logs(), f"{each.name} logged an unhandled exception"


def connected(node: NodeProcess, peer: NodeProcess) -> bool:
    """Whether `node`'s subscription to `peer` (under the peer's current key) is connected."""
    peers: list[dict[str, object]] = node._report()["peers"]  # type: ignore[assignment]
    return any(p["node_id"] == peer.node_id and p["connected"] is True for p in peers)


def test_joining_by_token_takes_two_commands_and_the_credential_decides_what_arrives(
    federation: Federation,
) -> None:
    hub, member = federation.hub, federation.member
    token = hub.run("invite").stdout.strip()
    assert token.startswith("lapinvite1.") and "\n" not in token
    # A mistyped token changes nothing.
    typo = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    failed = member.run("join", typo, check=False)
    assert failed.returncode == 1 and failed.stderr.startswith("error: ") and "token" in failed.stderr
    assert hub.node_id not in {p["node_id"] for p in member._report()["peers"]}  # type: ignore[attr-defined]

    member.run("join", token, "--name", "hub")
    wait_until(lambda: connected(member, hub), timeout=WAIT_S, what="the member to connect to the hub")

    for_industry = hub.publish("--audience-category", "industry", title="For industry members")
    for_government = hub.publish("--audience-category", "government", title="For government members")
    # Feeds run in log order: once the later record arrives, the earlier one was decided on.
    member.wait_for(for_government)  # the member's credential says government ...
    assert not member.holds(for_industry), "... and the hub's wrong pin (industry) must not count"

    on_hub = hub.peer_status(member)
    assert on_hub["credential"] == {
        "org": "Org member",
        "category": "government",
        "jurisdiction": "GB",
        "not_after": on_hub["credential"]["not_after"],  # type: ignore[index]
        "authority": federation.x.id,
    }
    status = member._report()
    assert status["membership"]["mode"] == "strict"  # type: ignore[index]
    assert status["membership"]["category"] == "government"  # type: ignore[index]
    assert status["alarms"] == []


def test_offline_exits_judge_a_peer_by_its_last_credential_not_by_the_pin(federation: Federation) -> None:
    """Issue 4: `policy explain`, `query --as` and `bundle export --for` run without a session; in strict
    mode they take the member's attributes from the credential it last presented (government), never
    from the hub operator's old pin (industry), and a peer with no valid credential matches no clause."""
    hub, member, expired = federation.hub, federation.member, federation.refused["expired"]
    wait_until(lambda: connected(member, hub), timeout=WAIT_S, what="the member to connect to the hub")
    for_industry = hub.publish("--audience-category", "industry", title="Offline exits: industry")
    for_government = hub.publish("--audience-category", "government", title="Offline exits: government")

    def explain(record: str, peer: NodeProcess) -> dict[str, object]:
        out = hub.run("policy", "explain", record, "--peer", peer.node_id, "--via", "bundle", "--json")
        return dict(json.loads(out.stdout))

    to_government, to_industry = explain(for_government, member), explain(for_industry, member)
    assert to_government["decision"] == "send" and to_industry["decision"] == "withhold"
    assert "attributes from its credential" in str(to_government["recipient"])
    # The expired member is in the hub's peer book, pinned as industry, but never showed a valid credential.
    unvouched = explain(for_industry, expired)
    assert unvouched["decision"] == "withhold"
    assert "no credential on file" in str(unvouched["recipient"])

    shown = {r["id"] for r in json.loads(hub.run("query", "--as", member.node_id, "--json").stdout)}
    assert for_government in shown and for_industry not in shown


@pytest.fixture(scope="module")
def published(federation: Federation) -> str:
    """A record for everyone (TLP clear), published on the hub once the member holds it."""
    record = federation.hub.publish("--tlp", "clear", title="For every member")
    federation.member.wait_for(record)
    return record


@pytest.mark.parametrize("name", ["nocred", "expired", "foreign"])
def test_a_peer_without_a_valid_credential_is_refused_and_learns_nothing(
    federation: Federation, published: str, name: str
) -> None:
    hub, bad = federation.hub, federation.refused[name]
    refusal = hub.wait_for_event("handshake_refused", after=0, peer=bad.node_id)
    expected = {
        "nocred": "presented no credential",
        "expired": "CredentialExpired",
        "foreign": "CredentialUntrusted",
    }
    assert expected[name] in str(refusal["reason"])  # the reason is in the hub's own log ...
    # ... and nowhere on the refused node, which saw the connection close and nothing else.
    wait_until(
        lambda: bad.peer_status(hub)["last_error"] is not None, timeout=WAIT_S, what=f"{name} to retry"
    )
    last_error = str(bad.peer_status(hub)["last_error"])
    assert "credential" not in last_error.lower() and "expired" not in last_error.lower()
    assert bad.peer_status(hub)["records_received"] == 0
    assert not bad.holds(published)


def test_a_refused_peer_the_hub_knows_is_scored(federation: Federation) -> None:
    hub, expired = federation.hub, federation.refused["expired"]
    wait_until(
        lambda: int(hub.peer_status(expired)["score"]) < 0,  # type: ignore[call-overload]
        timeout=WAIT_S,
        what="the hub to lower the expired member's score",
    )
    assert hub.peer_status(federation.member)["score"] == 0


def test_status_raises_an_alarm_for_a_node_whose_credential_is_unusable(federation: Federation) -> None:
    report = federation.refused["expired"]._report()
    kinds = {alarm["kind"] for alarm in report["alarms"]}  # type: ignore[attr-defined]
    assert "credential" in kinds and "expired" in report["membership"]["problem"]  # type: ignore[index]
    report = federation.refused["nocred"]._report()
    assert {alarm["kind"] for alarm in report["alarms"]} == {"no-credential"}  # type: ignore[attr-defined]


# --- revocation -----------------------------------------------------------------------------------------


def revocations(node: NodeProcess) -> int:
    """Revocations in the node's statement table (read-only, straight from its SQLite file)."""
    return int(node._sql("SELECT COUNT(*) FROM statements WHERE kind = 'revoke'")[0][0])


def flags(node: NodeProcess, record_id: str) -> list[str]:
    document = json.loads(node.run("show", record_id, "--json").stdout)
    return list(document["flags"])


def test_a_revocation_reaches_five_nodes_and_cuts_the_member_off(federation: Federation) -> None:
    f = federation
    receivers = (f.hub, f.member, f.m2, f.m3, f.m4)
    # Before: the rogue is linked both ways, and its record has travelled the whole line.
    wait_until(
        lambda: connected(f.hub, f.rogue) and connected(f.m4, f.rogue) and connected(f.rogue, f.hub),
        timeout=WAIT_S,
        what="the rogue's links",
    )
    before = f.rogue.publish("--tlp", "clear", title="Published by the rogue before its revocation")
    f.m3.wait_for(before)  # rogue -> hub -> member -> m2 -> m3
    assert all(revocations(node) == 0 for node in receivers)
    drops_on_hub = len(f.hub.events("peer_dropped"))

    # The secretariat revokes; an operator publishes it on the node farthest from the rogue.
    out = f.m3.home.parent / "rogue.revocation"
    cli(
        "authority", "revoke", f.rogue.node_id, "--reason", "key compromised", "--authority-home",
        str(f.x.home), "--out", str(out), "--publish", "--home", str(f.m3.home),
    )  # fmt: skip
    for node in receivers:
        wait_until(
            lambda n=node: revocations(n) == 1, timeout=WAIT_S, what=f"{node.name} to hold the revocation"
        )

    # Cut off: every session with the rogue ends, and none comes back.
    f.hub.wait_for_event("peer_dropped", after=drops_on_hub, peer=f.rogue.node_id, reason="revoked")
    wait_until(
        lambda: (
            not connected(f.hub, f.rogue) and not connected(f.m4, f.rogue) and not connected(f.rogue, f.hub)
        ),
        timeout=WAIT_S,
        what="every link with the rogue to end",
    )
    # The rogue heard of it before its links ended (each node passes a statement on before acting on
    # it), so its own store refuses its new records too.
    refused = f.rogue.run(
        "publish", "lead", "--title", "After", "--summary", "s", "--status", "suspected", check=False
    )
    assert refused.returncode == 1 and "revoked" in refused.stderr
    marker = f.hub.publish("--tlp", "clear", title="Marker after the revocation")
    for node in (f.m4, f.m3):
        node.wait_for(marker)
    assert not connected(f.rogue, f.hub)

    # What the members already hold of the rogue is kept, and flagged.
    assert flags(f.m3, before) == ["author-revoked"]
    assert flags(f.m3, marker) == []
    listed = json.loads(f.hub.run("membership", "list", "--json").stdout)
    assert [(s["type"], s["node_id"], s["reason"]) for s in listed] == [
        ("revocation", f.rogue.node_id, "key compromised")
    ]


# --- key rotation ---------------------------------------------------------------------------------------


def rotations(node: NodeProcess) -> int:
    return int(node._sql("SELECT COUNT(*) FROM statements WHERE kind = 'rotate'")[0][0])


def test_a_rotated_key_is_followed_and_the_old_keys_records_stay_valid(federation: Federation) -> None:
    f = federation
    m2, m3, hub = f.m2, f.m3, f.hub
    wait_until(lambda: connected(m3, m2), timeout=WAIT_S, what="m3 to follow m2")
    before = m2.publish("--tlp", "clear", title="Signed with m2's old key")
    m3.wait_for(before)
    old_identity, old_id = read_key_file(m2.home / "identity.key", None), m2.node_id

    # The member rotates (daemon stopped), the secretariat issues for the new id, the member installs.
    assert m2.stop() == 0
    out = m2.home.parent / "m2.rotation"
    rotated = m2.run("key", "rotate", "--out", str(out)).stdout
    new_id = rotated.split("new node id: ", 1)[1].split()[0]
    assert new_id != old_id and out.exists()
    m2.node_id = new_id
    f.x.credential_directly(m2)  # `authority issue` + `credential install`, in-process: less downtime
    m2.start()

    # m3 pinned the old key and has no other link: it follows the rotation m2 shows in the handshake.
    # It redials on its own backoff (at most BACKOFF_MAX after m2's downtime), hence the longer wait.
    wait_until(lambda: connected(m3, m2), timeout=BACKOFF_MAX + WAIT_S, what="m3 to follow m2's new key")
    assert old_id not in {p["node_id"] for p in m3._report()["peers"]}  # type: ignore[attr-defined]
    after = m2.publish("--tlp", "clear", title="Signed with m2's new key")
    m3.wait_for(after)
    assert flags(m3, before) == []  # the old key's record is as valid as before
    # The rotation floods like any statement.
    wait_until(lambda: rotations(hub) == 1, timeout=WAIT_S, what="the hub to hold the rotation")

    # Key validity is judged at the record's creation: the hub, which never had the old key's record,
    # accepts it now; a record the old key signs after the rotation is refused.
    (wire,) = m3._sql("SELECT wire FROM records WHERE rid = ?", bytes.fromhex(before))[0]
    forged = make_record(old_identity, 2, RecordId(bytes.fromhex(before)), network=NETWORK, created=now_ms())
    bundle = m2.home.parent / "old-key.bundle"
    lines = [f"lapnode-bundle/1 network={NETWORK} records=2", ""]
    lines += [base64.b64encode(bytes(wire)).decode(), "", base64.b64encode(forged.wire).decode()]
    bundle.write_text("\n".join(lines) + "\n")
    imported = hub.run("bundle", "import", str(bundle), check=False)
    assert imported.returncode == 1 and "retired by a rotation" in imported.stdout + imported.stderr
    assert hub.holds(before) and not hub.holds(forged.id.hex())
