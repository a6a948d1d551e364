"""The interactive passphrase prompt, in a real pseudo-terminal: asked for, hidden, confirmed on init."""

from __future__ import annotations

import os
import select
import sys
import time
import warnings
from pathlib import Path

import pytest

pty = pytest.importorskip("pty")

LAPNODE = str(Path(sys.executable).parent / "lapnode")
SECRET = b"typed at the terminal 41f"


class Terminal:
    """`lapnode` on the slave side of a pty, so that stdin is a terminal as for an operator."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAPNODE_")}
        with warnings.catch_warnings():
            # Python 3.12+ warns about forking a threaded process; the child only calls execve.
            warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
            self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become lapnode
            os.execve(LAPNODE, ["lapnode", *args], env)
        self.output = b""

    def expect(self, token: bytes, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while token not in self.output and time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    self.output += os.read(self.fd, 4096)
                except OSError:  # the child closed the terminal
                    break
        assert token in self.output, self.output

    def type(self, line: bytes) -> None:
        os.write(self.fd, line + b"\n")

    def finish(self) -> int:
        """Read the rest of the output (until the child closes the terminal) and return its exit code."""
        while True:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # EIO: the child has exited and closed the terminal
                break
            if not chunk:
                break
            self.output += chunk
        os.close(self.fd)
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)


def test_init_and_publish_ask_for_a_hidden_passphrase(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    init = Terminal(
        "init", "--home", home, "--org", "OPTA", "--jurisdiction", "NL", "--category", "enforcement"
    )
    init.expect(b"Passphrase for the new node key")
    init.type(SECRET)
    init.expect(b"Repeat for confirmation")
    init.type(SECRET)
    assert init.finish() == 0
    assert b"node id: lap1" in init.output and SECRET not in init.output

    publish = Terminal(
        "publish", "lead", "--home", home, "--title", "t", "--summary", "s", "--status", "verified"
    )
    publish.expect(b"Passphrase for the node key")
    publish.type(SECRET)
    assert publish.finish() == 0
    assert SECRET not in publish.output
    assert len(publish.output.split()[-1]) == 64  # the new record's id
