"""Buy again: what a person bought before, scored by how due it is on its repurchase cycle.

An item's cycle is the median, over people who bought it on two or more days,
of their mean interval between purchases (the global median when nobody did).
An item is most likely again when the time since its last purchase is near its
cycle; ``floor`` keeps items not yet due in the list, below due ones.

Only what the store's shoppers do buy again is proposed: an item's repeat rate
(:func:`fit_repeat`, the share of its purchases that the same person followed
with another) must reach ``min_repeat``. A store of one-off goods (a saucepan,
a vase) then gets no "Buy it again" at all, a store of staples keeps it.

The rest of what a person bought, the one-off goods they own (:meth:`BuyAgainSource.owned`),
no source proposes to them: the request's context leaves them out of every
placement's candidates (``pipeline.stages.build_context``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.base import IntArray, Proposal, Reason, RecContext
from shelfwise.candidates.config import BuyAgainConfig
from shelfwise.candidates.history import PersonHistory
from shelfwise.candidates.log import InteractionLog
from shelfwise.candidates.neighbours import drop_excluded, excluded, top_k

DAY = 86400.0
NO_ITEMS: IntArray = np.zeros(0, dtype=np.int64)


def purchase_days(log: InteractionLog) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The distinct (person x item, day) of the purchases, sorted: the key is
    ``person * n_items + item`` (several lines of one day are one purchase)."""
    buys = log.purchases()
    day = np.floor(buys.at / DAY)
    key = buys.person * buys.n_items + buys.item
    order = np.lexsort((day, key))
    key, day = key[order], day[order]
    first = np.r_[True, (key[1:] != key[:-1]) | (day[1:] != day[:-1])] if len(key) else key
    return key[first.astype(bool)], day[first.astype(bool)]


def fit_repeat(
    log: InteractionLog, category: npt.NDArray[np.int32], prior: float
) -> npt.NDArray[np.float64]:
    """The repeat rate of every item: the share of its purchases that the same person
    followed with another purchase of it (on a later day).

    A person who bought an item on n days made n purchases of it, n - 1 of them
    followed by another. Rates are shrunk toward their parent's, ``prior``
    purchases' worth: an item's toward its category's, a category's toward the
    store's (``category[i]`` is item i's category code).
    """
    key, _ = purchase_days(log)
    pairs, days = np.unique(key, return_counts=True)
    item = pairs % max(log.n_items, 1)
    bought = np.bincount(item, weights=days, minlength=log.n_items)
    again = np.bincount(item, weights=days - 1, minlength=log.n_items)
    store = again.sum() / bought.sum() if bought.sum() else 0.0
    n_cat = int(category.max()) + 1 if len(category) else 1
    cat_bought = np.bincount(category, weights=bought, minlength=n_cat)
    cat_again = np.bincount(category, weights=again, minlength=n_cat)
    cat_rate = (cat_again + prior * store) / (cat_bought + prior)
    return np.asarray((again + prior * cat_rate[category]) / (bought + prior), dtype=np.float64)


def fit_cycles(log: InteractionLog) -> npt.NDArray[np.float64]:
    """Repurchase cycle of every item in seconds."""
    key, day = purchase_days(log)
    n_items = max(log.n_items, 1)
    cycles = np.full(log.n_items, np.nan)
    if len(key) == 0:
        return np.full(log.n_items, 30 * DAY)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], len(key)]
    n = ends - starts
    multi = n >= 2
    span = day[ends[multi] - 1] - day[starts[multi]]
    mean_gap = span / (n[multi] - 1) * DAY
    item = key[starts[multi]] % n_items
    if len(item):
        order = np.lexsort((mean_gap, item))
        item, mean_gap = item[order], mean_gap[order]
        s = np.flatnonzero(np.r_[True, item[1:] != item[:-1]])
        e = np.r_[s[1:], len(item)]
        cycles[item[s]] = mean_gap[(s + e - 1) // 2]
        fallback = float(np.median(mean_gap))
    else:
        fallback = 30 * DAY
    return np.where(np.isnan(cycles), fallback, cycles)


@dataclass(eq=False)
class BuyAgainSource:
    history: PersonHistory
    cycles: npt.NDArray[np.float64]
    repeat: npt.NDArray[np.float64]  # each item's repeat rate (all ones: no gate)
    config: BuyAgainConfig
    # Its proposal at depth k is ``top_k`` of scores that do not depend on k
    # (``candidates.base.shallower``: a deeper proposal gives the shallower one).
    prefix_exact: ClassVar[bool] = True
    name: str = "buy_again"

    def owned(self, person_id: str | None) -> IntArray:
        """The items ``person_id`` bought whose repeat rate is below ``min_repeat``:
        one-off goods they own (a saucepan bought is not wanted again), sorted."""
        p = self.history.index(person_id)
        if p is None:
            return NO_ITEMS
        s = self.history.row(p)
        items = self.history.items[s]
        return items[(self.history.bought[s] > 0) & ~self._rebought(items)]

    def seen(self, person_id: str | None) -> IntArray:
        """Every item ``person_id`` interacted with (viewed, carted or bought), sorted:
        what a new-items shelf leaves out."""
        p = self.history.index(person_id)
        return NO_ITEMS if p is None else self.history.items[self.history.row(p)]

    def _rebought(self, items: IntArray) -> npt.NDArray[np.bool_]:
        """Whether the store's shoppers re-buy each item (its repeat rate reaches
        ``min_repeat``)."""
        rate = self.repeat[np.minimum(items, len(self.repeat) - 1)]
        out: npt.NDArray[np.bool_] = rate >= self.config.min_repeat
        return out

    def propose(self, ctx: RecContext, k: int) -> Proposal:
        p = self.history.index(ctx.person_id)
        if p is None:
            return Proposal.empty(self.name)
        s = self.history.row(p)
        bought = self.history.bought[s]
        items = self.history.items[s]
        mine = (bought > 0) & self._rebought(items)
        items = items[mine]
        elapsed = np.maximum(ctx.now.timestamp() - self.history.last_at[s][mine], 0.0) + DAY
        cycle = self.cycles[np.minimum(items, len(self.cycles) - 1)] + DAY
        due = np.exp(-0.5 * (np.log(elapsed / cycle) / self.config.spread) ** 2)
        due = np.where(elapsed < cycle, np.maximum(due, self.config.floor), due)
        recency = np.exp2(-elapsed / (DAY * self.config.half_life_days))
        scores = np.log1p(bought[mine]) * (due + recency)
        keep = drop_excluded(items, excluded(ctx.exclude))
        items, scores = items[keep], scores[keep]
        top = top_k(scores, k)
        reason = Reason(self.name, "buy_again")
        return Proposal(self.name, items[top], scores[top], (reason,) * len(top))
