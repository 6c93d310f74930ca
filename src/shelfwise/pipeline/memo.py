"""Candidates remembered per (placement, viewed items) for requests nothing personal shapes.

A product-page request with no person, no live session and no cart gets the same
blended candidates every time until the catalog or the model bundle changes: the
sources read only the viewed items. Those candidates are kept (before any rule:
stock, price and the rulebook still apply on every request), keyed by placement
plan, viewed items, pool size and month (the seasonal source reads it), and
forgotten whenever the catalog snapshot moves (any change-log entry) or another
bundle is served. PERFORMANCE.md: serving a kept list costs a fraction of
computing it.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

from shelfwise.candidates.base import Proposal, RecContext
from shelfwise.pipeline.pool import Pool

Entry = tuple[Proposal, Pool]


def impersonal(ctx: RecContext) -> bool:
    """Whether nothing about the shopper can shape the candidates."""
    return ctx.person_id is None and not ctx.session and not ctx.cart_items


class CandidateMemo:
    def __init__(self, max_entries: int = 20_000) -> None:
        self.max_entries = max_entries
        self._data: dict[Hashable, Entry] = {}
        self._stamp: Hashable = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Hashable, stamp: Hashable) -> Entry | None:
        """The entry of ``key`` if it was kept under the same ``stamp`` (catalog + bundle)."""
        if stamp != self._stamp:
            with self._lock:
                self._data, self._stamp = {}, stamp
            return None
        return self._data.get(key)

    def put(self, key: Hashable, stamp: Hashable, entry: Entry) -> None:
        proposal, pool = entry
        for a in (proposal.items, proposal.scores, pool.items, pool.score, pool.hits):
            a.flags.writeable = False  # shared by later requests: nobody may edit it
        pool.reason_of.flags.writeable = False
        with self._lock:
            if stamp != self._stamp:
                return
            if len(self._data) >= self.max_entries:
                del self._data[next(iter(self._data))]  # the oldest
            self._data[key] = entry
