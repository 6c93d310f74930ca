"""A small synthetic store with known preferences, and simple sources over it.

For tests, the benchmark and the docs' examples: people prefer one or two
categories and a price level; they view, cart and buy mostly there. The
fixture sources (``popular``, ``history``, ``category``) read only a
``RankingState``, so they can be "fitted" at any decision time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shelfwise.candidates.base import Proposal, Reason, RecContext
from shelfwise.ranking.history import CART, PURCHASE, VIEW, HistoryLog
from shelfwise.ranking.items import ItemColumns
from shelfwise.ranking.state import DAY, RankingState

START = 1_700_000_000  # 2023-11-14, a fixed origin so fixtures are reproducible
SOURCES = ("popular", "history", "category")


@dataclass
class SyntheticStore:
    items: ItemColumns
    log: HistoryLog
    titles: tuple[str, ...]
    categories: tuple[str, ...]


def synthetic_store(
    n_items: int = 200, n_persons: int = 400, days: int = 60, seed: int = 0
) -> SyntheticStore:
    rng = np.random.default_rng(seed)
    n_cats = 8
    categories = ("", *(f"home/category {c}" for c in range(1, n_cats + 1)))
    category = rng.integers(1, n_cats + 1, n_items).astype(np.int32)
    price = np.round(np.exp(rng.normal(3.0, 0.7, n_items)), 2).astype(np.float64)
    appeal = rng.gamma(0.6, 1.0, n_items)
    items = ItemColumns(
        price=price,
        stock=rng.integers(0, 200, n_items).astype(np.int64),
        margin_band=rng.integers(0, 3, n_items).astype(np.int8),
        sla_days=rng.integers(1, 8, n_items).astype(np.int16),
        brand=rng.integers(1, 6, n_items).astype(np.int32),
        category=category,
        category_names=categories,
        titles=tuple(f"Item {i}" for i in range(n_items)),
    )
    persons: list[str] = []
    rows: list[tuple[int, int, int, int]] = []  # person, item, kind, at
    for p in range(n_persons):
        persons.append(f"p{p}")
        liked = rng.choice(np.arange(1, n_cats + 1), size=2, replace=False)
        level = rng.normal(3.0, 0.5)
        fit = appeal * np.where(np.isin(category, liked), 6.0, 0.3)
        fit *= np.exp(-0.8 * np.abs(np.log(price) - level))
        fit /= fit.sum()
        favourites = rng.choice(n_items, size=6, replace=False, p=fit)
        for _ in range(rng.poisson(4) + 1):
            t0 = START + int(rng.integers(0, days * DAY))
            viewed = np.concatenate(
                [rng.choice(n_items, size=rng.integers(1, 6), p=fit), rng.choice(favourites, 1)]
            )
            for j, it in enumerate(viewed.tolist()):
                t = t0 + 60 * j
                rows.append((p, it, VIEW, t))
                if rng.random() < 0.3:
                    rows.append((p, it, CART, t + 20))
                    if rng.random() < 0.5:
                        rows.append((p, it, PURCHASE, t + 40))
    person, item, kind, at = (np.array(col, dtype=np.int64) for col in zip(*rows, strict=True))
    prices = price[item]
    log = HistoryLog.build(persons, person, item, kind, at, price=prices)
    return SyntheticStore(items, log, items.titles, categories)


class StateSources:
    """Three simple sources over a RankingState (fit = build the state at t)."""

    def __init__(self, state: RankingState, items: ItemColumns, k: int = 60) -> None:
        self.state, self.items, self.k = state, items, k
        self.popular = np.argsort(-state.pop_28d, kind="stable")[:k]

    def __call__(self, ctx: RecContext) -> Sequence[Proposal]:
        st, out = self.state, []
        pop = st.pop_28d[self.popular] + 1e-3
        cats = self.items.category_names
        out.append(
            Proposal(
                "popular",
                self.popular,
                pop,
                tuple(
                    Reason("popular", "popular_in", label=cats[int(c)].rsplit("/", 1)[-1])
                    for c in self.items.category[self.popular]
                ),
            )
        )
        person = st.person(ctx.person_id)
        keys, vals = st.person_items.row(person)
        seen = {e.item for e in ctx.session}
        hist = np.unique(np.concatenate([keys, np.fromiter(seen, dtype=np.int64)]))
        if len(hist):
            score = st.person_items.lookup(person, hist, 0.0)[:, 3] + np.isin(hist, list(seen))
            out.append(
                Proposal(
                    "history",
                    hist,
                    score.astype(np.float64),
                    tuple(Reason("history", "because_you_viewed", anchor=int(i)) for i in hist),
                )
            )
        ckeys, cvals = st.person_categories.row(person)
        if len(ckeys):
            top_cat = int(ckeys[np.argmax(cvals[:, 0])])
            in_cat = np.flatnonzero(self.items.category == top_cat)
            best = in_cat[np.argsort(-st.pop_28d[in_cat], kind="stable")[: self.k]]
            anchor = int(keys[np.argmax(vals[:, 3])]) if len(keys) else None
            out.append(
                Proposal(
                    "category",
                    best,
                    st.pop_28d[best] + 1e-3,
                    tuple(Reason("category", "similar_to", anchor=anchor) for _ in best),
                )
            )
        return [p for p in out if len(p.items)]
