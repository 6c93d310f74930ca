"""The predicate language: validation, the interpreter, and masks that agree with it."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from shelfwise.rules.masks import CatalogMasks
from shelfwise.rules.predicate import Predicate, matches
from tests.unit.rules.catalog import STORE, snapshot_of

PRED: TypeAdapter[Predicate] = TypeAdapter(Predicate)


def ids_matching(data: object) -> list[str]:
    pred = PRED.validate_python(data)
    return [p.product_id for p in STORE if matches(pred, p)]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"attr": "brand", "value": "LUMO"}, ["lamp", "vase", "frame"]),
        ({"attr": "category", "op": "prefix", "value": "decor/premium"}, ["lamp", "vase", "frame"]),
        ({"attr": "category", "op": "prefix", "value": "dec"}, []),
        ({"attr": "tags", "op": "in", "value": ["utility", "replacement-part"]}, ["fuse", "hook"]),
        ({"attr": "sla_days", "op": "gt", "value": 10}, ["rug"]),
        ({"attr": "stock", "op": "lt", "value": 2}, ["mug", "bowl"]),
        ({"attr": "margin_band", "op": "ge", "value": "medium"}, ["lamp"]),
        ({"attr": "margin_band", "op": "eq", "value": "low"}, ["vase"]),
        ({"attr": "attributes.material", "value": "oak"}, ["frame"]),
        ({"attr": "available", "value": False}, ["mug"]),
        (
            {"attr": "variant_group", "op": "ne", "value": "rug"},
            [p.product_id for p in STORE if p.product_id not in ("rug-blue", "rug-red")],
        ),
        (
            {
                "and": [
                    {"attr": "brand", "value": "Weave"},
                    {"not": {"attr": "price", "op": "ge", "value": 175}},
                ]
            },
            ["rug-blue"],
        ),
        (
            {
                "or": [
                    {"attr": "product_id", "value": "mug"},
                    {"attr": "price", "op": "le", "value": 4},
                ]
            },
            ["fuse", "mug"],
        ),
        # A value that looks like SQL is just a value nobody has.
        ({"attr": "brand", "value": "x'; DROP TABLE rules; --"}, []),
        ({"attr": "attributes.__class__", "value": "{{7*7}}"}, []),
    ],
)
def test_interpreter_and_masks_agree_on_written_out_answers(
    data: object, expected: list[str]
) -> None:
    assert sorted(ids_matching(data)) == sorted(expected)
    snap = snapshot_of(STORE)
    masks = CatalogMasks(snap)
    masks.sync()
    mask = masks.mask(PRED.validate_python(data))
    assert sorted(snap.ids[i] for i in mask.nonzero()[0]) == sorted(expected)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"attr": "colour", "value": "red"}, "unknown attribute 'colour'"),
        ({"attr": "brand", "op": "in", "value": "Lumo"}, "needs a list"),
        ({"attr": "brand", "op": "gt", "value": "A"}, "does not apply to 'brand'"),
        ({"attr": "price", "op": "lt", "value": "cheap"}, "compares with numbers"),
        ({"attr": "margin_band", "value": "huge"}, "margin_band is one of"),
        ({"attr": "price", "op": "contains", "value": 3}, "applies to tags"),
        ({"and": []}, "at least 1"),
        ({"attr": "brand", "value": "A", "extra": 1}, "Extra inputs"),
    ],
)
def test_invalid_predicates_say_why(data: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PRED.validate_python(data)


def test_masks_follow_snapshot_changes_incrementally() -> None:
    from tests.unit.rules.catalog import product

    snap = snapshot_of(STORE)
    masks = CatalogMasks(snap)
    masks.sync()
    util = PRED.validate_python({"attr": "tags", "op": "contains", "value": "utility"})
    assert [snap.ids[i] for i in masks.mask(util).nonzero()[0]] == ["hook"]
    snap.repo.put(product("lamp", tags=["utility"]))  # type: ignore[attr-defined]
    snap.repo.put(product("new", tags=["utility"]))  # type: ignore[attr-defined]
    snap.refresh(force=True)
    assert masks.sync() is True
    assert sorted(snap.ids[i] for i in masks.mask(util).nonzero()[0]) == ["hook", "lamp", "new"]
    assert masks.sync() is False
