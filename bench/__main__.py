"""Benchmarks: `python -m bench NAME [options]`. Each prints JSON lines {"bench", "metric", "value"}."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bench import ingest, policy, propagate, query, sync


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="name", required=True)
    ingest_args = commands.add_parser("ingest", help="decode, verify and store pre-built records")
    ingest_args.add_argument("--records", type=int, default=200_000)
    ingest_args.add_argument("--authors", type=int, default=50)
    # `lapnode bundle import` stores a whole bundle in one call; 10,000 a call keeps the quarters timeable.
    ingest_args.add_argument("--batch", type=int, default=10_000, help="records per Store.ingest call")
    sync_args = commands.add_parser("sync", help="two daemons: an empty node catches up with a full one")
    sync_args.add_argument("--records", type=int, default=100_000)
    sync_args.add_argument("--authors", type=int, default=50)
    propagate_args = commands.add_parser(
        "propagate", help="a random federation of daemons: how fast and how often a record travels"
    )
    propagate_args.add_argument("--nodes", type=int, default=20)
    propagate_args.add_argument("--records", type=int, default=200)
    propagate_args.add_argument("--rate", type=float, default=10.0, help="records published per second")
    propagate_args.add_argument("--relay-hops", type=int, default=propagate.DEFAULT_RELAY_HOPS)
    propagate_args.add_argument("--seed", type=int, default=20)
    policy_args = commands.add_parser("policy", help="the disclosure decision over mixed records and peers")
    policy_args.add_argument("--records", type=int, default=2000)
    policy_args.add_argument("--peers", type=int, default=20)
    policy_args.add_argument("--rounds", type=int, default=5)
    query_args = commands.add_parser(
        "query", help="indicator lookups, text searches and contacts queries over a large store"
    )
    query_args.add_argument("--records", type=int, default=1_000_000)
    query_args.add_argument("--store", metavar="PATH", help="use (and fill if empty) this SQLite file")
    query_args.add_argument("--keep", action="store_true", help="keep the temporary store")
    query_args.add_argument("--lookups", type=int, default=200, help="indicator lookups measured")
    query_args.add_argument("--searches", type=int, default=100, help="text and contacts queries measured")
    args = parser.parse_args(argv)
    if args.name == "ingest":
        asyncio.run(ingest.run(records=args.records, authors=args.authors, batch=args.batch))
    elif args.name == "sync":
        sync.run(records=args.records, authors=args.authors)
    elif args.name == "query":
        asyncio.run(
            query.run(
                records=args.records,
                store_path=args.store,
                keep=args.keep,
                lookups=args.lookups,
                searches=args.searches,
            )
        )
    elif args.name == "policy":
        policy.run(records=args.records, peers=args.peers, rounds=args.rounds)
    elif args.name == "propagate":
        return propagate.run(
            nodes=args.nodes, records=args.records, rate=args.rate, relay_hops=args.relay_hops, seed=args.seed
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
