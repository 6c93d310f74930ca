"""Online comparison of policies on the simulator, with the true answer known.

Every policy answers the same sampled requests; the ground truth gives each
slate's expected revenue (so the true lift of an arm is exact, with no
sampling noise), and a simulated reaction with common random numbers gives
the clicks, orders and revenue an A/B test would observe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta

import numpy as np

from shelfwise.simulate.policy import Policy, RequestContext
from shelfwise.simulate.truth import EXAMINE, MEAN_QUANTITY
from shelfwise.simulate.world import World


@dataclass(frozen=True)
class SimRequest:
    person: int
    day: int
    item: int | None
    cart: tuple[int, ...]
    ctx: RequestContext


@dataclass
class ArmReadout:
    policy: str
    requests: int = 0
    expected_revenue: float = 0.0  # ground truth, summed over requests
    clicks: int = 0
    orders: int = 0
    revenue: float = 0.0  # observed in the simulated reaction
    empty_slates: int = 0

    @property
    def expected_revenue_per_request(self) -> float:
        return self.expected_revenue / max(self.requests, 1)

    def as_dict(self) -> dict[str, float | int | str]:
        return {**asdict(self), "expected_revenue_per_request": self.expected_revenue_per_request}


def sample_requests(
    world: World,
    n: int,
    seed: int,
    placement: str = "product_page",
    day: int | None = None,
    k: int = 8,
) -> list[SimRequest]:
    """``n`` requests from people drawn by activity, viewing an item they would browse to."""
    rng = np.random.default_rng([seed, 5])
    day = world.spec.days - 1 if day is None else day
    people = world.people
    p = people.activity / people.activity.sum()
    out = []
    for r, person in enumerate(rng.choice(people.n, size=n, p=p)):
        person = int(person)
        device = people.devices[person][0]
        anon = device.anonymous_id()
        world.owner[anon] = person
        logit = people.category_logit[person] + world.calendar.season_boost(day)
        weights = np.exp(logit) * world.nonempty
        cat = int(np.searchsorted(np.cumsum(weights), rng.random() * weights.sum()))
        members, cum = world.browse_pool[cat]
        item = int(members[np.searchsorted(cum, rng.random() * cum[-1])])
        cart: tuple[int, ...] = ()
        if rng.random() < 0.3:
            other = int(rng.integers(world.catalog.n))
            cart = (other,) if other != item else ()
        view = item if placement == "product_page" else None
        ctx = RequestContext(
            placement=placement,
            now=world.spec.start + timedelta(days=day, hours=12, seconds=r),
            anonymous_id=anon,
            session_id=f"eval-{seed}-{r:06d}",
            customer_id=people.customer_id[person],
            item=world.ids[view] if view is not None else None,
            cart=tuple(world.ids[c] for c in cart),
            k=k,
            platform=device.info.platform,
        )
        out.append(SimRequest(person, day, view, cart, ctx))
    return out


def slate_expected_revenue(world: World, ctx: RequestContext, product_ids: Sequence[str]) -> float:
    """The true expected revenue of showing ``product_ids`` (in order) for ``ctx``.

    The shopper is found from the anonymous id (any id the simulator issued);
    unknown product ids count as items nobody clicks.
    """
    return slate_expected_money(world, ctx, product_ids)[0]


def slate_expected_money(
    world: World, ctx: RequestContext, product_ids: Sequence[str]
) -> tuple[float, float]:
    """The true expected (revenue, margin) of showing ``product_ids`` (in order) for
    ``ctx``; margin is the price paid less the item's unit cost."""
    person = world.owner[ctx.anonymous_id]
    known = [(k, world.index[p]) for k, p in enumerate(product_ids) if p in world.index]
    if not known:
        return 0.0, 0.0
    day = world.day_of(ctx.now)
    item = world.index.get(ctx.item) if ctx.item else None
    cart = tuple(world.index[c] for c in ctx.cart if c in world.index)
    items = np.array([i for _, i in known], dtype=np.int64)
    truth = world.truth
    click = truth.click_prob(person, items, day, ctx.placement, item, cart, positioned=False)
    click = click * EXAMINE[[k for k, _ in known]]
    sold = click * truth.buy_prob(person, items, day, item) * MEAN_QUANTITY
    price = world.calendar.price(day)[items]
    return float(np.sum(sold * price)), float(np.sum(sold * (price - world.catalog.cost[items])))


def slate_attributed_revenue(
    world: World, ctx: RequestContext, product_ids: Sequence[str]
) -> float:
    """The true expected revenue of the purchase lines that carry a shown slate's
    rec_id, as a session plays it (``sessions.SessionRunner``): the shopper clicks
    the first item that draws a click (a cascade over the positions), adds it to the
    cart with its add probability and checks out with ``CHECKOUT``, buying
    ``MEAN_QUANTITY`` units at the day's price. A later removal from the cart (6% a
    page) is left out. Unknown product ids are left out, as the session leaves them out."""
    person = world.owner[ctx.anonymous_id]
    items = np.array([world.index[p] for p in product_ids if p in world.index], dtype=np.int64)
    if len(items) == 0:
        return 0.0
    day = world.day_of(ctx.now)
    item = world.index.get(ctx.item) if ctx.item else None
    cart = tuple(world.index[c] for c in ctx.cart if c in world.index)
    truth = world.truth
    click = truth.click_prob(person, items, day, ctx.placement, item, cart)
    first = click * np.concatenate(([1.0], np.cumprod(1.0 - click)[:-1]))
    buy = truth.buy_prob(person, items, day, item)
    return float(np.sum(first * buy * world.calendar.price(day)[items])) * MEAN_QUANTITY


def compare_policies(
    world: World, policies: Sequence[Policy], requests: Sequence[SimRequest], seed: int = 0
) -> dict[str, ArmReadout]:
    """Each policy's readout on the same requests (same random numbers for the reactions)."""
    truth, prices = world.truth, None
    out = {p.name: ArmReadout(p.name) for p in policies}
    for r, req in enumerate(requests):
        draws = np.random.default_rng([seed, 6, r]).random((2, 200))
        prices = world.calendar.price(req.day)
        for policy in policies:
            arm = out[policy.name]
            arm.requests += 1
            slate = policy.recommend(req.ctx)
            items = np.array(
                [world.index[p] for p in slate.product_ids if p in world.index], dtype=np.int64
            )
            if len(items) == 0:
                arm.empty_slates += 1
                continue
            pl = req.ctx.placement
            click = truth.click_prob(req.person, items, req.day, pl, req.item, req.cart)
            buy = truth.buy_prob(req.person, items, req.day, req.item)
            arm.expected_revenue += float(np.sum(click * buy * prices[items]))
            clicked = draws[0, : len(items)] < click
            bought = clicked & (draws[1, : len(items)] < buy)
            arm.clicks += int(clicked.sum())
            arm.orders += int(bought.sum())
            arm.revenue += float(prices[items][bought].sum())
    return out


def true_lift(readouts: dict[str, ArmReadout], treatment: str, control: str) -> float:
    """Relative lift in true expected revenue per request of ``treatment`` over ``control``."""
    base = readouts[control].expected_revenue_per_request
    return (
        readouts[treatment].expected_revenue_per_request / base - 1.0 if base > 0 else float("nan")
    )
