"""A STIX 2.1 bundle of disclosed records, for files (`lapnode export stix`) and TAXII pages alike.

Rule 1: the input is what `disclosure.decide_rows` let through, and nothing else: this module never reads
the store.
Rule 2: an object shared by several records (an observable, an author's identity, a country) appears
once, marked with the least restrictive TLP of the records that disclosed it: each of those records has
already shown it to that audience, and a stricter marking would hide it from readers of the record.
Rule 3: the bundle holds the TLP 2.0 extension definition and the marking definitions it uses, so a
reader needs nothing from outside to interpret the markings.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping

from lapnode.interop.disclosure import TLP_ORDER, Disclosed, tlp_rank
from lapnode.interop.stix_common import (
    TLP_BY_MARKING_ID,
    StixObject,
    tlp_extension_definition,
    tlp_marking,
)
from lapnode.interop.stix_objects import RecordObjects


def marking_tlp(obj: Mapping[str, object]) -> str | None:
    refs = obj.get("object_marking_refs")
    if not isinstance(refs, list):
        return None
    levels = [TLP_BY_MARKING_ID[r] for r in refs if isinstance(r, str) and r in TLP_BY_MARKING_ID]
    return max(levels, key=tlp_rank) if levels else None


def _less_restrictive(new: StixObject, old: StixObject) -> bool:
    new_tlp, old_tlp = marking_tlp(new), marking_tlp(old)
    return new_tlp is not None and old_tlp is not None and tlp_rank(new_tlp) < tlp_rank(old_tlp)


def record_groups(disclosed: Iterable[Disclosed], names: Mapping[bytes, str]) -> list[list[StixObject]]:
    """The objects of each record, in the order given."""
    return [RecordObjects(item.record, names.get(item.record.header.author)).objects() for item in disclosed]


def merge(groups: Iterable[list[StixObject]]) -> list[StixObject]:
    """All objects once each (Rule 2), the marking definitions they use first (Rule 3)."""
    merged: dict[str, StixObject] = {}
    for group in groups:
        for obj in group:
            key = str(obj["id"])
            if key not in merged or _less_restrictive(obj, merged[key]):
                merged[key] = obj
    used = {marking_tlp(obj) for obj in merged.values()}
    markings = [tlp_marking(tlp) for tlp in TLP_ORDER if tlp in used]
    head = [tlp_extension_definition(), *markings] if markings else []
    return head + list(merged.values())


def bundle(disclosed: Iterable[Disclosed], names: Mapping[bytes, str]) -> StixObject:
    objects = merge(record_groups(disclosed, names))
    # A deterministic bundle id: the same export gives the same file, byte for byte.
    digest = hashlib.blake2b("\n".join(str(o["id"]) for o in objects).encode(), digest_size=16).digest()
    return {"type": "bundle", "id": f"bundle--{uuid.UUID(bytes=digest, version=4)}", "objects": objects}
