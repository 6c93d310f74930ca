"""Served slates remembered per (placement, viewed items, k) for requests nothing personal shapes.

An anonymous product-page view (no person, or a person the bundle has no history
for, no experiment arm, no live session events, no cart) gets the same ranked and
arranged slate as every other such view of the same product, as long as nothing
the slate is made of has changed. PERFORMANCE.md: serving a kept list costs a
fraction of computing it.

What the slate is made of, and how each part is checked on every request
(``pipeline/kept.py``):

- the catalog: every product among its candidates (before any rule: one that
  comes back in stock may return to the slate), the viewed items and the
  rulebook's pinned products. The snapshot is brought up to date first thing in
  every request (``serving/freshness.py``), so a PATCH to any of them drops the
  entry on the very next request on every worker; a change to any other product
  leaves it. A catalog that grew forgets every entry (a new product may be a
  candidate of any slate);
- the rulebook: its version (the rule audit log's sequence, read in the same round
  trip) and which of its time windows are open at the request's clock;
- the model bundle: its version;
- the request's clock beyond that: the month (the seasonal source reads it).

The catalog's size, the rulebook and the bundle make the *stamp*: when it
moves, every entry is forgotten at once. The rest is part of the *key*. Only
deterministic slates are kept: the learned ranker (which draws exploration per
request) and placements with exploration slots are never cached, so every
propensity served from here (1.0) is true. Entries are bounded (least recently
used first out, ``slate_cache_size``). Each served slate still gets its own
``rec_id`` and decision-log row; what is kept here is what they share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shelfwise.candidates.base import RecContext
from shelfwise.pipeline.kept import KeptStore
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


class SlateCache(KeptStore[KeptSlate]):
    """Kept slates (``pipeline/kept.py``), ``slate_cache_size`` of them per worker."""
