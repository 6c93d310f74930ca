"""The one encoder of a slate: the JSON of ``/v1/recommendations``, the email batch
and the decision log's items all come from here (``request.SlateOut`` documents it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from shelfwise.experiments.assignment import Assignment
from shelfwise.pipeline.slate import Shown, Slate

TRACE_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True)
class Served:
    """What serving adds to a slate: its id, the placements file and the experiment arm."""

    rec_id: str
    placements_version: str
    assignment: Assignment | None = None


def item_json(s: Shown) -> dict[str, Any]:
    item: dict[str, Any] = {
        "product_id": s.product_id,
        "position": s.position,
        "title": s.title,
        "price": s.price,
        "currency": s.currency,
        "availability": s.availability,
        "image_url": s.image_url,
        "brand": s.brand,
        "category": s.category,
        "score": s.score,
        "reasons": [
            {
                "kind": r.kind,
                "source": r.source,
                "text": r.text,
                "anchor": r.anchor,
                "label": r.label,
                "fallback": r.fallback,
            }
            for r in s.reasons
        ],
        "explored": s.explored,
        "propensity": s.propensity,
    }
    if s.contributions is not None:
        item["contributions"] = dict(s.contributions)
    return item


def logged_json(item: dict[str, Any]) -> dict[str, Any]:
    """An encoded item as the decision log keeps it."""
    return {
        "product_id": item["product_id"],
        "position": item["position"],
        "score": item["score"],
        "price": item["price"],
        "explored": item["explored"],
        "propensity": item["propensity"],
        "reasons": item["reasons"],
    }


def slate_json(slate: Slate, served: Served, explain: bool = False) -> dict[str, Any]:
    """The answer of ``/v1/recommendations`` (with its trace when ``explain``)."""
    versions, assignment = slate.versions, served.assignment
    out: dict[str, Any] = {
        "rec_id": served.rec_id,
        "placement": slate.placement,
        "mode": slate.mode,
        "ranker": versions.ranker,
        "objective_version": versions.objective,
        "items": [item_json(s) for s in slate.items],
        "model_version": versions.model,
        "rulebook_version": versions.rulebook,
        "placements_version": served.placements_version,
        "experiment": (
            {"experiment_id": assignment.experiment_id, "arm": assignment.arm.name}
            if assignment is not None
            else None
        ),
    }
    if explain:
        out["trace"] = slate.trace.as_dict()
    return out


def kept_trace(trace: dict[str, Any]) -> bytes:
    """A computation's trace as a kept slate shares it: without this request's own
    notes and timings, encoded as the decision log encodes it."""
    return orjson.dumps(
        {part: v for part, v in trace.items() if part not in ("notes", "stages_ms")},
        default=str,
        option=TRACE_OPTIONS,
    )
