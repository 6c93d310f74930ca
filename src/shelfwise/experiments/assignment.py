"""Deterministic assignment of a person to an experiment arm.

Two independent hashes decide: the *layer* hash of (placement, person) picks
which experiment of a placement a person belongs to (experiments on one
placement split the layer by ``layer_offset``/``traffic`` and never share a
person); the *arm* hash of (experiment salt, person) picks the arm. Different
placements use different layer salts, so experiments on different placements
are independent of each other. BLAKE2b is keyed by nothing but its input, so
the same person gets the same arm in every process, on every machine.

Precedence: a running global holdout first (its holdout arm switches every
placement off), then experiments on placement ``all``, then the placement's own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shelfwise.experiments.model import ALL_PLACEMENTS, Arm, Experiment


def unit_hash(salt: str, unit: str) -> float:
    """A uniform number in [0, 1) from (salt, unit); stable across processes."""
    digest = hashlib.blake2b(f"{salt}\x1f{unit}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def layer_position(placement: str, person_id: str) -> float:
    return unit_hash(f"layer:{placement}", person_id)


def arm_for(experiment: Experiment, person_id: str) -> Arm:
    """The arm of ``person_id`` (ignores traffic and layer: the caller checked them)."""
    x = unit_hash(f"arm:{experiment.spec.hash_salt}", person_id)
    edge = 0.0
    for arm in experiment.spec.arms:
        edge += arm.share
        if x < edge:
            return arm
    return experiment.spec.arms[-1]


def in_layer(experiment: Experiment, person_id: str) -> bool:
    s = experiment.spec
    x = layer_position(s.placement, person_id)
    return s.layer_offset <= x < s.layer_offset + s.traffic


@dataclass(frozen=True)
class Assignment:
    """What serving needs: which arm, its overrides, and what to log with the slate."""

    experiment_id: str
    experiment_version: int
    arm: Arm

    @property
    def holdout(self) -> bool:
        return self.arm.holdout

    def log_fields(self) -> dict[str, Any]:
        """The fields to put on the ``rec_impression`` event."""
        return {"experiment_id": self.experiment_id, "arm": self.arm.name}


def _pick(candidates: Iterable[Experiment], person_id: str) -> Assignment | None:
    for e in sorted(candidates, key=lambda e: (e.spec.layer_offset, e.experiment_id)):
        if in_layer(e, person_id):
            return Assignment(e.experiment_id, e.version, arm_for(e, person_id))
    return None


def assign(
    experiments: Sequence[Experiment], placement: str, person_id: str, now: datetime
) -> Assignment | None:
    """The assignment of ``person_id`` on ``placement`` at ``now``, or None (no experiment).

    ``person_id`` must be the resolved person id (see :data:`Resolver`).
    """
    active = [e for e in experiments if e.active_at(now)]
    for e in active:
        if e.spec.global_holdout and in_layer(e, person_id):
            arm = arm_for(e, person_id)
            if arm.holdout:
                return Assignment(e.experiment_id, e.version, arm)
    regular = [e for e in active if not e.spec.global_holdout]
    everywhere = _pick((e for e in regular if e.spec.placement == ALL_PLACEMENTS), person_id)
    if everywhere is not None:
        return everywhere
    return _pick((e for e in regular if e.spec.placement == placement), person_id)


def layers_overlap(a: Experiment, b: Experiment) -> bool:
    """True when two experiments could claim the same person on the same placement."""
    sa, sb = a.spec, b.spec
    if sa.global_holdout or sb.global_holdout or sa.placement != sb.placement:
        return False
    a_end = sa.end.timestamp() if sa.end else float("inf")
    b_end = sb.end.timestamp() if sb.end else float("inf")
    if a_end <= sb.start.timestamp() or b_end <= sa.start.timestamp():
        return False
    a_hi, b_hi = sa.layer_offset + sa.traffic, sb.layer_offset + sb.traffic
    return sa.layer_offset < b_hi and sb.layer_offset < a_hi


# How analysis turns an event's identity fields into a person id.
Resolver = Callable[[str, str | None], str]


def default_resolve(anonymous_id: str, customer_id: str | None) -> str:
    """The customer id when known, else the anonymous id (stitching comes from signals)."""
    return customer_id or anonymous_id


def graph_resolve(person: Callable[[str], str]) -> Resolver:
    """Events' ids to the person the identity graph links them to.

    ``person`` is the graph's resolver (a frozen ``IdentityGraph.snapshot()`` for
    a readout); the request path hashes ``person(request.person)``, so a shopper's
    events on every device are read in the arm their slates were served in."""

    def resolve(anonymous_id: str, customer_id: str | None) -> str:
        return person(customer_id or anonymous_id)

    return resolve
