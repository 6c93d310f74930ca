"""The pipeline's own stages: the blend ranker, and the availability check and plain
arranger that stand in for a rulebook the store could not give yet.

The blend ranker is one implementation of the rank stage (the learned ranker,
``pipeline/learned.py``, is the other); it ranks whenever no learned ranker may
(degraded mode, a bundle without one, an experiment arm that switches it off).
"""

from __future__ import annotations

import numpy as np

from shelfwise.candidates.base import FloatArray, RecContext
from shelfwise.catalog import CatalogSnapshot
from shelfwise.pipeline.pool import Pool, Trace
from shelfwise.pipeline.ports import Arranged, Flow, Ranked, StageName
from shelfwise.serving.placements import Placement

SESSION_WINDOW = 10  # most recent session events that shape intent


class Availability:
    """The rules stage while no rulebook could be read: nothing unavailable (out of
    stock, inactive) is shown, nothing else is decided."""

    name: StageName = "safety"
    version: str | None = None

    def run(self, flow: Flow) -> Flow:
        return flow._replace(pool=availability(flow.pool, flow.snapshot, flow.trace))


def availability(pool: Pool, snapshot: CatalogSnapshot, trace: Trace) -> Pool:
    """The always-on safety check: nothing unavailable (out of stock, inactive) is shown."""
    ok = snapshot.available[pool.items]
    if ok.all():
        return pool
    trace.drop("unavailable", pool.items[~ok], snapshot, "out of stock or inactive")
    return pool.take(ok)


def session_affinity(ctx: RecContext, pool: Pool, snapshot: CatalogSnapshot) -> FloatArray:
    """Share of the session's recent views (recency-weighted) in each candidate's category,
    plus half that for its brand: the live intent of the session, in [0, 1.5]."""
    recent = ctx.session[-SESSION_WINDOW:]
    if not recent:
        return np.zeros(len(pool))
    seen = np.array([e.item for e in recent], dtype=np.int64)
    weights = 0.8 ** np.arange(len(seen))[::-1]
    weights /= weights.sum()
    cats = snapshot.category[seen]
    brands = snapshot.brand[seen]
    cand_cats = snapshot.category[pool.items]
    cand_brands = snapshot.brand[pool.items]
    same_cat = (cand_cats[:, None] == cats[None, :]) & (cats[None, :] != 0)
    same_brand = (cand_brands[:, None] == brands[None, :]) & (brands[None, :] != 0)
    out: FloatArray = same_cat @ weights + 0.5 * (same_brand @ weights)
    return out


class BlendRanker:
    """Expected value = engagement x (blend of engagement, revenue and margin weights).

    Engagement is the source score, lifted by agreement between sources and by
    the session's live intent; revenue is the price relative to the viewed
    product's (``r / (1 + r)``, bounded); margin is the margin band; the money
    terms together add at most ``money_cap`` x the engagement weight.
    """

    name: StageName = "rank"
    version: str | None = "blend-v1"

    def run(self, flow: Flow) -> Flow:
        ranked = self.rank(flow.ctx, flow.plan.placement, flow.pool, flow.snapshot)
        return flow._replace(ranked=ranked)

    def rank(
        self, ctx: RecContext, placement: Placement, pool: Pool, snapshot: CatalogSnapshot
    ) -> Ranked:
        w_eng, w_rev, w_margin = placement.objective.normalised()
        relevance = pool.score * (1.0 + 0.1 * (pool.hits - 1))
        session = session_affinity(ctx, pool, snapshot)
        engagement = relevance * (1.0 + session)
        price = snapshot.price[pool.items]
        price[np.isnan(price)] = 0.0  # a fresh array: fancy indexing copies
        ref = reference(ctx, snapshot, price)
        rel = price / ref if ref > 0 else np.zeros(len(price))
        revenue = rel / (1.0 + rel)  # bounded in [0, 1): 0.5 at the anchor's price
        band = snapshot.margin_band[pool.items].astype(np.float64)
        margin = np.where(band < 0, 0.5, (band + 1.0) / 3.0)
        # Money adds at most money_cap x the engagement weight: relevance leads.
        cap = placement.objective.money_cap * w_eng
        money = w_rev * revenue + w_margin * margin
        money = np.minimum(money, cap) if w_eng > 0 else money
        value = engagement * (w_eng + money)
        return Ranked(
            value,
            {
                "relevance": relevance,
                "session": relevance * session,
                "revenue": engagement * w_rev * revenue,
                "margin": engagement * w_margin * margin,
            },
        )


def reference(ctx: RecContext, snapshot: CatalogSnapshot, prices: FloatArray) -> float:
    """The price money is measured against: the viewed product's (else the cart's
    dearest), else the pool's median known price."""
    for group in (ctx.context_items, ctx.cart_items):
        known = snapshot.price[list(group)] if group else np.zeros(0)
        known = known[np.isfinite(known) & (known > 0)]
        if len(known):
            return float(known.max())
    positive = prices[prices > 0]
    return float(np.median(positive)) if len(positive) else 0.0


class PlainArranger:
    """Best value first, one item per variant group, exploration slots at the tail
    (the arrangement while no rulebook could be read)."""

    name: StageName = "arrange"
    version: str | None = None

    def run(self, flow: Flow) -> Flow:
        ranked = flow.ranked
        assert ranked is not None, "the rank stage runs first"
        share = exploration(flow.plan.placement, ranked)
        arranged = self.arrange(
            flow.pool, ranked, flow.k, share, flow.snapshot, flow.trace, flow.seed
        )
        return flow._replace(arranged=arranged)

    def arrange(
        self,
        pool: Pool,
        ranked: Ranked,
        k: int,
        share: float,
        snapshot: CatalogSnapshot,
        trace: Trace,
        seed: int,
    ) -> Arranged:
        order = np.argsort(-ranked.value, kind="stable")
        groups = snapshot.variant_group[pool.items[order]]
        grouped = groups != 0
        _, first = np.unique(groups[grouped], return_index=True)
        keep = ~grouped
        keep[np.flatnonzero(grouped)[first]] = True
        if not keep.all():
            dupes = pool.items[order[~keep]]
            trace.drop("variant_dedupe", dupes, snapshot, "another variant ranks higher")
            order = order[keep]
        return explore(order, k, share, seed)


def exploration(placement: Placement, ranked: Ranked) -> float:
    """The share of exploration slots the arrangement adds: none after a learned
    ranker, which explores (and logs propensities) itself."""
    return 0.0 if ranked.head is not None else placement.exploration


def explore(order: np.ndarray, k: int, share: float, seed: int) -> Arranged:
    """Give ``round(k x share)`` tail slots to items drawn uniformly from ranks k..3k.

    The propensity of an explored item is the chance it had to be drawn, so
    off-policy estimates can reweight the clicks it gets.
    """
    slots = min(round(k * share), max(len(order) - k, 0))
    head = order[:k]
    if slots == 0:
        return Arranged.plain(head)
    rng = np.random.default_rng(seed)
    window = order[k : 3 * k]
    drawn = rng.choice(len(window), size=slots, replace=False)
    final = np.concatenate([head[: k - slots], window[drawn]])
    explored = np.zeros(len(final), bool)
    explored[k - slots :] = True
    propensity = np.ones(len(final))
    propensity[k - slots :] = slots / len(window)
    return Arranged(final, explored, propensity)
