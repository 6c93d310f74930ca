"""Online replay per placement: product pages and the cart, governed shelfwise
against a co-purchase baseline and popularity, on the same simulated sessions.

For each server placement a replay maps the simulator's pages to it:
``product_similar`` and ``product_bought_with`` serve every product-page slate,
``cart`` every slate shown while the shopper has a cart (the rest as in the
ordinary replay: home slates from ``home``, product pages from
``product_similar``). Three policies play the same traffic with paired random
streams (``SessionRunner.streams``): the governed store's request path
(:class:`~shelfwise.simulate.replay.PipelinePolicy`), co-purchase only
(:class:`CoPurchasePolicy`: what is bought in the same orders as the viewed
item and the cart) and popularity only, both from the same history; and the
same two under the merchant's rules (:class:`RuleAbiding`: their lists with
what the rulebook forbids left out), which is the fair comparison for what the
ranking earns, the rule-blind one showing what the rules cost besides.

A placement's money is what its slates sold: the order lines carrying the
``rec_id`` of one of its slates, as revenue (price paid x quantity) and margin
(less the simulator's unit cost), per session (``sold``); and the truth's
expected revenue and margin of the same slates, per session (``expected``:
what the shoppers' click and purchase probabilities make of them, without the
luck of a few purchases; a few hundred orders carry a rec_id in a replay of
thousands of sessions, so ``sold`` is the noisier of the two). Ratios between
policies carry a paired bootstrap interval over the sessions. On product
pages, each policy's slates are also judged as a merchant would
(``monitoring.coherence``, against the viewed product): the same category,
the price ratio, the share of slates the most shown item takes, coverage.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from shelfwise.monitoring.coherence import ServedSlate, coherence
from shelfwise.simulate.online import slate_expected_money
from shelfwise.simulate.policy import (
    Policy,
    RequestContext,
    ScoredPolicy,
    Slate,
    _exclusions,
    _RecIds,
)
from shelfwise.simulate.replay import (
    AuditedPolicy,
    Governance,
    PipelinePolicy,
    Replay,
    ReplayStore,
    WrappedPolicy,
    replay_sessions,
)
from shelfwise.simulate.sessions import Event
from shelfwise.simulate.world import World


@dataclass(frozen=True)
class PlacementPlan:
    """Which simulator page a server placement serves in its replay."""

    placement: str  # the server's placement
    page: str  # the simulator's page kind whose slates it serves: product_page | cart
    pages: Mapping[str, str]  # simulator page -> server placement, for the governed store
    cart_pages: bool = False


PLANS: dict[str, PlacementPlan] = {
    "product_similar": PlacementPlan(
        "product_similar", "product_page", {"product_page": "product_similar"}
    ),
    "product_bought_with": PlacementPlan(
        "product_bought_with", "product_page", {"product_page": "product_bought_with"}
    ),
    "cart": PlacementPlan("cart", "cart", {"product_page": "product_similar"}, cart_pages=True),
}


class CoPurchasePolicy:
    """Co-purchase only: products ranked by how many orders of the history hold
    them together with the viewed item or an item of the cart (summed over those
    anchors), popularity after them; no rules."""

    def __init__(self, world: World, events: Sequence[Event], popular: ScoredPolicy) -> None:
        self.name = "co_purchase"
        self.popular = popular
        self._rank = {p: r for r, p in enumerate(popular.ranked)}
        self._pairs: dict[str, Counter[str]] = defaultdict(Counter)
        for e in events:
            if e["type"] != "purchase":
                continue
            items = {ln["product_id"] for ln in e["lines"] if ln["product_id"] in world.index}
            for a in items:
                self._pairs[a].update(items - {a})
        self._ids = _RecIds("rec-co_purchase")

    def recommend(self, ctx: RequestContext) -> Slate:
        skip = _exclusions(ctx)
        counts: Counter[str] = Counter()
        for anchor in skip:
            counts.update(self._pairs.get(anchor, Counter()))
        last = len(self._rank)
        ranked = sorted(
            (p for p in counts if p not in skip),
            key=lambda p: (-counts[p], self._rank.get(p, last)),
        )[: ctx.k]
        for p in self.popular.ranked:
            if len(ranked) >= ctx.k:
                break
            if p not in skip and p not in counts:
                ranked.append(p)
        return Slate(self._ids.next(), tuple(ranked))


class RuleAbiding(WrappedPolicy):
    """Wraps a policy blind to the rules: its slate is its list (``depth`` times as
    deep) with what the governance forbids left out, cut to the slate size (a
    merchant's rules in force for a simple recommender too)."""

    def __init__(
        self, policy: Policy, world: World, governance: Governance, depth: int = 5
    ) -> None:
        super().__init__(policy)
        self.name = f"{policy.name}_ruled"
        self.world = world
        self.governance = governance
        self.depth = depth

    def recommend(self, ctx: RequestContext) -> Slate:
        deep = self.policy.recommend(replace(ctx, k=ctx.k * self.depth))
        kept = self.governance.abiding(self.world, ctx, deep.product_ids, ctx.k)
        return replace(deep, product_ids=kept)


@dataclass(frozen=True)
class PageMoney:
    """Per session: revenue and margin of the order lines a page kind's slates sold."""

    revenue: np.ndarray
    margin: np.ndarray


def page_money(world: World, run: Replay, sessions: int, page: str) -> PageMoney:
    """What ``page`` slates sold in each session of ``run`` (lines carrying their rec_id)."""
    on_page = {
        e["rec_id"] for e in run.events if e["type"] == "rec_impression" and e["placement"] == page
    }
    revenue, margin = np.zeros(sessions), np.zeros(sessions)
    cost = world.catalog.cost
    for e in run.events:
        if e["type"] != "purchase":
            continue
        n = int(str(e["session_id"]).rsplit("-s", 1)[1]) - 1
        for ln in e["lines"]:
            if ln.get("rec_id") not in on_page:
                continue
            paid = float(ln["quantity"]) * float(ln["unit_price"])
            i = world.index.get(str(ln["product_id"]).strip())
            revenue[n] += paid
            margin[n] += paid - (float(ln["quantity"]) * float(cost[i]) if i is not None else 0.0)
    return PageMoney(revenue, margin)


@dataclass(frozen=True)
class Interval:
    """A ratio of means with its paired bootstrap interval."""

    ratio: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.__dict__.items()}


def bootstrap_ratio(
    treatment: np.ndarray, control: np.ndarray, *, draws: int = 2_000, seed: int = 0
) -> Interval:
    """mean(treatment) / mean(control), with a 95% percentile interval from
    resampling the paired sessions (``draws`` resamples, seeded)."""
    n = len(treatment)
    c = float(control.mean()) if n else 0.0
    ratio = float(treatment.mean()) / c if c > 0 else float("nan")
    rng = np.random.default_rng(seed)
    ratios = np.empty(draws)
    for start in range(0, draws, 250):  # 250 resamples at a time: bounded memory
        idx = rng.integers(0, n, size=(min(250, draws - start), n))
        cs = control[idx].mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios[start : start + len(idx)] = treatment[idx].mean(axis=1) / cs
    finite = ratios[np.isfinite(ratios)]
    if not len(finite):
        return Interval(ratio, float("nan"), float("nan"))
    low, high = np.quantile(finite, [0.025, 0.975])
    return Interval(ratio, float(low), float(high))


class PageTruth(WrappedPolicy):
    """Wraps a policy: the truth's expected revenue and margin of the slates it
    shows on one page kind, summed per session, and the slates shown on product
    pages with their viewed product."""

    def __init__(self, policy: Policy, world: World, page: str, sessions: int) -> None:
        super().__init__(policy)
        self.world = world
        self.page = page
        self.money = PageMoney(np.zeros(sessions), np.zeros(sessions))
        self.viewed: list[ServedSlate] = []

    def recommend(self, ctx: RequestContext) -> Slate:
        slate = self.policy.recommend(ctx)
        if ctx.placement == self.page:
            n = int(ctx.session_id.rsplit("-s", 1)[1]) - 1
            revenue, margin = slate_expected_money(self.world, ctx, slate.product_ids)
            self.money.revenue[n] += revenue
            self.money.margin[n] += margin
            if ctx.item is not None:
                items = [{"product_id": pid} for pid in slate.product_ids]
                self.viewed.append(ServedSlate(ctx.item, items, personal=True))
        return slate


def page_coherence(world: World, slates: Sequence[ServedSlate]) -> dict[str, Any]:
    """Coherence of product-page slates against the simulated catalog (every slate
    carries a session: personal claims are not counted)."""
    records = world.catalog.records
    category = {r["product_id"]: r.get("category_path") for r in records}
    price = {r["product_id"]: r.get("price") for r in records}
    return coherence(slates, category, price, len(records)).as_dict(claims=False)


@dataclass
class PlacementRun:
    """One placement's replay: every policy's money on its page, and the comparisons."""

    plan: PlacementPlan
    sessions: int
    sold: dict[str, PageMoney]  # policy -> per session: what the page's slates sold
    expected: dict[str, PageMoney]  # policy -> per session: the truth's expectation of it
    slates: dict[str, int]  # policy -> slates shown on the page
    violations: dict[str, int]  # policy -> rule violations over all its slates
    seconds: dict[str, float]
    # policy -> its product-page slates' coherence (product placements only)
    coherence: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def baselines(self) -> list[str]:
        """The policies the governed store is compared with (every other one)."""
        return [p for p in self.sold if p != "governed"]

    def per_session(self, policy: str, what: str, *, sold: bool = False) -> float:
        money = (self.sold if sold else self.expected)[policy]
        return float(getattr(money, what).mean())

    def ratio(
        self, what: str, policy: str, baseline: str, *, sold: bool = False, seed: int = 0
    ) -> Interval:
        m = self.sold if sold else self.expected
        return bootstrap_ratio(getattr(m[policy], what), getattr(m[baseline], what), seed=seed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "placement": self.plan.placement,
            "page": self.plan.page,
            "sessions": self.sessions,
            "policies": {
                p: {
                    "slates": self.slates[p],
                    "violations": self.violations[p],
                    **{
                        f"{kind}_{what}_per_session": round(
                            self.per_session(p, what, sold=kind == "sold"), 4
                        )
                        for kind in ("expected", "sold")
                        for what in ("revenue", "margin")
                    },
                    **({"coherence": self.coherence[p]} if p in self.coherence else {}),
                }
                for p in self.sold
            },
            "governed_vs": {
                base: {
                    f"{kind}_{what}": self.ratio(
                        what, "governed", base, sold=kind == "sold"
                    ).as_dict()
                    for kind in ("expected", "sold")
                    for what in ("revenue", "margin")
                }
                for base in self.baselines
            },
            "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
        }


def placement_replay(
    store: ReplayStore, placement: str, sessions: int, *, seed: int = 0
) -> PlacementRun:
    """The governed store, co-purchase and popularity on the same ``sessions``,
    with ``placement`` serving its page (:data:`PLANS`)."""
    plan = PLANS[placement]
    world, shop = store.world, store.shop
    traffic = store.traffic(sessions, seed)
    co_purchase = CoPurchasePolicy(world, store.history, store.popular)
    policies: tuple[Policy, ...] = (
        PipelinePolicy(lambda: shop.recommender, name="governed", placements=plan.pages),
        co_purchase,
        store.popular,
        RuleAbiding(co_purchase, world, store.governance),
        RuleAbiding(store.popular, world, store.governance),
    )
    run = PlacementRun(plan, sessions, {}, {}, {}, {}, {})
    for policy in policies:
        truth = PageTruth(policy, world, plan.page, sessions)
        audited = AuditedPolicy(truth, world, store.governance)
        began = time.perf_counter()
        prefix = f"replay{seed}-{placement}-{policy.name}"
        played = replay_sessions(
            world, audited, traffic, prefix, cart_pages=plan.cart_pages, paired=True
        )
        run.seconds[policy.name] = time.perf_counter() - began
        run.sold[policy.name] = page_money(world, played, sessions, plan.page)
        run.expected[policy.name] = truth.money
        run.slates[policy.name] = audited.audit.by_page[plan.page]
        run.violations[policy.name] = audited.audit.violation_count
        if plan.page == "product_page":
            run.coherence[policy.name] = page_coherence(world, truth.viewed)
    return run
