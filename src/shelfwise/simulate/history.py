"""A few weeks of store history: who comes on which day, on which device, at
what hour, and the events their sessions leave (sorted by time)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shelfwise.simulate.defects import DefectLog
from shelfwise.simulate.policy import Policy, popularity_policy
from shelfwise.simulate.sessions import DAY_MS, Event, SessionRunner, iso
from shelfwise.simulate.world import SimulationSpec, World, build_world

# Share of a day's sessions starting in each UTC hour: quiet nights, an evening peak.
HOURS = np.array(
    [
        1,
        0.6,
        0.4,
        0.3,
        0.3,
        0.5,
        1.2,
        2.4,
        3.2,
        3.6,
        3.8,
        4.0,
        4.4,
        4.4,
        4.0,
        3.9,
        4.0,
        4.6,
        5.6,
        6.6,
        7.0,
        6.2,
        4.2,
        2.2,
    ]
)
HOUR_CDF = np.cumsum(HOURS) / HOURS.sum()


@dataclass
class Simulation:
    """A generated store with its history and what was injected into it."""

    world: World
    events: list[Event]
    log: DefectLog
    sessions: int
    orders: int

    def ground_truth(self) -> dict[str, Any]:
        w = self.world
        return {
            "spec": w.spec.model_dump(mode="json"),
            "products": w.catalog.n,
            "people": w.people.n,
            "sessions": self.sessions,
            "events": len(self.events),
            "orders": self.orders,
            "registered_people": sum(c is not None for c in w.people.customer_id),
            "people_with_several_devices": sum(len(d) > 1 for d in w.people.devices),
            "slow_suppliers": list(w.catalog.slow_brands()),
            "promotions": [p.as_dict(w.catalog.brands) for p in w.promotions],
            "defects": self.log.as_dict(w.catalog),
        }


def history_policy(world: World) -> Policy:
    """The store's incumbent recommender in the history: popularity only."""
    return popularity_policy(world.ids, world.popularity())


def play_days(
    world: World,
    runner: SessionRunner,
    rng: np.random.Generator,
    progress: Callable[[int], object] | None = None,
    days: int | None = None,
) -> None:
    """Every day of the spec (or its first ``days``) in order; ``progress(day)`` after each."""
    people = world.people
    for day in range(world.spec.days if days is None else days):
        if progress is not None and day:
            progress(day)
        counts = rng.poisson(people.activity * world.calendar.traffic(day))
        day_ms = world.start_ms + day * DAY_MS
        for person in np.flatnonzero(counts):
            n = int(counts[person])
            starts = np.sort(
                np.searchsorted(HOUR_CDF, rng.random(n)) * 3_600_000
                + rng.integers(0, 3_600_000, size=n)
            )
            devices = people.devices[int(person)]
            for start in starts:
                # The first device is the main one; others get a third of the visits.
                dev = (
                    0
                    if len(devices) == 1 or rng.random() < 0.67
                    else int(rng.integers(1, len(devices)))
                )
                runner.run(int(person), dev, day_ms + int(start))


def finalise(triples: list[tuple[int, int, Event]]) -> list[Event]:
    """Sort by time (then creation order) and render the timestamps."""
    triples.sort(key=lambda x: (x[0], x[1]))
    out = []
    for t, _, event in triples:
        event["occurred_at"] = iso(t)
        out.append(event)
    return out


def simulate(
    spec: SimulationSpec,
    policy: Policy | str | None = "popularity",
    world: World | None = None,
    progress: Callable[[int], object] | None = None,
    days: int | None = None,
) -> Simulation:
    """Generate a store and ``spec.days`` of history (only the first ``days`` when
    given: the rest of the calendar is left for an online replay). Same spec, same output."""
    world = world or build_world(spec)
    days = spec.days if days is None else days
    if policy == "popularity":
        policy = history_policy(world)
    assert policy is None or not isinstance(policy, str)
    log = DefectLog(spec.defects)
    rng = np.random.default_rng([spec.seed, 4])
    runner = SessionRunner(
        world, policy, rng, f"sim{spec.seed}", log, world.start_ms + days * DAY_MS
    )
    play_days(world, runner, rng, progress, days)
    if progress is not None:
        progress(days)
    return Simulation(world, finalise(runner.events), log, runner.sessions, runner.orders)
