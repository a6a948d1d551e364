"""`make demo`: a guided tour of one lapnode node, driving the real CLI in a throw-away home.

Run with `python -m lapnode.demo`. Every command is shown as an operator would type it, then run as a
subprocess (`python -m lapnode.cli.main`), so the demo exercises exactly what operators use.

Rule 1: the demo touches nothing outside its temporary directory and removes it at the end, even when a
step fails; it exits 0 only if every step succeeded.
Rule 2: the tour is a list of steps over `Node` objects (one home each), so later issues can add nodes
and steps (peering, gossip, scope enforcement) without restructuring it. The secretariat is a `Node` too:
its commands only use its authority home (`--authority-home secretariat`, inside the work directory).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

_CLI: Final = [sys.executable, "-m", "lapnode.cli.main"]

CONTACT_EXAMPLE: Final = {
    "organisation": "OPTA",
    "unit": "Spam Enforcement Team",
    "role": "International liaison",
    "emails": ["lap-liaison@opta.example"],
    "phones": ["+31 70 315 3500"],
    "languages": ["nl", "en"],
    "timezone": "Europe/Amsterdam",
    "hours": "Mon-Fri 09:00-17:00",
    "topics": ["email-spam", "sms-spam", "phishing"],
    "notes": "Send referrals by record; urgent matters by phone.",
}

LEAD_EXAMPLE: Final = """\
title = "Parcel-delivery SMS phishing wave targeting NL and BE"
summary = \"\"\"
Since early March, SMS messages claiming a failed parcel delivery lead to a look-alike
payment page that collects card details.\"\"\"
status = "verified"
violation_types = ["phishing", "unsolicited-sms"]
first_seen = 2025-03-02
last_seen = 2025-03-28
estimated_victims = 1200
victim_locations = ["NL", "BE"]
requested_assistance = ["takedown", "information"]
subjects = [
  { type = "domain", value = "Example.COM." },
  { type = "url", value = "https://pakket-bezorging.example.com/betalen" },
  { type = "phone", value = "+31 6 12345678" },
]
detriment = { amount = "185000.00", currency = "EUR" }
[[evidence]]
digest = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
description = "Sample SMS, screenshot"
"""

TREND_EXAMPLE: Final = """\
period_start = 2025-01-01
period_end = 2025-03-31
jurisdiction = "NL"
category = "sms-spam"
metric = "complaints"
value = 4812
unit = "count"
method = "Complaints received through the OPTA reporting form"
commentary = "Up 38% on the previous quarter, driven by parcel-delivery lures."
breakdown = [
  { key = "sender country: NL", value = 3950 },
  { key = "sender country: BE", value = 512 },
  { key = "sender country: other", value = 350 },
]
"""


@dataclass
class Node:
    """One lapnode node of the tour: a home directory and a way to run the CLI against it."""

    name: str
    home: Path
    cwd: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        shown = " ".join(shlex.quote(arg) for arg in args)
        print(f"\n[{self.name}] $ lapnode {shown}", flush=True)
        env = {**os.environ, "LAPNODE_HOME": str(self.home), "COLUMNS": "150"}
        env.pop("LAPNODE_PASSPHRASE", None)
        # S603: the arguments are the demo's own constants, never outside input.
        result = subprocess.run(  # noqa: S603
            [*_CLI, *args], cwd=self.cwd, env=env, text=True, capture_output=True, check=False
        )
        sys.stdout.write(result.stdout)
        sys.stdout.write(result.stderr)
        if check and result.returncode != 0:
            raise DemoFailed(f"`lapnode {shown}` exited with {result.returncode}")
        return result

    def run_quietly(self, *args: str) -> str:
        env = {**os.environ, "LAPNODE_HOME": str(self.home)}
        env.pop("LAPNODE_PASSPHRASE", None)
        result = subprocess.run(  # noqa: S603 - our own CLI and constant arguments
            [*_CLI, *args], cwd=self.cwd, env=env, text=True, capture_output=True, check=False
        )
        return result.stdout

    def held_ids(self) -> set[str]:
        output = self.run_quietly("query", "--json", "--limit", "1000")
        return {item["id"] for item in json.loads(output)} if output.strip() else set()


class DemoFailed(Exception):
    """A demo step failed; the message says which command."""


@dataclass
class Tour:
    workdir: Path
    nodes: dict[str, Node] = field(default_factory=dict)
    daemons: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)

    def node(self, name: str) -> Node:
        if name not in self.nodes:
            self.nodes[name] = Node(name, self.workdir / name, cwd=self.workdir)
        return self.nodes[name]

    def port(self, name: str) -> int:
        if name not in self.ports:
            self.ports[name] = _free_port_pair()
        return self.ports[name]

    def start_daemon(self, name: str) -> None:
        node = self.node(name)
        print(f"\n[{name}] $ lapnode serve &", flush=True)
        env = {**os.environ, "LAPNODE_HOME": str(node.home)}
        env.pop("LAPNODE_PASSPHRASE", None)
        log = (self.workdir / f"{name}.log").open("ab")
        self.daemons[name] = subprocess.Popen(  # noqa: S603 - our own CLI and constant arguments
            [*_CLI, "serve"], cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        deadline = time.monotonic() + 30
        while node.run_quietly("status", "--json").find('"running"') < 0:
            if time.monotonic() > deadline or self.daemons[name].poll() is not None:
                raise DemoFailed(f"the {name} daemon did not start; see {name}.log")
            time.sleep(0.2)

    def stop_daemons(self) -> None:
        for name, process in self.daemons.items():
            if process.poll() is None:
                print(f"\n[{name}] stopping the daemon (SIGTERM)", flush=True)
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.daemons.clear()

    def write(self, name: str, text: str) -> Path:
        path = self.workdir / name
        path.write_text(text, encoding="utf-8")
        print(f"\n# wrote example file {name}:")
        print("\n".join("    " + line for line in text.rstrip().splitlines()))
        return path


def step_init(tour: Tour) -> None:
    opta = tour.node("opta")
    opta.run(
        "init", "--org", "OPTA", "--jurisdiction", "NL", "--category", "enforcement",
        "--listen", f"127.0.0.1:{tour.port('opta')}", "--no-passphrase",
    )  # fmt: skip
    opta.run("id")


def _publish(tour: Tour, kind: str, path: Path, *flags: str) -> None:
    result = tour.node("opta").run("publish", kind, "--from-file", path.name, *flags)
    tour.published.append(result.stdout.strip())


def step_publish_contact(tour: Tour) -> None:
    path = tour.write("contact.json", json.dumps(CONTACT_EXAMPLE, indent=2) + "\n")
    _publish(tour, "contact", path, "--tlp", "green")


def step_publish_lead(tour: Tour) -> None:
    path = tour.write("lead.toml", LEAD_EXAMPLE)
    _publish(tour, "lead", path, "--audience-category", "enforcement", "--expires", "180d")


def step_publish_trend(tour: Tour) -> None:
    path = tour.write("trend.toml", TREND_EXAMPLE)
    _publish(tour, "trend", path, "--tlp", "clear")


def step_query(tour: Tour) -> None:
    opta = tour.node("opta")
    opta.run("query")
    opta.run("query", "--indicator", "example.com")
    opta.run("show", tour.published[1][:12])


def step_bundle(tour: Tour) -> None:
    opta = tour.node("opta")
    # An export is made for someone: --for a peer (its policy decision applies) or --public, which
    # takes TLP:CLEAR records only. So the public bundle holds the trend, not the contact or the lead.
    opta.run("bundle", "export", "opta-public.bundle", "--public")
    opta.run("verify", "opta-public.bundle")


def _free_port_pair() -> int:
    """A port p with p and p + 1 (the admin side) both free on 127.0.0.1."""
    for _ in range(100):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
        with socket.socket() as second:
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise DemoFailed("no free port pair on 127.0.0.1")


FEDERATION: Final = (
    ("opta", "OPTA", "NL", "enforcement"),
    ("acma", "ACMA", "AU", "enforcement"),
    ("ftc", "FTC", "US", "government"),
)


def step_authority(tour: Tour) -> None:
    """The secretariat creates the network's authority; OPTA trusts it and installs its credential."""
    secretariat = tour.node("secretariat")
    secretariat.run("authority", "init", "--authority-home", "secretariat", "--no-passphrase")
    _credential(tour, "opta", "OPTA", "NL", "enforcement")


def _credential(tour: Tour, name: str, org: str, country: str, category: str) -> None:
    """The secretariat issues a credential for a node; the node trusts the authority and installs it."""
    node_id = json.loads(tour.node(name).run_quietly("id", "--json"))["node_id"]
    authority_id = (tour.workdir / "secretariat" / "authority.id").read_text().strip()
    tour.node("secretariat").run(
        "authority", "issue", node_id, "--authority-home", "secretariat", "--org", org, "--category",
        category, "--jurisdiction", country, "--valid-days", "365", "--out", f"{name}.credential",
    )  # fmt: skip
    tour.node(name).run("credential", "install", f"{name}.credential", "--authority", authority_id)


def step_federation(tour: Tour) -> None:
    """Two more members join with a credential and an invite: ACMA through OPTA, FTC through ACMA.

    Nobody pins anything: each peer's category and country come from its credential."""
    for name, org, country, category in FEDERATION[1:]:
        tour.node(name).run(
            "init", "--org", org, "--jurisdiction", country, "--category", category,
            "--listen", f"127.0.0.1:{tour.port(name)}", "--no-passphrase",
        )  # fmt: skip
        _credential(tour, name, org, country, category)
    ids = {name: json.loads(tour.node(name).run("id", "--json").stdout)["node_id"] for name, *_ in FEDERATION}
    tour.ids.update(ids)
    for joiner, inviter in (("acma", "opta"), ("ftc", "acma")):
        token = tour.node(inviter).run("invite").stdout.strip()
        tour.node(joiner).run("join", token, "--name", inviter)
    # OPTA's national-law rules, read by its daemon at start (docs/policy.md).
    tour.write("opta/policy.toml", OPTA_POLICY)
    tour.node("opta").run("policy", "check")
    for name, *_ in FEDERATION:
        tour.start_daemon(name)


def step_gossip(tour: Tour) -> None:
    """A record published on OPTA while the daemons run travels to ACMA and on to FTC."""
    path = tour.write("alert.toml", ALERT_EXAMPLE)
    result = tour.node("opta").run("publish", "lead", "--from-file", path.name, "--tlp", "green")
    record = result.stdout.strip()
    for name in ("acma", "ftc"):
        _wait_for(tour.node(name), record)
    tour.node("ftc").run("show", record[:12])
    tour.node("acma").run("status")


def step_scope(tour: Tour) -> None:
    """The author's scope travels with the record: relay-hops 0 means direct delivery only."""
    path = tour.write("direct-only.toml", DIRECT_ONLY_EXAMPLE)
    result = tour.node("opta").run(
        "publish", "lead", "--from-file", path.name, "--tlp", "green", "--relay-hops", "0"
    )
    direct_only = result.stdout.strip()
    _wait_for(tour.node("acma"), direct_only)
    later = (
        tour.node("opta")
        .run("publish", "trend", "--from-file", "trend.toml", "--tlp", "clear")
        .stdout.strip()
    )
    _wait_for(tour.node("ftc"), later)
    held = {
        item["id"] for item in json.loads(tour.node("ftc").run("query", "--json", "--limit", "100").stdout)
    }
    if direct_only in held:
        raise DemoFailed("FTC received a record its author limited to direct delivery")
    print(
        f"\n# FTC holds the later trend but not {direct_only[:12]}: ACMA may not relay it (relay_hops = 0)."
    )


def step_local_rules(tour: Tour) -> None:
    """OPTA's policy.toml at work: a redacted delivery and a withheld one, each explained."""
    opta, acma = tour.node("opta"), tour.node("acma")
    path = tour.write("contact-personal.json", json.dumps(PERSONAL_CONTACT, indent=2) + "\n")
    flags = ("--from-file", path.name, "--tlp", "green", "--flag", "personal-data")
    opta.run("publish", "contact", *flags, "--dry-run")
    personal = opta.run("publish", "contact", *flags).stdout.strip()
    lead = tour.write("pricing.toml", COMMERCIAL_EXAMPLE)
    commercial = opta.run(
        "publish", "lead", "--from-file", lead.name, "--tlp", "green", "--flag", "commercially-sensitive"
    ).stdout.strip()
    marker = opta.run("publish", "trend", "--from-file", "trend.toml", "--tlp", "clear").stdout.strip()
    _wait_for(acma, marker)
    if commercial in acma.held_ids():
        raise DemoFailed("ACMA received a commercially sensitive record that names no member")
    print("\n# ACMA (AU has no EU adequacy decision) holds the contact without its personal fields;")
    print("# the copy still verifies against OPTA's signature, and has the same id:")
    acma.run("show", personal[:12])
    print(f"\n# ...and does not hold {commercial[:12]}. OPTA explains both decisions:")
    opta.run("policy", "explain", personal[:12], "--peer", tour.ids["acma"])
    opta.run("policy", "explain", commercial[:12], "--peer", tour.ids["acma"])


def _wait_for(node: Node, record: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if record in node.held_ids():
            print(f"\n# {node.name} now holds record {record[:12]}")
            return
        time.sleep(0.3)
    raise DemoFailed(f"record {record[:12]} did not reach {node.name} within {timeout:.0f} s")


ALERT_EXAMPLE: Final = """\
title = "Advance-fee email campaign impersonating a customs office"
summary = "Emails ask for a release fee for a seized parcel; replies go to a free-mail drop box."
status = "suspected"
violation_types = ["fraud", "unsolicited-email"]
subjects = [{ type = "email", value = "customs.release@mail.example" }]
requested_assistance = ["information"]
"""

DIRECT_ONLY_EXAMPLE: Final = """\
title = "Suspected bulletproof hosting provider"
summary = "Shared only with direct partners while we confirm the attribution."
status = "suspected"
subjects = [{ type = "asn", value = "AS64511" }]
"""


OPTA_POLICY: Final = """\
# OPTA's local rules: they can only withhold more than a record's author allows.
[[rule]]
name = "personal-data-outside-eea"
action = "redact"
fields = ["personal"]
note = "GDPR chapter V: personal data only to the EEA and countries with an adequacy decision"
record.flags = ["personal-data"]
recipient.not-jurisdiction = ["eea", "adequacy"]

[[rule]]
name = "commercial-to-named-only"
action = "allow-only"
record.flags = ["commercially-sensitive"]
record.author = ["self"]
recipient.named = true
"""

PERSONAL_CONTACT: Final = {
    "organisation": "OPTA",
    "unit": "Spam Enforcement Team",
    "person": "Marieke Jansen",
    "emails": ["m.jansen@opta.example"],
    "phones": ["+31 70 315 3501"],
    "notes": "Direct line for urgent referrals.",
}

COMMERCIAL_EXAMPLE: Final = """\
title = "Telecom operator's unreleased blocking figures"
summary = "Shared by an operator on condition that it goes no further than named partners."
status = "verified"
"""


REFERRAL_LEAD: Final = """\
title = "Robocalls selling fake debt relief to Dutch numbers from a US VoIP provider"
summary = \"\"\"
Recorded calls to NL numbers offer debt relief for an upfront fee; the caller ID is spoofed and the
calls come through one US VoIP provider.\"\"\"
status = "verified"
violation_types = ["telemarketing", "spoofing", "fraud"]
estimated_victims = 340
victim_locations = ["NL"]
subjects = [{ type = "domain", value = "debt-relief-now.example" }]
"""


def step_referral(tour: Tour) -> None:
    """OPTA refers a lead to the FTC, which it reaches only through ACMA; the FTC answers it."""
    opta, acma, ftc = tour.node("opta"), tour.node("acma"), tour.node("ftc")
    print("\n# The answers come back the other way: OPTA follows ACMA, and ACMA follows the FTC.")
    for follower, followed in (("opta", "acma"), ("acma", "ftc")):
        address = f"127.0.0.1:{tour.port(followed)}"
        tour.node(follower).run("peer", "add", tour.ids[followed], address, "--name", followed)
        tour.node(follower).run("subscribe", tour.ids[followed])
    path = tour.write("debt-relief.toml", REFERRAL_LEAD)
    referral = opta.run(
        "refer", "--from-file", path.name, "--to", tour.ids["ftc"], "--request", "enforcement",
        "--due", "30d", "--note", "The VoIP provider is in your jurisdiction; can you identify the caller?",
    ).stdout.strip()  # fmt: skip
    _wait_for_state(ftc, referral, "received")
    print("\n# ACMA carried the referral to the FTC, sealed: it holds only ciphertext.")
    acma.run("show", referral[:12])
    print("\n# The FTC's daemon answered `received` by itself. The FTC's inbox:")
    ftc.run("referrals", "--inbox")
    ftc.run("referral", "show", referral[:12])
    ftc.run("referral", "accept", referral[:12], "--note", "Assigned to the telemarketing unit.")
    ftc.run(
        "referral", "close", referral[:12], "--outcome", "Caller identified through the VoIP provider; "
        "civil penalty ordered.", "--action", "fine", "--amount", "40000", "--currency", "USD",
    )  # fmt: skip
    _wait_for_state(opta, referral, "closed")
    print("\n# The answers travelled back through ACMA. OPTA's outbox, and the referral's history:")
    opta.run("referrals", "--outbox")
    opta.run("referral", "show", referral[:12])


def _wait_for_state(node: Node, referral: str, state: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = node.run_quietly("referrals", "--json")
        rows = json.loads(output) if output.strip() else []
        if any(row["id"] == referral and row["state"] == state for row in rows):
            print(f"\n# {node.name} sees referral {referral[:12]} as {state}")
            return
        time.sleep(0.5)
    raise DemoFailed(
        f"referral {referral[:12]} did not reach state {state} at {node.name} in {timeout:.0f} s"
    )


STEPS: Final[list[tuple[str, Callable[[Tour], None]]]] = [
    ("Create a node for OPTA, the Dutch enforcement authority", step_init),
    ("Publish a point of contact", step_publish_contact),
    ("Publish a case lead", step_publish_lead),
    ("Publish a trend indicator", step_publish_trend),
    ("See what the node holds", step_query),
    ("Export the public records to a bundle file and verify it", step_bundle),
    ("The secretariat creates the network authority and admits OPTA with a credential", step_authority),
    ("ACMA (AU) and FTC (US) join with credentials and invites: OPTA -> ACMA -> FTC", step_federation),
    ("Publish on OPTA while the daemons run; watch it travel to FTC through ACMA", step_gossip),
    ("Scope is signed by the author and enforced at every hop", step_scope),
    ("National-law rules: a redacted delivery and a withheld one, explained", step_local_rules),
    ("A cross-border referral: OPTA asks the FTC for help through ACMA; the FTC answers", step_referral),
]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="lapnode-demo-") as tmp:
        # The CLI runs inside the temporary directory, so the echoed commands can name example files
        # relative to it, as an operator would.
        tour = Tour(Path(tmp))
        try:
            for number, (title, step) in enumerate(STEPS, start=1):
                print(f"\n=== Step {number}: {title} ===", flush=True)
                step(tour)
        except DemoFailed as exc:
            print(f"\ndemo failed: {exc}", file=sys.stderr)
            return 1
        finally:
            tour.stop_daemons()
    print(
        "\nDemo complete: three nodes, records relayed within their scope and OPTA's local rules, a referral"
    )
    print("answered across the federation; every daemon stopped and the temporary homes removed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
