"""One simulated store: its spec, catalog, shoppers, calendar and ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shelfwise.simulate.calendar import Calendar, Promotion, plan_promotions
from shelfwise.simulate.catalog import CatalogSpec, FloatArray, IntArray, SimCatalog, generate_store
from shelfwise.simulate.categories import CATEGORIES, category_index
from shelfwise.simulate.defects import Defects
from shelfwise.simulate.shoppers import Population, ShopperSpec, generate_population
from shelfwise.simulate.truth import CtrIncident, GroundTruth

DEFAULT_START = datetime(2026, 10, 5, tzinfo=UTC)


class SimulationSpec(BaseModel):
    """Everything that determines a simulated store and its history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 7
    products: int = Field(default=2_000, ge=10, le=100_000)
    people: int = Field(default=2_000, ge=1, le=1_000_000)
    days: int = Field(default=28, ge=1, le=730)
    start: AwareDatetime = DEFAULT_START
    promotions_per_week: float = Field(default=1.0, ge=0.0)
    rec_share: float = Field(
        default=0.35, ge=0.0, le=1.0, description="Share of product views that show a slate."
    )
    defects: Defects = Defects()

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


@dataclass
class World:
    spec: SimulationSpec
    catalog: SimCatalog
    people: Population
    calendar: Calendar
    truth: GroundTruth
    promotions: tuple[Promotion, ...]
    split_people: frozenset[int]
    ids: list[str]
    index: dict[str, int]
    owner: dict[str, int] = field(default_factory=dict)  # anonymous id -> person (truth)
    browse_pool: list[tuple[IntArray, FloatArray]] = field(default_factory=list)
    nonempty: FloatArray = field(default_factory=lambda: np.ones(len(CATEGORIES)))

    @property
    def start_ms(self) -> int:
        return int(self.spec.start.timestamp() * 1000)

    def day_of(self, at: datetime) -> int:
        return max(0, (at - self.spec.start) // timedelta(days=1))

    def popularity(self) -> FloatArray:
        """Expected appeal of each product to the whole population (for a popularity baseline)."""
        share = np.exp(self.people.category_logit).mean(axis=0)
        return np.asarray(share[self.catalog.category] * np.exp(0.7 * self.catalog.quality))


def build_world(spec: SimulationSpec) -> World:
    catalog = generate_store(CatalogSpec(n_products=spec.products, seed=spec.seed))
    spec.defects.check(catalog)
    people = generate_population(ShopperSpec(n_people=spec.people, seed=spec.seed))
    rng = np.random.default_rng([spec.seed, 3])
    promotions = plan_promotions(catalog, spec.days, rng, spec.promotions_per_week)
    d = spec.defects
    stockouts: tuple[tuple[int, int], ...] = ()
    if d.supplier_stockout.brand is not None:
        stockouts = (
            (catalog.brands.index(d.supplier_stockout.brand), d.supplier_stockout.from_day),
        )
    calendar = Calendar(catalog, spec.start, promotions, stockouts)
    incidents: tuple[CtrIncident, ...] = ()
    if d.ctr_drop.drop > 0:
        incidents = (
            CtrIncident(
                d.ctr_drop.placement,
                category_index(d.ctr_drop.category),
                d.ctr_drop.from_day,
                d.ctr_drop.drop,
            ),
        )
    multi = [
        p
        for p in range(people.n)
        if people.customer_id[p] is not None and len(people.devices[p]) > 1
    ]
    hit = rng.random(len(multi)) < d.identity_split.share
    ids = catalog.ids
    pool = []
    for cat in range(len(CATEGORIES)):
        members = catalog.in_category(cat)
        weight = np.cumsum(np.exp(0.7 * catalog.quality[members]))
        pool.append((members, weight))
    return World(
        spec=spec,
        catalog=catalog,
        people=people,
        calendar=calendar,
        truth=GroundTruth(catalog, people, calendar, incidents),
        promotions=promotions,
        split_people=frozenset(p for p, h in zip(multi, hit, strict=True) if h),
        ids=ids,
        index={pid: i for i, pid in enumerate(ids)},
        browse_pool=pool,
        nonempty=np.array([1.0 if len(m) else 0.0 for m, _ in pool]),
    )
