"""The one exception dispatcher (lapnode.cli.main.main), in-process: exit codes and one-line messages."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from keys.errors import WrongPassphrase
from lapnode.cli import main as cli_main
from lapnode.errors import InputError
from protocol.errors import InvalidRecord


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        cli_main.main(argv)
    captured = capsys.readouterr()
    code = exited.value.code
    assert isinstance(code, int)
    return code, captured.out, captured.err


def _failing_command(error: BaseException) -> click.Command:
    @click.command("boom")
    def boom() -> None:
        raise error

    return boom


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (InputError("bad file"), 1, "error: bad file\n"),
        (WrongPassphrase("wrong passphrase for key file k"), 1, "error: wrong passphrase for key file k\n"),
        (InvalidRecord("signature does not verify"), 1, "error: signature does not verify\n"),
        (InputError("two\nlines \x1b[31m"), 1, "error: two lines \ufffd[31m\n"),
        (InputError(), 1, "error: A file or a command-line value given by the operator is malformed"),
        (
            FileNotFoundError(2, "No such file or directory", "/x"),
            1,
            "error: No such file or directory: /x\n",
        ),
        (KeyboardInterrupt(), 130, "error: interrupted\n"),
        (RuntimeError("secret detail"), 70, "error: internal error (RuntimeError); run with LAPNODE_DEBUG=1"),
        (BrokenPipeError(), 141, ""),
    ],
)
def test_errors_become_one_line_and_an_exit_code(
    error: BaseException,
    code: int,
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LAPNODE_DEBUG", raising=False)
    cli_main.cli.add_command(_failing_command(error))
    try:
        got_code, out, err = _run(["boom"], capsys)
    finally:
        cli_main.cli.commands.pop("boom")
    assert got_code == code
    # On Ctrl-C click first ends the line the terminal shows "^C" on; the message is still one line.
    err = err.removeprefix("\n") if isinstance(error, KeyboardInterrupt) else err
    assert err.startswith(message) and err.count("\n") == (1 if message else 0)
    assert "Traceback" not in err and "secret detail" not in err and out == ""


def test_debug_shows_the_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAPNODE_DEBUG", "1")
    cli_main.cli.add_command(_failing_command(RuntimeError("detail")))
    try:
        code, _, err = _run(["boom"], capsys)
    finally:
        cli_main.cli.commands.pop("boom")
    assert code == 70 and "Traceback" in err and err.splitlines()[-1].startswith("error: internal error")


@pytest.mark.parametrize(
    "argv", [["nope"], ["query", "--limit", "x"], ["show"], ["publish", "lead", "--tlp", "orange"]]
)
def test_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(argv, capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "--help" in err


def test_help_without_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run([], capsys)
    assert code == 0 and "Commands:" in out and err == ""


def test_missing_home_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["id", "--home", str(tmp_path / "none")], capsys)
    assert (
        code == 1
        and err
        == f"error: no lapnode home at {tmp_path / 'none'}; run `lapnode init` first (or pass --home DIR)\n"
    )


def test_every_command_takes_home(capsys: pytest.CaptureFixture[str]) -> None:
    commands: list[tuple[str, ...]] = [
        ("init",), ("id",), ("publish", "contact"), ("publish", "lead"), ("publish", "trend"),
        ("query",), ("show",), ("bundle", "export"), ("bundle", "import"), ("verify",),
        ("policy", "check"), ("policy", "explain"), ("quarantine", "list"), ("quarantine", "release"),
        ("quarantine", "drop"),
    ]  # fmt: skip
    for command in commands:
        code, out, _ = _run([*command, "--help"], capsys)
        assert code == 0 and "--home" in out, command
