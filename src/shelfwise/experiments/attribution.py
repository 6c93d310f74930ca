"""From the event store to per-person metrics of one experiment.

Exposure: the first ``rec_impression`` tagged with the experiment (population
``exposed``), or the first event of any person the hash assigns (population
``active``, intention to treat: needed when a holdout shows nothing to log).
The person id is resolved at exposure and every later event is resolved the
same way. Outcomes count from the person's first exposure to the window end.

Attribution: revenue from recommendations by the one definition of
:mod:`shelfwise.monitoring.attribution`, within the experiment: an order line is
attributed when it carries the ``rec_id`` of one of its slates, or when the person
clicked that product in one of its slates at most the attribution window before
the order (the spec's ``attribution_window_hours``, else the store's setting).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select

from shelfwise.experiments.assignment import Resolver, arm_for, in_layer
from shelfwise.experiments.model import ALL_PLACEMENTS, Experiment
from shelfwise.monitoring.attribution import DEFAULT_WINDOW_HOURS, credited_click
from shelfwise.store.engine import Database
from shelfwise.store.tables import events, interactions, products

# Per-person metric columns (see docs/experiments.md for each).
METRICS = (
    "revenue", "orders", "purchases", "attributed", "impressions", "clicks", "add_to_carts",
    "converted", "repeat", "returned", "pre_revenue", "oos_shown", "attributed_revenue",
)  # fmt: skip
PLACEMENT_METRICS = frozenset(
    {"impressions", "clicks", "add_to_carts", "attributed", "oos_shown", "attributed_revenue"}
)
_M = {m: i for i, m in enumerate(METRICS)}
ALL = "all"


@dataclass
class Person:
    arm: str
    exposed_at: datetime
    platform: str | None
    known: bool
    placements: set[str] = field(default_factory=set)


@dataclass
class ExperimentData:
    """Dense per-person metrics: ``values[person, placement, category, metric]``.

    Index 0 of the placement and category axes is ``all``.
    """

    persons: list[str]
    arms: np.ndarray  # arm name per person
    exposed: np.ndarray  # (persons, placements) bool: exposed on that placement
    platforms: list[str | None]
    known: np.ndarray
    placements: list[str]
    categories: list[str]
    values: np.ndarray
    conflicts: int  # persons seen in more than one arm (first arm kept)


def _exposures(
    db: Database, e: Experiment, start: datetime, end: datetime, resolve: Resolver
) -> tuple[dict[str, Person], dict[str, str], int]:
    """Persons by resolved id, the experiment's rec_ids → placement, arm conflicts."""
    people: dict[str, Person] = {}
    slates: dict[str, str] = {}
    conflicts: set[str] = set()
    query = (
        select(
            events.c.anonymous_id, events.c.customer_id, events.c.platform,
            events.c.occurred_at, events.c.placement, events.c.rec_id, events.c.payload,
        )
        .where(events.c.type == "rec_impression")
        .where(events.c.occurred_at >= start, events.c.occurred_at < end)
        .order_by(events.c.occurred_at)
    )  # fmt: skip
    with db.engine.connect() as conn:
        for r in conn.execute(query):
            if r.payload.get("experiment_id") != e.experiment_id:
                continue
            arm = r.payload.get("arm")
            if e.spec.arm(arm or "") is None:
                continue
            slates[r.rec_id] = r.placement
            pid = resolve(r.anonymous_id, r.customer_id)
            p = people.get(pid)
            if p is None:
                p = people[pid] = Person(arm, r.occurred_at, r.platform, r.customer_id is not None)
            elif p.arm != arm:
                conflicts.add(pid)
            p.placements.add(r.placement)
        if e.spec.population == "active":
            _active_population(conn, e, start, end, resolve, people)
    return people, slates, len(conflicts)


def _active_population(
    conn: Any,
    e: Experiment,
    start: datetime,
    end: datetime,
    resolve: Resolver,
    people: dict[str, Person],
) -> None:
    query = (
        select(events.c.anonymous_id, events.c.customer_id, events.c.platform, events.c.occurred_at)
        .where(events.c.occurred_at >= start, events.c.occurred_at < end)
        .order_by(events.c.occurred_at)
    )
    for r in conn.execute(query):
        pid = resolve(r.anonymous_id, r.customer_id)
        if pid in people or not in_layer(e, pid):
            continue
        people[pid] = Person(
            arm_for(e, pid).name, r.occurred_at, r.platform, r.customer_id is not None
        )


def _catalog(db: Database) -> tuple[dict[str, str], set[str]]:
    """Top-level category per product, and the products not available now."""
    cats: dict[str, str] = {}
    unavailable: set[str] = set()
    with db.engine.connect() as conn:
        q = select(products.c.product_id, products.c.category_path, products.c.availability)
        for r in conn.execute(q):
            cats[r.product_id] = (r.category_path or "uncategorised").split("/")[0]
            if r.availability not in ("in_stock", "preorder"):
                unavailable.add(r.product_id)
    return cats, unavailable


def window_hours(e: Experiment, default: float = DEFAULT_WINDOW_HOURS) -> float:
    """The experiment's attribution window: its spec's, else ``default`` (the setting)."""
    w = e.spec.attribution_window_hours
    return default if w is None else w


def load(
    db: Database,
    e: Experiment,
    *,
    end: datetime,
    resolve: Resolver,
    attribution_window_hours: float = DEFAULT_WINDOW_HOURS,
) -> ExperimentData:
    """Scan exposures and interactions once and build the per-person metric array."""
    s = e.spec
    start = s.start
    pre_start = start - timedelta(days=s.pre_period_days)
    hours = window_hours(e, attribution_window_hours)
    people, slates, conflicts = _exposures(db, e, start, end, resolve)
    cats, unavailable = _catalog(db)
    persons = sorted(people)
    pidx = {p: i for i, p in enumerate(persons)}
    placements = [ALL, *sorted({pl for p in people.values() for pl in p.placements})]
    if s.placement != ALL_PLACEMENTS and s.placement not in placements:
        placements.append(s.placement)
    categories = [ALL, *sorted(set(cats.values()) | {"uncategorised"})]
    plx = {p: i for i, p in enumerate(placements)}
    cx = {c: i for i, c in enumerate(categories)}
    values = np.zeros((len(persons), len(placements), len(categories), len(METRICS)))

    def add(i: int, placement: str | None, product: str | None, metric: str, v: float) -> None:
        c = cx[cats.get(product, "uncategorised")] if product is not None else 0
        cells = {0, c}
        targets = {0, plx[placement]} if placement in plx else {0}
        m = _M[metric]
        for pl in targets:
            for cc in cells:
                values[i, pl, cc, m] += v

    clicks: dict[tuple[int, str], list[tuple[datetime, str]]] = defaultdict(list)
    orders: dict[tuple[int, int], set[str]] = defaultdict(set)
    prices: dict[tuple[int, str], float] = {}
    q = (
        select(
            interactions.c.event_id, interactions.c.type, interactions.c.occurred_at,
            interactions.c.anonymous_id, interactions.c.customer_id,
            interactions.c.product_id, interactions.c.quantity, interactions.c.unit_price,
            interactions.c.rec_id,
        )
        .where(interactions.c.occurred_at >= pre_start, interactions.c.occurred_at < end)
        .where(interactions.c.type.in_(
            ("rec_impression", "rec_click", "add_to_cart", "purchase", "return")
        ))
        .order_by(interactions.c.occurred_at, interactions.c.event_id, interactions.c.line)
    )  # fmt: skip
    with db.engine.connect() as conn:
        for r in conn.execute(q):
            i = pidx.get(resolve(r.anonymous_id, r.customer_id))
            if i is None:
                continue
            person = people[persons[i]]
            value = (r.unit_price or 0.0) * r.quantity
            if r.occurred_at < start:
                if r.type == "purchase":
                    add(i, None, r.product_id, "pre_revenue", value)
                continue
            if r.occurred_at < person.exposed_at:
                continue
            slate = slates.get(r.rec_id) if r.rec_id else None
            if r.type == "rec_impression" and slate is not None:
                add(i, slate, r.product_id, "impressions", 1.0)
                if r.product_id in unavailable:
                    add(i, slate, r.product_id, "oos_shown", 1.0)
            elif r.type == "rec_click" and slate is not None:
                add(i, slate, r.product_id, "clicks", 1.0)
                clicks[(i, r.product_id)].append((r.occurred_at, slate))
            elif r.type == "add_to_cart" and slate is not None:
                add(i, slate, r.product_id, "add_to_carts", 1.0)
            elif r.type == "purchase":
                prices[(i, r.product_id)] = r.unit_price or 0.0
                add(i, None, r.product_id, "revenue", value)
                add(i, None, r.product_id, "purchases", 1.0)
                orders[(i, 0)].add(r.event_id)
                orders[(i, cx[cats.get(r.product_id, "uncategorised")])].add(r.event_id)
                if slate is None:
                    slate = credited_click(r.occurred_at, clicks.get((i, r.product_id), ()), hours)
                if slate is not None:
                    add(i, slate, r.product_id, "attributed", 1.0)
                    add(i, slate, r.product_id, "attributed_revenue", value)
            elif r.type == "return":
                price = (
                    r.unit_price if r.unit_price is not None else prices.get((i, r.product_id), 0.0)
                )
                add(i, None, r.product_id, "returned", price * r.quantity)
    for (i, c), ids in orders.items():
        values[i, :, c, _M["orders"]] = len(ids)
    _person_level_everywhere(values)
    values[..., _M["converted"]] = values[..., _M["orders"]] > 0
    values[..., _M["repeat"]] = values[..., _M["orders"]] >= 2
    exposed = np.zeros((len(persons), len(placements)), dtype=bool)
    exposed[:, 0] = True
    for i, pid in enumerate(persons):
        for pl in people[pid].placements:
            exposed[i, plx[pl]] = True
    return ExperimentData(
        persons=persons,
        arms=np.array([people[p].arm for p in persons], dtype=object),
        exposed=exposed,
        platforms=[people[p].platform for p in persons],
        known=np.array([people[p].known for p in persons], dtype=bool),
        placements=placements,
        categories=categories,
        values=values,
        conflicts=conflicts,
    )


def _person_level_everywhere(values: np.ndarray) -> None:
    """Person-level outcomes (revenue, orders …) are the same on every placement slice."""
    for m in METRICS:
        if m not in PLACEMENT_METRICS:
            values[:, 1:, :, _M[m]] = values[:, :1, :, _M[m]]
