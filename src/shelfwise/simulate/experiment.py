"""A/B tests on the simulator with the true effect known.

:class:`ExperimentPolicy` serves every request through shelfwise's own
assignment (:func:`shelfwise.experiments.assignment.assign`): the person gets
an arm of the running experiments, the arm's policy serves the slate and the
impression carries the experiment id and arm, as the server's would; a holdout
arm shows nothing.

The truth: a replay's sessions are fixed by their seed (see
:mod:`shelfwise.simulate.replay`), so playing the same traffic once with every
person in one arm and once with every person in the other gives each person's
two potential outcomes. :func:`outcomes` sums them the way the experiment
readout counts (revenue and purchase lines per top-level category, purchase
lines attributed to a slate), and :func:`true_effects` turns two of them into
the true per-category lifts and the true incremental share of the experiment's
population.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from shelfwise.experiments.assignment import assign
from shelfwise.experiments.model import Experiment
from shelfwise.simulate.categories import CATEGORIES
from shelfwise.simulate.history import simulate
from shelfwise.simulate.policy import Policy, RequestContext, Slate, _exclusions, _RecIds
from shelfwise.simulate.replay import draw_traffic, replay_sessions
from shelfwise.simulate.sessions import Event
from shelfwise.simulate.shop import OpenShop, Shop
from shelfwise.simulate.world import SimulationSpec, World, build_world

if TYPE_CHECKING:
    from shelfwise.experiments.report import Report

PersonOf = Callable[[RequestContext], str]


def true_person(world: World) -> PersonOf:
    """The simulator's own person id of a request (perfect identity stitching)."""
    return lambda ctx: person_key(world, ctx.anonymous_id)


def person_key(world: World, anonymous_id: str) -> str:
    return f"person-{world.owner[anonymous_id]}"


def true_resolver(world: World) -> Callable[[str, str | None], str]:
    """The same person ids for the readout (``readout(..., resolve=...)``)."""
    return lambda anonymous_id, customer_id: person_key(world, anonymous_id)


class ExperimentPolicy:
    """Slates served through the experiment assignment; requests outside every
    experiment get ``default`` (nothing when None)."""

    def __init__(
        self,
        experiments: Sequence[Experiment],
        arms: Mapping[str, Policy],
        person: PersonOf,
        default: Policy | None = None,
    ) -> None:
        self.name = "experiment"
        self.experiments = list(experiments)
        self.arms = dict(arms)
        self.person = person
        self.default = default
        self.served: dict[str, int] = defaultdict(int)
        self._ids = _RecIds("rec-holdout")

    def recommend(self, ctx: RequestContext) -> Slate:
        a = assign(self.experiments, ctx.placement, self.person(ctx), ctx.now)
        if a is None:
            if self.default is None:
                return Slate(self._ids.next(), ())
            return self.default.recommend(ctx)
        self.served[a.arm.name] += 1
        if a.holdout:
            return Slate(self._ids.next(), (), a.experiment_id, a.arm.name)
        slate = self.arms[a.arm.name].recommend(ctx)
        return Slate(slate.rec_id, slate.product_ids, a.experiment_id, a.arm.name)


class BestOfCategories:
    """The items of some categories that are truly best for this shopper (by the
    expected revenue of showing them): a recommender that knows the truth, but
    only recommends from ``categories`` (top-level names, e.g. ``("bedding",)``)."""

    def __init__(self, world: World, categories: Sequence[str], name: str = "") -> None:
        self.world = world
        self.name = name or "best-" + "-".join(categories)
        tops = {c.path.split("/")[0] for c in CATEGORIES}
        unknown = set(categories) - tops
        if unknown:
            raise ValueError(f"unknown categories {sorted(unknown)}; known: {sorted(tops)}")
        wanted = [k for k, c in enumerate(CATEGORIES) if c.path.split("/")[0] in categories]
        self.items = np.flatnonzero(np.isin(world.catalog.category, wanted))
        self._ids = _RecIds(f"rec-{self.name}")

    def recommend(self, ctx: RequestContext) -> Slate:
        w = self.world
        person = w.owner[ctx.anonymous_id]
        day = w.day_of(ctx.now)
        item = w.index.get(ctx.item) if ctx.item else None
        cart = tuple(w.index[c] for c in ctx.cart if c in w.index)
        items = self.items
        click = w.truth.click_prob(person, items, day, ctx.placement, item, cart, positioned=False)
        value = click * w.truth.buy_prob(person, items, day, item) * w.calendar.price(day)[items]
        skip = _exclusions(ctx)
        ranked = (w.ids[int(items[j])] for j in np.argsort(-value, kind="stable"))
        top = [p for p, _ in zip((p for p in ranked if p not in skip), range(ctx.k), strict=False)]
        return Slate(self._ids.next(), tuple(top))


@dataclass
class Outcomes:
    """What the readout would count, summed over a population."""

    persons: set[str] = field(default_factory=set)
    revenue: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # by category
    purchases: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # lines
    attributed: float = 0.0  # purchase lines attributed to a slate

    def per_person(self, what: Mapping[str, float], category: str = "all") -> float:
        return what.get(category, 0.0) / max(len(self.persons), 1)


def outcomes(
    world: World,
    events: Sequence[Event],
    start: datetime,
    end: datetime,
    window: timedelta = timedelta(hours=24),
    persons: set[str] | None = None,
) -> Outcomes:
    """Revenue and purchase lines (overall and per top-level category) and attributed
    lines (carrying a ``rec_id``, or of a product the person clicked in a slate within
    ``window`` before the order) of the events in ``[start, end)``, of everyone or
    of ``persons`` only."""
    out = Outcomes()
    clicks: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for e in events:
        at = datetime.fromisoformat(e["occurred_at"])
        if not (start <= at < end):
            continue
        person = person_key(world, e["anonymous_id"])
        if persons is not None and person not in persons:
            continue
        out.persons.add(person)
        if e["type"] == "rec_click":
            clicks[(person, e["product_id"])].append(at)
        if e["type"] != "purchase":
            continue
        for line in e["lines"]:
            pid = line["product_id"]
            top = str(world.catalog.records[world.index[pid]]["category_path"]).split("/")[0]
            value = float(line["quantity"]) * float(line["unit_price"])
            for cat in ("all", top):
                out.revenue[cat] += value
                out.purchases[cat] += 1.0
            recent = any(t <= at <= t + window for t in clicks.get((person, pid), ()))
            out.attributed += float(bool(line.get("rec_id")) or recent)
    return out


@dataclass(frozen=True)
class TrueEffects:
    """Treatment against control, for everyone in the population at once."""

    lift: dict[str, float]  # relative lift in revenue per person, per category ("all" too)
    revenue_per_person: dict[str, float]  # absolute difference per person, per category
    incrementality: float  # (purchases_T - purchases_C) / attributed_T


def true_effects(treatment: Outcomes, control: Outcomes) -> TrueEffects:
    if treatment.persons != control.persons:
        raise ValueError("the two runs must cover the same people")
    cats = sorted(set(treatment.revenue) | set(control.revenue))
    lift = {
        c: treatment.revenue.get(c, 0.0) / control.revenue[c] - 1.0
        for c in cats
        if control.revenue.get(c, 0.0) > 0
    }
    diff = {
        c: treatment.per_person(treatment.revenue, c) - control.per_person(control.revenue, c)
        for c in cats
    }
    extra = treatment.purchases.get("all", 0.0) - control.purchases.get("all", 0.0)
    return TrueEffects(lift, diff, extra / treatment.attributed if treatment.attributed else 0.0)


class NoSlate:
    """A holdout run: no module at all."""

    name = "holdout"

    def recommend(self, ctx: RequestContext) -> Slate:
        return Slate("rec-none", ())


@dataclass
class KnownLift:
    """A three-arm experiment played on the simulator, read out by shelfwise, with the
    truth of the same people next to it."""

    experiment: Experiment
    report: Report
    truth: TrueEffects  # treatment against control
    incrementality: float  # true incremental share of the treatment against the holdout
    served: dict[str, int]  # slates asked per arm (the holdout's show nothing)
    persons: int
    events: int


def known_lift_experiment(
    open_shop: OpenShop,
    spec: SimulationSpec,
    pre_days: int,
    sessions: int,
    *,
    treatment: Sequence[str] = ("bedding",),
    control: Sequence[str] = ("kitchen",),
    seed: int = 0,
) -> KnownLift:
    """``pre_days`` of history (the pre-period, popularity as the incumbent), then an
    experiment on every placement over the rest of ``spec.days``: ``control`` (the
    first arm) recommends the truly best items of the ``control`` categories,
    ``treatment`` those of the ``treatment`` categories, ``holdout`` nothing; a third
    each, assigned by shelfwise's hash of the (truly resolved) person. Everything goes
    through the ingestion path and :func:`shelfwise.experiments.report.readout`; the
    same sessions are also played with everyone in each arm, for the truth."""
    from shelfwise.experiments.model import Arm, ExperimentSpec
    from shelfwise.experiments.report import readout

    world = build_world(spec)
    history = simulate(spec, world=world, days=pre_days)
    start = spec.start + timedelta(days=pre_days)
    end = spec.end
    arms: dict[str, Policy] = {
        "control": BestOfCategories(world, control),
        "treatment": BestOfCategories(world, treatment),
    }
    shop = open_shop()
    try:
        shop.catalog.upsert(world.catalog.products)
        _ingest(shop, history.events)
        e = shop.experiments.create(
            ExperimentSpec(
                experiment_id="simulated-known-lift",
                name=f"{'+'.join(treatment)} first against {'+'.join(control)} first",
                arms=(
                    Arm(name="control", share=1 / 3),
                    Arm(name="treatment", share=1 / 3),
                    Arm(name="holdout", share=1 / 3, holdout=True),
                ),
                start=start,
                end=end,
                population="active",  # the holdout shows (and logs) nothing
                pre_period_days=pre_days,
            )
        )
        traffic = draw_traffic(world, sessions, seed, pre_days, spec.days - pre_days)
        served = ExperimentPolicy([e], arms, true_person(world))
        played = replay_sessions(world, served, traffic)
        _ingest(shop, played.events)
        report = readout(shop.db, e, at=end, resolve=true_resolver(world))
    finally:
        shop.close()
    everyone_in: dict[str, Policy] = {**arms, "holdout": NoSlate()}
    every = {
        name: outcomes(world, replay_sessions(world, p, traffic).events, start, end)
        for name, p in everyone_in.items()
    }
    return KnownLift(
        e,
        report,
        true_effects(every["treatment"], every["control"]),
        true_effects(every["treatment"], every["holdout"]).incrementality,
        dict(served.served),
        len(every["holdout"].persons),
        len(played.events),
    )


def _ingest(shop: Shop, events: Sequence[Event], batch: int = 5_000) -> None:
    for i in range(0, len(events), batch):
        shop.ingestor.ingest(events[i : i + batch], source="simulator")
