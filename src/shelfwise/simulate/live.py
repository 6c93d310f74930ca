"""Live traffic and the demo flow: generate a store, ingest its history through
the public API, (train,) serve, then keep a trickle of simulated shoppers
posting events in real time while they react to the server's slates.

The steps are plain functions so the ``shelfwise demo`` command (and an
end-to-end test) can wire them to the server and the training job.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from shelfwise.simulate.defects import DefectLog, Defects
from shelfwise.simulate.history import Simulation, simulate
from shelfwise.simulate.output import HttpWriter
from shelfwise.simulate.policy import HttpPolicy, Policy
from shelfwise.simulate.sessions import Event, SessionRunner, iso
from shelfwise.simulate.world import SimulationSpec, World

log = logging.getLogger("shelfwise.simulate.live")

EventSink = Callable[[Sequence[Event]], Any]


def demo_spec(
    seed: int = 7,
    products: int = 2_000,
    people: int = 2_000,
    days: int = 28,
    now: datetime | None = None,
) -> SimulationSpec:
    """A history that ends at today's midnight (UTC), with the demo's defects on."""
    now = now or datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return SimulationSpec(
        seed=seed,
        products=products,
        people=people,
        days=days,
        start=midnight - timedelta(days=days),
        defects=Defects.demo(),
    )


@dataclass
class LiveTraffic:
    """A background thread of shoppers: sessions start at ``sessions_per_second`` and
    their events are posted to ``sink`` when their time comes (never early)."""

    world: World
    policy: Policy | None
    sink: EventSink
    sessions_per_second: float = 0.5
    seed: int = 0
    clock: Callable[[], float] = time.time
    tick: float = 0.5
    log: DefectLog = field(init=False)
    posted: int = 0
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.log = DefectLog(self.world.spec.defects)
        rng = np.random.default_rng([self.world.spec.seed, 7, self.seed])
        self._rng = rng
        self._runner = SessionRunner(
            self.world, self.policy, rng, f"live{self.world.spec.seed}-{self.seed}", self.log
        )
        self._queue: list[tuple[int, int, Event]] = []
        weights = self.world.people.activity
        self._who = np.cumsum(weights) / weights.sum()

    def step(self, now_ms: int, elapsed: float) -> int:
        """Start the sessions due in ``elapsed`` seconds and post the events due by ``now_ms``."""
        rng, w = self._rng, self.world
        for _ in range(int(rng.poisson(self.sessions_per_second * elapsed))):
            person = int(np.searchsorted(self._who, rng.random()))
            dev = int(rng.integers(len(w.people.devices[person])))
            self._runner.horizon_ms = now_ms  # returns would land in the future: skip them
            self._runner.run(person, dev, now_ms)
        for triple in self._runner.events:
            heapq.heappush(self._queue, triple)
        self._runner.events = []
        due = []
        while self._queue and self._queue[0][0] <= now_ms:
            t, _, event = heapq.heappop(self._queue)
            event["occurred_at"] = iso(t)
            due.append(event)
        if due:
            try:
                self.sink(due)
                self.posted += len(due)
            except Exception:  # a live demo keeps going when the server hiccups
                self.errors += 1
        return len(due)

    def _loop(self) -> None:
        last = self.clock()
        while not self._stop.wait(self.tick):
            now = self.clock()
            try:
                self.step(int(now * 1000), now - last)
            except Exception:  # one bad session must not end the traffic
                log.exception("live traffic: a step failed")
                self.errors += 1
            last = now

    def start(self) -> LiveTraffic:
        self._thread = threading.Thread(
            target=self._loop, name="shelfwise-live-traffic", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def generate_demo_store(spec: SimulationSpec) -> Simulation:
    """Step 1: the store and its history (popularity slates in the history)."""
    return simulate(spec)


def ingest_history(
    sim: Simulation, url: str, api_key: str, batch_size: int = 500
) -> dict[str, Any]:
    """Step 2: catalog, events and stock changes through the public HTTP API."""
    writer = HttpWriter(url, api_key, batch_size=batch_size)
    try:
        return writer.write(sim)
    finally:
        writer.close()


def start_live_traffic(
    sim: Simulation,
    url: str,
    api_key: str,
    *,
    sessions_per_second: float = 0.5,
    policy: Policy | None = None,
) -> LiveTraffic:
    """Step 4: shoppers reacting to the server's slates, posting their events (Safari defect as configured)."""
    writer = HttpWriter(url, api_key, batch_size=500)
    return LiveTraffic(
        sim.world,
        policy or HttpPolicy(url, api_key),
        writer.post_events,
        sessions_per_second=sessions_per_second,
    ).start()


def run_demo_flow(
    url: str,
    api_key: str,
    spec: SimulationSpec,
    *,
    train: Callable[[], Any] | None = None,
    sessions_per_second: float = 0.5,
) -> tuple[Simulation, dict[str, Any], LiveTraffic]:
    """Generate → ingest → train (if given) → live trickle, against a server already serving ``url``."""
    sim = generate_demo_store(spec)
    report = ingest_history(sim, url, api_key)
    if train is not None:
        train()
    return (
        sim,
        report,
        start_live_traffic(sim, url, api_key, sessions_per_second=sessions_per_second),
    )
