"""`lapnode import arf|xarf|csv` and `lapnode drafts list|show|discard`: imports become drafts.

Rule 1: an import never publishes. It stores a draft (unsigned, local, never gossiped) and says how to
review and publish it; `lapnode publish lead --from-draft N` signs it with the scope the operator gives.
Rule 2: publishing a draft may not widen what its source allowed: a draft pulled from a TAXII object
marked TLP:AMBER cannot be published as green or clear.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from lapnode.cli.common import echo_json, home_option, json_option, load_home, printable, run_with_store
from lapnode.clock import format_ms, now_ms
from lapnode.errors import InputError
from lapnode.home import NodeHome
from lapnode.interop import arf, csv_io, xarf_io
from lapnode.interop.disclosure import tlp_rank
from lapnode.interop.drafting import fingerprint
from lapnode.store import Draft, DraftAdded, Store
from protocol.envelope import Record

_MAX_IMPORT_BYTES = 10 * 1024 * 1024


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(_MAX_IMPORT_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not a file") from None
    if len(data) > _MAX_IMPORT_BYTES:
        raise InputError(f"{path} is larger than {_MAX_IMPORT_BYTES // 1024 // 1024} MiB")
    return data


def _text(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text (byte {exc.start})") from None


def store_drafts(
    home: NodeHome, items: list[tuple[bytes, dict[str, object], str | None]], *, source: str
) -> list[DraftAdded]:
    async def action(store: Store) -> list[DraftAdded]:
        return await store.drafts.add_all(items, kind="lead", source=source, now_ms=now_ms())

    return run_with_store(home, action)


def announce(added: list[DraftAdded]) -> None:
    for item in added:
        draft = item.draft
        subjects = draft.document.get("subjects") or []
        assert isinstance(subjects, list)
        if item.new:
            click.echo(
                f"draft {draft.id}: {printable(str(draft.document.get('title')))} ({len(subjects)} subjects)"
            )
        else:
            click.echo(f"draft {draft.id}: already imported (no new draft made)")
    if added:
        first = added[0].draft.id
        click.echo(
            f"review it with `lapnode drafts show {first}`, then publish it with "
            f"`lapnode publish lead --from-draft {first} --tlp ...`",
            err=True,
        )


@click.group("import")
def import_group() -> None:
    """Turn ARF, X-ARF and CSV files into draft leads for review (nothing is published)."""


@import_group.command("arf")
@home_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def import_arf(home: Path | None, file: Path) -> None:
    """An RFC 5965 ARF feedback report (an .eml file) as a draft lead."""
    node_home = load_home(home)
    data = _read(file)
    document = arf.parse_arf(data, source=str(file))
    announce(store_drafts(node_home, [(fingerprint("arf", data), document, None)], source=f"arf:{file.name}"))


@import_group.command("xarf")
@home_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def import_xarf(home: Path | None, file: Path) -> None:
    """An X-ARF v4 messaging/spam report (JSON) as a draft lead."""
    node_home = load_home(home)
    data = _read(file)
    document = xarf_io.parse_xarf(_text(file, data), source=str(file))
    announce(
        store_drafts(node_home, [(fingerprint("xarf", data), document, None)], source=f"xarf:{file.name}")
    )


@import_group.command("csv")
@home_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--title", help="The draft lead's title [default: 'Indicators from FILE'].")
@click.option("--summary", help="The draft lead's summary.")
def import_csv(home: Path | None, file: Path, title: str | None, summary: str | None) -> None:
    """Indicators, one per row (columns type,value), as one draft lead. Any bad row: nothing is imported."""
    node_home = load_home(home)
    data = _read(file)
    document = csv_io.import_csv(
        _text(file, data), title=title or f"Indicators from {file.name}", summary=summary, source=str(file)
    )
    key = fingerprint("csv", data, (title or "").encode(), (summary or "").encode())
    announce(store_drafts(node_home, [(key, document, None)], source=f"csv:{file.name}"))


@click.group("drafts")
def drafts_group() -> None:
    """Review the draft leads that imports made (they are local and never shared)."""


def _draft_document(draft: Draft) -> dict[str, object]:
    return {
        "id": draft.id,
        "kind": draft.kind,
        "source": draft.source,
        "created": format_ms(draft.created_at),
        "min_tlp": draft.min_tlp,
        "published_record": draft.published_rid.hex() if draft.published_rid else None,
        "body": draft.document,
    }


@drafts_group.command("list")
@home_option
@json_option
@click.option("--all", "include_published", is_flag=True, help="Include drafts already published.")
def drafts_list(home: Path | None, as_json: bool, include_published: bool) -> None:
    """List the drafts waiting for review."""
    node_home = load_home(home)

    async def action(store: Store) -> list[Draft]:
        return await store.drafts.all(include_published=include_published)

    found = run_with_store(node_home, action)
    if as_json:
        echo_json([_draft_document(d) for d in found])
        return
    for draft in found:
        state = f"published {draft.published_rid.hex()[:12]}" if draft.published_rid else "draft"
        title = printable(str(draft.document.get("title")))
        click.echo(f"{draft.id:>5}  {format_ms(draft.created_at)}  {state:<20}  {draft.source}  {title}")
    if not found:
        click.echo("no drafts")


@drafts_group.command("show")
@home_option
@click.argument("draft_id", type=int, metavar="N")
@click.option("--body", "body_only", is_flag=True, help="Only the lead body, ready to edit and publish.")
def drafts_show(home: Path | None, draft_id: int, body_only: bool) -> None:
    """Show draft N as JSON; `--body > lead.json` gives a body to edit and publish with `--from-file`."""
    node_home = load_home(home)

    async def action(store: Store) -> Draft:
        return await store.drafts.get(draft_id)

    draft = run_with_store(node_home, action)
    echo_json(draft.document if body_only else _draft_document(draft))


@drafts_group.command("discard")
@home_option
@click.argument("draft_id", type=int, metavar="N")
def drafts_discard(home: Path | None, draft_id: int) -> None:
    """Delete draft N."""
    node_home = load_home(home)

    async def action(store: Store) -> None:
        await store.drafts.discard(draft_id)

    run_with_store(node_home, action)
    click.echo(f"draft {draft_id} discarded", err=True)


Publisher = Callable[[str, dict[str, Any], Callable[[NodeHome], dict[str, object]]], Record | None]


def publish_from_draft(draft_id: int, options: dict[str, Any], publish: Publisher) -> None:
    """`publish lead --from-draft N`: the draft's body under the file and flags given (Rule 2)."""
    home = load_home(options["home"])

    async def fetch(store: Store) -> Draft:
        return await store.drafts.get(draft_id)

    draft = run_with_store(home, fetch)
    if draft.published_rid is not None:
        raise InputError(f"draft {draft_id} was published already, as record {draft.published_rid.hex()}")
    tlp = str(options["tlp"]).lower()
    if draft.min_tlp is not None and tlp_rank(tlp) < tlp_rank(draft.min_tlp):
        raise InputError(
            f"draft {draft_id} came marked TLP:{draft.min_tlp.upper()}; "
            f"publish it with --tlp {draft.min_tlp} or stricter"
        )
    # A reviewed copy given with --from-file replaces the draft's body; flags override single fields.
    base = {} if options.get("from_file") is not None else draft.document
    record = publish("lead", options, lambda _home: base)
    if record is None:  # --dry-run: nothing was signed, so the draft stays a draft
        return

    async def mark(store: Store) -> None:
        await store.drafts.mark_published(draft_id, record.id, now_ms=now_ms())

    run_with_store(home, mark)
    click.echo(f"draft {draft_id} published as {record.id.hex()}", err=True)
