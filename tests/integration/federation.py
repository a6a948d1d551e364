"""A harness for real federations: `lapnode serve` processes on 127.0.0.1 with their own homes.

Each node is initialised and wired through the real CLI; daemons run as separate processes; checks go
through the real admin endpoint and real SQLite files. Nothing of lapnode is mocked.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

LAPNODE = Path(sys.executable).parent / "lapnode"
NETWORK = "it-net"


def free_port_pair() -> int:
    """A port p such that p and p + 1 (the admin side) are both free on 127.0.0.1."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65535:
            continue
        with socket.socket() as second:
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return int(port)
    raise RuntimeError("no free port pair")


def cli(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAPNODE_")}
    result = subprocess.run(
        [str(LAPNODE), *args],
        env={**env, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    if check:
        assert result.returncode == 0, f"lapnode {' '.join(args)}: {result.stderr}"
    return result


@dataclass
class NodeProcess:
    name: str
    home: Path
    port: int
    jurisdiction: str = "NL"
    category: str = "enforcement"
    node_id: str = ""
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.home.parent / f"{self.name}.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def init(self, database: str | None = None) -> None:
        args = [
            "init",
            "--home",
            str(self.home),
            "--org",
            f"Org {self.name}",
            "--jurisdiction",
            self.jurisdiction,
        ]
        args += [
            "--category",
            self.category,
            "--listen",
            self.address,
            "--network",
            NETWORK,
            "--no-passphrase",
        ]
        if database:
            args += ["--database", database]
        cli(*args)
        self.node_id = json.loads(cli("id", "--home", str(self.home), "--json").stdout)["node_id"]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return cli(*args, "--home", str(self.home), check=check)

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(LAPNODE), "serve", "--home", str(self.home)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        wait_until(lambda: self.status() is not None, timeout=30, what=f"{self.name} to start")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self.process = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def status(self) -> dict[str, object] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port + 1}/status", timeout=2) as answer:
                report: dict[str, object] = json.load(answer)
                return report
        except OSError:
            return None

    def head(self) -> int:
        report = self.status()
        assert report is not None
        return int(report["log_head"])  # type: ignore[call-overload]

    def peer_with(self, other: NodeProcess, *, subscribe: bool = True) -> None:
        """Both sides add each other (a responder accepts only peers it added); self subscribes."""
        self.run(
            "peer",
            "add",
            other.node_id,
            other.address,
            "--name",
            other.name,
            "--category",
            other.category,
            "--jurisdiction",
            other.jurisdiction,
        )
        other.run(
            "peer",
            "add",
            self.node_id,
            self.address,
            "--name",
            self.name,
            "--category",
            self.category,
            "--jurisdiction",
            self.jurisdiction,
        )
        if subscribe:
            self.run("subscribe", other.node_id)

    def query_ids(self, *filters: str) -> set[str]:
        out = self.run("query", "--json", "--limit", "10000", *filters).stdout
        return {item["id"] for item in json.loads(out)}

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_until(condition: Callable[[], object], *, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
