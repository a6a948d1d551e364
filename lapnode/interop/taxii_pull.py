"""`lapnode taxii pull`: indicators from a TAXII 2.1 collection become draft leads.

Rule 1: nothing pulled is published: each STIX indicator becomes a draft (lapnode.store.drafts), found
again by (object id, modified) so that pulling twice makes no duplicates.
Rule 2: the source's TLP marking travels with the draft as its minimum TLP: a draft pulled from an
object marked TLP:AMBER cannot be published as green. A marking this node does not recognise is read
as TLP:RED (fail closed); the operator sees why in the draft.
Rule 3: observables are read from the indicator's STIX pattern with the OASIS pattern library
(stix2-patterns); only equality (and ISSUBSET for networks) names a subject. Anything else is kept as
text in the summary.
Rule 4: paging is the OASIS taxii2-client's, bounded by `max_objects`; the server's `next` is followed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import requests
from stix2patterns.exceptions import ParseException
from stix2patterns.v21.pattern import Pattern
from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import Collection, as_pages

from lapnode.errors import InputError, LapnodeError
from lapnode.interop.disclosure import tlp_rank
from lapnode.interop.drafting import DraftLead, fingerprint
from lapnode.interop.stix_common import TLP1_MARKING_IDS, TLP_BY_MARKING_ID, parse_timestamp
from protocol.kinds.documents import render_time
from protocol.kinds.lead import VIOLATION_TYPES

DEFAULT_PAGE: Final = 100
DEFAULT_MAX_OBJECTS: Final = 10_000
_PATHS: Final[Mapping[tuple[str, str], str]] = {
    ("domain-name", "value"): "domain",
    ("ipv4-addr", "value"): "ip",
    ("ipv6-addr", "value"): "ip",
    ("url", "value"): "url",
    ("email-addr", "value"): "email",
    ("autonomous-system", "number"): "asn",
}
_HASHES: Final[Mapping[str, str]] = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512"}


class PullError(LapnodeError):
    """The TAXII server could not be reached, refused us, or answered with something that is not TAXII."""


class BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


@dataclass(frozen=True)
class Credentials:
    user: str | None = None
    password: str | None = None
    token: str | None = None


@dataclass
class PullResult:
    drafts: list[tuple[bytes, dict[str, object], str | None]]
    objects: int
    skipped: int


def _literal(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("\\'", "'").replace("\\\\", "\\")
    return text


def pattern_subjects(pattern: str) -> Iterator[tuple[str, str]]:
    """(subject type, value) pairs that the pattern names by equality (Rule 3)."""
    comparisons = Pattern(pattern).inspect().comparisons
    for object_type, tests in comparisons.items():
        for path, operator, literal in tests:
            value = _literal(literal)
            steps = [str(step) for step in path]
            if object_type == "file" and len(steps) == 2 and steps[0] == "hashes" and operator == "=":
                algorithm = _HASHES.get(steps[1].strip("'"))
                if algorithm is not None:
                    yield "message-hash", f"{algorithm}:{value.lower()}"
                continue
            kind = _PATHS.get((object_type, steps[0] if steps else ""))
            if kind is None or operator not in ("=", "ISSUBSET") or (operator == "ISSUBSET" and kind != "ip"):
                continue
            yield kind, f"AS{value}" if kind == "asn" else value


def source_tlp(obj: Mapping[str, Any]) -> str | None:
    """The strictest TLP among the object's markings (Rule 2)."""
    levels = []
    for ref in obj.get("object_marking_refs") or []:
        levels.append(TLP_BY_MARKING_ID.get(ref) or TLP1_MARKING_IDS.get(ref) or "red")
    return max(levels, key=tlp_rank) if levels else None


def indicator_draft(
    obj: Mapping[str, Any], origin: str
) -> tuple[bytes, dict[str, object], str | None] | None:
    if obj.get("type") != "indicator" or obj.get("pattern_type", "stix") != "stix":
        return None
    lead = DraftLead(title=str(obj.get("name") or f"Indicator {obj.get('id')}"))
    if obj.get("description"):
        lead.summary_lines.append(str(obj["description"]))
    lead.summary_lines.append(f"Pulled from {origin}: {obj.get('id')} (modified {obj.get('modified')}).")
    try:
        lead.add_subjects(pattern_subjects(str(obj.get("pattern", ""))))
    except (ParseException, ValueError, TypeError):
        lead.summary_lines.append(f"Pattern not understood: {obj.get('pattern')}")
    lead.violation_types.update(str(v) for v in obj.get("labels") or [] if v in VIOLATION_TYPES)
    if obj.get("valid_from"):
        with contextlib.suppress(ValueError):
            lead.first_seen = render_time(parse_timestamp(str(obj["valid_from"])))
    key = fingerprint("taxii", str(obj.get("id")).encode(), str(obj.get("modified")).encode())
    return key, lead.document(), source_tlp(obj)


def pull(
    api_root: str,
    collection_id: str,
    credentials: Credentials,
    *,
    added_after: str | None,
    per_request: int = DEFAULT_PAGE,
    max_objects: int = DEFAULT_MAX_OBJECTS,
) -> PullResult:
    url = f"{api_root.rstrip('/')}/collections/{collection_id}/"
    auth = BearerAuth(credentials.token) if credentials.token else None
    result = PullResult([], 0, 0)
    try:
        collection = Collection(url, user=credentials.user, password=credentials.password, auth=auth)
        filters = {"added_after": added_after} if added_after else {}
        for envelope in as_pages(collection.get_objects, per_request=per_request, **filters):
            for obj in envelope.get("objects", []):
                result.objects += 1
                draft = indicator_draft(obj, url)
                if draft is None:
                    result.skipped += 1
                else:
                    result.drafts.append(draft)
            if result.objects >= max_objects:
                break
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise PullError(f"the TAXII server answered {status} for {url}") from None
    except (requests.RequestException, TAXIIServiceException, ValueError) as exc:
        raise PullError(f"cannot pull from {url}: {type(exc).__name__}: {str(exc)[:200]}") from None
    except InputError:
        raise
    return result
