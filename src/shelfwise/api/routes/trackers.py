"""Events in Segment's and Snowplow's shapes: ``POST /v1/events/segment`` and
``POST /v1/events/snowplow`` (mappings: docs/events.md#segment-and-snowplow).

Each endpoint takes what its tracker sends (a Segment batch or message; a Snowplow
``payload_data``), maps each message to a shelfwise event and answers like
``POST /v1/events``, with one more status: ``ignored`` for a kind of message
shelfwise does not use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from shelfwise.api.auth import Principal, require
from shelfwise.api.deps import RuntimeDep
from shelfwise.api.routes.events import ProblemOut, decode_body, within_batch
from shelfwise.contracts.external import Mapper, ingest_external
from shelfwise.contracts.segment import map_segment
from shelfwise.contracts.snowplow import map_snowplow
from shelfwise.errors import InvalidInput

router = APIRouter(prefix="/v1/events", tags=["events"])

Ingest = Annotated[Principal, Depends(require("ingest"))]


class TrackerVerdictOut(BaseModel):
    index: int
    event_id: str | None
    status: Literal["accepted", "duplicate", "rejected", "ignored"]
    type: str | None
    problems: list[ProblemOut] = []


class TrackerIngestOut(BaseModel):
    received: int
    accepted: int
    duplicate: int
    rejected: int
    ignored: int
    verdicts: list[TrackerVerdictOut]


# (path, the key a batch lists its messages under, mapper, what a message is)
TRACKERS: dict[str, tuple[str, Mapper, str]] = {
    "segment": ("batch", map_segment, "a Segment message (track, page, screen, identify)"),
    "snowplow": ("data", map_snowplow, "a Snowplow tracker event (payload_data's data[])"),
}


def _body(key: str, what: str, max_batch: int) -> dict[str, Any]:
    batch = {"type": "array", "items": {"description": what}, "maxItems": max_batch}
    wrapped = {"type": "object", "properties": {key: batch}, "description": f"{what}, or a batch"}
    return {"oneOf": [batch, wrapped]}


def publish(document: dict[str, Any], max_batch: int) -> None:
    """Write each body's schema, bounded by ``max_batch_size``, into an OpenAPI document."""
    for name, (key, _, what) in TRACKERS.items():
        operation = document["paths"][f"/v1/events/{name}"]["post"]
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _body(key, what, max_batch)}},
        }


def messages_of(body: bytes, key: str, limit: int) -> list[Any]:
    data = decode_body(body)
    if isinstance(data, dict) and key in data:
        if not isinstance(data[key], list):
            raise InvalidInput(f"{key!r} must be a JSON array of messages", code="invalid_batch")
        data = data[key]
    elif not isinstance(data, (dict, list)):
        raise InvalidInput(
            f'the body must be a message, a JSON array of them or {{"{key}": [...]}}',
            code="invalid_batch",
        )
    return within_batch(data if isinstance(data, list) else [data], limit)


def _endpoint(name: str) -> Callable[..., Any]:
    key, mapper, _ = TRACKERS[name]

    async def ingest(request: Request, runtime: RuntimeDep, _: Ingest) -> TrackerIngestOut:
        messages = messages_of(await request.body(), key, runtime.settings.max_batch_size)
        if runtime.settings.require_known_products:
            await run_in_threadpool(runtime.snapshot.refresh)
        verdicts = await run_in_threadpool(
            ingest_external, runtime.ingestor, messages, mapper, name
        )
        counts = {s: 0 for s in ("accepted", "duplicate", "rejected", "ignored")}
        for v in verdicts:
            counts[v.status] += 1
        runtime.metrics.ingested(name, counts)
        return TrackerIngestOut.model_validate(
            {"received": len(verdicts), **counts, "verdicts": [v.as_dict() for v in verdicts]}
        )

    ingest.__name__ = f"post_{name}_events"
    ingest.__doc__ = (
        f"Ingest {TRACKERS[name][2]}s, mapped to shelfwise events "
        "(docs/events.md#segment-and-snowplow). Each message gets a verdict: "
        "``accepted``, ``duplicate``, ``rejected`` (quarantined) or ``ignored`` (a kind "
        "shelfwise does not use, ``event_not_mapped``)."
    )
    return ingest


for _name in TRACKERS:
    router.post(f"/{_name}", response_model=TrackerIngestOut)(_endpoint(_name))
