"""The exported JSON Schemas stay true to the models; changes are classified."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shelfwise.contracts import EVENT_TYPES, parse_event
from shelfwise.contracts.checks import shape_problems
from shelfwise.contracts.schemas import compare, schema_of

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events" / "v1"


def _load(name: str) -> Any:
    return json.loads((DOCS / name).read_text())


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_published_schema_and_examples_match_the_code(event_type: str) -> None:
    published = _load(f"{event_type}.schema.json")
    assert compare(published, schema_of(event_type)).kind == "identical"
    assert parse_event(_load(f"{event_type}.valid.json")).type == event_type
    bad = _load(f"{event_type}.invalid.json")
    with pytest.raises(ValidationError) as e:
        parse_event(bad["event"])
    assert [p.code for p in shape_problems(e.value.errors())] == [bad["expected_code"]]


def _changed(event_type: str, edit: Any) -> dict[str, Any]:
    schema = copy.deepcopy(schema_of(event_type))
    edit(schema)
    return schema


def test_compatible_changes() -> None:
    old = schema_of("product_view")

    def add_optional(s: dict[str, Any]) -> None:
        s["properties"]["colour"] = {"type": "string"}

    def looser(s: dict[str, Any]) -> None:
        s["properties"]["event_id"]["maxLength"] = 256

    for edit in (add_optional, looser):
        result = compare(old, _changed("product_view", edit))
        assert result.kind == "compatible", result.changes
    widened = _changed("page_view", lambda s: s["properties"]["page_type"]["enum"].append("cart"))
    assert compare(schema_of("page_view"), widened).kind == "compatible"


def test_breaking_changes() -> None:
    old = schema_of("product_view")

    def add_required(s: dict[str, Any]) -> None:
        s["properties"]["colour"] = {"type": "string"}
        s["required"].append("colour")

    def remove(s: dict[str, Any]) -> None:
        del s["properties"]["browser"]

    def tighter(s: dict[str, Any]) -> None:
        s["properties"]["event_id"]["maxLength"] = 64

    for edit, needle in (
        (add_required, "colour: added (required)"),
        (remove, "browser: removed"),
        (tighter, "event_id: maxLength 128 -> 64"),
    ):
        result = compare(old, _changed("product_view", edit))
        assert result.kind == "breaking"
        assert f"BREAKING {needle}" in result.changes
    narrowed = _changed(
        "page_view", lambda s: s["properties"]["page_type"]["enum"].remove("search")
    )
    assert compare(schema_of("page_view"), narrowed).changes == [
        "BREAKING page_type: allowed values narrowed"
    ]
    lines = _changed(
        "purchase", lambda s: s["$defs"]["OrderLine"]["properties"]["quantity"].update(maximum=10)
    )
    assert compare(schema_of("purchase"), lines).kind == "breaking"
