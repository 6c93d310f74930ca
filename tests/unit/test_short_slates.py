"""A slate the rules leave short from a full pool is made again over a deeper pool,
under every rule; a chain that has no more to give stays as the rules left it."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from shelfwise.candidates.base import Proposal, Reason, RecContext
from shelfwise.candidates.blend import CandidateBlend
from shelfwise.candidates.config import SourcesConfig
from shelfwise.catalog import CatalogSnapshot
from shelfwise.pipeline import Pipeline, Slate
from shelfwise.rules import Rulebook, parse_rule
from shelfwise.serving.placements import Placement
from tests.unit.rules.catalog import NOW, product, snapshot_of

BRANDS = [f"B{b}" for b in range(8)]
# 8 brands x 6 products; B0 and B1 suppressed; every product of B0-B2 leads the source.
PRODUCTS = [
    product(f"{b}-{i}", brand=b, category_path=f"home/c{i % 3}") for b in BRANDS for i in range(6)
]
LEADING = [f"{b}-{i}" for b in ("B0", "B1", "B2") for i in range(4)]
# then the others, one of each brand in turn
REST = sorted(
    (p for p in PRODUCTS if p.product_id not in LEADING), key=lambda p: p.product_id[::-1]
)
ORDER = LEADING + [p.product_id for p in REST]
SHELF = Placement(
    name="shelf", page="home", sources={"fixed": 1.0}, rule_scope="home", k=6, max_candidates=12
)
RULES = [
    {"id": "no-b0-b1", "type": "suppress", "reason": "paused", "attribute": "brand",
     "values": ["b0", "b1"]},
    {"id": "one-per-brand", "type": "cap", "reason": "diversity", "attribute": "brand",
     "max_items": 1},
]  # fmt: skip


class Fixed:
    """A source whose answer is written out, best first."""

    def __init__(self, snapshot: CatalogSnapshot, ids: list[str], name: str = "fixed") -> None:
        self.name = name
        self.items = np.array([snapshot.vocab[i] for i in ids], dtype=np.int64)

    def propose(self, ctx: RecContext, k: int) -> Proposal:
        keep = np.array([i not in ctx.exclude for i in self.items.tolist()], dtype=bool)
        items = self.items[keep][:k]
        reason = Reason(self.name, "popular" if self.name == "popular" else "similar_to")
        return Proposal(self.name, items, np.linspace(1.0, 0.5, len(items)), (reason,) * len(items))


@pytest.fixture
def snap() -> CatalogSnapshot:
    return snapshot_of(PRODUCTS)


def _run(
    snap: CatalogSnapshot, order: list[str], rules: list[dict[str, object]], placement: Placement
) -> Slate:
    sources = {"fixed": Fixed(snap, order), "popular": Fixed(snap, ORDER[::-1], "popular")}
    blend = CandidateBlend(sources, SourcesConfig())  # type: ignore[arg-type]
    book = Rulebook([parse_rule(r) for r in rules], snap, version=3)
    ctx = RecContext(placement=placement.name, now=NOW)
    return Pipeline.offline(snap, blend, rulebook=book).run(
        ctx, placement, placement.k, explain=True
    )


def _audit(snap: CatalogSnapshot, slate: Slate, rules: list[dict[str, object]]) -> None:
    """Every served item obeys every rule: the rulebook's own safety keeps each, and its
    arrangement of the served items in their order keeps them all."""
    book = Rulebook([parse_rule(r) for r in rules], snap, version=3)
    ctx = RecContext(placement="home", now=NOW)
    items = np.array([s.item for s in slate.items], dtype=np.int64)
    kept = book.apply_safety(ctx, items, np.ones(len(items)))
    assert kept.items.tolist() == items.tolist()
    arranged = book.arrange(ctx, items, np.arange(len(items), 0, -1, dtype=float), len(items))
    assert arranged.items.tolist() == items.tolist()


def test_a_pool_the_rules_eat_is_asked_deeper_and_the_slate_filled_under_every_rule(
    snap: CatalogSnapshot,
) -> None:
    slate = _run(snap, ORDER, RULES, SHELF)
    # 12 candidates: 8 of paused brands, 4 of B2 of which the cap keeps 1. Asked 24 deep,
    # the next 12 hold B3..B7 too: six brands, one each.
    shown = [s.product_id for s in slate.items]
    assert len(shown) == SHELF.k
    brands = Counter(p.split("-")[0] for p in shown)
    assert max(brands.values()) == 1 and not {"B0", "B1"} & set(brands)
    _audit(snap, slate, RULES)
    assert slate.sizes == (12, 24)
    deepened = slate.trace.deepened
    assert (deepened["first_size"], deepened["first_items"]) == (12, 1)
    assert (deepened["size"], deepened["items"], deepened["k"]) == (24, 6, 6)
    # the items the first pool did not hold, each with its own source's (true) reason
    assert deepened["filled"] == [p for p in shown if p not in ORDER[:12]]
    assert len(deepened["filled"]) == 5
    assert all(r.source == "fixed" and not r.fallback for s in slate.items for r in s.reasons)
    assert slate.trace.fallback_used == []
    # the trace is the deeper run's: its pool and what the rules dropped of it
    assert len(slate.trace.pool) == 24 and len(slate.candidates) == 24
    assert slate.trace.drops["no-b0-b1"] == 8
    assert any("asked 24 deep" in n for n in slate.trace.notes)


def test_a_full_slate_is_not_touched(snap: CatalogSnapshot) -> None:
    rules = [RULES[0]]  # paused brands only: 4 of B2 left of 12, and k is 4
    placement = SHELF.model_copy(update={"k": 4})
    slate = _run(snap, ORDER, rules, placement)
    assert [s.product_id for s in slate.items] == LEADING[8:12]
    assert slate.sizes == (12,) and slate.trace.deepened == {}
    assert "deepened" not in slate.trace.as_dict() and len(slate.candidates) == 12


def test_a_chain_with_no_more_to_give_is_not_filled(snap: CatalogSnapshot) -> None:
    # A narrow chain (its source knows 12 products, no fallback) stays as the rules
    # leave it: no other source, not even the store's best sellers, fills it.
    slate = _run(snap, LEADING, RULES, SHELF)
    assert [s.product_id for s in slate.items] == ["B2-0"]
    assert slate.sizes == (12,) and slate.trace.deepened == {}
    assert slate.trace.fallback_used == []


def test_a_rule_narrow_slate_stays_narrow_however_deep_the_pool(snap: CatalogSnapshot) -> None:
    # One category per slate at most twice (c0 has 16 products): deeper pools of the same
    # chain hold more of it, and the cap still keeps two. Nothing outside the chain comes in.
    rules = [
        {"id": "two-per-category", "type": "cap", "reason": "range", "attribute": "category",
         "max_items": 2},
    ]  # fmt: skip
    c0 = [p.product_id for p in PRODUCTS if p.category_path == "home/c0"]
    placement = SHELF.model_copy(update={"max_candidates": 4, "fallback": ("popular",)})
    slate = _run(snap, c0, rules, placement)
    assert [s.product_id for s in slate.items] == c0[:2]
    _audit(snap, slate, rules)
    # asked 8 and 16 deep (the chain gave all it had, 16), then no more: still two
    assert slate.sizes == (4, 8, 16)
    assert slate.trace.deepened["filled"] == []
    assert slate.trace.deepened["items"] == slate.trace.deepened["first_items"] == 2


def test_a_pinned_product_is_not_counted_as_filled(snap: CatalogSnapshot) -> None:
    # The pin is in no pool (the arrangement adds it), so both runs serve it: only what
    # the deeper run added is "filled", as a merchant reading the trace expects.
    pin = {"id": "hero", "type": "pin", "reason": "promo", "product_id": "B7-5", "position": 2}
    slate = _run(snap, ORDER, [*RULES, pin], SHELF)
    shown = [s.product_id for s in slate.items]
    assert len(shown) == SHELF.k and shown[1] == "B7-5" and slate.sizes == (12, 24)
    deepened = slate.trace.deepened
    assert deepened["first_items"] == 2  # the one B2 item the cap keeps, and the pin
    assert "B7-5" not in deepened["filled"]
    assert deepened["filled"] == [p for p in shown if p not in ORDER[:12] and p != "B7-5"]
