"""Recommendations, placements and "why was this shown?"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from shelfwise.api.auth import Principal, require
from shelfwise.api.customers import token_of
from shelfwise.api.deps import RuntimeDep
from shelfwise.api.hotpath import (
    READERS,
    RECOMMENDATIONS,
    clock_of,
    slate_json,
    within_max_k,
)
from shelfwise.errors import NotFound
from shelfwise.pipeline import RecommendRequest, SlateOut
from shelfwise.serving.decisions import RULE_ITEMS_PAGE, RULE_ITEMS_PAGE_MOST, page_rule_items
from shelfwise.serving.placements import Placement
from shelfwise.values import PATH_ID_PATTERN, path_id_list_schema

router = APIRouter(prefix="/v1", tags=["recommendations"])

require_read = require("read")
Reader = Annotated[Principal, Depends(require_read)]
# A slate: what a browser's storefront key may ask for, as well as a read key.
SlateReader = Annotated[Principal, Depends(require(*READERS))]


class PlacementsOut(BaseModel):
    version: str
    origin: str
    placements: list[Placement]


class DecisionOut(BaseModel):
    rec_id: str
    served_at: datetime
    placement: str
    mode: str
    person_id: str | None
    session_id: str | None
    experiment_id: str | None
    arm: str | None
    model_version: str | None
    rulebook_version: str | None
    request: dict[str, Any]
    items: list[dict[str, Any]]
    trace: dict[str, Any] | None


def _now(request: Request, runtime: RuntimeDep) -> datetime | None:
    return clock_of(request.headers, runtime.settings.allow_clock_header)


# GET's query string is parsed by ``api.hotpath`` rather than by FastAPI's
# per-parameter machinery, which costs more than the whole pipeline; the parameters
# are still documented in OpenAPI (:func:`publish`). POST is ``async``: the pipeline
# is sub-millisecond CPU work, cheaper on the event loop than via a thread hop.
_DESCRIPTIONS = {
    "item": "viewed product ids, comma-separated (or the parameter repeated)",
    "cart": "product ids in the cart, comma-separated (or the parameter repeated)",
    "person": "customer, anonymous or device id; empty means none",
    "session": "the live session id; empty means none",
    "k": "slate size, at most the setting max_k",
}


def _id_list(ids: dict[str, Any]) -> dict[str, Any]:
    """``ids`` (an array of ids) as one query value, the ids separated by commas.

    The reader also takes the parameter repeated (``item=a&item=b``), but a limit on
    the ids in all is one JSON Schema can state only over one value."""
    return path_id_list_schema(ids["items"]["maxLength"], ids["maxItems"])


def query_parameters(max_k: int) -> list[dict[str, Any]]:
    """GET's query parameters, from :class:`RecommendRequest`'s JSON Schema: the same
    ids, lengths and bounds as the POST body, as the query string spells them."""
    model = RecommendRequest.model_json_schema()
    fields = model["properties"]
    required = set(model["required"])
    parameters = []
    for name, field in fields.items():
        description = _DESCRIPTIONS.get(name)
        schema = {k: v for k, v in field.items() if k not in ("title", "default")}
        if name in ("person", "session"):  # ``person=`` is no person
            schema = {"anyOf": [schema["anyOf"][0], {"type": "string", "maxLength": 0}]}
        elif name in ("item", "cart"):
            description = f"{_DESCRIPTIONS[name]}, at most {schema['maxItems']}"
            schema = _id_list(schema)
        elif name == "k":
            schema = {**schema["anyOf"][0], "maximum": max_k}
        parameter = {"name": name, "in": "query", "required": name in required, "schema": schema}
        if description is not None:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def publish(document: dict[str, Any], max_k: int) -> None:
    """Write GET's query parameters and the bound on ``k`` into an OpenAPI document."""
    document["paths"][RECOMMENDATIONS]["get"]["parameters"] = query_parameters(max_k)
    k = document["components"]["schemas"]["RecommendRequest"]["properties"]["k"]
    k["anyOf"][0]["maximum"] = max_k


def _checked(make: Callable[[], RecommendRequest], where: str) -> RecommendRequest:
    """``make()``, its ValidationError answered as FastAPI answers one at ``where``."""
    try:
        return make()
    except ValidationError as e:
        raise RequestValidationError(
            [{**err, "loc": (where, *err["loc"])} for err in e.errors(include_url=False)]
        ) from e


@router.get("/recommendations", response_model=SlateOut)
async def recommendations(request: Request) -> Response:
    """A slate for one placement; ``explain=true`` adds the full decision trace."""
    # Documentation only: ``api.hotpath.ShelfwiseAPI`` answers every GET of this path
    # before any route is matched (:func:`publish` writes its query parameters).
    raise NotImplementedError("GET /v1/recommendations is answered by api.hotpath")


@router.post("/recommendations", response_model=SlateOut)
async def recommendations_post(
    body: RecommendRequest, request: Request, runtime: RuntimeDep, who: SlateReader
) -> Response:
    """As GET, with the request as a JSON body (long carts)."""
    req = _checked(lambda: within_max_k(body, runtime.settings.max_k), "body")
    token = token_of(request.headers, request.query_params)
    return Response(
        slate_json(runtime, who, req, token, _now(request, runtime)),
        media_type="application/json",
    )


@router.get("/placements", response_model=PlacementsOut)
def placements(runtime: RuntimeDep, _: Reader) -> PlacementsOut:
    """The configured placements: sources, fallback chain, rule scope, objective, k."""
    p = runtime.placements
    return PlacementsOut(version=p.version, origin=p.origin, placements=list(p))


@router.get("/decisions/{rec_id}", response_model=DecisionOut)
def decision(
    rec_id: Annotated[str, Path(min_length=1, max_length=64, pattern=PATH_ID_PATTERN)],
    runtime: RuntimeDep,
    _: Reader,
    items_offset: Annotated[
        int,
        Query(ge=0, le=10**9, description="first item id listed per rule decision in the trace"),
    ] = 0,
    items_limit: Annotated[
        int,
        Query(
            ge=1,
            le=RULE_ITEMS_PAGE_MOST,
            description="item ids listed per rule decision; each decision's `items_next` "
            "is the `items_offset` of its next page (null at the end)",
        ),
    ] = RULE_ITEMS_PAGE,
) -> DecisionOut:
    """Why was this shown? The stored slate: request, items with scores and reasons, trace.

    Each rule decision in the trace names every item it touched (``count``), paged by
    ``items_offset`` / ``items_limit``; a bad paging value is a 422 ``invalid_request``."""
    found = runtime.decisions.get(rec_id)
    if found is None:
        raise NotFound(f"no decision with rec_id {rec_id!r}", code="decision_not_found")
    out = DecisionOut.model_validate(found, from_attributes=True)
    out.trace = page_rule_items(out.trace, items_offset, items_limit)
    return out
