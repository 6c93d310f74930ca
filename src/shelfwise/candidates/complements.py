"""Complements of the viewed product or the cart: what a shopper buys *with* it.

The ``product_bought_with`` and ``cart`` placements' source. Two signals, both
learned from baskets (a basket: one session's carted and bought items):

- **co-purchase lift** per item pair, from baskets with a purchase only:
  ``lift = N * c_ab / (n_a * n_b)``, scored ``log(lift) * c_ab / (c_ab + shrink)``
  for pairs bought together at least once with lift above 1 (a raw count would
  rank the store's best sellers first for every product);
- **complementary categories**: the lift of category pairs over sessions (what
  shoppers view, cart and buy in one visit: far more numerous than orders, see
  :func:`fit_category_lift`); for the anchor's category
  the best ``categories`` partner categories with lift above 1, each offering its
  most popular items, those co-viewed with the anchor first (``coview_weight``);
- **the anchor's own category** (``own_category`` x the best partner's score)
  when at least ``min_support`` sessions carted or bought two different items of
  it (the diagonal of the category table): plates go with plates, and the
  shoppers of most stores add a second item of the category they came for.

Pairs bought together come first, then the complementary categories. Cheaper
add-ons lead: every score is scaled by how close the item's price is to
``addon_price`` times the anchor's (a log-normal bump of width ``addon_band``,
see :func:`~shelfwise.candidates.substitutes.price_fit`), so an add-on at half
the price of a pan beats one at twice it, and the partner categories' items
differ from one anchor to the next with its price; an item over
``max_price_ratio`` times the anchor is dropped. Reasons, each saying what its
evidence is: ``bought_with`` the anchor ("Bought together with X": at least one
basket held both); ``goes_with`` the item's category when it is the anchor's own
("Shoppers often add <its category>": carts that added two of its items);
``browsed_with`` the item's category when it is a partner ("Shoppers also look at
<its category>": the sessions' category lift, which is visits, not carts).
Nothing store-wide is proposed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from shelfwise.candidates.base import FloatArray, IntArray, Proposal, Reason, RecContext
from shelfwise.candidates.config import ComplementsConfig
from shelfwise.candidates.log import KIND_CODE, InteractionLog
from shelfwise.candidates.neighbours import (
    NeighbourTable,
    ReasonCache,
    excluded,
    gather,
    picked,
    top_k,
)
from shelfwise.candidates.substitutes import price_fit


def _basket_matrix(log: InteractionLog, rows: npt.NDArray[np.bool_]) -> sp.csr_matrix:
    """Binary (basket x item) incidence of the chosen log rows, empty baskets dropped."""
    baskets, b = np.unique(log.basket[rows], return_inverse=True)
    m = sp.csr_matrix(
        (np.ones(int(rows.sum())), (b, log.item[rows])), shape=(len(baskets), log.n_items)
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def fit_copurchase(log: InteractionLog, config: ComplementsConfig) -> NeighbourTable:
    """Item pairs bought in one basket, scored by shrunk log-lift (see the module doc)."""
    bought = log.kind == KIND_CODE["purchase"]
    if not bought.any():
        return NeighbourTable.from_sparse(sp.csr_matrix((log.n_items, log.n_items)), config.width)
    m = _basket_matrix(log, bought)
    n = m.shape[0]
    c = sp.csr_matrix(m.T @ m)
    c.setdiag(0)
    c.eliminate_zeros()
    counts = np.asarray(m.sum(axis=0)).ravel()
    rows = np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
    lift = n * c.data / (counts[rows] * counts[c.indices])
    c.data = np.log(np.maximum(lift, 1.0)) * c.data / (c.data + config.shrink)
    c.eliminate_zeros()
    return NeighbourTable.from_sparse(c, config.width)


def fit_category_lift(
    log: InteractionLog, category: npt.NDArray[np.int32], n_cat: int, min_support: float = 5.0
) -> npt.NDArray[np.float32]:
    """Lift of category pairs over baskets, among the pairs of two different
    categories; 0 for pairs met in fewer than ``min_support`` baskets. The diagonal
    says whether a category goes with itself: 1 when at least ``min_support``
    baskets carted or bought two different items of it, else 0 (see
    ``ComplementsConfig.own_category``).

    A basket here is a session's every interaction (viewed, carted, bought): carts
    with several categories are too rare in most stores to learn partners from,
    while the categories a shopper moves between in one visit are plentiful; the
    lift discounts the categories everyone visits."""
    rows = np.ones(len(log), dtype=bool)
    out = np.zeros((n_cat, n_cat), dtype=np.float32)
    if not rows.any() or n_cat == 0:
        return out
    m = _basket_matrix(log, rows)
    codes = category[: log.n_items]
    cats = sp.csr_matrix(
        (np.ones(len(codes)), (np.arange(len(codes)), codes)), shape=(len(codes), n_cat)
    )
    bc = sp.csr_matrix(m @ cats)
    bc.data[:] = 1.0
    co = (bc.T @ bc).toarray()
    np.fill_diagonal(co, 0.0)
    co[0, :] = co[:, 0] = 0.0  # no category is no partner
    # Lift over the cross-category pairs only: most baskets stay in one category,
    # so against independence every pair would look rare; among the pairs that do
    # cross, a partner met more often than its share is a complement.
    total = co.sum()
    rows, cols = co.sum(axis=1), co.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = np.where(co >= min_support, total * co / np.outer(rows, cols), 0.0)
    out[:] = np.nan_to_num(lift)
    added = np.isin(log.kind, (KIND_CODE["add_to_cart"], KIND_CODE["purchase"]))
    if added.any():
        per = sp.csr_matrix(_basket_matrix(log, added) @ cats).toarray()
        own = (per >= 2).sum(axis=0) >= min_support
        own[0] = False
        out[np.arange(n_cat), np.arange(n_cat)] = own.astype(np.float32)
    return out


@lru_cache(maxsize=1024)
def _category_reason(source: str, kind: str, label: str) -> Reason:
    return Reason(source, kind, label=label)


@dataclass(eq=False)
class ComplementsSource:
    copurchase: NeighbourTable
    category_lift: npt.NDArray[np.float32]  # (categories, categories)
    category: npt.NDArray[np.int32]
    category_names: tuple[str, ...]
    price: FloatArray
    popularity: FloatArray  # per item (Popularity.scores)
    config: ComplementsConfig
    coview: NeighbourTable  # co-occurrence: which partner items go with this anchor
    # Its proposal at depth k is ``top_k`` of scores that do not depend on k
    # (``candidates.base.shallower``: a deeper proposal gives the shallower one).
    prefix_exact: ClassVar[bool] = True
    name: str = "complements"
    _reasons: ReasonCache = field(init=False, repr=False, compare=False)
    _by_category: dict[int, IntArray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._reasons = ReasonCache(self.name, "bought_with")
        self._by_category = {}

    def popular_in(self, code: int) -> IntArray:
        """The category's items, most popular first (only those with any popularity)."""
        got = self._by_category.get(code)
        if got is None:
            n = min(len(self.category), len(self.popularity))
            items = np.flatnonzero((self.category[:n] == code) & (self.popularity[:n] > 0))
            got = items[np.argsort(-self.popularity[items], kind="stable")].astype(np.int64)
            self._by_category[code] = got
        return got

    def propose(self, ctx: RecContext, k: int) -> Proposal:
        anchors = np.array(
            [a for a in (*ctx.context_items, *ctx.cart_items) if a < len(self.category)],
            dtype=np.int64,
        )
        if not len(anchors):
            return Proposal.empty(self.name)
        banned = excluded(ctx.exclude)
        pair = gather(
            self.copurchase,
            anchors[anchors < self.copurchase.n_items],
            np.ones(int((anchors < self.copurchase.n_items).sum())),
            banned,
        )
        top = pair.scores.max(initial=0.0)
        pair_scores = 1.0 + (pair.scores / top if top > 0 else pair.scores)
        cat_items, cat_scores, cat_reasons = self._by_categories(anchors, banned, pair.items)
        items = np.concatenate([pair.items, cat_items])
        scores = np.concatenate([pair_scores, cat_scores])
        anchor_price = self._anchor_price(anchors)
        scores = scores * self._cheaper_first(items, anchor_price)
        keep = scores > 0
        order = top_k(np.where(keep, scores, -1.0), min(k, int(keep.sum())))
        every = (*self._reasons(pair.anchors), *cat_reasons)
        return Proposal(self.name, items[order], scores[order], picked(every, order.tolist()))

    def _coview(self, anchors: IntArray) -> FloatArray:
        """Per item, its co-view score with the anchors over the best (0 when none):
        which of a partner category's items go with *this* product."""
        out = np.zeros(len(self.category))
        table = self.coview
        known = anchors[anchors < table.n_items]
        got = gather(table, known, np.ones(len(known)))
        top = got.scores.max(initial=0.0)
        if top > 0:
            out[got.items[got.items < len(out)]] = (got.scores / top)[got.items < len(out)]
        return out

    def _anchor_price(self, anchors: IntArray) -> float:
        prices = self.price[anchors[anchors < len(self.price)]]
        known = prices[np.isfinite(prices) & (prices > 0)]
        return float(known.max()) if len(known) else float("nan")

    def _cheaper_first(self, items: IntArray, anchor_price: float) -> FloatArray:
        """The add-on price fit: 1 at ``addon_price`` x the anchor's price, ~0.61 at
        ``addon_band`` times that (or 1/band), 0 over ``max_price_ratio`` x the anchor,
        0.7 when a price is unknown."""
        c = self.config
        prices = self.price[items]
        fit = price_fit(prices, anchor_price * c.addon_price, c.addon_band)
        with np.errstate(divide="ignore", invalid="ignore"):
            too_dear = prices / anchor_price > c.max_price_ratio
        out: FloatArray = np.where(too_dear, 0.0, fit)
        return out

    def _by_categories(
        self, anchors: IntArray, banned: IntArray, taken: IntArray
    ) -> tuple[IntArray, FloatArray, list[Reason]]:
        """The anchors' own and partner categories' items (none of ``banned``, ``taken``
        or the anchors), their scores and each one's reason: ``goes_with`` its own
        category, ``browsed_with`` a partner's."""
        c = self.config
        cats = np.unique(self.category[anchors])
        cats = cats[(cats > 0) & (cats < self.category_lift.shape[0])]
        if not len(cats):
            return np.zeros(0, np.int64), np.zeros(0), []
        lift = self.category_lift[cats].max(axis=0).astype(np.float64)
        lift[cats] = 0.0
        partners = [int(p) for p in np.argsort(-lift)[: c.categories] if lift[p] > 1.0]
        own = [int(x) for x in cats if self.category_lift[x, x] > 0] if c.own_category else []
        if own:
            best = max((lift[p] for p in partners), default=1.0)
            lift[own] = c.own_category * best
            partners = [*own, *partners]
        if not partners:
            return np.zeros(0, np.int64), np.zeros(0), []
        best = max((lift[p] for p in partners), default=1.0)
        coview = self._coview(anchors)
        skip = np.zeros(len(self.category), dtype=bool)  # (the category's items are indices)
        for gone in (banned, taken, anchors):
            skip[gone[gone < len(skip)]] = True
        # Every partner at once: its most popular items not skipped, the first n of
        # them (n: per_category, own_items for an own category), as group ``of``.
        sizes = [min(c.per_category, c.own_items) if p in own else c.per_category for p in partners]
        offered = [self.popular_in(p)[: n * 3] for p, n in zip(partners, sizes, strict=True)]
        items = np.concatenate(offered)
        of = np.repeat(np.arange(len(partners)), [len(o) for o in offered])
        fresh = ~skip[items]
        items, of = items[fresh], of[fresh]
        rank = np.arange(len(items)) - np.searchsorted(of, of)  # within its group
        head = rank < np.asarray(sizes)[of]
        got, of = items[head], of[head]
        pop = self.popularity[got]
        top = np.zeros(len(partners))
        np.maximum.at(top, of, pop)  # each group's pop.max(initial=0.0)
        mine = top[of]
        fit = 0.5 * (pop / np.where(mine > 0, mine, 1.0)) + c.coview_weight * coview[got]
        weight = 0.9 * (lift[partners] / best)
        scores = weight[of] * (0.5 + fit) / (1.0 + c.coview_weight)
        reasons: list[Reason] = []
        counts = np.bincount(of, minlength=len(partners)).tolist()
        for p, count in zip(partners, counts, strict=True):
            kind = "goes_with" if p in own else "browsed_with"
            reasons += [_category_reason(self.name, kind, self.category_names[p])] * count
        return got, scores, reasons
