"""Benchmarks: `python -m bench NAME [options]`. Each prints JSON lines {"bench", "metric", "value"}."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bench import ingest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="name", required=True)
    ingest_args = commands.add_parser("ingest", help="decode, verify and store pre-built records")
    ingest_args.add_argument("--records", type=int, default=200_000)
    ingest_args.add_argument("--authors", type=int, default=50)
    ingest_args.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.name == "ingest":
        asyncio.run(ingest.run(records=args.records, authors=args.authors, batch=args.batch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
