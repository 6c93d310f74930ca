"""The ground truth: how much a person wants an item on a day, and from it the
probability that they click a recommended item, buy it, and what a slate is
expected to earn.

The model, for person ``p`` and item ``i`` on day ``d``::

    u = 0.9*interest[p, cat(i)] + 0.8*taste[p]*style[brand(i)] + 0.7*quality[i]
        - price_weight[p]*(price_position[i] - price_level[p])**2
        + season[d, cat(i)] + 2*discount[d, i] + context(viewed item, cat(i))
    P(click at position k) = examine(k) * sigmoid(u - 5.8) * incident factor
    P(add to cart | view)  = sigmoid(u - 4.5) * in_stock[d, i]
    P(buy | click)         = P(add to cart | view) * P(checkout) (0.3)
    E[revenue of a slate]  = sum over k of P(click at k) * P(buy | click) * 1.15 * price[d, i_k]

(1.15 is the mean quantity of an order line; removals from the cart, about
6% of carts, are left out of the expectation.)

Items already in the cart or being viewed are never clicked. Because the
position factor falls with ``k`` and items act independently, sorting items
by ``sigmoid(u-5.8)*sigmoid(u-4.5)*in_stock*price`` gives the best slate (:meth:`best_slate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shelfwise.simulate.calendar import Calendar
from shelfwise.simulate.catalog import FloatArray, IntArray, SimCatalog
from shelfwise.simulate.categories import CATEGORIES, category_index
from shelfwise.simulate.shoppers import Population, brand_styles

EXAMINE = 1.0 / np.log2(np.arange(2, 202))  # position bias for positions 1..200
CLICK_OFFSET = 5.8
ADD_OFFSET = 4.5
CHECKOUT = 0.3  # a session with a cart ends in an order
MEAN_QUANTITY = 1.15

# Categories that go with the one being viewed (a cross-sell boost).
COMPLEMENTS: dict[str, tuple[str, ...]] = {
    "bedding/duvet-covers": ("bedding/sheets", "bedding/pillows", "bedding/throws"),
    "bedding/sheets": ("bedding/duvet-covers", "bedding/pillows"),
    "bedding/pillows": ("bedding/sheets", "bedding/duvet-covers"),
    "bedding/throws": ("decor/candles", "bedding/pillows"),
    "kitchen/cookware": ("kitchen/utensils", "parts/replacement"),
    "kitchen/tableware": ("kitchen/utensils", "decor/candles"),
    "kitchen/utensils": ("kitchen/cookware", "utility/storage"),
    "decor/vases": ("decor/candles", "decor/premium"),
    "decor/premium": ("decor/vases", "lighting/lamps"),
    "decor/candles": ("decor/vases", "seasonal/christmas"),
    "bath/towels": ("bath/accessories",),
    "bath/accessories": ("bath/towels", "utility/storage"),
    "lighting/lamps": ("lighting/bulbs", "decor/premium"),
    "lighting/bulbs": ("lighting/lamps",),
    "seasonal/christmas": ("decor/candles", "bedding/throws"),
    "seasonal/garden": ("utility/storage",),
    "parts/replacement": ("kitchen/cookware",),
    "utility/storage": ("bath/accessories", "kitchen/utensils"),
}


@dataclass(frozen=True)
class CtrIncident:
    """From ``from_day`` on, clicks on ``placement`` slates drop by ``drop`` for one category."""

    placement: str
    category: int
    from_day: int
    drop: float


def _sigmoid(x: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-x))


def context_matrix() -> FloatArray:
    """(viewed category, candidate category) -> utility boost on a product page."""
    n = len(CATEGORIES)
    m = np.full((n, n), -0.3)
    np.fill_diagonal(m, 0.8)
    for path, others in COMPLEMENTS.items():
        for other in others:
            m[category_index(path), category_index(other)] = 0.6
    return m


class GroundTruth:
    def __init__(
        self,
        catalog: SimCatalog,
        people: Population,
        calendar: Calendar,
        incidents: tuple[CtrIncident, ...] = (),
    ) -> None:
        self.catalog = catalog
        self.people = people
        self.calendar = calendar
        self.incidents = incidents
        self.item_style = brand_styles(len(catalog.brands), catalog.spec.seed)[catalog.brand]
        self.context = context_matrix()
        self._day_term: dict[int, FloatArray] = {}
        self._taste: dict[int, FloatArray] = {}  # person -> day-free utility of every product
        self._taste_budget = 8_000_000 // max(catalog.n, 1)  # ~64 MB of cached rows

    def taste(self, person: int) -> FloatArray:
        """The person's day-free utility of every product (category, brand, price fit)."""
        row = self._taste.get(person)
        if row is None:
            c, pp = self.catalog, self.people
            gap = c.price_position - pp.price_level[person]
            row = (
                0.9 * pp.category_logit[person, c.category]
                + 0.8 * (self.item_style @ pp.style[person])
                - pp.price_weight[person] * gap * gap
            )
            if len(self._taste) < self._taste_budget:
                self._taste[person] = row
        return row

    def day_term(self, day: int) -> FloatArray:
        """The part of the utility shared by everyone on ``day``: quality, season, promotion."""
        if day not in self._day_term:
            c = self.catalog
            self._day_term[day] = (
                0.7 * c.quality
                + self.calendar.season_boost(day)[c.category]
                + 2.0 * self.calendar.discount(day)
            )
        return self._day_term[day]

    def utility(
        self,
        person: int,
        items: IntArray | None,
        day: int,
        context_item: int | None = None,
        base: FloatArray | None = None,
    ) -> FloatArray:
        """``u`` of ``items`` (all products when None). ``base``, the context-free
        utility of every product for this person and day, saves recomputing it."""
        c = self.catalog
        if base is None:
            base = self.taste(person) + self.day_term(day)
        u = base if items is None else base[items]
        if context_item is not None:
            sel = slice(None) if items is None else items
            u = u + self.context[c.category[context_item]][c.category[sel]]
            u = u - 1.5 * (c.group[sel] == c.group[context_item])
        return np.asarray(u, dtype=np.float64)

    def scalar_utility(self, base: FloatArray, item: int, context_item: int | None) -> float:
        """``utility`` of one item from the person-day ``base``, in plain floats."""
        u = float(base[item])
        if context_item is not None:
            c = self.catalog
            u += float(self.context[c.category[context_item], c.category[item]])
            if c.group[item] == c.group[context_item]:
                u -= 1.5
        return u

    def click_prob(
        self,
        person: int,
        items: IntArray,
        day: int,
        placement: str,
        context_item: int | None = None,
        cart: tuple[int, ...] = (),
        positioned: bool = True,
        base: FloatArray | None = None,
    ) -> FloatArray:
        p = _sigmoid(self.utility(person, items, day, context_item, base) - CLICK_OFFSET)
        if positioned:
            p = p * EXAMINE[: len(items)]
        for inc in self.incidents:
            if inc.placement == placement and day >= inc.from_day:
                p = np.where(self.catalog.category[items] == inc.category, p * (1 - inc.drop), p)
        for blocked in (*cart, *(() if context_item is None else (context_item,))):
            p = np.where(items == blocked, 0.0, p)
        return p

    def add_prob(self, u: FloatArray, items: IntArray, day: int) -> FloatArray:
        """P(add to cart | viewed), from the utilities ``u`` of ``items``."""
        return _sigmoid(u - ADD_OFFSET) * self.calendar.available(day)[items]

    def buy_prob(
        self, person: int, items: IntArray, day: int, context_item: int | None = None
    ) -> FloatArray:
        """P(the item is bought | clicked)."""
        u = self.utility(person, items, day, context_item)
        return self.add_prob(u, items, day) * CHECKOUT

    def expected_revenue(
        self,
        person: int,
        items: IntArray,
        day: int,
        placement: str,
        context_item: int | None = None,
        cart: tuple[int, ...] = (),
    ) -> float:
        """The true expected revenue of showing ``items`` (in this order) to ``person``."""
        if len(items) == 0:
            return 0.0
        click = self.click_prob(person, items, day, placement, context_item, cart)
        buy = self.buy_prob(person, items, day, context_item)
        return float(np.sum(click * buy * self.calendar.price(day)[items])) * MEAN_QUANTITY

    def item_values(
        self,
        person: int,
        day: int,
        placement: str,
        context_item: int | None = None,
        cart: tuple[int, ...] = (),
    ) -> FloatArray:
        """Expected revenue per item if shown at position 1, for every product."""
        items = np.arange(self.catalog.n)
        click = self.click_prob(person, items, day, placement, context_item, cart, False)
        return (
            click
            * self.buy_prob(person, items, day, context_item)
            * self.calendar.price(day)
            * MEAN_QUANTITY
        )

    def best_slate(
        self,
        person: int,
        day: int,
        placement: str,
        k: int,
        context_item: int | None = None,
        cart: tuple[int, ...] = (),
    ) -> IntArray:
        values = self.item_values(person, day, placement, context_item, cart)
        k = min(k, len(values))
        top = np.argpartition(-values, k - 1)[:k]
        return top[np.argsort(-values[top], kind="stable")]
