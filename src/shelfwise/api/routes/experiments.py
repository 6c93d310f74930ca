"""Experiment endpoints: CRUD with optimistic concurrency (ETag / If-Match), stop, readout."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Response

from shelfwise.api.auth import Principal, require
from shelfwise.api.deps import RuntimeDep
from shelfwise.errors import InvalidInput, PreconditionRequired
from shelfwise.experiments import Experiment, ExperimentSpec
from shelfwise.experiments.assignment import graph_resolve
from shelfwise.experiments.model import Status
from shelfwise.experiments.report import Report, readout
from shelfwise.values import PATH_ID_PATTERN, Timestamp

router = APIRouter(prefix="/v1", tags=["experiments"])

Merchandiser = Annotated[Principal, Depends(require("merchandiser"))]
Reader = Annotated[Principal, Depends(require("read"))]
ExperimentIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=PATH_ID_PATTERN)]
IfMatch = Annotated[str | None, Header(description='The ETag read, e.g. "3".')]


def etag(e: Experiment) -> str:
    return f'"{e.version}"'


def _version_of(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise InvalidInput('If-Match must be an ETag such as "3"', code="invalid_if_match")
    return int(raw)


def _tagged(response: Response, e: Experiment) -> Experiment:
    response.headers["ETag"] = etag(e)
    return e


@router.post("/experiments", response_model=Experiment, status_code=201)
def create_experiment(
    spec: ExperimentSpec, response: Response, runtime: RuntimeDep, who: Merchandiser
) -> Experiment:
    """Create and start an experiment (version 1). 409 if the id exists or the layer overlaps."""
    return _tagged(response, runtime.experiments.create(spec, by=who.name))


@router.get("/experiments", response_model=list[Experiment])
def list_experiments(
    runtime: RuntimeDep, _: Reader, status: Annotated[Status | None, Query()] = None
) -> list[Experiment]:
    return runtime.experiments.list(status)


@router.get("/experiments/{experiment_id}", response_model=Experiment)
def get_experiment(
    experiment_id: ExperimentIdPath, response: Response, runtime: RuntimeDep, _: Reader
) -> Experiment:
    return _tagged(response, runtime.experiments.get(experiment_id))


@router.put("/experiments/{experiment_id}", response_model=Experiment)
def update_experiment(
    experiment_id: ExperimentIdPath,
    spec: ExperimentSpec,
    response: Response,
    runtime: RuntimeDep,
    who: Merchandiser,
    if_match: IfMatch = None,
) -> Experiment:
    """Replace the spec. ``If-Match`` with the ETag read is required; a stale one is 409."""
    version = _version_of(if_match)
    if version is None:
        raise PreconditionRequired("send If-Match with the ETag you read", code="if_match_required")
    if spec.experiment_id != experiment_id:
        raise InvalidInput("experiment_id in the body differs from the path", code="id_mismatch")
    return _tagged(response, runtime.experiments.update(spec, version, by=who.name))


@router.post("/experiments/{experiment_id}/stop", response_model=Experiment)
def stop_experiment(
    experiment_id: ExperimentIdPath,
    response: Response,
    runtime: RuntimeDep,
    who: Merchandiser,
    if_match: IfMatch = None,
) -> Experiment:
    """Stop assigning now; the readout covers the window up to the stop."""
    e = runtime.experiments.stop(experiment_id, _version_of(if_match), by=who.name)
    return _tagged(response, e)


@router.get("/experiments/{experiment_id}/history")
def experiment_history(
    experiment_id: ExperimentIdPath, runtime: RuntimeDep, _: Reader
) -> list[dict[str, Any]]:
    return runtime.experiments.history(experiment_id)


@router.get("/experiments/{experiment_id}/report", response_model=Report)
def experiment_report(
    experiment_id: ExperimentIdPath,
    runtime: RuntimeDep,
    _: Reader,
    at: Annotated[Timestamp | None, Query(description="Read out as of this time.")] = None,
) -> Report:
    """Per arm, placement and category: exposure, CTR, conversion, revenue, lifts with CIs."""
    when: datetime | None = at
    e = runtime.experiments.get(experiment_id)
    return readout(
        runtime.db,
        e,
        at=when,
        resolve=graph_resolve(runtime.identity.snapshot()),
        attribution_window_hours=runtime.settings.attribution_window_hours,
    )
