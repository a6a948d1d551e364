"""Real federations for benchmarks: `lapnode serve` processes on 127.0.0.1, each with its own home.

A bench-side adaptation of tests/integration/federation.py (bench never imports tests/): homes are
initialised with the real CLI, daemons run as separate processes, and figures are read from the real
admin endpoint (/status, /metrics), /proc and the real SQLite files. Nothing of lapnode is mocked.

Rule 1: a `Federation` owns every process and directory it creates. Leaving its `with` block, normally,
by an exception, by Ctrl-C or by SIGTERM, stops every daemon (SIGTERM, then SIGKILL) and removes the
temporary directory.
Rule 2: failures raise `HarnessError` with the tail of the daemon's log, never a bare assert.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

from keys.keyfile import read_public_node_id

LAPNODE = Path(sys.executable).parent / "lapnode"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


class HarnessError(RuntimeError):
    """A daemon or a CLI command of the benchmark federation did not do what it should."""


def _port_pair_free(port: int) -> bool:
    for candidate in (port, port + 1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                return False
    return True


def free_port(taken: set[int] | None = None, *, pair: bool = False) -> int:
    """A free port on 127.0.0.1 (with `pair`, p + 1 is free too: the admin side), not in `taken`."""
    taken = taken if taken is not None else set()
    for _ in range(500):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        wanted = (port, port + 1) if pair else (port,)
        if port >= 65535 or any(p in taken for p in wanted):
            continue
        if pair and not _port_pair_free(port):
            continue
        taken.update(wanted)
        return port
    raise HarnessError("no free port on 127.0.0.1")


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAPNODE_")}
    return {**env, "COLUMNS": "200"}


def cli(*args: str, timeout: float = 120) -> str:
    """Run `lapnode ARGS...`; return its stdout, or raise HarnessError with its stderr."""
    result = subprocess.run(
        [str(LAPNODE), *args],
        env=_clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0 or "Traceback" in result.stderr:
        raise HarnessError(f"lapnode {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def wait_until(condition: Callable[[], object], *, timeout: float, what: str, interval: float = 0.1) -> float:
    """Poll `condition` every `interval` s until it is true; return the time.perf_counter() it was."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return time.perf_counter()
        if time.monotonic() >= deadline:
            raise HarnessError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text format, unlabelled samples only: {name: value}."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or "{" in line:
            continue
        name, _, value = line.partition(" ")
        try:
            values[name] = float(value)
        except ValueError:
            continue
    return values


@dataclass
class NodeProcess:
    name: str
    home: Path
    port: int
    network: str
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

    @property
    def database_path(self) -> Path:
        return self.home / "store.sqlite"

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.database_path}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise HarnessError(f"{self.name} is not running")
        return self.process.pid

    def init_args(self) -> list[str]:
        return [
            "init",
            "--home",
            str(self.home),
            "--org",
            f"Org {self.name}",
            "--jurisdiction",
            self.jurisdiction,
            "--category",
            self.category,
            "--listen",
            self.address,
            "--network",
            self.network,
            "--no-passphrase",
        ]

    def run(self, *args: str) -> str:
        return cli(*args, "--home", str(self.home))

    def launch(self) -> None:
        """Start `lapnode serve` without waiting for it to listen (see `wait_ready`)."""
        if self.process is not None:
            raise HarnessError(f"{self.name} is already running")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(LAPNODE), "serve", "--home", str(self.home)],
                env=_clean_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        def ready() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise HarnessError(f"{self.name} exited while starting:\n{self.log_tail()}")
            return self.status() is not None

        wait_until(ready, timeout=timeout, what=f"{self.name} to start", interval=0.05)

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send `sig` and wait; a daemon still running after `timeout` s is killed. Never raises."""
        process, self.process = self.process, None
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(sig)
            try:
                return process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
        return process.wait()

    def status(self) -> dict[str, object] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port + 1}/status", timeout=5) as answer:
                report: dict[str, object] = json.load(answer)
                return report
        except (OSError, ValueError, http.client.HTTPException):
            return None

    def head(self) -> int:
        report = self.status()
        return int(str(report["log_head"])) if report is not None else -1

    def peer_status(self, node_id: str) -> dict[str, object] | None:
        report = self.status()
        peers = report.get("peers", []) if report is not None else []
        for peer in peers if isinstance(peers, list) else []:
            if isinstance(peer, dict) and peer.get("node_id") == node_id:
                return peer
        return None

    def metrics(self) -> dict[str, float]:
        url = f"http://127.0.0.1:{self.port + 1}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return parse_metrics(answer.read().decode())

    def peak_rss_mb(self) -> float:
        """The daemon's peak resident set so far (VmHWM), in MiB."""
        return _vm_hwm_kib(self.pid) / 1024

    def tree_peak_rss_mb(self) -> float:
        """The sum of the peak resident sets of the daemon and every process it started (its verify
        workers), in MiB: an upper bound on what the daemon held at any one time."""
        return sum(_vm_hwm_kib(pid) for pid in [self.pid, *_descendants(self.pid)]) / 1024

    def add_peer(self, other: NodeProcess, *, address: str | None = None) -> None:
        """`lapnode peer add` on this node for `other` (at `address`, by default its own)."""
        self.run(
            "peer",
            "add",
            other.node_id,
            address or other.address,
            "--name",
            other.name,
            "--category",
            other.category,
            "--jurisdiction",
            other.jurisdiction,
        )

    def cpu_seconds(self) -> float:
        """User + system CPU time of the daemon and every process it started, so far."""
        return sum(_cpu_seconds(pid) for pid in [self.pid, *_descendants(self.pid)])

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Federation:
    """Nodes under one temporary directory; closing it stops every daemon and removes the directory."""

    def __init__(self, network: str) -> None:
        self.network = network
        self._tmp = tempfile.TemporaryDirectory(prefix="lapnode-bench-")
        self.root = Path(self._tmp.name)
        self.nodes: list[NodeProcess] = []
        self.ports: set[int] = set()
        self._previous_sigterm: object = None

    def add(self, name: str) -> NodeProcess:
        node = NodeProcess(name, self.root / name, free_port(self.ports, pair=True), self.network)
        self.nodes.append(node)
        return node

    def init(self, nodes: Iterable[NodeProcess], parallel: int = 8) -> None:
        """`lapnode init` for each node, `parallel` at a time; then read each node id from its key file."""
        pending = list(nodes)
        running: list[tuple[NodeProcess, subprocess.Popen[bytes]]] = []
        while pending or running:
            while pending and len(running) < parallel:
                node = pending.pop(0)
                process = subprocess.Popen(
                    [str(LAPNODE), *node.init_args()],
                    env=_clean_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                running.append((node, process))
            node, process = running.pop(0)
            _, stderr = process.communicate(timeout=120)
            if process.returncode != 0:
                raise HarnessError(f"lapnode init for {node.name} failed: {stderr.decode(errors='replace')}")
            node.node_id = str(read_public_node_id(node.home / "identity.key"))

    def start(self, nodes: Iterable[NodeProcess]) -> None:
        """Launch every daemon at once, then wait until each one answers on its admin port."""
        started = list(nodes)
        for node in started:
            node.launch()
        for node in started:
            node.wait_ready()

    def close(self) -> None:
        for node in self.nodes:
            if node.process is not None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop(timeout=STOP_TIMEOUT)
        self._tmp.cleanup()

    def __enter__(self) -> Federation:
        # SIGTERM to the bench unwinds like Ctrl-C, so `__exit__` stops the daemons.
        self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_exit)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc is not None:
                for node in self.nodes:
                    print(f"--- {node.name} log (last lines) ---\n{node.log_tail()}", file=sys.stderr)
            self.close()
        finally:
            signal.signal(signal.SIGTERM, self._previous_sigterm)  # type: ignore[arg-type]


def _vm_hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return 0  # the process ended meanwhile
    return 0


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name, in parentheses, may hold spaces: the fields after it are fixed.
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _raise_exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
