"""`python -m bench query`: indicator lookups, text searches and contacts queries over a large store.

The store is filled through the real ingest path (`Store.ingest`, verification included) with mixed
records by many authors: 60% leads naming 1-4 typed subjects (domains, IPs, mailboxes, phone numbers)
drawn from pools with a Zipf-like skew, so a few indicators are named by thousands of records and most
by a handful; 10% contacts; 30% trends. Titles, summaries, notes and commentary are drawn from a
vocabulary with the same skew. Signing runs in a process pool. `--store PATH` keeps a filled store for
later runs (fill once, measure many); the search index is brought up to date before measuring.

Every lookup then runs `Store.query` in this process, warm, as `lapnode query` runs it.
"""

from __future__ import annotations

import bisect
import itertools
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from bench.corpus import trend_document
from bench.report import emit
from keys.identity import Identity
from lapnode.store import QueryFilters, Store
from lapnode.store.queries import contacts_query
from protocol.envelope import RecordId, build_record, peek_record_id
from protocol.kinds import SCHEMA_VERSIONS, body_from_document
from protocol.kinds.contact import TOPICS
from protocol.scope import Scope

NETWORK = "bench"
AUTHORS = 200
ROUND = 20_000  # records signed per round (the pool signs the next round while this one is stored)
BATCH = 10_000  # records per Store.ingest call, as a bundle import stores them
_BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
_COUNTRIES = ["NL", "GB", "US", "AU", "CA", "FR", "DE", "BE", "JP", "KR", "NZ", "BR", "ES", "IT", "IE"]
_TOPICS = sorted(TOPICS)
_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "pra",
    "sto",
    "vi",
    "zu",
    "tor",
    "mex",
    "fin",
    "gal",
    "ro",
    "sen",
    "qua",
]
_WORDS = [
    "pharmacy",
    "spam",
    "campaign",
    "unsolicited",
    "email",
    "advertising",
    "unlicensed",
    "medicines",
    "compromised",
    "hosts",
    "botnet",
    "phishing",
    "bank",
    "credentials",
    "lottery",
    "advance",
    "fee",
    "fraud",
    "investment",
    "scheme",
    "crypto",
    "wallet",
    "parcel",
    "delivery",
    "text",
    "messages",
    "premium",
    "numbers",
    "robocalls",
    "telemarketing",
    "consent",
    "complaint",
    "evidence",
    "headers",
    "relays",
    "mailbox",
    "takeover",
    "invoice",
    "impersonation",
    "refund",
    "tax",
    "authority",
    "romance",
    "recovery",
    "loan",
    "debt",
    "energy",
    "subscription",
    "trap",
    "malware",
    "attachment",
    "ransomware",
    "link",
    "shortener",
    "landing",
    "page",
    "registrar",
    "hosting",
    "provider",
    "abuse",
    "report",
    "victims",
    "elderly",
    "consumers",
    "small",
    "businesses",
    "cross",
    "border",
    "cooperation",
    "request",
]


def _zipf_cumulative(size: int, s: float = 1.0) -> list[float]:
    total = 0.0
    cumulative = []
    for rank in range(1, size + 1):
        total += 1.0 / rank**s
        cumulative.append(total)
    return cumulative


class Pools:
    """The indicator and word pools, each drawn with a Zipf-like skew (rank r with weight 1/r)."""

    def __init__(self, records: int) -> None:
        size = max(records // 10, 100)
        self.domains = [f"{self._name(i)}-{i}.example" for i in range(size)]
        self.ips = [f"198.{18 + i // 65536 % 2}.{i // 256 % 256}.{i % 256}" for i in range(size)]
        self.phones = [f"+3120{i:07d}" for i in range(size)]
        self.words = _WORDS + [self._name(i) for i in range(2000)]
        self._indicators = _zipf_cumulative(size)
        self._words = _zipf_cumulative(len(self.words))

    @staticmethod
    def _name(i: int) -> str:
        parts = []
        for _ in range(3):
            i, digit = divmod(i, len(_SYLLABLES))
            parts.append(_SYLLABLES[digit])
        return "".join(parts) + ("" if i == 0 else str(i))

    def pick(self, rng: random.Random, values: Sequence[str]) -> str:
        return values[bisect.bisect(self._indicators, rng.random() * self._indicators[-1])]

    def text(self, rng: random.Random, count: int) -> str:
        picked = rng.choices(self.words, cum_weights=self._words, k=count)
        return " ".join(picked).capitalize()


def _lead(rng: random.Random, pools: Pools) -> dict[str, object]:
    subjects: list[dict[str, str]] = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["domain", "ip", "email", "phone"])
        if kind == "domain":
            value = pools.pick(rng, pools.domains)
        elif kind == "ip":
            value = pools.pick(rng, pools.ips)
        elif kind == "email":
            value = f"sales{rng.randrange(5)}@{pools.pick(rng, pools.domains)}"
        else:
            value = pools.pick(rng, pools.phones)
        subjects.append({"type": kind, "value": value})
    unique = list({(s["type"], s["value"]): s for s in subjects}.values())
    return {
        "title": pools.text(rng, 6),
        "summary": pools.text(rng, 30) + ".",
        "violation_types": ["unsolicited-email", "fraud"],
        "status": rng.choice(["verified", "suspected"]),
        "subjects": unique,
        "victim_locations": rng.sample(_COUNTRIES, 2),
        "requested_assistance": ["information"],
    }


def _contact(rng: random.Random, pools: Pools, n: int) -> dict[str, object]:
    country = rng.choice(_COUNTRIES)
    return {
        "organisation": f"{pools.text(rng, 2)} authority of {country}",
        "unit": "Spam enforcement",
        "role": "international liaison",
        "emails": [f"liaison{n}@authority{n % 997}.example"],
        "phones": [pools.pick(rng, pools.phones)],
        "languages": ["en"],
        "jurisdiction": country,
        "category": "enforcement",
        "topics": rng.sample(_TOPICS, rng.randint(1, 3)),
        "notes": pools.text(rng, 12),
    }


def _trend(rng: random.Random, pools: Pools, n: int) -> dict[str, object]:
    return {**trend_document(rng, n), "commentary": pools.text(rng, 10)}


def _document(n: int, pools: Pools) -> tuple[str, dict[str, object]]:
    rng = random.Random(n)
    slot = n % 10
    if slot == 0:
        return "contact", _contact(rng, pools, n)
    if slot < 7:
        return "lead", _lead(rng, pools)
    return "trend", _trend(rng, pools, n)


def _identity(author: int) -> Identity:
    return Identity.from_seed(random.Random(f"author-{author}").randbytes(32))


_POOLS: Pools | None = None


def _sign(task: tuple[int, list[tuple[int, int, bytes | None]], int, int]) -> list[tuple[int, bytes]]:
    """In a worker: the records of these authors for n in [start, stop); each author's (author, seq,
    prev) head comes in, so chains continue across rounds."""
    total, heads, start, stop = task
    global _POOLS
    if _POOLS is None:
        _POOLS = Pools(total)
    signed: list[tuple[int, bytes]] = []
    for author, seq, prev in heads:
        identity = _identity(author)
        first = start + (author - start) % AUTHORS
        for n in range(first, stop, AUTHORS):
            kind, document = _document(n, _POOLS)
            fields = body_from_document(kind, document)
            salts = random.Random(-n - 1)
            seq += 1
            record = build_record(
                identity,
                network=NETWORK,
                kind=kind,
                schema=SCHEMA_VERSIONS[kind],
                seq=seq,
                prev=RecordId(prev) if prev is not None else None,
                created=_BASE_MS + n * 500,
                scope=Scope.create("green", relay_hops=3),
                fields=fields,
                salts={name: salts.randbytes(16) for name in fields},
            )
            prev = record.id
            signed.append((n, record.wire))
    return signed


def _rounds(total: int, pool: ProcessPoolExecutor) -> Iterator[list[bytes]]:
    """The records in `n` order, a round at a time; the next round signs while the caller stores one."""
    heads: dict[int, tuple[int, bytes | None]] = dict.fromkeys(range(AUTHORS), (0, None))
    groups = [list(range(g, AUTHORS, 8)) for g in range(8)]

    def submit(start: int) -> list[Future[list[tuple[int, bytes]]]]:
        if start >= total:
            return []
        stop = min(start + ROUND, total)
        return [pool.submit(_sign, (total, [(a, *heads[a]) for a in group], start, stop)) for group in groups]

    futures = submit(0)
    for start in range(0, total, ROUND):
        signed = sorted(itertools.chain.from_iterable(f.result() for f in futures))
        for n, wire in signed:
            rid = peek_record_id(wire)
            assert rid is not None
            heads[n % AUTHORS] = (heads[n % AUTHORS][0] + 1, rid)
        futures = submit(start + ROUND)
        yield [wire for _, wire in signed]


async def fill(store: Store, total: int) -> None:
    started = time.perf_counter()
    done = 0
    with ProcessPoolExecutor(max_workers=2) as pool:
        for wires in _rounds(total, pool):
            for start in range(0, len(wires), BATCH):
                report = await store.ingest(wires[start : start + BATCH])
                if report.rejected:
                    raise SystemExit(f"bench corpus rejected: {report.rejected[0].reason}")
            done += len(wires)
            _note(f"filled {done} of {total} records ({done / (time.perf_counter() - started):.0f}/s)")


def _note(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def _timed(store: Store, filters: list[QueryFilters], what: str = "") -> tuple[list[float], int]:
    """Milliseconds per `Store.query` call, and the records found in all. With `what`, the CPU time of
    this process per call goes to stderr too: on a shared host it moves less than wall time."""
    times: list[float] = []
    cpu: list[float] = []
    found = 0
    for item in filters:
        start, start_cpu = time.perf_counter(), time.process_time()
        found += len(await store.query(item))
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    if what:
        _note(f"{what}: CPU per query p50 {_percentile(cpu, 0.5):.1f} ms, p99 {_percentile(cpu, 0.99):.1f}")
    return times, found


async def measure(store: Store, total: int, *, lookups: int, searches: int, contacts: int) -> None:
    pools = Pools(total)
    rng = random.Random(2026)
    now = int(time.time() * 1000)
    started = time.perf_counter()
    indexed = await store.search.catch_up()
    _note(f"search index: {indexed} records indexed in {time.perf_counter() - started:.1f} s")
    # Indicators drawn uniformly from the pools (so most are named by few records, some by thousands),
    # in every form an operator types them.
    forms = [
        lambda: pools.domains[rng.randrange(len(pools.domains))],
        lambda: pools.ips[rng.randrange(len(pools.ips))],
        lambda: f"sales{rng.randrange(5)}@{pools.domains[rng.randrange(len(pools.domains))]}",
        lambda: pools.phones[rng.randrange(len(pools.phones))],
    ]
    indicator = [QueryFilters(indicator=rng.choice(forms)(), live_at=now) for _ in range(lookups)]
    text = [QueryFilters(text=rng.choice(pools.words), live_at=now) for _ in range(searches)]
    directory = [
        contacts_query(
            now_ms=now,
            jurisdiction=rng.choice(_COUNTRIES),
            topic=rng.choice(_TOPICS) if rng.random() < 0.5 else None,
            text=rng.choice(pools.words) if rng.random() < 0.3 else None,
        )
        for _ in range(contacts)
    ]
    await _timed(store, indicator[:20] + text[:10] + directory[:10])  # warm the caches
    times, found = await _timed(store, indicator, "indicator lookups")
    emit("query", "indicator_lookup_p50_ms", _percentile(times, 0.5))
    emit("query", "indicator_lookup_p99_ms", _percentile(times, 0.99))
    _note(f"indicator lookups: {found} records found by {lookups} lookups; max {max(times):.1f} ms")
    hot = [QueryFilters(indicator=pools.domains[i], live_at=now) for i in range(5)]
    hot_times, hot_found = await _timed(store, hot)
    _note(f"the 5 most-named domains: {hot_found} records shown, slowest {max(hot_times):.1f} ms")
    times, found = await _timed(store, text, "text searches")
    emit("query", "text_search_p50_ms", _percentile(times, 0.5))
    _note(f"text searches: {found} records found; p99 {_percentile(times, 0.99):.1f} ms")
    times, found = await _timed(store, directory, "contacts queries")
    emit("query", "contacts_p50_ms", _percentile(times, 0.5))
    _note(f"contacts queries: {found} records found; p99 {_percentile(times, 0.99):.1f} ms")


async def run(*, records: int, store_path: str | None, keep: bool, lookups: int, searches: int) -> None:
    """`--store PATH`: use that store (filled first if empty; always kept). Else a temporary one, removed
    at the end unless `--keep` (then its path goes to stderr, to pass as --store next time)."""
    home = tempfile.mkdtemp(prefix="lapnode-bench-")
    path = Path(store_path) if store_path else Path(home) / "store.sqlite"
    try:
        store = await Store.open(f"sqlite+aiosqlite:///{path}", network=NETWORK)
        try:
            held = await store.count()
            if held == 0:
                store.warm_up()
                await fill(store, records)
            elif held != records:
                raise SystemExit(f"{path} holds {held} records, not {records}; give another --store")
            else:
                _note(f"reusing {path} ({held} records)")
            await measure(store, records, lookups=lookups, searches=searches, contacts=searches)
        finally:
            await store.close()
    finally:
        if keep and not store_path:
            _note(f"store kept: --store {path}")
        else:
            shutil.rmtree(home, ignore_errors=True)
