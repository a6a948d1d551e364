"""The read-only TAXII 2.1 API root, served by the daemon under /taxii2/ (docs/interop.md).

Rule 1: authenticate at the door (HOUSE-STYLE, Synapse): a middleware checks the client's API token
(Bearer, or Basic with the token as password) before any handler runs; handlers receive the token's
recipient attributes as an `Audience` and never see an unauthenticated request.
Rule 2: only loopback clients are served: tokens and records must not cross a network in clear, so a
TLS-terminating reverse proxy on the same host publishes the API (docs/interop.md shows one).
Rule 3: media types and status codes follow TAXII 2.1: 401 without a valid token, 406 for an Accept
header that excludes `application/taxii+json;version=2.1`, 404 for unknown collections, objects and
statuses, 415 for a write of the wrong media type and 403 for any write (every collection is read-only),
400 for filters or paging values the server cannot use. Errors are TAXII error messages and say
nothing about the token or the records.
Rule 4: every page is an exit (lapnode.exits Rule 3): `_page` appends the page's decisions to the audit
trail, exit "taxii", recipient "taxii:<token name>", in one transaction, before the response is made; if
that fails the client gets 503 and no objects, and the cause goes to the local log only.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from aiohttp import web

from lapnode.daemon.appkeys import NODE
from lapnode.daemon.node import now_ms
from lapnode.exits import Audience, AuditNotRecorded, audit_events, record_decisions, token_audience
from lapnode.interop.taxii_collections import (
    BadRequest,
    Entry,
    Filters,
    Page,
    Reader,
    collection_resource,
    collections,
    parse_filters,
    parse_limit,
    parse_next,
)
from lapnode.interop.tokens import is_token_shaped, same_hash, token_hash

PREFIX: Final = "/taxii2"
API_ROOT: Final = "lapnode"
TAXII_MEDIA: Final = "application/taxii+json;version=2.1"
MAX_CONTENT_LENGTH: Final = 10 * 1024 * 1024
# A plain string key: web.RequestKey is newer than the oldest aiohttp pyproject allows; `_audience` types it.
_AUDIENCE: Final = "lapnode.taxii.audience"
ORG = web.AppKey("taxii_org", str)
_ACCEPTABLE: Final = frozenset({"application/taxii+json", "application/*", "*/*"})
EXIT: Final = "taxii"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class NotFound(LookupError):
    """An unknown collection, or an object this client may not see or that does not exist (HTTP 404)."""


def error(
    status: int, title: str, description: str = "", headers: dict[str, str] | None = None
) -> web.Response:
    body = {"title": title, "http_status": str(status)} | (
        {"description": description} if description else {}
    )
    return web.Response(
        status=status, text=json.dumps(body), headers={"Content-Type": TAXII_MEDIA, **(headers or {})}
    )


def taxii_json(body: object, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(), headers={"Content-Type": TAXII_MEDIA, **(headers or {})}
    )


def _accepts_taxii(accept: str) -> bool:
    for option in accept.split(","):
        media, *params = [part.strip().lower() for part in option.split(";")]
        versions = [p.partition("=")[2] for p in params if p.startswith("version=")]
        if media in _ACCEPTABLE and all(v == "2.1" for v in versions):
            return True
    return False


def _presented_token(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password or user
    return None


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Rule 1 and 2, then Accept (Rule 3); handler errors become TAXII error messages."""
    if not _is_loopback(request.remote):
        return error(403, "Forbidden", "TAXII is served through this node's TLS proxy only")
    token = _presented_token(request.headers.get("Authorization", ""))
    entry = None
    if token is not None and is_token_shaped(token):
        presented = token_hash(token)
        entry = await request.config_dict[NODE].store.taxii_tokens.find(presented)
        if entry is not None and not same_hash(presented, entry.token_hash):
            entry = None
    if entry is None:
        challenge = {"WWW-Authenticate": 'Bearer realm="lapnode TAXII", Basic realm="lapnode TAXII"'}
        return error(401, "Unauthorized", "a valid API token is required", challenge)
    if request.method == "GET" and not _accepts_taxii(request.headers.get("Accept", "*/*")):
        return error(406, "Not Acceptable", f"this server answers with {TAXII_MEDIA}")
    request[_AUDIENCE] = token_audience(entry.name, entry.org, entry.category, entry.jurisdiction)
    try:
        return await handler(request)
    except BadRequest as exc:
        return error(400, "Bad Request", str(exc))
    except NotFound:
        return error(404, "Not Found")
    except AuditNotRecorded as exc:
        request.config_dict[NODE].log_event("taxii_not_served", token=entry.name, reason=str(exc))
        return error(503, "Service Unavailable", "the server cannot serve objects now; try again later")


def create_taxii_app() -> web.Application:
    app = web.Application(middlewares=[guard])
    root = f"/{API_ROOT}"
    app.router.add_get("/", discovery)
    app.router.add_get(f"{root}/", api_root)
    app.router.add_get(f"{root}/collections/", list_collections)
    app.router.add_get(f"{root}/collections/{{cid}}/", get_collection)
    app.router.add_route("*", f"{root}/collections/{{cid}}/objects/", objects)
    app.router.add_get(f"{root}/collections/{{cid}}/manifest/", manifest)
    app.router.add_route("*", f"{root}/collections/{{cid}}/objects/{{oid}}/", one_object)
    app.router.add_get(f"{root}/collections/{{cid}}/objects/{{oid}}/versions/", versions)
    app.router.add_get(f"{root}/status/{{sid}}/", status)
    return app


def _base(request: web.Request) -> str:
    # Behind the TLS proxy (Rule 2) the scheme the client used is the proxy's; it says so in a header.
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme)
    host = request.headers.get("X-Forwarded-Host", request.host)
    return f"{scheme}://{host}{PREFIX}"


async def discovery(request: web.Request) -> web.Response:
    node = request.config_dict[NODE]
    root = f"{_base(request)}/{API_ROOT}/"
    body = {
        "title": f"lapnode {node.network}",
        "description": "Records of the London Action Plan network that your token may see, as STIX 2.1.",
        "default": root,
        "api_roots": [root],
    }
    return taxii_json(body)


async def api_root(request: web.Request) -> web.Response:
    node = request.config_dict[NODE]
    body = {
        "title": f"lapnode {node.network}",
        "description": "One read-only collection per record kind.",
        "versions": [TAXII_MEDIA],
        "max_content_length": MAX_CONTENT_LENGTH,
    }
    return taxii_json(body)


def _kind(request: web.Request) -> str:
    found = collections(request.config_dict[NODE].network).get(request.match_info["cid"])
    if found is None:
        raise NotFound
    return found


async def list_collections(request: web.Request) -> web.Response:
    network = request.config_dict[NODE].network
    return taxii_json(
        {"collections": [collection_resource(network, kind) for kind in collections(network).values()]}
    )


async def get_collection(request: web.Request) -> web.Response:
    return taxii_json(collection_resource(request.config_dict[NODE].network, _kind(request)))


def _audience(request: web.Request) -> Audience:
    audience = request[_AUDIENCE]
    assert isinstance(audience, Audience)
    return audience


async def _reader(request: web.Request) -> Reader:
    node = request.config_dict[NODE]
    names = {peer.key: peer.org or peer.name or "" for peer in await node.store.peers.all()}
    own = request.config_dict.get(ORG)
    if own:
        names[node.key] = own
    return Reader(
        node.store,
        _audience(request),
        node.key,
        node.network,
        now_ms(),
        {k: v for k, v in names.items() if v},
        policy=node.policy,
    )


async def _page(request: web.Request, filters: Filters | None = None) -> Page:
    """The page a request asks for, its decisions already in the audit trail (Rule 4)."""
    kind = _kind(request)
    query = request.rel_url.query
    reader = await _reader(request)
    page = await reader.page(
        kind,
        filters or parse_filters(query),
        limit=parse_limit(query.get("limit")),
        cursor=parse_next(query.get("next")),
    )
    events = audit_events(page.decided, reader.audience, exit_name=EXIT, time_ms=reader.now_ms)
    await record_decisions(reader.store, events)
    return page


def _date_headers(entries: list[Entry]) -> dict[str, str]:
    if not entries:
        return {}
    return {
        "X-TAXII-Date-Added-First": entries[0].date_added,
        "X-TAXII-Date-Added-Last": entries[-1].date_added,
    }


def _envelope(page: Page, key: str, items: Sequence[object]) -> dict[str, object]:
    body: dict[str, object] = {"more": page.next is not None, key: items}
    if page.next is not None:
        body["next"] = page.next
    return body


async def _refuse_write(request: web.Request) -> web.Response:
    _kind(request)
    if request.method == "POST":
        media = request.headers.get("Content-Type", "").replace(" ", "").lower()
        if media.split(";")[0] != "application/taxii+json":
            return error(415, "Unsupported Media Type", f"objects are sent as {TAXII_MEDIA}")
    return error(403, "Forbidden", "this collection is read-only")


async def objects(request: web.Request) -> web.Response:
    if request.method != "GET":
        return await _refuse_write(request)
    page = await _page(request)
    body = _envelope(page, "objects", [e.obj for e in page.entries])
    return taxii_json(body, _date_headers(page.entries))


async def manifest(request: web.Request) -> web.Response:
    page = await _page(request)
    body = _envelope(page, "objects", [e.manifest() for e in page.entries])
    return taxii_json(body, _date_headers(page.entries))


async def _by_id(request: web.Request) -> Page:
    query = parse_filters(request.rel_url.query)
    only = Filters(
        ids=frozenset({request.match_info["oid"]}), versions=query.versions, spec_versions=query.spec_versions
    )
    page = await _page(request, only)
    if not page.entries:
        raise NotFound
    return page


async def one_object(request: web.Request) -> web.Response:
    if request.method != "GET":
        return await _refuse_write(request)
    page = await _by_id(request)
    return taxii_json(_envelope(page, "objects", [e.obj for e in page.entries]), _date_headers(page.entries))


async def versions(request: web.Request) -> web.Response:
    page = await _by_id(request)
    body = _envelope(page, "versions", sorted({e.version for e in page.entries}))
    return taxii_json(body, _date_headers(page.entries))


async def status(request: web.Request) -> web.Response:
    # Nothing is ever written, so no status resource exists.
    return error(404, "Not Found", "this server accepts no writes and has no status resources")
