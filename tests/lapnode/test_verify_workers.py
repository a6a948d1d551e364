"""Verification workers stay lean (lapnode/store/verifier.py Rule 3, lapnode/verification Rule 1).

Each test runs a fresh interpreter, because the test process itself has imported everything. The
bounded work asserted is the set of modules a worker loads: a worker that imported the store or the CLI
cost about 90 MB instead of about 25 (docs/performance.md, "Session 3").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# What a worker must never load: the store's and the daemon's I/O stacks, and our own layers above it.
FORBIDDEN = (
    *("sqlalchemy", "aiosqlite", "asyncpg", "aiohttp", "click"),
    *("lapnode.store", "lapnode.daemon", "lapnode.cli"),
)


def _python(code: str, *, script: Path | None = None) -> str:
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, str(script)] if script is not None else [sys.executable, "-c", code]
    done = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _forbidden(modules: list[str]) -> list[str]:
    return [name for name in modules if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)]


def test_the_worker_module_imports_only_protocol_keys_and_itself() -> None:
    code = "import json, sys; import lapnode.verification.worker; print(json.dumps(sorted(sys.modules)))"
    modules = json.loads(_python(code))
    assert "protocol.envelope" in modules and "keys.identity" in modules
    assert _forbidden(modules) == []
    ours = [name for name in modules if name.split(".")[0] == "lapnode"]
    assert all(name == "lapnode" or name.startswith("lapnode.verification") for name in ours), ours


# A daemon is started by the `lapnode` console script, whose first line imports the whole CLI; spawned
# children re-run the parent's main script unless the pool prevents it. This script does the same.
_DAEMON_LIKE_SCRIPT = """
from lapnode.cli.main import main  # what the `lapnode` console script imports first

if __name__ == "__main__":
    import asyncio, json
    from lapnode.store.verifier import POOL_THRESHOLD, Verifier
    from tests.factories import NETWORK, chain, identity

    wires = [record.wire for record in chain(identity("worker-probe"), POOL_THRESHOLD)]
    wires[7] = wires[7][:-1] + bytes([wires[7][-1] ^ 1])  # a damaged signature

    async def probe():
        verifier = Verifier(NETWORK, workers=2)
        try:
            results = [row async for chunk in verifier.verify_rows(wires) for row in chunk]
            # eval, a builtin, pickles by name: it lets a worker report what it has imported.
            asks = [verifier._pool.submit(eval, "sorted(__import__('sys').modules)") for _ in range(4)]
            modules = sorted({name for ask in asks for name in ask.result()})
        finally:
            verifier.close()
        rejected = [i for i, row in enumerate(results) if isinstance(row, str)]
        print(json.dumps({"rows": len(results), "rejected": rejected, "modules": modules}))

    asyncio.run(probe())
"""


def test_pool_workers_of_a_daemon_like_process_verify_without_loading_the_daemon(tmp_path: Path) -> None:
    script = tmp_path / "daemon_like.py"
    script.write_text(_DAEMON_LIKE_SCRIPT)
    report = json.loads(_python("", script=script))
    assert report["rows"] == 1000 and report["rejected"] == [7]
    modules = report["modules"]
    assert "lapnode.verification.worker" in modules and "protocol.envelope" in modules
    assert _forbidden(modules) == []
