"""Time in the simulated store: daily traffic (weekends, Black Friday, the
December run-up), season strength per season tag, and promotions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from shelfwise.simulate.catalog import BoolArray, FloatArray, SimCatalog
from shelfwise.simulate.categories import CATEGORIES

SEASONS = ("christmas", "winter", "summer")
WEEKDAY_TRAFFIC = (1.0, 0.95, 0.95, 1.0, 1.05, 1.2, 1.25)  # Monday first


def black_friday(year: int) -> date:
    """The fourth Friday of November."""
    first = date(year, 11, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 21)


def traffic_multiplier(day: date) -> float:
    """Sessions on ``day`` relative to an ordinary Monday."""
    m = WEEKDAY_TRAFFIC[day.weekday()]
    bf = black_friday(day.year)
    if day == bf:
        m *= 2.4
    elif day == bf + timedelta(days=3):  # Cyber Monday
        m *= 1.9
    elif date(day.year, 12, 1) <= day <= date(day.year, 12, 21):
        m *= 1.3
    elif date(day.year, 12, 24) <= day <= date(day.year, 12, 26):
        m *= 0.6
    return m


def season_strength(season: str, day: date) -> float:
    """How much more than usual an item tagged ``season`` appeals on ``day``."""
    if season == "christmas":
        start, peak = date(day.year, 11, 1), date(day.year, 12, 20)
        if start <= day <= peak:
            return 0.5 + 2.5 * (day - start).days / (peak - start).days
        return 1.5 if peak < day <= date(day.year, 12, 24) else 0.15
    if season == "winter":
        return 1.6 if day.month in (11, 12, 1, 2) else 0.6
    if season == "summer":
        return 1.8 if day.month in (5, 6, 7, 8) else 0.5
    return 1.0


@dataclass(frozen=True)
class Promotion:
    promo_id: str
    category: int | None  # index into CATEGORIES, or None with a brand
    brand: int | None
    discount: float  # 0.1 = 10% off
    first_day: int
    last_day: int  # inclusive

    def as_dict(self, brands: tuple[str, ...]) -> dict[str, object]:
        return {
            "promo_id": self.promo_id,
            "category": None if self.category is None else CATEGORIES[self.category].path,
            "brand": None if self.brand is None else brands[self.brand],
            "discount": self.discount,
            "first_day": self.first_day,
            "last_day": self.last_day,
        }


def plan_promotions(
    catalog: SimCatalog, days: int, rng: np.random.Generator, per_week: float = 1.0
) -> tuple[Promotion, ...]:
    """About ``per_week`` promotions a week, each a category or a brand for 2-7 days."""
    n = int(rng.poisson(max(per_week * days / 7, 0.0)))
    promos = []
    for k in range(n):
        first = int(rng.integers(0, max(days, 1)))
        on_brand = rng.random() < 0.4
        promos.append(
            Promotion(
                promo_id=f"PROMO{k + 1:03d}",
                category=None if on_brand else int(rng.integers(len(CATEGORIES))),
                brand=int(catalog.brand[int(rng.integers(catalog.n))]) if on_brand else None,
                discount=float(rng.choice([0.1, 0.15, 0.2, 0.3])),
                first_day=first,
                last_day=first + int(rng.integers(1, 7)),
            )
        )
    return tuple(promos)


class Calendar:
    """Day-indexed views of the store (day 0 is ``start``), cached per day."""

    def __init__(
        self,
        catalog: SimCatalog,
        start: datetime,
        promotions: tuple[Promotion, ...] = (),
        stockouts: tuple[tuple[int, int], ...] = (),  # (brand, first day) incidents
    ) -> None:
        self.catalog = catalog
        self.start = start
        self.promotions = promotions
        self.stockouts = stockouts
        self._season: dict[int, FloatArray] = {}
        self._discount: dict[int, FloatArray] = {}
        self._available: dict[int, BoolArray] = {}
        self._price: dict[int, FloatArray] = {}

    def date_of(self, day: int) -> date:
        return (self.start + timedelta(days=day)).date()

    def traffic(self, day: int) -> float:
        return traffic_multiplier(self.date_of(day))

    def season_boost(self, day: int) -> FloatArray:
        """Per category: the log of its strongest season's strength on ``day``."""
        if day not in self._season:
            d = self.date_of(day)
            self._season[day] = np.array(
                [
                    max((np.log(season_strength(s, d)) for s in c.seasons), default=0.0)
                    for c in CATEGORIES
                ]
            )
        return self._season[day]

    def discount(self, day: int) -> FloatArray:
        """Per product: the best promotion discount running on ``day`` (0 without one)."""
        if day not in self._discount:
            out = np.zeros(self.catalog.n)
            for p in self.promotions:
                if p.first_day <= day <= p.last_day:
                    mask = (
                        self.catalog.category == p.category
                        if p.category is not None
                        else self.catalog.brand == p.brand
                    )
                    out = np.where(mask, np.maximum(out, p.discount), out)
            self._discount[day] = out
        return self._discount[day]

    def available(self, day: int) -> BoolArray:
        """Per product: in stock on ``day`` (initial stock-outs and supplier incidents)."""
        if day not in self._available:
            ok = self.catalog.stock > 0
            for brand, first in self.stockouts:
                if day >= first:
                    ok = ok & (self.catalog.brand != brand)
            self._available[day] = ok
        return self._available[day]

    def price(self, day: int) -> FloatArray:
        """Per product: the price paid on ``day`` (promotions applied)."""
        if day not in self._price:
            self._price[day] = np.round(self.catalog.price * (1.0 - self.discount(day)), 2)
        return self._price[day]
