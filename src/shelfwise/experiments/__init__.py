"""Experiments and incrementality: specs as data, deterministic assignment, readouts.

Serving makes one call, ``runtime.assignments.assign(placement, person_id, now)``
(:class:`RunningExperiments`: :func:`assign` over the running experiments,
cached per worker), and logs ``Assignment.log_fields()`` on the
``rec_impression`` of the slate it serves. Readouts live in
:mod:`shelfwise.experiments.report` (not imported here: they pull in scipy,
which serving and the CLI should not pay for at start-up).
"""

from shelfwise.experiments.assignment import (
    Assignment,
    Resolver,
    arm_for,
    assign,
    default_resolve,
    unit_hash,
)
from shelfwise.experiments.model import (
    Arm,
    Experiment,
    ExperimentSpec,
    Guardrail,
    MetricName,
)
from shelfwise.experiments.repository import ExperimentRepository, RunningExperiments

__all__ = [
    "Arm",
    "Assignment",
    "Experiment",
    "ExperimentRepository",
    "ExperimentSpec",
    "Guardrail",
    "MetricName",
    "Resolver",
    "RunningExperiments",
    "arm_for",
    "assign",
    "default_resolve",
    "unit_hash",
]
