"""`python -m bench sync`: two real daemons; B, empty, subscribes to A, which holds N records.

What is measured, and how:
- `records_per_s`: records ÷ seconds from the moment `lapnode subscribe` is run on B until B's /status
  `log_head` reaches N (polled every 0.2 s). It includes the CLI run (the CLI then tells the running
  daemon, which connects at once); `stream_records_per_s` counts from the TCP connect instead.
- `wire_bytes_per_record`: TCP payload bytes both ways on B's connection to A during the sync, ÷ N.
  B dials A through a byte-counting TCP relay in this process, so the count is what crosses the wire:
  HTTP upgrade, WebSocket framing, Noise handshake, AEAD tags, gossip messages and acks.
- `record_bytes_per_record`: the mean length of the records' canonical wire bytes.
- `idle_resync_bytes`: B is stopped (SIGTERM) and started again with nothing new; the bytes both ways of
  its new connection, from the TCP connect until B's /status says the peer is caught up.
- `peak_rss_mb`: the larger of the two daemons' peak RSS, read just before each stop: VmHWM
  (/proc/PID/status) of the daemon plus that of every process it started (its verify workers), since
  they are memory the daemon costs. `peak_rss_main_mb` is the daemon process alone.

A's store is filled before A starts, in this process, through `Store.ingest` (not timed).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from dataclasses import dataclass
from types import TracebackType

from bench.corpus import NETWORK, signed_records
from bench.federation import Federation, HarnessError, NodeProcess, free_port, wait_until
from bench.report import emit
from lapnode.store import Store

BENCH = "sync"
POLL_S = 0.2
LOAD_BATCH = 1000


@dataclass
class Connection:
    """Byte counts of one relayed TCP connection: `up` from the dialler, `down` to it."""

    opened: float
    up: int = 0
    down: int = 0
    closed: bool = False

    @property
    def total(self) -> int:
        return self.up + self.down


class CountingRelay:
    """A TCP relay on 127.0.0.1 that forwards to `target` and counts the payload bytes both ways.

    It runs its own event loop in a thread, so the benchmark's blocking polls do not delay it.
    """

    def __init__(self, target_port: int, taken: set[int]) -> None:
        self.port = free_port(taken)
        self._target_port = target_port
        self.connections: list[Connection] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="counting-relay", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> CountingRelay:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None or not self._ready.is_set():
            raise HarnessError(f"the counting relay did not start: {self._error}")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()

        def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.create_task(self._relay(reader, writer))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        server = await asyncio.start_server(accept, "127.0.0.1", self.port)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        connection = Connection(opened=time.perf_counter())
        self.connections.append(connection)
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(
                self._pump(client_reader, server_writer, connection, upstream=True),
                self._pump(server_reader, client_writer, connection, upstream=False),
            )
        finally:
            connection.closed = True
            for writer in (client_writer, server_writer):
                writer.close()

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: Connection, *, upstream: bool
    ) -> None:
        try:
            while data := await reader.read(1 << 16):
                if upstream:
                    connection.up += len(data)
                else:
                    connection.down += len(data)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            writer.close()


async def load(url: str, raws: list[bytes]) -> None:
    """Fill a store through the real ingest path (verify, write), before its daemon starts."""
    store = await Store.open(url, network=NETWORK)
    try:
        for start in range(0, len(raws), LOAD_BATCH):
            report = await store.ingest(raws[start : start + LOAD_BATCH])
            if report.rejected:
                raise HarnessError(f"bench corpus rejected: {report.rejected[0].reason}")
        held = await store.count()
    finally:
        await store.close()
    if held != len(raws):
        raise HarnessError(f"the source store holds {held} records, expected {len(raws)}")


def _caught_up(node: NodeProcess, source: NodeProcess) -> bool:
    peer = node.peer_status(source.node_id)
    return bool(peer and peer.get("caught_up"))


def _note_channel_bytes(node: NodeProcess, source: NodeProcess, what: str, tcp: Connection) -> None:
    """Log, beside the TCP count, the session's channel bytes where /status reports them."""
    peer = node.peer_status(source.node_id) or {}
    channel_in, channel_out = peer.get("session_bytes_in"), peer.get("session_bytes_out")
    if isinstance(channel_in, int) and isinstance(channel_out, int):
        print(
            f"# {what}: TCP {tcp.up} B up, {tcp.down} B down; the channel counted {channel_out} B out, "
            f"{channel_in} B in",
            file=sys.stderr,
        )


def _note_cpu(records: int, before: tuple[float, float], after: tuple[float, float]) -> None:
    """Log the CPU each side spent per record during the sync (daemon and its workers): with two
    cores, their sum bounds the rate whatever the scheduling."""
    a_us, b_us = ((late - early) / records * 1e6 for early, late in zip(before, after, strict=True))
    print(f"# sync CPU: A {a_us:.0f} us/record, B {b_us:.0f} us/record (daemon and workers)", file=sys.stderr)


def _peaks(node: NodeProcess) -> tuple[float, float]:
    """(daemon and its worker processes, daemon process alone) peak RSS in MiB, logged to stderr."""
    tree, main = node.tree_peak_rss_mb(), node.peak_rss_mb()
    print(f"# {node.name} peak RSS: {main:.1f} MiB, {tree:.1f} MiB with its workers", file=sys.stderr)
    return tree, main


def run(*, records: int, authors: int) -> None:
    started = time.perf_counter()
    raws = list(signed_records(records, authors))
    record_bytes = sum(len(raw) for raw in raws) / records
    print(f"# built {records} records in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    with Federation(NETWORK) as federation:
        a, b = federation.add("a"), federation.add("b")
        federation.init([a, b])
        started = time.perf_counter()
        asyncio.run(load(a.database_url, raws))
        print(f"# loaded A in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        del raws
        with CountingRelay(a.port, federation.ports) as relay:
            a.add_peer(b)
            b.add_peer(a, address=relay.address)  # B dials A through the counting relay
            federation.start([a, b])
            timeout = 120 + records / 500
            cpu_before = a.cpu_seconds(), b.cpu_seconds()
            start = time.perf_counter()
            b.run("subscribe", a.node_id)
            done = wait_until(
                lambda: b.head() >= records, timeout=timeout, what="B to hold every record", interval=POLL_S
            )
            if b.head() != records:
                raise HarnessError(f"B holds {b.head()} records, expected {records}")
            _note_cpu(records, cpu_before, (a.cpu_seconds(), b.cpu_seconds()))
            wait_until(lambda: _caught_up(b, a), timeout=30, what="B to report caught up", interval=0.05)
            if len(relay.connections) != 1:
                raise HarnessError(f"the sync took {len(relay.connections)} connections, expected 1")
            sync = relay.connections[0]
            sync_bytes = sync.total
            _note_channel_bytes(b, a, "sync", sync)
            peaks = [_peaks(a), _peaks(b)]

            b.stop()
            b.start()
            wait_until(lambda: _caught_up(b, a), timeout=60, what="B to catch up again", interval=0.02)
            if len(relay.connections) != 2:
                raise HarnessError(f"the resync took {len(relay.connections) - 1} connections, expected 1")
            idle_bytes = relay.connections[1].total
            _note_channel_bytes(b, a, "idle resync", relay.connections[1])
            received = b.metrics()
            resent = received.get("lapnode_records_received_total", 0.0) + received.get(
                "lapnode_duplicates_received_total", 0.0
            )
            if resent:
                print(f"# warning: the idle resync re-sent {resent:.0f} records", file=sys.stderr)
            peaks += [_peaks(a), _peaks(b)]

    elapsed = done - start
    emit(BENCH, "records_per_s", records / elapsed)
    emit(BENCH, "stream_records_per_s", records / (done - sync.opened))
    emit(BENCH, "wire_bytes_per_record", sync_bytes / records)
    emit(BENCH, "record_bytes_per_record", record_bytes)
    emit(BENCH, "idle_resync_bytes", idle_bytes)
    emit(BENCH, "peak_rss_mb", max(tree for tree, _ in peaks))
    emit(BENCH, "peak_rss_main_mb", max(main for _, main in peaks))
    ratio = sync_bytes / records / record_bytes
    print(f"# sync {elapsed:.2f} s; wire/record ratio {ratio:.3f}", file=sys.stderr)
