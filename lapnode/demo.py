"""`make demo`: a guided tour of one lapnode node, driving the real CLI in a throw-away home.

Run with `python -m lapnode.demo`. Every command is shown as an operator would type it, then run as a
subprocess (`python -m lapnode.cli.main`), so the demo exercises exactly what operators use.

Rule 1: the demo touches nothing outside its temporary directory and removes it at the end, even when a
step fails; it exits 0 only if every step succeeded.
Rule 2: the tour is a list of steps over `Node` objects (one home each), so later issues can add nodes
and steps (peering, gossip, scope enforcement) without restructuring it.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
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


class DemoFailed(Exception):
    """A demo step failed; the message says which command."""


@dataclass
class Tour:
    workdir: Path
    nodes: dict[str, Node] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)

    def node(self, name: str) -> Node:
        if name not in self.nodes:
            self.nodes[name] = Node(name, self.workdir / name, cwd=self.workdir)
        return self.nodes[name]

    def write(self, name: str, text: str) -> Path:
        path = self.workdir / name
        path.write_text(text, encoding="utf-8")
        print(f"\n# wrote example file {name}:")
        print("\n".join("    " + line for line in text.rstrip().splitlines()))
        return path


def step_init(tour: Tour) -> None:
    opta = tour.node("opta")
    opta.run("init", "--org", "OPTA", "--jurisdiction", "NL", "--category", "enforcement", "--no-passphrase")
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
    opta.run("bundle", "export", "opta-records.bundle")
    opta.run("verify", "opta-records.bundle")


STEPS: Final[list[tuple[str, Callable[[Tour], None]]]] = [
    ("Create a node for OPTA, the Dutch enforcement authority", step_init),
    ("Publish a point of contact", step_publish_contact),
    ("Publish a case lead", step_publish_lead),
    ("Publish a trend indicator", step_publish_trend),
    ("See what the node holds", step_query),
    ("Export the records to a bundle file (for air-gapped transfer) and verify it", step_bundle),
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
    print("\nDemo complete: one node, three signed records. The temporary home has been removed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
