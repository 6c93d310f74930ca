"""Scheduled alert evaluation inside the server, one evaluator across workers.

Every worker of ``shelfwise serve`` runs an :class:`AlertScheduler` thread; at
each tick it tries to take (or renew) the ``alerts`` lease in the store, and
only the holder evaluates. The holder renews at every tick, so the lease moves
to another worker only when the holder stops (it releases it) or dies (it
expires). Evaluation stores the alerts and posts new ones to the webhook (see
``monitoring.alerts``); a failing evaluation is logged and retried at the next
tick, never allowed to stop the thread.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError

from shelfwise.config import Settings
from shelfwise.monitoring.alerts import EVALUATOR, Evaluation, evaluate_alerts
from shelfwise.store.deadletters import OnFailure
from shelfwise.store.engine import Database
from shelfwise.store.failures import unreachable
from shelfwise.store.tables import leases
from shelfwise.store.types import utcnow

log = logging.getLogger("shelfwise.monitoring")

DEFAULT_EVERY_SECONDS = 300.0
LEASE = "alert-evaluation"


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """A named, expiring lease in the store: at most one holder at a time."""

    def __init__(
        self,
        db: Database,
        name: str,
        holder: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db, self.name, self.clock = db, name, clock
        self.holder = holder or holder_id()

    def acquire(self, ttl_seconds: float) -> bool:
        """Take the lease if it is free or expired, renew it if held; False if another holds it."""
        now = self.clock()
        until = now + timedelta(seconds=ttl_seconds)
        with self.db.engine.begin() as conn:
            renewed = conn.execute(
                update(leases)
                .where(
                    leases.c.name == self.name,
                    or_(leases.c.holder == self.holder, leases.c.expires_at <= now),
                )
                .values(holder=self.holder, expires_at=until)
            ).rowcount
        if renewed:
            return True
        try:
            with self.db.engine.begin() as conn:
                conn.execute(
                    leases.insert().values(name=self.name, holder=self.holder, expires_at=until)
                )
        except IntegrityError:
            return False  # another worker holds it (or took it just now)
        return True

    def release(self) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                delete(leases).where(leases.c.name == self.name, leases.c.holder == self.holder)
            )


class AlertScheduler:
    """Evaluate alerts every ``every_seconds`` while this worker holds the lease.

    ``evaluate`` replaces the evaluation (tests inject a replayed series);
    ``on_failure(thread, kind)`` counts failures (``ServingMetrics.background_failure``).
    """

    def __init__(
        self,
        db: Database,
        settings: Settings,
        every_seconds: float,
        *,
        evaluate: Callable[[], Evaluation] | None = None,
        lease: Lease | None = None,
        on_failure: OnFailure | None = None,
    ) -> None:
        if every_seconds <= 0:
            raise ValueError("every_seconds must be positive")
        self.every = every_seconds
        self.on_failure = on_failure
        self.evaluate = evaluate or (lambda: evaluate_alerts(db, settings, on_failure=on_failure))
        self.lease = lease or Lease(db, LEASE)
        # The holder renews at each tick: the lease outlives a tick plus a slow evaluation.
        self.ttl = max(2 * every_seconds, every_seconds + 60.0)
        self.evaluations = 0
        self.failures = 0
        self.last: Evaluation | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> Evaluation | None:
        """One round: evaluate if this worker holds the lease; None otherwise or on failure."""
        try:
            if not self.lease.acquire(self.ttl):
                return None
            ev = self.evaluate()
        except Exception as e:  # the scheduler must outlive a bad round
            kind = "unreachable" if unreachable(e) else "error"
            self.failures += 1
            if self.on_failure is not None:
                self.on_failure(EVALUATOR, kind)
            if kind == "unreachable":
                log.warning(
                    "alert evaluation: store unavailable (%s); retry next tick", type(e).__name__
                )
            else:
                log.exception("scheduled alert evaluation failed")
            return None
        self.evaluations += 1
        self.last = ev
        if ev.opened or ev.resolved:
            log.info(
                "alerts: %d opened, %d resolved, %d notified",
                len(ev.opened),
                len(ev.resolved),
                ev.notified,
            )
        return ev

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.tick()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=EVALUATOR, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.lease.release()
        except Exception:  # a store already gone at shutdown
            log.warning("could not release the alert lease", exc_info=True)
