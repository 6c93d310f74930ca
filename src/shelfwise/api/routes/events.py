"""Event ingestion: ``POST /v1/events`` answers with one verdict per event, after commit."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from shelfwise.api.auth import Principal, require
from shelfwise.api.customers import check_events, token_of
from shelfwise.api.deps import RuntimeDep
from shelfwise.contracts.ingest import IngestReport
from shelfwise.documents import is_too_deep
from shelfwise.errors import InvalidInput, PayloadTooLarge

router = APIRouter(prefix="/v1", tags=["events"])

# A browser's storefront key posts events too (the tracker, /shelfwise.js).
Ingest = Annotated[Principal, Depends(require("ingest", "storefront"))]
Admin = Annotated[Principal, Depends(require("admin"))]


class ProblemOut(BaseModel):
    code: str
    field: str
    message: str


class VerdictOut(BaseModel):
    index: int
    event_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    problems: list[ProblemOut] = []


class IngestOut(BaseModel):
    received: int
    accepted: int
    duplicate: int
    rejected: int
    verdicts: list[VerdictOut]


class QuarantinedOut(BaseModel):
    id: int
    source: str
    event_id: str | None
    type: str | None
    reasons: list[ProblemOut]
    payload: Any
    status: str
    seen_count: int


class ReplayOut(BaseModel):
    accepted: int
    duplicate: int
    still_rejected: int


# Any JSON value is an event to judge: one that is not an object gets a ``rejected``
# verdict (``not_an_object``) like any other bad event, and the rest of the batch goes on.
_EVENT: dict[str, Any] = {"description": "an event (docs/events.md)"}


def _body(max_batch: int) -> dict[str, Any]:
    batch = {"type": "array", "items": _EVENT, "maxItems": max_batch}
    wrapped = {
        "type": "object",
        "properties": {"events": batch},
        "required": ["events"],
        "additionalProperties": False,
    }
    return {"oneOf": [batch, wrapped]}


_BODY_DOC = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": _body(1)}}}
}


def publish(document: dict[str, Any], max_batch: int) -> None:
    """Write the batch's bound (the setting ``max_batch_size``) into an OpenAPI document."""
    body = document["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    body["schema"] = _body(max_batch)


def decode_body(body: bytes) -> Any:
    """A JSON request body read by hand; 422 ``invalid_json`` or ``document_too_deep``."""
    try:
        return orjson.loads(body)  # no recursion: nesting past 1024 levels is refused
    except orjson.JSONDecodeError as e:
        if is_too_deep(e):
            raise InvalidInput(
                "the body nests deeper than JSON parsers allow", code="document_too_deep"
            ) from e
        raise InvalidInput("the body is not valid JSON", code="invalid_json") from e


def within_batch(events: list[Any], limit: int) -> list[Any]:
    if len(events) > limit:
        raise PayloadTooLarge(f"batch of {len(events)} exceeds {limit}", code="batch_too_large")
    return events


def _events_of(body: bytes, limit: int) -> list[Any]:
    data = decode_body(body)
    if isinstance(data, dict) and set(data) == {"events"}:
        data = data["events"]
    if not isinstance(data, list):
        raise InvalidInput(
            'the body must be a JSON array of events or {"events": [...]}', code="invalid_batch"
        )
    return within_batch(data, limit)


def _out(report: IngestReport) -> Response:
    """The ``IngestOut`` body, serialised directly: a batch answer has one verdict per
    event, and building response models for 500 of them costs more than the insert."""
    verdicts = [v.as_dict() for v in report.verdicts]
    for v in verdicts:
        v.setdefault("problems", [])
    body = {**report.counts(), "verdicts": verdicts}
    return Response(orjson.dumps(body), media_type="application/json")


@router.post("/events", response_model=IngestOut, openapi_extra=_BODY_DOC)
async def post_events(request: Request, runtime: RuntimeDep, who: Ingest) -> Response:
    """Ingest a batch (a JSON array, or ``{"events": [...]}``) of at most ``max_batch_size``
    events. Each event gets a verdict: ``accepted``, ``duplicate`` (its ``event_id`` is
    already stored) or ``rejected`` (with codes and field paths; it is quarantined).
    The answer is sent only after the accepted events are committed.

    With a ``storefront`` key, a batch in which an event names a ``customer_id`` needs
    that customer's token (``X-Customer-Token`` or ``?customer_token=``), or it is
    refused whole, nothing stored (403 ``customer_token_*``, docs/storefront.md)."""
    raws = _events_of(await request.body(), runtime.settings.max_batch_size)
    if who.storefront:
        token = token_of(request.headers, request.query_params)
        await run_in_threadpool(check_events, who, raws, token, runtime.customer_tokens)
    if runtime.settings.require_known_products:
        await run_in_threadpool(runtime.snapshot.refresh)
    report = await run_in_threadpool(runtime.ingestor.ingest, raws, "api")
    runtime.metrics.ingested("api", report.counts())
    return _out(report)


@router.get("/quarantine", response_model=list[QuarantinedOut])
def list_quarantine(
    runtime: RuntimeDep,
    _: Admin,
    status: Literal["open", "replayed", "all"] = "open",
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[QuarantinedOut]:
    """Rejected events with their raw payload and reasons."""
    entries = runtime.ingestor.quarantine.entries(
        status=None if status == "all" else status, offset=offset, limit=limit
    )
    return [QuarantinedOut.model_validate(e.as_dict()) for e in entries]


@router.post("/quarantine/replay", response_model=ReplayOut)
def replay_quarantine(runtime: RuntimeDep, _: Admin) -> ReplayOut:
    """Re-validate every open quarantined event; those that now pass are stored."""
    runtime.snapshot.refresh(force=True)
    return ReplayOut.model_validate(runtime.ingestor.replay().as_dict())
