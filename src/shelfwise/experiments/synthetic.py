"""A small store with a known truth, to check that readouts find what is there.

Persons are assigned with the real hash (or, to break it on purpose, in an
exact other proportion). Each category has a base purchase rate in the
holdout, a multiplier in treatment (the true lift, which can be a loss) and
the share of treatment purchases that go through a recommendation (a click,
half of them also carrying the ``rec_id`` on the order line). So the true
incremental share is known in closed form: :meth:`World.true_incrementality`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from shelfwise.catalog.model import Product
from shelfwise.contracts.events import (
    AddToCart,
    Event,
    OrderLine,
    PageView,
    Purchase,
    RecClick,
    RecImpression,
    Return,
    ReturnLine,
    ShownItem,
)
from shelfwise.experiments.assignment import arm_for
from shelfwise.experiments.model import Arm, Experiment, ExperimentSpec
from shelfwise.store.types import utcnow

START = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass(frozen=True)
class CategoryTruth:
    name: str
    price: float
    rate: float  # purchases per person in the holdout over the window
    multiplier: float  # treatment rate = rate x multiplier
    via_recs: float  # share of treatment purchases attributed to recommendations


@dataclass(frozen=True)
class World:
    categories: tuple[CategoryTruth, ...] = (
        CategoryTruth("decor", 40.0, 0.30, 1.40, 0.50),
        CategoryTruth("kitchen", 20.0, 0.40, 0.75, 0.30),
        CategoryTruth("bedding", 60.0, 0.20, 1.00, 0.20),
    )
    persons: int = 4_000
    products_per_category: int = 6
    placements: tuple[str, ...] = ("home", "product")
    return_share: float = 0.05
    seed: int = 1
    broken_split: float | None = None  # share of treatment when assignment is broken
    holdout_impressions: bool = True  # False: the holdout shows (and logs) nothing
    spec_overrides: dict[str, object] = field(default_factory=dict)

    def spec(self) -> ExperimentSpec:
        data: dict[str, object] = {
            "experiment_id": "recs-vs-holdout",
            "name": "Recommendations against a holdout",
            "arms": (Arm(name="holdout", share=0.5, holdout=True), Arm(name="recs", share=0.5)),
            "start": START,
            "end": START + timedelta(days=14),
            "guardrails": ({"metric": "return_rate", "margin": 0.5},),
            "operating_cost_per_day": {"home": 10.0, "product": 5.0},
            "segments": ("platform",),
        }
        data.update(self.spec_overrides)
        return ExperimentSpec.model_validate(data)

    def true_incrementality(self) -> float:
        extra = sum(c.rate * (c.multiplier - 1) for c in self.categories)
        attributed = sum(c.rate * c.multiplier * c.via_recs for c in self.categories)
        return extra / attributed

    def catalog(self) -> list[Product]:
        return [
            Product(
                product_id=f"{c.name}-{j}", title=f"{c.name} item {j}", category_path=c.name,
                price=c.price, currency="EUR", stock_qty=0 if j == 0 else 10,
            )
            for c in self.categories
            for j in range(self.products_per_category)
        ]  # fmt: skip

    def events(self, experiment: Experiment) -> list[Event]:
        rng = np.random.default_rng(self.seed)
        out: list[Event] = []
        spec = experiment.spec
        for i in range(self.persons):
            pid = f"p{i:05d}"
            if self.broken_split is None:
                arm = arm_for(experiment, pid).name
            else:
                # Exactly broken_split of every 100 persons, whatever the hash says.
                arm = "recs" if i % 100 < round(self.broken_split * 100) else "holdout"
            out.extend(self._person(rng, pid, arm, spec.start))
        return out

    def _person(self, rng: np.random.Generator, pid: str, arm: str, start: datetime) -> list[Event]:
        common = {"anonymous_id": pid, "platform": "web" if rng.random() < 0.6 else "ios_app"}
        # Shared by the pre-period and the experiment: what CUPED exploits.
        propensity = rng.gamma(0.7, 1 / 0.7)
        seen = start + timedelta(hours=float(rng.uniform(0, 72)))
        placement = self.placements[int(rng.integers(len(self.placements)))]
        rec_id = f"rec-{pid}"
        shown = [
            f"{c.name}-{int(rng.integers(self.products_per_category))}" for c in self.categories
        ]
        events: list[Event] = [
            PageView(event_id=f"pv-{pid}", occurred_at=seen, page_type="home", **common),
            RecImpression(
                event_id=f"imp-{pid}", occurred_at=seen, rec_id=rec_id, placement=placement,
                items=tuple(ShownItem(product_id=p, position=k + 1) for k, p in enumerate(shown)),
                experiment_id="recs-vs-holdout", arm=arm, **common,
            ),
        ]  # fmt: skip
        if arm == "holdout" and not self.holdout_impressions:
            events.pop()
        n = 0
        for c in self.categories:
            pre = rng.poisson(3 * c.rate * propensity)  # a pre-period 3x as long
            rate = c.rate * propensity * (c.multiplier if arm == "recs" else 1.0)
            for k in range(pre):
                at = start - timedelta(days=float(rng.uniform(1, 27)))
                events.append(self._order(f"pre-{pid}-{c.name}-{k}", at, c, None, common))
            for _ in range(rng.poisson(rate)):
                n += 1
                at = seen + timedelta(hours=float(rng.uniform(1, 200)))
                product = f"{c.name}-{int(rng.integers(self.products_per_category))}"
                via = arm == "recs" and rng.random() < c.via_recs
                line_rec = None
                if via:
                    click_at = at - timedelta(minutes=float(rng.uniform(1, 600)))
                    events.append(
                        RecClick(
                            event_id=f"clk-{pid}-{n}", occurred_at=click_at, rec_id=rec_id,
                            placement=placement, product_id=product, **common,
                        )
                    )  # fmt: skip
                    events.append(
                        AddToCart(
                            event_id=f"atc-{pid}-{n}", occurred_at=click_at + timedelta(seconds=30),
                            product_id=product, unit_price=c.price, rec_id=rec_id,
                            placement=placement, **common,
                        )
                    )  # fmt: skip
                    line_rec = rec_id if rng.random() < 0.5 else None
                order = f"o-{pid}-{n}"
                events.append(self._order(order, at, c, line_rec, common, product))
                if rng.random() < self.return_share:
                    events.append(
                        Return(
                            event_id=f"ret-{order}", occurred_at=at + timedelta(days=1),
                            order_id=order,
                            lines=(ReturnLine(product_id=product, quantity=1),),
                            **common,
                        )
                    )  # fmt: skip
        return events

    @staticmethod
    def _order(
        order_id: str,
        at: datetime,
        c: CategoryTruth,
        rec_id: str | None,
        common: dict[str, str],
        product: str | None = None,
    ) -> Purchase:
        line = OrderLine(
            product_id=product or f"{c.name}-1", quantity=1, unit_price=c.price, rec_id=rec_id
        )
        return Purchase(
            event_id=f"buy-{order_id}", occurred_at=at, order_id=order_id, lines=(line,),
            currency="EUR", revenue=c.price, **common,
        )  # fmt: skip


def stored(spec: ExperimentSpec) -> Experiment:
    """The spec as if stored (version 1, running), for assignment without a store."""
    now = utcnow()
    return Experiment(spec=spec, version=1, status="running", created_at=now, updated_at=now)
