"""A harness for real federations: `lapnode serve` processes on 127.0.0.1 with their own homes.

Each node is initialised and wired through the real CLI; daemons run as separate processes; checks go
through the real admin endpoint and real SQLite files. Nothing of lapnode is mocked.

Reading a node's SQLite file directly (`NodeProcess.record_ids`, `holds`) is read-only and only checks
what the daemon committed; the store opens in WAL mode, so readers never block the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from keys.identity import Identity, public_key_from_node_id
from keys.keyfile import read_public_node_id
from lapnode.store import Store
from protocol.envelope import RecordId, build_record
from protocol.scope import Scope

LAPNODE = Path(sys.executable).parent / "lapnode"
NETWORK = "it-net"
# Waits for a daemon to see something (a record, a connection) are bounded by this many seconds.
WAIT_S = 30.0
# Starting a daemon imports everything and migrates its store: on a loaded 2-core machine (other suites
# running) that alone has taken over 30 s. Waiting longer costs nothing when it starts sooner (we poll).
START_WAIT_S = 90.0

T = TypeVar("T")


# Ports are drawn below the kernel's ephemeral range (Linux default 32768-60999): a port taken by binding
# port 0 is an ephemeral one, which any outgoing connection may grab while its daemon is stopped for a
# restart ("address already in use"). Ports handed out once are never handed out again in this run.
_PORT_RANGE = (20_000, 32_000)
_handed_out: set[int] = set()


def _worker_range() -> tuple[int, int]:
    """This test process's share of _PORT_RANGE. Under pytest-xdist each worker draws from its own
    slice: `_handed_out` is per process, and two workers once drew adjacent pairs, so a daemon found its
    admin port taken ("address already in use")."""
    low, high = _PORT_RANGE
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or "1")
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0
    span = (high - low) // max(workers, 1)
    return low + (index % max(workers, 1)) * span, low + (index % max(workers, 1) + 1) * span - 1


def free_port_pair() -> int:
    """A port p such that p and p + 1 (the admin side) are both free on 127.0.0.1."""
    low, high = _worker_range()
    for _ in range(500):
        port = random.randrange(low, high)
        if port in _handed_out or port + 1 in _handed_out or not all(_free(p) for p in (port, port + 1)):
            continue
        _handed_out.update((port, port + 1))
        return port
    raise RuntimeError("no free port pair")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LAPNODE_")}


def cli(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = _clean_env()
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
        # The public id is in the key file in clear; reading it saves a CLI process per node.
        self.node_id = read_public_node_id(self.home / "identity.key")

    @property
    def key(self) -> bytes:
        return public_key_from_node_id(self.node_id)

    @property
    def database_path(self) -> Path:
        return (self.home / "store.sqlite").resolve()

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.database_path}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return cli(*args, "--home", str(self.home), check=check)

    def start(self, env: Mapping[str, str] | None = None) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(LAPNODE), "serve", "--home", str(self.home)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env={**_clean_env(), **(env or {})},
            )
        wait_until(self._started, timeout=START_WAIT_S, what=f"{self.name} to start")

    def _started(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.logs()[-3000:]}")
        return self.status() is not None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)
            raise
        finally:
            self.process = None
        return code

    def kill(self) -> list[int]:
        """SIGKILL the daemon; return the ids of the processes it had started (its verifier workers)."""
        assert self.process is not None
        children = child_pids(self.process.pid)
        self.stop(signal.SIGKILL)
        return children

    def status(self) -> dict[str, object] | None:
        """The daemon's /status report, or None if it does not answer (not running, or too busy)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port + 1}/status", timeout=5) as answer:
                report: dict[str, object] = json.load(answer)
                return report
        except (OSError, ValueError, http.client.HTTPException):
            return None

    def counter(self, name: str) -> float:
        """An unlabelled sample of the daemon's /metrics (0 when absent)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port + 1}/metrics", timeout=5) as answer:
            for line in answer.read().decode().splitlines():
                sample, _, value = line.partition(" ")
                if sample == name:
                    return float(value)
        return 0.0

    def _report(self) -> dict[str, object]:
        report = self.status()
        if report is None:
            raise NotAnswering(f"{self.name} is not answering /status")
        return report

    def head(self) -> int:
        head: int = self._report()["log_head"]  # type: ignore[assignment]
        return head

    def peer_status(self, other: NodeProcess | str) -> dict[str, object]:
        """This daemon's /status entry for a peer (a node, or a node id)."""
        node_id = other if isinstance(other, str) else other.node_id
        peers: list[dict[str, object]] = self._report()["peers"]  # type: ignore[assignment]
        for entry in peers:
            if entry["node_id"] == node_id:
                return entry
        raise AssertionError(f"{self.name} has no peer {node_id}")

    def publish(self, *scope: str, title: str = "Gossip test lead") -> str:
        """Publish a lead through the CLI (while the daemon runs or not); return its id in hex."""
        out = self.run(
            "publish",
            "lead",
            "--title",
            title,
            "--summary",
            "Unsolicited email advertising unlicensed medicines.",
            "--status",
            "suspected",
            "--json",
            *scope,
        ).stdout
        record_id: str = json.loads(out)["id"]
        return record_id

    def _sql(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        if not self.database_path.exists():
            return []
        uri = f"file:{self.database_path}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as conn:
            return conn.execute(query, params).fetchall()

    def record_ids(self) -> set[str]:
        """Every record id in this node's SQLite file, in hex (read-only, straight from the file)."""
        return {bytes(row[0]).hex() for row in self._sql("SELECT rid FROM records")}

    def record_count(self) -> tuple[int, int]:
        """(rows, distinct record ids) in this node's records table."""
        rows = self._sql("SELECT COUNT(*), COUNT(DISTINCT rid) FROM records")
        return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)

    def holds(self, record_id: str) -> bool:
        return bool(self._sql("SELECT 1 FROM records WHERE rid = ?", bytes.fromhex(record_id)))

    def stored_hops(self, record_id: str) -> int:
        rows = self._sql("SELECT hops FROM records WHERE rid = ?", bytes.fromhex(record_id))
        assert rows, f"{self.name} does not hold {record_id}"
        return int(rows[0][0])

    def wait_for(self, record_id: str, *, timeout: float = WAIT_S) -> None:
        wait_until(lambda: self.holds(record_id), timeout=timeout, what=f"{self.name} to hold {record_id}")

    def seed(self, wires: Sequence[bytes], *, chunk: int = 5000) -> None:
        """Ingest records into this node's store in-process (the real Store), before the daemon starts."""
        assert not self.running, "seed the store before starting the daemon"

        async def ingest() -> None:
            store = await Store.open(self.database_url, network=NETWORK)
            try:
                for start in range(0, len(wires), chunk):
                    report = await store.ingest(wires[start : start + chunk])
                    assert not report.rejected, report.rejected[:3]
            finally:
                await store.close()

        asyncio.run(ingest())

    def peer_with(self, other: NodeProcess, *, subscribe: bool = True) -> None:
        """Both sides add each other (a responder accepts only peers it added); self subscribes."""

        def ours() -> None:
            self.add_peer(other)
            if subscribe:
                self.run("subscribe", other.node_id)

        in_parallel(ours, lambda: other.add_peer(self))

    def add_peer(self, other: NodeProcess) -> None:
        """`lapnode peer add`, pinning the other node's category and jurisdiction."""
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

    def query_ids(self, *filters: str) -> set[str]:
        out = self.run("query", "--json", "--limit", "10000", *filters).stdout
        return {item["id"] for item in json.loads(out)}

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self, name: str | None = None) -> list[dict[str, object]]:
        """The daemon's structured log events (one JSON object a line), optionally only one kind."""
        found = []
        for line in self.logs().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            event = entry.get("log") if isinstance(entry, dict) else None
            if isinstance(event, dict) and (name is None or event.get("event") == name):
                found.append(event)
        return found

    def wait_for_event(
        self, name: str, *, after: int, timeout: float = WAIT_S, **fields: object
    ) -> dict[str, object]:
        """The first `name` event past the first `after` ones whose fields match; wait for it (bounded)."""
        found: list[dict[str, object]] = []

        def seen() -> bool:
            found[:] = [e for e in self.events(name)[after:] if all(e.get(k) == v for k, v in fields.items())]
            return bool(found)

        wait_until(seen, timeout=timeout, what=f"{self.name} to log {name} {fields}")
        return found[0]


def in_parallel(*steps: Callable[[], T]) -> list[T]:
    """Run independent steps (each mostly waiting on a CLI or daemon process) at once; re-raise failures."""
    with ThreadPoolExecutor(max_workers=len(steps)) as pool:
        futures = [pool.submit(step) for step in steps]
        return [future.result() for future in futures]


def child_pids(pid: int) -> list[int]:
    """The live processes whose parent is `pid` (Linux /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
            if int(ppid) == pid and state != "Z":
                children.append(int(stat.parent.name))
    return children


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_for_exit(pids: Sequence[int], *, what: str, timeout: float = WAIT_S) -> None:
    """Wait until every process in `pids` has exited; if some never do, kill them (they are ours) and fail."""
    try:
        wait_until(lambda: not any(alive(pid) for pid in pids), timeout=timeout, what=what)
    except AssertionError:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        raise


def init_nodes(*nodes: NodeProcess) -> None:
    """`lapnode init` several homes at once (separate processes, so they use both cores)."""
    in_parallel(*(node.init for node in nodes))


def stop_all(nodes: Iterable[NodeProcess]) -> None:
    """Teardown: SIGTERM every daemon still running (SIGKILL if it does not stop)."""
    for node in nodes:
        if node.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                node.stop(timeout=20)


def _salt(label: str) -> bytes:
    return hashlib.blake2b(label.encode(), digest_size=16).digest()


def corpus(count: int, authors: int, *, network: str = NETWORK, seed: str = "corpus") -> Iterator[bytes]:
    """`count` real signed records from `authors` authors, interleaved, each author's chain in order.

    The kind is one this node does not know (an opaque body): a node must store and relay what it cannot
    read (protocol/kinds/opaque.py), and such records sign and verify about three times faster than a
    lead, which keeps a 20,000-record test quick.
    """
    identities = [Identity.from_seed(hashlib.sha256(f"{seed}/{i}".encode()).digest()) for i in range(authors)]
    heads: list[tuple[int, RecordId | None]] = [(0, None)] * authors
    scope = Scope.create("green")
    for n in range(count):
        index = n % authors
        seq, prev = heads[index]
        fields = {"note": f"record {n} of a test corpus", "n": n}
        salts = {
            name: hashlib.blake2b(f"{seed}/{n}/{name}".encode(), digest_size=16).digest() for name in fields
        }
        record = build_record(
            identities[index],
            network=network,
            kind="x-test-note",
            schema=1,
            seq=seq + 1,
            prev=prev,
            created=1_780_000_000_000 + n,
            scope=scope,
            fields=fields,
            salts=salts,
        )
        heads[index] = (seq + 1, record.id)
        yield record.wire


class NotAnswering(AssertionError):
    """A daemon did not answer /status in time; `wait_until` treats that as "not yet"."""


def wait_until(condition: Callable[[], object], *, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except NotAnswering:
            pass  # a daemon busy on a loaded machine answers on a later round
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
