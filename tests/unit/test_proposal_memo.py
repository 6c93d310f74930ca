"""The sources' answers to impersonal contexts, kept per worker (``pipeline/proposals.py``):
asked once per (source, depth, viewed items, exclusions, month), never for a person, a
session or a cart, and dropped with a changed product or a grown catalog."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import numpy as np
import pytest

from shelfwise.candidates.base import Proposal, Reason, RecContext, SessionEvent
from shelfwise.catalog import CatalogSnapshot
from shelfwise.pipeline.proposals import ProposalMemo

T0 = datetime(2026, 12, 6, 12, 0, 30, tzinfo=UTC)
PAGE = RecContext(placement="product_similar", now=T0, context_items=(3,), exclude=frozenset({3}))


@dataclass
class Counting:
    """A source whose answer is its neighbours of the viewed item (k of them), counting
    how often it is asked."""

    name: str = "cooccurrence"
    asked: int = 0

    def propose(self, ctx: RecContext, k: int) -> Proposal:
        self.asked += 1
        anchor = ctx.context_items[0] if ctx.context_items else 0
        items = np.array([i for i in range(anchor + 1, anchor + 1 + k) if i not in ctx.exclude])
        scores = 1.0 / np.arange(1, len(items) + 1)
        return Proposal(
            self.name, items, scores, (Reason(self.name, "bought_with", anchor),) * len(items)
        )


@dataclass
class Snapshot:
    """What the memo reads of a catalog snapshot: its size, each product's last change
    and the newest change."""

    n: int = 20
    seq: int = 1
    changed_seq: Any = field(default_factory=lambda: np.zeros(20, np.int64))

    def __len__(self) -> int:
        return self.n

    def change(self, item: int) -> None:
        self.seq += 1
        self.changed_seq[item] = self.seq


def _ask(memo: ProposalMemo, src: Counting, ctx: RecContext, k: int, snap: Snapshot) -> Proposal:
    return memo.ask(src.name, src, ctx, k, cast(CatalogSnapshot, snap))


def test_an_impersonal_context_is_asked_once_across_placements_and_buckets() -> None:
    memo, src, snap = ProposalMemo(100), Counting(), Snapshot()
    first = _ask(memo, src, PAGE, 5, snap)
    assert first.items.tolist() == [4, 5, 6, 7, 8]
    # The page's other placement, and the same page an hour later (another time bucket).
    other = replace(PAGE, placement="product_bought_with")
    later = replace(PAGE, now=T0 + timedelta(hours=1))
    assert _ask(memo, src, other, 5, snap) is first
    assert _ask(memo, src, later, 5, snap) is first
    assert src.asked == 1 and memo.hits == 2
    # Shared by later requests: read only.
    assert not first.items.flags.writeable and not first.scores.flags.writeable
    # Another depth, other exclusions, another viewed item, another month: asked again.
    _ask(memo, src, PAGE, 3, snap)
    _ask(memo, src, replace(PAGE, exclude=frozenset({3, 5})), 5, snap)
    _ask(memo, src, replace(PAGE, context_items=(4,), exclude=frozenset({4})), 5, snap)
    _ask(memo, src, replace(PAGE, now=datetime(2027, 1, 2, tzinfo=UTC)), 5, snap)
    assert src.asked == 5


@pytest.mark.parametrize(
    "personal",
    [
        {"person_id": "c0"},
        {"cart_items": (7,)},
        {"session": (SessionEvent(9, "product_view", T0),)},
    ],
    ids=["person", "cart", "session"],
)
def test_a_person_a_cart_or_a_session_is_never_kept(personal: dict[str, Any]) -> None:
    memo, src, snap = ProposalMemo(100), Counting(), Snapshot()
    ctx = replace(PAGE, **personal)
    _ask(memo, src, ctx, 5, snap)
    _ask(memo, src, ctx, 5, snap)
    assert src.asked == 2 and len(memo) == 0


@pytest.mark.parametrize("changed", [5, 3], ids=["a proposed product", "the viewed product"])
def test_a_changed_product_drops_the_proposal_made_of_it(changed: int) -> None:
    memo, src, snap = ProposalMemo(100), Counting(), Snapshot()
    _ask(memo, src, PAGE, 5, snap)
    snap.change(15)  # a product the proposal is not made of: still kept
    _ask(memo, src, PAGE, 5, snap)
    assert src.asked == 1
    snap.change(changed)
    _ask(memo, src, PAGE, 5, snap)
    _ask(memo, src, PAGE, 5, snap)  # kept again, as of the change
    assert src.asked == 2


def test_a_grown_catalog_forgets_every_proposal() -> None:
    memo, src, snap = ProposalMemo(100), Counting(), Snapshot()
    _ask(memo, src, PAGE, 5, snap)
    _ask(memo, src, replace(PAGE, context_items=(4,), exclude=frozenset({4})), 5, snap)
    snap.n, snap.changed_seq = 21, np.zeros(21, np.int64)
    _ask(memo, src, PAGE, 5, snap)
    assert src.asked == 3 and len(memo) == 1


def test_off_and_full() -> None:
    src, snap = Counting(), Snapshot()
    off = ProposalMemo(0)
    _ask(off, src, PAGE, 5, snap)
    _ask(off, src, PAGE, 5, snap)
    assert src.asked == 2 and len(off) == 0
    small = ProposalMemo(2)
    for anchor in (3, 4, 5):
        _ask(
            small, src, replace(PAGE, context_items=(anchor,), exclude=frozenset({anchor})), 5, snap
        )
    assert len(small) == 2
    _ask(small, src, PAGE, 5, snap)  # the least recently used one went
    assert src.asked == 6
