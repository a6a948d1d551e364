"""Running the daemon until SIGTERM or SIGINT: `lapnode serve`.

Rule 1: a signal starts an orderly stop: listeners close, open channels close with a WebSocket close
frame, the subscription manager and its tasks stop, and the store closes after its last commit.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from aiohttp import web

from lapnode.daemon.admin import create_admin_app
from lapnode.daemon.app import Settings, create_app
from lapnode.runtime import tune_for_bulk_work

SHUTDOWN_TIMEOUT = 10.0


def configure_logging(level: int = logging.INFO) -> None:
    """One event per line on stderr. Messages are JSON built by Node.log_event, never secrets."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter('{"ts": "%(asctime)s", "level": "%(levelname)s", "log": %(message)s}')
    )
    root = logging.getLogger("lapnode")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


async def serve(settings: Settings, *, host: str, port: int, admin_host: str, admin_port: int) -> None:
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT, access_log=None)
    await runner.setup()
    admin_runner = web.AppRunner(create_admin_app(app), access_log=None)
    await admin_runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    tune_for_bulk_work()
    try:
        await web.TCPSite(runner, host, port).start()
        await web.TCPSite(admin_runner, admin_host, admin_port).start()
        logging.getLogger("lapnode").info(
            '{"event": "listening", "gossip": "%s:%d", "admin": "%s:%d"}', host, port, admin_host, admin_port
        )
        await stop.wait()
    finally:
        await admin_runner.cleanup()
        await runner.cleanup()
