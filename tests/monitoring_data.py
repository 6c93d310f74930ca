"""A small store's recommendation traffic as real events, for monitoring tests and the demo server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np

from shelfwise.catalog.model import Product
from shelfwise.contracts.events import (
    AddToCart,
    Event,
    OrderLine,
    PageView,
    ProductView,
    Purchase,
    RecClick,
    RecImpression,
    ShownItem,
)

PLACEMENTS = (("home_top_picks", 6), ("product_similar", 3), ("cart_addons", 1))
PLATFORMS = ("web", "mobile_web", "ios_app")


def make_events(
    products: list[Product],
    start: datetime,
    days: int,
    seed: int = 1,
    price_factor: float = 1.0,
    slates_per_hour: int = 4,
    visitors: int = 300,
    arm_of: Callable[[str, str], tuple[str, str] | None] | None = None,
) -> list[Event]:
    """Hourly slates per placement; clicks, carts and orders follow with fixed rates.

    ``price_factor`` multiplies every price seen in views and orders (a catalog
    price change replayed over the same behaviour). ``arm_of(placement, person)``
    gives the ``(experiment_id, arm)`` an impression is exposed to, if any.
    """
    rng = np.random.default_rng(seed)
    n = len(products)
    weights = 1.0 / np.arange(1, n + 1) ** 0.8
    weights /= weights.sum()
    out: list[Event] = []
    seq = 0

    def eid() -> str:
        nonlocal seq
        seq += 1
        return f"s{seed}-e{seq}"

    for h in range(days * 24):
        at = start + timedelta(hours=h)
        for placement, scale in PLACEMENTS:
            for _ in range(slates_per_hour * scale):
                visitor = int(rng.integers(visitors))
                anon, session = f"a{visitor}", f"s{seed}-{visitor}-{at:%Y%m%d}"
                platform = PLATFORMS[visitor % len(PLATFORMS)]
                common = {"anonymous_id": anon, "session_id": session, "platform": platform}
                rec_id = f"r{seed}-{seq}"
                shown = rng.choice(n, size=4, replace=False, p=weights)
                exposure = arm_of(placement, anon) if arm_of else None
                out.append(
                    RecImpression(
                        event_id=eid(),
                        occurred_at=at,
                        rec_id=rec_id,
                        placement=placement,
                        items=tuple(
                            ShownItem(product_id=products[int(j)].product_id, position=k + 1)
                            for k, j in enumerate(shown)
                        ),
                        experiment_id=exposure[0] if exposure else None,
                        arm=exposure[1] if exposure else None,
                        **common,
                    )
                )
                if rng.random() >= 0.3:
                    continue
                p = products[int(shown[int(rng.integers(4))])]
                price = round(float(p.price or 10.0) * price_factor, 2)
                t = at + timedelta(minutes=1)
                out.append(
                    RecClick(
                        event_id=eid(),
                        occurred_at=t,
                        rec_id=rec_id,
                        placement=placement,
                        product_id=p.product_id,
                        **common,
                    )
                )
                out.append(
                    ProductView(
                        event_id=eid(),
                        occurred_at=t,
                        product_id=p.product_id,
                        price=price,
                        placement=placement,
                        rec_id=rec_id,
                        **common,
                    )
                )
                if rng.random() >= 0.4:
                    continue
                t = at + timedelta(minutes=2)
                out.append(
                    AddToCart(
                        event_id=eid(),
                        occurred_at=t,
                        product_id=p.product_id,
                        unit_price=price,
                        placement=placement,
                        rec_id=rec_id,
                        **common,
                    )
                )
                if rng.random() >= 0.5:
                    continue
                out.append(
                    Purchase(
                        event_id=eid(),
                        occurred_at=at + timedelta(minutes=3),
                        order_id=f"o{seed}-{seq}",
                        lines=(
                            OrderLine(
                                product_id=p.product_id, quantity=1, unit_price=price, rec_id=rec_id
                            ),
                        ),
                        currency="EUR",
                        revenue=price,
                        **common,
                    )
                )
        # Shoppers who never meet a recommendation: a page view and sometimes an order.
        for _ in range(slates_per_hour):
            visitor = visitors + int(rng.integers(visitors))
            common = {
                "anonymous_id": f"a{visitor}",
                "session_id": f"s{seed}-{visitor}-{at:%Y%m%d}",
                "platform": "web",
            }
            out.append(PageView(event_id=eid(), occurred_at=at, page_type="home", **common))
            if rng.random() < 0.1:
                p = products[int(rng.choice(n, p=weights))]
                price = round(float(p.price or 10.0) * price_factor, 2)
                out.append(
                    Purchase(
                        event_id=eid(),
                        occurred_at=at + timedelta(minutes=5),
                        order_id=f"o{seed}-{seq}",
                        lines=(OrderLine(product_id=p.product_id, quantity=1, unit_price=price),),
                        currency="EUR",
                        revenue=price,
                        **common,
                    )
                )
    return out
