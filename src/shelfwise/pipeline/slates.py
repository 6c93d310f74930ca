"""Served slates remembered per (placement, viewed items, k) for requests nothing personal shapes.

An anonymous product-page view (no person, or a person the bundle has no history
for, no experiment arm, no live session events, no cart) gets the same ranked and
arranged slate as every other such view of the same product, as long as nothing
the slate is made of has changed. PERFORMANCE.md: serving a kept list costs a
fraction of computing it.

What the slate is made of, and how each part is checked on every request:

- the catalog (stock, price, availability, product data): the snapshot's change
  sequence and size, read from the store's change clock first thing in every
  request (``serving/freshness.py``), so a PATCH reaches the very next request on
  every worker;
- the rulebook: its version (the rule audit log's sequence, read in the same round
  trip) and which of its time windows are open at the request's clock;
- the model bundle: its version;
- the request's clock beyond that: the month (the seasonal source reads it).

The first three make the *stamp*: when it moves, every entry is forgotten at once
(nothing is served against a stale stamp). The rest is part of the *key*. Only
deterministic slates are kept: the learned ranker (which draws exploration per
request) and placements with exploration slots are never cached, so every
propensity served from here (1.0) is true. Entries are bounded (least recently
used first out, ``slate_cache_size``). Each served slate still gets its own
``rec_id`` and decision-log row; what is kept here is what they share.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime

from shelfwise.candidates.base import RecContext
from shelfwise.rules import Rulebook


@dataclass(frozen=True)
class KeptSlate:
    """What every request served from one computation shares.

    ``body`` is the served slate without its ``rec_id``, ``logged`` its items as the
    decision log stores them and ``trace`` the computation's own trace (None when it
    was not kept; without its per-request notes and timings), all orjson-encoded: a
    tenth of the memory of the objects, spliced into each answer and decision row
    as they are (no decoding per request), and nobody can edit what the next request
    is served.
    """

    computed_by: str  # the rec_id of the request whose computation this is
    mode: str
    model_version: str | None
    rulebook_version: str | None
    body: bytes  # {"placement": ..., "items": [...], ...}: the slate but its rec_id
    logged: bytes  # the decision log's items
    fallback_used: bool
    drops: tuple[tuple[str, int], ...]
    trace: bytes | None

    def answer(self, rec_id: str) -> bytes:
        """The JSON answer of a request served this slate under its own ``rec_id``."""
        return b'{"rec_id":"' + rec_id.encode() + b'",' + self.body[1:]


def windows_open(book: Rulebook | None, now: datetime) -> tuple[bool, ...]:
    """Which of the rulebook's time-windowed rules are open at ``now``: the only way
    the request's clock reaches the rules, so it belongs to the key."""
    if book is None:
        return ()
    return tuple(r.window.contains(now) for r in book.rules if r.window is not None)


def nothing_personal(ctx: RecContext, has_history: bool) -> bool:
    """Whether nothing about the shopper can shape the slate: no live session events,
    no cart, and no person or one without history (every source then treats the
    person as a stranger)."""
    return not has_history and not ctx.session and not ctx.cart_items


class SlateCache:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[Hashable, KeptSlate] = OrderedDict()
        self._stamp: Hashable = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Hashable, stamp: Hashable) -> KeptSlate | None:
        """The slate kept for ``key`` under the same ``stamp``; a new stamp forgets all."""
        with self._lock:
            if stamp != self._stamp:
                self._data.clear()
                self._stamp = stamp
                return None
            got = self._data.get(key)
            if got is not None:
                self._data.move_to_end(key)
            return got

    def put(self, key: Hashable, stamp: Hashable, slate: KeptSlate) -> None:
        with self._lock:
            if stamp != self._stamp or not self.enabled:
                return  # computed against a state that has moved on since
            self._data[key] = slate
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)  # the least recently used
