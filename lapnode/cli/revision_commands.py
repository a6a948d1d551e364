"""`lapnode correct` and `lapnode declassify`: new versions of this node's own records (SPEC §5.1).

Rule 1: the old record is checked (this node's own, live; lapnode.revisions) and the new body and scope
are validated before the key is unlocked, and checked again in the session that signs, so a typo costs
no passphrase prompt and a version superseded meanwhile is not corrected twice.
Rule 2: both print the new record's id, or with --json its full document, as `publish` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from keys.identity import Identity
from lapnode.cli.common import (
    home_option,
    json_option,
    load_home,
    passphrase_file_option,
    run_with_store,
)
from lapnode.cli.passphrase import unlock_identity
from lapnode.cli.policy_commands import our_key
from lapnode.cli.record_commands import DOCUMENT_DEFAULTS, print_published, scope_options, scope_request
from lapnode.clock import now_ms
from lapnode.home import NodeHome
from lapnode.publishing import body_fields, load_document
from lapnode.revisions import (
    DEFAULTED_SCOPE_OPTIONS,
    corrected_scope,
    current_fields,
    declassified_scope,
    own_live_version,
    publish_version,
)
from lapnode.store import Store
from protocol.codec import Value
from protocol.envelope import Record
from protocol.scope import TLP_LEVELS, Scope


def sign_new_version(
    home: NodeHome,
    record_id: str,
    passphrase_file: Path | None,
    *,
    scope_for: Callable[[Record, int], Scope],
    fields_for: Callable[[Record, Identity], Mapping[str, Value]],
) -> tuple[Record, Identity]:
    """Sign the version that supersedes this node's live record `record_id` (Rule 1): `scope_for(old,
    now)` gives its scope (and raises InputError at anything wrong), `fields_for(old, identity)` its body.
    """
    ours = our_key(home)

    async def check(store: Store) -> None:
        moment = now_ms()
        scope_for((await own_live_version(store, record_id, our_key=ours, now=moment)).record, moment)

    run_with_store(home, check)
    identity = unlock_identity(home.key_path, passphrase_file)

    async def sign(store: Store) -> Record:
        created = now_ms()
        old = (await own_live_version(store, record_id, our_key=ours, now=created)).record
        return await publish_version(
            store,
            identity,
            network=home.config.network,
            old=old,
            fields=fields_for(old, identity),
            scope=scope_for(old, created),
            created=created,
        )

    return run_with_store(home, sign), identity


def _given(context: click.Context) -> frozenset[str]:
    typed = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    return frozenset(name for name in DEFAULTED_SCOPE_OPTIONS if context.get_parameter_source(name) in typed)


@click.command()
@home_option
@json_option
@passphrase_file_option
@scope_options
@click.option(
    "--from-file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The corrected body, a JSON or TOML file as `publish` takes for the record's kind.",
)
@click.argument("record_id", metavar="RECORD_ID")
@click.pass_context
def correct(context: click.Context, /, record_id: str, **options: Any) -> None:
    """Publish a corrected version of one of this node's records: it supersedes RECORD_ID.

    The new body is the whole of --from-file. The scope is the original's; scope options may narrow it
    (--audience-category, --audience-member and --jurisdiction-allow replace the original's lists,
    --jurisdiction-deny and --flag add to them) but never widen it. A sealed record's correction is
    sealed to the same members. Queries then show the correction; `show` lists both versions.
    """
    home = load_home(options.pop("home"))
    as_json = options.pop("as_json")
    passphrase_file = options.pop("passphrase_file")
    from_file = options.pop("from_file")
    given = _given(context)
    request = scope_request(options)
    document = load_document(from_file)

    def fields_for(old: Record, identity: Identity | None = None) -> Mapping[str, Value]:
        kind = old.header.kind
        return body_fields(kind, {**DOCUMENT_DEFAULTS[kind](home), **document}, from_file)

    def scope_for(old: Record, now: int) -> Scope:
        fields_for(old)  # a mistake in the file is reported before the passphrase prompt
        return corrected_scope(old.header.scope, request, given=given, now=now)

    record, identity = sign_new_version(
        home, record_id, passphrase_file, scope_for=scope_for, fields_for=fields_for
    )
    print_published(record, identity, as_json)


@click.command()
@home_option
@json_option
@passphrase_file_option
@click.option(
    "--tlp",
    "label",
    type=click.Choice(TLP_LEVELS, case_sensitive=False),
    required=True,
    help="The new TLP label: strictly lower than the record's.",
)
@click.argument("record_id", metavar="RECORD_ID")
def declassify(
    home: Path | None, as_json: bool, passphrase_file: Path | None, label: str, record_id: str
) -> None:
    """Lower the TLP of one of this node's records: publish the same body, with the same scope but the
    lower TLP, as a new version superseding RECORD_ID.

    Only the author can do this: the TLP is in the scope its signature covers. Peers that receive the
    new version show it with the lower TLP, and the earlier version in its history.
    """
    record, identity = sign_new_version(
        load_home(home),
        record_id,
        passphrase_file,
        scope_for=lambda old, now: declassified_scope(old.header.scope, label),
        fields_for=current_fields,
    )
    print_published(record, identity, as_json)
