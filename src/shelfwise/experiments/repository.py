"""Experiments in the store, with versions and optimistic concurrency.

Every write names the version it read; an ``UPDATE … WHERE version = read``
that touches no row means someone else wrote first, and the caller gets a 409
``version_conflict`` instead of silently overwriting their change. Writers run one
at a time (``_writing``), so the checks that read other rows — the id is free, no
running experiment holds the same share of the layer — still hold at commit.
"""

from __future__ import annotations

import builtins
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from shelfwise.errors import Conflict, NotFound
from shelfwise.experiments.assignment import Assignment, assign, layers_overlap
from shelfwise.experiments.model import Experiment, ExperimentSpec, Status
from shelfwise.store.engine import Database
from shelfwise.store.tables import experiment_versions, experiments
from shelfwise.store.types import utcnow

log = logging.getLogger("shelfwise.experiments")


def _row_to_experiment(row: Any) -> Experiment:
    return Experiment(
        spec=ExperimentSpec.model_validate(row.spec),
        version=row.version,
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _moved(experiment_id: str, current: int, read: int) -> Conflict:
    return Conflict(
        f"experiment {experiment_id!r} is at version {current}, "
        f"not {read}: read it again and reapply your change",
        code="version_conflict",
        details={"current_version": current},
    )


def _assignment_key(s: ExperimentSpec) -> tuple[Any, ...]:
    """What decides who is in which arm."""
    arms = tuple((a.name, a.share, a.holdout) for a in s.arms)
    return (s.placement, arms, s.hash_salt, s.traffic, s.layer_offset, s.start, s.global_holdout)


class ExperimentRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, experiment_id: str) -> Experiment:
        with self.db.engine.connect() as conn:
            return self._get(conn, experiment_id)

    def _get(self, conn: Connection, experiment_id: str) -> Experiment:
        row = conn.execute(
            select(experiments).where(experiments.c.experiment_id == experiment_id)
        ).first()
        if row is None:
            raise NotFound(f"unknown experiment {experiment_id!r}", code="experiment_not_found")
        return _row_to_experiment(row)

    def list(self, status: Status | None = None) -> builtins.list[Experiment]:
        query = select(experiments).order_by(experiments.c.experiment_id)
        if status is not None:
            query = query.where(experiments.c.status == status)
        with self.db.engine.connect() as conn:
            return [_row_to_experiment(r) for r in conn.execute(query)]

    def running(self) -> builtins.list[Experiment]:
        """What serving hands to :func:`~shelfwise.experiments.assign`."""
        return self.list("running")

    def history(self, experiment_id: str) -> builtins.list[dict[str, Any]]:
        with self.db.engine.connect() as conn:
            self._get(conn, experiment_id)
            rows = conn.execute(
                select(experiment_versions)
                .where(experiment_versions.c.experiment_id == experiment_id)
                .order_by(experiment_versions.c.version)
            )
            return [
                {
                    "version": r.version,
                    "status": r.status,
                    "changed_by": r.changed_by,
                    "changed_at": r.changed_at,
                    "spec": r.spec,
                }
                for r in rows
            ]

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """One experiment writer at a time, from its first read to its commit (SQLite's
        write lock; a PostgreSQL table lock that readers do not wait for)."""
        with self.db.checked_write() as conn:
            if self.db.backend == "postgresql":
                conn.execute(text("LOCK TABLE experiments IN SHARE ROW EXCLUSIVE MODE"))
            yield conn

    def _check_layer(self, conn: Connection, candidate: Experiment) -> None:
        for r in conn.execute(select(experiments).where(experiments.c.status == "running")):
            other = _row_to_experiment(r)
            if other.experiment_id != candidate.experiment_id and layers_overlap(candidate, other):
                raise Conflict(
                    f"experiment {other.experiment_id!r} already holds this share of the "
                    f"{candidate.spec.placement!r} layer in an overlapping period; "
                    "choose a layer_offset/traffic that does not overlap",
                    code="layer_overlap",
                    details={"other": other.experiment_id},
                )

    def _record(self, conn: Connection, e: Experiment, by: str | None, now: datetime) -> None:
        conn.execute(
            experiment_versions.insert(),
            {
                "experiment_id": e.experiment_id,
                "version": e.version,
                "status": e.status,
                "spec": e.spec.model_dump(mode="json"),
                "changed_by": by,
                "changed_at": now,
            },
        )

    def create(self, spec: ExperimentSpec, *, by: str | None = None) -> Experiment:
        now = utcnow()
        e = Experiment(spec=spec, version=1, status="running", created_at=now, updated_at=now)
        with self._writing() as conn:
            exists = conn.execute(
                select(experiments.c.version).where(
                    experiments.c.experiment_id == spec.experiment_id
                )
            ).first()
            if exists is not None:
                raise Conflict(
                    f"experiment {spec.experiment_id!r} exists", code="experiment_exists"
                )
            self._check_layer(conn, e)
            conn.execute(
                experiments.insert(),
                {
                    "experiment_id": spec.experiment_id,
                    "version": 1,
                    "status": "running",
                    "placement": spec.placement,
                    "spec": spec.model_dump(mode="json"),
                    "created_at": now,
                    "updated_at": now,
                },
            )
            self._record(conn, e, by, now)
        return e

    def _write(
        self,
        experiment_id: str,
        expected_version: int | None,
        change: Any,
        by: str | None,
    ) -> Experiment:
        """Apply ``change(current) -> (spec, status)`` if the stored version is the one read."""
        now = utcnow()
        with self._writing() as conn:
            current = self._get(conn, experiment_id)
            version = current.version if expected_version is None else expected_version
            if version != current.version:  # before the change: it judges a state not read
                raise _moved(experiment_id, current.version, version)
            spec, status = change(current)
            new = Experiment(
                spec=spec,
                version=version + 1,
                status=status,
                created_at=current.created_at,
                updated_at=now,
            )
            if status == "running":
                self._check_layer(conn, new)
            done = conn.execute(
                update(experiments)
                .where(experiments.c.experiment_id == experiment_id)
                .where(experiments.c.version == version)
                .values(
                    version=version + 1,
                    status=status,
                    placement=spec.placement,
                    spec=spec.model_dump(mode="json"),
                    updated_at=now,
                )
            )
            if done.rowcount != 1:  # not reached while _writing serialises the writers
                raise _moved(experiment_id, current.version, version)
            self._record(conn, new, by, now)
        return new

    def update(
        self, spec: ExperimentSpec, expected_version: int, *, by: str | None = None
    ) -> Experiment:
        def change(current: Experiment) -> tuple[ExperimentSpec, Status]:
            if current.status == "stopped":
                raise Conflict(
                    f"experiment {spec.experiment_id!r} is stopped", code="experiment_stopped"
                )
            moved = _assignment_key(current.spec) != _assignment_key(spec)
            if moved and current.spec.start <= utcnow():
                raise Conflict(
                    "a started experiment keeps its placement, arms, shares, salt, traffic and "
                    "start (changing them would move persons between arms); stop it and "
                    "create a new one",
                    code="assignment_locked",
                )
            return spec, current.status

        return self._write(spec.experiment_id, expected_version, change, by)

    def stop(
        self,
        experiment_id: str,
        expected_version: int | None = None,
        *,
        by: str | None = None,
        now: datetime | None = None,
    ) -> Experiment:
        """Stop assigning; the end becomes ``now`` unless it was earlier already."""
        at = now or utcnow()

        def change(current: Experiment) -> tuple[ExperimentSpec, Status]:
            spec = current.spec
            if spec.end is None or spec.end > at:
                end = max(at, spec.start)
                spec = spec.model_copy(update={"end": end}) if end > spec.start else spec
            return spec, "stopped"

        return self._write(experiment_id, expected_version, change, by)


class RunningExperiments:
    """The running experiments a worker assigns from, reloaded at most every
    ``refresh_seconds`` so the request path does not query the store each time.

    With the store unreachable the experiments last read keep assigning (people
    stay in their arms; stopping one needs the store anyway), tried again after
    ``refresh_seconds``; before any successful read the error propagates."""

    def __init__(self, repo: ExperimentRepository, refresh_seconds: float = 5.0) -> None:
        self.repo = repo
        self.refresh_seconds = refresh_seconds
        self._items: builtins.list[Experiment] = []
        self._loaded_at = -math.inf
        self._lock = threading.Lock()

    def current(self) -> builtins.list[Experiment]:
        now = time.monotonic()
        if now - self._loaded_at >= self.refresh_seconds:
            with self._lock:
                if now - self._loaded_at >= self.refresh_seconds:
                    try:
                        self._items = self.repo.running()
                    except SQLAlchemyError as e:
                        if self._loaded_at == -math.inf:
                            raise
                        log.warning("experiments unreadable (%s): assigning from the last read", e)
                    self._loaded_at = now
        return self._items

    def assign(self, placement: str, person_id: str, now: datetime) -> Assignment | None:
        """The one call serving makes: :func:`assign` over the running experiments."""
        return assign(self.current(), placement, person_id, now)
