"""What verification workers run: verifying wire bytes into stored rows, importing only protocol and keys.

Rule 1: nothing in this package imports the store, the daemon, the CLI or any I/O library (SQLAlchemy,
aiosqlite, asyncpg, aiohttp, click); an import-linter contract and tests/lapnode/test_verify_workers.py
hold it there. Each worker process imports this package and nothing more, so it costs an interpreter
and `protocol`, not the whole daemon (docs/performance.md, "Session 3").
"""
