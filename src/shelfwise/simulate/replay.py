"""Online replay: the same simulated sessions served by different policies.

Each session of a replay is fixed by ``(seed, index)``: the shopper, their
device, the start time and every random draw of the session, so two policies
see the same traffic (common random numbers) and differ only by what their
slates make the shoppers do. Session ``i`` of one policy is paired with
session ``i`` of the other, which is what makes the confidence interval of the
revenue ratio tight.

:class:`Governance` is the rulebook a replay runs under, written once as rule
bodies for the server and once as an independent check that every served
slate is held against (from the simulator's own catalog columns, not the rules
engine), so "zero rule violations" is measured, not assumed.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from shelfwise.experiments.stats import Moments
from shelfwise.simulate.defects import DefectLog
from shelfwise.simulate.history import HOUR_CDF, finalise, simulate
from shelfwise.simulate.online import slate_expected_revenue
from shelfwise.simulate.policy import (
    SERVER_PLACEMENTS,
    Policy,
    RequestContext,
    ScoredPolicy,
    Slate,
    popularity_policy,
)
from shelfwise.simulate.sessions import DAY_MS, Event, SessionRunner
from shelfwise.simulate.shop import OpenShop, Shop
from shelfwise.simulate.world import SimulationSpec, World, build_world

if TYPE_CHECKING:
    from shelfwise.pipeline.recommender import Recommender


@dataclass(frozen=True)
class Governance:
    """A merchant's rulebook for a replay, and a check of slates against it."""

    suppressed_brands: tuple[str, ...] = ()
    max_sla_days: int = 10
    premium_prefix: str = "decor/premium"
    premium_forbids: tuple[str, ...] = ("replacement-part", "utility")
    one_per_variant_group: bool = True

    def rules(self) -> list[dict[str, Any]]:
        """The rule bodies (``POST /v1/rules`` / ``RuleStore.save``). Out-of-stock items
        need no rule: the pipeline never serves them."""
        out: list[dict[str, Any]] = [
            {
                "id": "no-slow-shipping",
                "type": "exclude",
                "reason": f"never recommend items that ship in more than {self.max_sla_days} days",
                "when": {"attr": "sla_days", "op": "gt", "value": self.max_sla_days},
            },
            {
                "id": "premium-decor-no-parts",
                "type": "pairing",
                "reason": "premium decor pages show no replacement parts or utility items",
                "scope": {"placements": ["product_page"]},
                "context": {"attr": "category", "op": "prefix", "value": self.premium_prefix},
                "forbid": {"attr": "tags", "op": "in", "value": list(self.premium_forbids)},
            },
        ]
        if self.suppressed_brands:
            out.append(
                {
                    "id": "paused-brands",
                    "type": "suppress",
                    "reason": "brands paused by the merchant",
                    "attribute": "brand",
                    "values": list(self.suppressed_brands),
                }
            )
        if self.one_per_variant_group:
            out.append(
                {
                    "id": "one-per-variant-group",
                    "type": "dedupe_variants",
                    "reason": "one colour of a product per slate",
                }
            )
        return out

    def violations(
        self, world: World, ctx: RequestContext, product_ids: Sequence[str]
    ) -> list[str]:
        """One code per offending item (an item can break several rules)."""
        check = self._checker(world, ctx)
        return [code for pid in product_ids for code in check(pid)]

    def abiding(
        self, world: World, ctx: RequestContext, product_ids: Sequence[str], k: int
    ) -> tuple[str, ...]:
        """The first ``k`` of ``product_ids`` that break no rule, in their order, each
        checked against those kept before it: what a policy blind to the rules
        serves once they are in force."""
        check = self._checker(world, ctx)
        kept: list[str] = []
        for pid in product_ids:
            if len(kept) == k:
                break
            if not check(pid, keep_if_clean=True):
                kept.append(pid)
        return tuple(kept)

    def _checker(self, world: World, ctx: RequestContext) -> Callable[..., list[str]]:
        """A check of one item after those checked before it in a slate: its codes.
        With ``keep_if_clean`` an offending item is not counted as shown (its variant
        group stays free, its id may come again)."""
        cat = world.catalog
        stocked = world.calendar.available(world.day_of(ctx.now))
        brands = set(self.suppressed_brands)
        context = [world.index[p] for p in (ctx.item, *ctx.cart) if p and p in world.index]
        premium = ctx.placement == "product_page" and any(
            str(cat.records[i]["category_path"]).startswith(self.premium_prefix) for i in context
        )
        seen: set[str] = set()
        # dedupe_variants (include_context) also keeps the viewed item's variants out.
        viewed = world.index.get(ctx.item) if ctx.item else None
        groups = (
            {int(cat.group[viewed])} if self.one_per_variant_group and viewed is not None else set()
        )

        def check(pid: str, keep_if_clean: bool = False) -> list[str]:
            i = world.index.get(pid)
            if i is None:
                return ["unknown_product"]
            record = cat.records[i]
            checks = {
                "duplicate": pid in seen,
                "viewed_item": pid == ctx.item,
                "in_cart": pid in ctx.cart,
                "out_of_stock": not bool(stocked[i]),
                "suppressed_brand": record["brand"] in brands,
                "slow_shipping": int(record["shipping_sla_days"]) > self.max_sla_days,
                "pairing": premium and bool(set(record["tags"]) & set(self.premium_forbids)),
                "variant_group": self.one_per_variant_group and int(cat.group[i]) in groups,
            }
            codes = [code for code, broken in checks.items() if broken]
            if not (keep_if_clean and codes):
                seen.add(pid)
                groups.add(int(cat.group[i]))
            return codes

        return check


@dataclass
class Audit:
    """What a policy served during a replay, checked slate by slate."""

    slates: int = 0
    items: int = 0
    empty: int = 0
    violations: Counter[str] = field(default_factory=Counter)
    expected_revenue: float = 0.0  # the truth's value of the slates served
    by_page: Counter[str] = field(default_factory=Counter)  # slates per page kind

    @property
    def violation_count(self) -> int:
        return sum(self.violations.values())


class WrappedPolicy:
    """A policy around another: its name, and the events written passed on to it
    when it observes them (``observe``)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.name = policy.name

    def observe(self, event: Event) -> None:
        observe = getattr(self.policy, "observe", None)
        if callable(observe):
            observe(event)


class AuditedPolicy(WrappedPolicy):
    """Wraps a policy: every slate it serves is valued by the truth and checked
    against the governance."""

    def __init__(self, policy: Policy, world: World, governance: Governance) -> None:
        super().__init__(policy)
        self.world = world
        self.governance = governance
        self.audit = Audit()

    def recommend(self, ctx: RequestContext) -> Slate:
        slate = self.policy.recommend(ctx)
        a = self.audit
        a.slates += 1
        a.items += len(slate.product_ids)
        a.empty += not slate.product_ids
        a.violations.update(self.governance.violations(self.world, ctx, slate.product_ids))
        a.expected_revenue += slate_expected_revenue(self.world, ctx, slate.product_ids)
        a.by_page[ctx.placement] += 1
        return slate


class PipelinePolicy:
    """The in-process shelfwise request path as a simulator policy: what ``GET
    /v1/recommendations`` would answer, without HTTP.

    It is the store's own :class:`~shelfwise.pipeline.Recommender` (the served
    :class:`~shelfwise.pipeline.flow.Pipeline`: the placement's sources, the
    rulebook in force, the learned ranker with the placement's objective, the
    arrangement), asked as a storefront asks, and fed the session's events as
    the ingestion path feeds them to the live session state (:meth:`observe`),
    so the session sources see what the shopper did. Slate ids come from the
    replay's clock and a fixed tag, so the exploration they draw is the same on
    every run."""

    def __init__(
        self,
        recommender: Callable[[], Recommender],
        name: str = "governed",
        placements: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self._recommender = recommender
        self.placements = dict(SERVER_PLACEMENTS if placements is None else placements)
        self._now_ms = 0
        self._seeded: Recommender | None = None

    def _serving(self) -> Recommender:
        from shelfwise.pipeline.recommender import RecIds

        rec = self._recommender()
        if rec is not self._seeded:
            tag = hashlib.blake2b(self.name.encode(), digest_size=5).hexdigest()
            rec.rec_ids = RecIds(tag=tag, clock=lambda: self._now_ms)
            self._seeded = rec
        return rec

    def observe(self, event: Event) -> None:
        """A written event reaches the live session, as ingestion hands it on
        (an event the contract refuses is quarantined there: skipped here)."""
        from pydantic import ValidationError

        from shelfwise.contracts.events import parse_event
        from shelfwise.serving.session import SESSION_TYPES

        if event["type"] not in SESSION_TYPES:
            return
        at = datetime.fromtimestamp(int(event["occurred_at"]) / 1000, UTC)
        try:
            parsed = parse_event({**event, "occurred_at": at})
        except ValidationError:
            return
        self._serving().sessions.observe([parsed])

    def recommend(self, ctx: RequestContext) -> Slate:
        from shelfwise.pipeline import RecommendRequest

        req = RecommendRequest(
            placement=self.placements.get(ctx.placement, ctx.placement),
            person=ctx.customer_id or ctx.anonymous_id,
            session=ctx.session_id,
            item=(ctx.item,) if ctx.item else (),
            cart=ctx.cart,
            k=ctx.k,
        )
        self._now_ms = int(ctx.now.timestamp() * 1000)
        out = self._serving().recommend(req, ctx.now, record=False)
        experiment = out.get("experiment") or {}
        return Slate(
            str(out["rec_id"]),
            tuple(str(i["product_id"]) for i in out["items"]),
            experiment.get("experiment_id"),
            experiment.get("arm"),
        )


def history_popularity(world: World, events: Sequence[Event]) -> ScoredPolicy:
    """Popularity only, as a store would compute it from its own events: units
    sold, ties broken by product views (ids that do not join count for nothing)."""
    score = np.zeros(world.catalog.n)
    for e in events:
        if e["type"] == "purchase":
            for line in e["lines"]:
                i = world.index.get(line["product_id"])
                if i is not None:
                    score[i] += line["quantity"]
        elif e["type"] == "product_view":
            i = world.index.get(e["product_id"])
            if i is not None:
                score[i] += 0.01
    return popularity_policy(world.ids, score)


def governed_store(
    open_shop: OpenShop,
    world: World,
    history: Sequence[Event],
    governance: Governance,
    *,
    with_ranker: bool = True,
    batch_size: int = 2_000,
) -> Shop:
    """A shelfwise store the way a merchant sets one up: the catalog, the history
    through the ingestion path, the rulebook, then a trained (and loaded) bundle."""
    from shelfwise.rules.model import parse_rule
    from shelfwise.training.job import train

    shop = open_shop()
    try:
        shop.catalog.upsert(world.catalog.products)
        for start in range(0, len(history), batch_size):
            shop.ingestor.ingest(history[start : start + batch_size], source="simulator")
        for body in governance.rules():
            shop.rules.store.save(parse_rule(body), who="replay", why="the replay's rulebook")
        train(shop, force=True, with_ranker=with_ranker)
        shop.load_bundle()
    except BaseException:
        shop.close()
        raise
    return shop


@dataclass(frozen=True)
class Traffic:
    """The sessions of a replay: who, on which device, when (ms since the epoch)."""

    people: np.ndarray
    devices: np.ndarray
    starts: np.ndarray
    seed: int

    def __len__(self) -> int:
        return len(self.people)


def draw_traffic(world: World, sessions: int, seed: int, first_day: int, days: int = 1) -> Traffic:
    """``sessions`` sessions from people drawn by activity, on ``days`` days from
    ``first_day``, at hours following the store's day curve, in time order."""
    rng = np.random.default_rng([seed, 11])
    people = world.people
    who = rng.choice(people.n, size=sessions, p=people.activity / people.activity.sum())
    day = first_day + rng.integers(0, days, size=sessions)
    starts = (
        world.start_ms
        + day * DAY_MS
        + np.searchsorted(HOUR_CDF, rng.random(sessions)) * 3_600_000
        + rng.integers(0, 3_600_000, size=sessions)
    )
    devices = np.array(
        [
            0
            if len(people.devices[p]) == 1 or u < 0.67
            else 1 + int(v * (len(people.devices[p]) - 1))
            for p, u, v in zip(who, rng.random(sessions), rng.random(sessions), strict=True)
        ]
    )
    order = np.argsort(starts, kind="stable")
    return Traffic(who[order], devices[order], starts[order], seed)


@dataclass
class Replay:
    """One policy's run of a :class:`Traffic`: revenue and orders per session."""

    policy: str
    revenue: np.ndarray
    orders: np.ndarray
    events: list[Event]  # time-ordered, contract-v1 dicts (ready to ingest)
    audit: Audit | None = None

    @property
    def revenue_per_session(self) -> float:
        return float(self.revenue.mean()) if len(self.revenue) else math.nan

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "policy": self.policy,
            "sessions": len(self.revenue),
            "revenue_per_session": round(self.revenue_per_session, 4),
            "orders": int(self.orders.sum()),
            "events": len(self.events),
        }
        if self.audit is not None:
            a = self.audit
            out |= {
                "slates": a.slates,
                "empty_slates": a.empty,
                "expected_revenue_per_slate": round(a.expected_revenue / max(a.slates, 1), 4),
                "violations": a.violation_count,
                "violations_by_rule": dict(sorted(a.violations.items())),
            }
        return out


def replay_sessions(
    world: World,
    policy: Policy,
    traffic: Traffic,
    prefix: str = "",
    *,
    cart_pages: bool = False,
    paired: bool = False,
) -> Replay:
    """Play every session of ``traffic`` with ``policy`` showing the slates
    (``cart_pages``: a slate shown while the shopper has a cart is a ``cart`` one).

    Session ``i`` draws from the stream ``(seed, 12, i)``; ``paired``, each of its
    pages from a stream of its own (``SessionRunner.streams``: what two policies
    compared session by session want).
    A policy with an ``observe(event)`` method sees every event as it is written.
    The shoppers' devices are restored afterwards, so the next policy meets the
    same cookies."""
    saved = copy.deepcopy(world.people.devices)
    prefix = prefix or f"replay{traffic.seed}-{policy.name}"
    observe = getattr(policy, "observe", None)
    runner = SessionRunner(
        world,
        policy,
        np.random.default_rng(0),
        prefix,
        DefectLog(world.spec.defects),
        listener=observe if callable(observe) else None,
    )
    runner.cart_pages = cart_pages
    try:
        for i, (person, dev, start) in enumerate(
            zip(traffic.people, traffic.devices, traffic.starts, strict=True)
        ):
            runner.rng = np.random.default_rng([traffic.seed, 12, i])
            runner.streams = (traffic.seed, 12, i) if paired else None
            runner.run(int(person), int(dev), int(start))
    finally:
        world.people.devices = saved
    revenue = np.zeros(len(traffic))
    orders = np.zeros(len(traffic), dtype=np.int64)
    for n, total in _purchases_by_session(runner.events, prefix).items():
        revenue[n] = total[0]
        orders[n] = total[1]
    audit = policy.audit if isinstance(policy, AuditedPolicy) else None
    return Replay(policy.name, revenue, orders, finalise(runner.events), audit)


def _purchases_by_session(
    events: Sequence[tuple[int, int, Event]], prefix: str
) -> dict[int, tuple[float, int]]:
    """Session index (0-based, in play order) -> (revenue, orders)."""
    out: dict[int, list[float]] = defaultdict(lambda: [0.0, 0])
    cut = len(f"{prefix}-s")
    for _, _, e in events:
        if e["type"] == "purchase":
            cell = out[int(e["session_id"][cut:]) - 1]
            cell[0] += float(e["revenue"])
            cell[1] += 1
    return {k: (v[0], int(v[1])) for k, v in out.items()}


@dataclass(frozen=True)
class PairedRatio:
    """Mean of ``treatment`` over mean of ``control`` on paired sessions, with a
    delta-method confidence interval (the pairs' covariance included)."""

    treatment: float
    control: float
    ratio: float
    low: float
    high: float
    diff: float
    diff_low: float
    diff_high: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def paired_ratio(treatment: np.ndarray, control: np.ndarray, alpha: float = 0.05) -> PairedRatio:
    m = Moments.of(("t", "c"), np.column_stack([treatment, control]))
    t, c, n = m.mean("t"), m.mean("c"), m.n
    z = NormalDist().inv_cdf(1 - alpha / 2)
    se_diff = math.sqrt(max(m.var("t") + m.var("c") - 2 * m.cov("t", "c"), 0.0) / n)
    ratio = t / c if c > 0 else math.nan
    # Var(t/c) ~ (Var t - 2 r Cov(t, c) + r^2 Var c) / c^2 (sample means, r = t/c)
    var_ratio = (m.var("t") - 2 * ratio * m.cov("t", "c") + ratio**2 * m.var("c")) / (n * c * c)
    se_ratio = math.sqrt(max(var_ratio, 0.0))
    return PairedRatio(
        t,
        c,
        ratio,
        ratio - z * se_ratio,
        ratio + z * se_ratio,
        t - c,
        t - c - z * se_diff,
        t - c + z * se_diff,
        n,
    )


@dataclass
class OnlineReplay:
    """Governed shelfwise against popularity only on the same simulated sessions."""

    spec: SimulationSpec
    history_days: int
    history_events: int
    governance: Governance
    governed: Replay
    popularity: Replay
    revenue: PairedRatio
    setup_seconds: float
    replay_seconds: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.model_dump(mode="json", exclude={"defects"}),
            "history_days": self.history_days,
            "history_events": self.history_events,
            "rules": [r["id"] for r in self.governance.rules()],
            "suppressed_brands": list(self.governance.suppressed_brands),
            "governed": self.governed.as_dict(),
            "popularity": self.popularity.as_dict(),
            "revenue_per_session": self.revenue.as_dict(),
            "setup_seconds": round(self.setup_seconds, 1),
            "replay_seconds": {k: round(v, 1) for k, v in self.replay_seconds.items()},
        }


def top_brand(world: World, policy: ScoredPolicy) -> str:
    """The brand of the best-selling product: the one a suppression visibly costs."""
    return world.catalog.brands[int(world.catalog.brand[world.index[policy.ranked[0]]])]


@dataclass
class ReplayStore:
    """A simulated store ready to replay: its world, the history played with
    popularity, popularity from that history, the rulebook, and the governed
    shelfwise store set up on it (close it with :meth:`close`)."""

    spec: SimulationSpec
    world: World
    history: list[Event]
    history_days: int
    popular: ScoredPolicy
    governance: Governance
    shop: Shop
    setup_seconds: float

    def traffic(self, sessions: int, seed: int) -> Traffic:
        """``sessions`` sessions on the days after the history."""
        days = self.spec.days - self.history_days
        return draw_traffic(self.world, sessions, seed, self.history_days, days)

    def close(self) -> None:
        self.shop.close()


def replay_store(open_shop: OpenShop, spec: SimulationSpec, history_days: int) -> ReplayStore:
    """Simulate ``history_days`` of the store (popularity as the incumbent) and set
    up a governed shelfwise store on it (opened by ``open_shop``; catalog, history,
    rulebook, trained bundle with the learned ranker)."""
    began = time.perf_counter()
    world = build_world(spec)
    sim = simulate(spec, world=world, days=history_days)
    popular = history_popularity(world, sim.events)
    governance = Governance(suppressed_brands=(top_brand(world, popular),))
    shop = governed_store(open_shop, world, sim.events, governance)
    return ReplayStore(
        spec, world, sim.events, history_days, popular, governance, shop,
        time.perf_counter() - began,
    )  # fmt: skip


def online_replay(
    open_shop: OpenShop,
    spec: SimulationSpec,
    history_days: int,
    sessions: int,
    *,
    seed: int = 0,
) -> OnlineReplay:
    """Set up a :func:`replay_store`, then play the same ``sessions`` on the days
    after its history against the governed store and against popularity only
    (from the same history)."""
    store = replay_store(open_shop, spec, history_days)
    try:
        return replay_against_popularity(store, sessions, seed=seed)
    finally:
        store.close()


def replay_against_popularity(store: ReplayStore, sessions: int, *, seed: int = 0) -> OnlineReplay:
    """:func:`online_replay` on a store already set up."""
    world, governance, shop = store.world, store.governance, store.shop
    traffic = store.traffic(sessions, seed)
    runs: dict[str, Replay] = {}
    spent: dict[str, float] = {}
    for policy in (PipelinePolicy(lambda: shop.recommender, name="governed"), store.popular):
        t = time.perf_counter()
        runs[policy.name] = replay_sessions(
            world, AuditedPolicy(policy, world, governance), traffic, paired=True
        )
        spent[policy.name] = time.perf_counter() - t
    governed, popularity = runs["governed"], runs["popularity"]
    return OnlineReplay(
        store.spec,
        store.history_days,
        len(store.history),
        governance,
        governed,
        popularity,
        paired_ratio(governed.revenue, popularity.revenue),
        store.setup_seconds,
        spent,
    )
