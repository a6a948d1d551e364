"""`lapnode`: the operator's command line. A thin face over lapnode's core (HOUSE-STYLE, magic-wormhole).

Rule 1: `main()` is the one exception dispatcher. Every error the operator can cause or fix
(LapnodeError, CryptoError, ProtocolError, OSError from their files) becomes exactly one line
`error: <message>` on stderr; anything else is a bug and prints one line naming its type. A traceback
appears only with LAPNODE_DEBUG=1.
Rule 2: exit codes live here and only here:
    0   success
    1   an operational error (bad input file, wrong passphrase, missing home, rejected records, ...)
    2   a usage error (unknown option, missing argument, bad option value)
    70  an internal error (a bug; EX_SOFTWARE)
    130 interrupted (Ctrl-C)
    141 the output pipe closed early (`lapnode query | head`), as if killed by SIGPIPE; no message
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Final, NoReturn

import click

from keys.errors import CryptoError
from lapnode.cli.audit_commands import audit
from lapnode.cli.bundle_commands import bundle, verify
from lapnode.cli.common import one_line
from lapnode.cli.contact_commands import contacts
from lapnode.cli.draft_commands import drafts_group, import_group
from lapnode.cli.export_commands import export_group
from lapnode.cli.lifecycle_commands import purge, retract
from lapnode.cli.membership_commands import authority, credential, invite, join, key, membership
from lapnode.cli.network_commands import peer, serve_command, status, subscribe, unsubscribe
from lapnode.cli.node_commands import id_command, init
from lapnode.cli.policy_commands import policy, quarantine_group
from lapnode.cli.record_commands import publish, query, show
from lapnode.cli.referral_commands import refer, referral, referrals
from lapnode.cli.revision_commands import correct, declassify
from lapnode.cli.taxii_commands import taxii_group
from lapnode.cli.trend_commands import trends
from lapnode.errors import LapnodeError
from protocol.errors import ProtocolError

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERNAL: Final = 70
EXIT_INTERRUPTED: Final = 130
EXIT_BROKEN_PIPE: Final = 141
ENV_DEBUG: Final = "LAPNODE_DEBUG"

_log = logging.getLogger("lapnode.cli")


@click.group(
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="lapnode", message="lapnode %(version)s")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """lapnode: a node of the London Action Plan enforcement network.

    Publishes signed, scoped records (contacts, case leads, trends) and exchanges them with peers.
    Start with `lapnode init`; see docs/operator-guide.md.
    """
    # A bare `lapnode` is a request for help, not a mistake.
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


for _command in (
    init,
    id_command,
    publish,
    query,
    show,
    trends,
    retract,
    purge,
    refer,
    referrals,
    referral,
    correct,
    declassify,
    contacts,
    bundle,
    verify,
    peer,
    status,
    subscribe,
    unsubscribe,
    audit,
    import_group,
    drafts_group,
    export_group,
    taxii_group,
    policy,
    quarantine_group,
    authority,
    credential,
    invite,
    join,
    membership,
    key,
):
    cli.add_command(_command)
cli.add_command(serve_command, name="serve")


def _debug() -> bool:
    return os.environ.get(ENV_DEBUG, "") not in ("", "0")


def _message(exc: BaseException) -> str:
    # One line, always: a multi-line message from a library must not break `2>&1 | tail -1` habits.
    text = " ".join(str(exc).split()) or (exc.__doc__ or type(exc).__name__).strip().splitlines()[0]
    return text


def _fail(message: str, code: int) -> NoReturn:
    # Messages can quote remote input (a rejected record's field); keep it from steering the terminal.
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(code)


def _os_error_message(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or _message(exc)}{where}"


def _quiet_broken_pipe() -> NoReturn:
    # The reader went away (`lapnode query | head`). Like a process killed by SIGPIPE: no message, 141.
    # stdout is pointed at /dev/null so that the interpreter's final flush does not complain again.
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(EXIT_BROKEN_PIPE)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point: run the command, map any exception to one line and an exit code."""
    try:
        code = cli.main(
            args=list(argv) if argv is not None else None, prog_name="lapnode", standalone_mode=False
        )
    except BrokenPipeError:
        _quiet_broken_pipe()
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        _fail(_message(exc) + hint, EXIT_USAGE)
    except click.ClickException as exc:
        _fail(_message(exc), exc.exit_code or EXIT_ERROR)
    except click.Abort:
        _fail("interrupted", EXIT_INTERRUPTED)
    except (LapnodeError, CryptoError, ProtocolError) as exc:
        if _debug():
            traceback.print_exc()
        _fail(_message(exc), EXIT_ERROR)
    except OSError as exc:
        # Files the operator named, full disks, permissions: environmental, not a bug.
        if _debug():
            traceback.print_exc()
        _fail(_os_error_message(exc), EXIT_ERROR)
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: every bug ends as one line, logged if asked
        _log.debug("internal error", exc_info=True)
        if _debug():
            traceback.print_exc()
        _fail(f"internal error ({type(exc).__name__}); run with {ENV_DEBUG}=1 for details", EXIT_INTERNAL)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":
    main()
