"""A small deterministic shop with taste groups: people buy within their group, over 60 days."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from shelfwise.catalog.model import Product
from shelfwise.contracts.events import OrderLine, ProductView, Purchase
from shelfwise.contracts.eventstore import EventStore
from shelfwise.runtime import Runtime

START = datetime(2024, 1, 1, tzinfo=UTC)
GROUPS = ("kitchen", "garden", "toys", "books")


def products(per_group: int = 8) -> list[Product]:
    return [
        Product(
            product_id=f"{g[:2].upper()}{i}",
            title=f"{g} item {i} {'deluxe' if i % 2 else 'basic'}",
            category_path=f"home/{g}",
            brand=f"{g}co",
            price=5.0 + i,
            currency="EUR",
            stock_qty=10,
        )
        for g in GROUPS
        for i in range(per_group)
    ]


def events(people: int = 48, days: int = 60, seed: int = 3) -> list[ProductView | Purchase]:
    rng = random.Random(seed)
    catalog = products()
    by_group = {g: [p for p in catalog if p.category_path == f"home/{g}"] for g in GROUPS}
    out: list[ProductView | Purchase] = []
    for n in range(people):
        group = by_group[GROUPS[n % len(GROUPS)]]
        for order in range(rng.randint(3, 6)):
            at = START + timedelta(days=rng.uniform(0, days))
            basket = rng.sample(group[: 4 + n % 5], 2)
            session = f"s{n}-{order}"
            for p in basket:
                out.append(
                    ProductView(
                        event_id=f"v{n}-{order}-{p.product_id}",
                        occurred_at=at - timedelta(minutes=5),
                        anonymous_id=f"anon{n}",
                        customer_id=f"c{n}",
                        session_id=session,
                        product_id=p.product_id,
                    )
                )
            out.append(
                Purchase(
                    event_id=f"o{n}-{order}",
                    occurred_at=at,
                    anonymous_id=f"anon{n}",
                    customer_id=f"c{n}",
                    session_id=session,
                    order_id=f"o{n}-{order}",
                    lines=tuple(
                        OrderLine(product_id=p.product_id, quantity=1, unit_price=p.price or 1.0)
                        for p in basket
                    ),
                    currency="EUR",
                    revenue=sum(p.price or 1.0 for p in basket),
                )
            )
    return out


def fill(runtime: Runtime) -> None:
    runtime.catalog.upsert(products())
    EventStore(runtime.db).append(events())
    runtime.snapshot.load()
