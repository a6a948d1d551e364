"""lapnode.daemon.feed._batches: how one round of a feed is cut into batches (SPEC §6.5 rule 3)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from lapnode.daemon.feed import _batches
from protocol.gossip import MAX_BATCH_BYTES, MAX_BATCH_RECORDS, FeedItem


@given(
    st.lists(st.integers(min_value=1, max_value=70_000), max_size=1200),
    st.integers(min_value=0, max_value=5),
)
def test_a_round_is_cut_into_batches_within_the_limits_covering_all(sizes: list[int], skipped: int) -> None:
    items = [FeedItem(2 * n + 1, 0, bytes(size)) for n, size in enumerate(sizes)]
    upto = (items[-1].position if items else 0) + skipped  # entries past the last item were skipped
    batches = _batches(items, upto=upto)

    assert [item for _, batch, _ in batches for item in batch] == items  # all of them, in order, once
    for number, (batch_upto, batch, size) in enumerate(batches):
        assert batch and len(batch) <= MAX_BATCH_RECORDS
        assert size == sum(len(item.wire) for item in batch)
        assert size <= MAX_BATCH_BYTES or len(batch) == 1  # a bigger record travels alone
        last = number == len(batches) - 1
        assert batch_upto == (upto if last else batch[-1].position)
        assert all(item.position <= batch_upto for item in batch)
    # Full batches: each but the last had no room for the next record.
    for (_, batch, size), (_, following, _) in itertools.pairwise(batches):
        assert len(batch) == MAX_BATCH_RECORDS or size + len(following[0].wire) > MAX_BATCH_BYTES
