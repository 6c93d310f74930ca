"""Rule evaluation on a tiny store whose right answers are written out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from shelfwise.catalog import CatalogSnapshot
from shelfwise.rules import Rulebook, parse_rule
from tests.unit.rules.catalog import NOW, PREMIUM_DECOR, STORE, ctx, product, snapshot_of

UPSELL = {
    "id": "upsell-floor",
    "type": "price_relation",
    "reason": "upsell at least 0.8x the viewed price",
    "scope": {"placements": ["product_page"]},
    "anchor": "viewed",
    "min_ratio": 0.8,
}


def book(snap: CatalogSnapshot, *rules: dict[str, Any]) -> Rulebook:
    return Rulebook([parse_rule(r) for r in rules], snap, version=7)


def ids(snap: CatalogSnapshot, items: Any) -> list[str]:
    return [snap.ids[i] for i in np.asarray(items).tolist()]


def everything(snap: CatalogSnapshot) -> tuple[np.ndarray, np.ndarray]:
    n = len(snap)
    return np.arange(n, dtype=np.int64), np.linspace(1.0, 0.1, n)


def test_builtin_stock_rule_and_the_premium_decor_page() -> None:
    snap = snapshot_of(STORE)
    items, scores = everything(snap)
    lamp = snap.index_of("lamp")
    out = book(snap, PREMIUM_DECOR).apply_safety(ctx(context_items=(lamp,)), items, scores)
    assert ids(snap, out.items) == ["lamp", "vase", "rug", "rug-blue", "rug-red", "bowl", "frame"]
    assert [(snap.ids[d.item], d.rule_id, d.action) for d in out.trace] == [
        ("mug", "builtin.in-stock", "removed"),
        ("fuse", "premium-decor-no-parts", "removed"),
        ("hook", "premium-decor-no-parts", "removed"),
    ]
    # Off a premium decor page (a kitchen mug viewed) the pairing does not apply.
    bowl = snap.index_of("bowl")
    other = book(snap, PREMIUM_DECOR).apply_safety(ctx(context_items=(bowl,)), items, scores)
    assert "hook" in ids(snap, other.items)


def test_upsell_keeps_items_priced_at_least_080_of_the_viewed_one() -> None:
    snap = snapshot_of(STORE)
    items, scores = everything(snap)
    rug = snap.index_of("rug")  # 180.0 -> floor 144.0
    out = book(snap, UPSELL).apply_safety(ctx(context_items=(rug,)), items, scores)
    assert ids(snap, out.items) == ["lamp", "rug", "rug-blue", "rug-red", "frame"]
    # On the home page (out of scope) and without a viewed item it does nothing.
    home = book(snap, UPSELL).apply_safety(ctx("home"), items, scores)
    assert len(home.items) == len(snap) - 1  # only the out-of-stock mug


def test_add_ons_at_most_030_of_the_cart_value() -> None:
    snap = snapshot_of(STORE)
    items, scores = everything(snap)
    rule = {
        "id": "addons",
        "type": "price_relation",
        "reason": "cheap add-ons",
        "anchor": "cart_total",
        "max_ratio": 0.3,
    }
    cart = (snap.index_of("bowl"), snap.index_of("bowl"))  # 60.0 in the cart -> at most 18.0
    out = book(snap, rule).apply_safety(ctx("cart", cart_items=cart), items, scores)
    assert ids(snap, out.items) == ["fuse", "hook"]


def test_suppress_a_brand_for_two_weeks_with_a_controllable_clock() -> None:
    snap = snapshot_of(STORE)
    items, scores = everything(snap)
    rule = {
        "id": "no-lumo",
        "type": "suppress",
        "reason": "supplier dispute",
        "attribute": "brand",
        "values": ["lumo"],
        "window": {
            "start": "2026-11-27T13:00:00",
            "end": "2026-12-11T13:00:00",
            "timezone": "Europe/Paris",
        },
    }
    rb = book(snap, rule)
    seen = {
        label: ids(snap, rb.apply_safety(ctx(now=when), items, scores).items)
        for label, when in {
            "before": NOW - timedelta(minutes=1),  # 12:59 Paris
            "start": NOW,  # 13:00 Paris = 12:00 UTC
            "day 13": NOW + timedelta(days=13, hours=23),
            "after": NOW + timedelta(days=14),
        }.items()
    }
    assert "lamp" in seen["before"] and "lamp" in seen["after"]
    for label in ("start", "day 13"):
        assert not {"lamp", "vase", "frame"} & set(seen[label]), label


def test_margin_floor_sla_exclude_and_boosts_on_survivors_only() -> None:
    snap = snapshot_of(STORE)
    items, scores = everything(snap)
    rules = [
        {"id": "margin", "type": "margin_floor", "reason": "margin period", "min_band": "medium"},
        {
            "id": "slow",
            "type": "exclude",
            "reason": "SLA over 10 days",
            "when": {"attr": "sla_days", "op": "gt", "value": 10},
        },
        {
            "id": "oak",
            "type": "boost",
            "reason": "oak promo",
            "when": {"attr": "attributes.material", "value": "oak"},
            "multiply": 3,
        },
        {
            "id": "rugs",
            "type": "boost",
            "reason": "rug week",
            "when": {"attr": "category", "op": "prefix", "value": "decor/textiles"},
            "add": 5,
        },
    ]
    out = book(snap, *rules).apply_safety(ctx("home"), items, scores)
    assert ids(snap, out.items) == ["lamp", "fuse", "hook", "rug-blue", "rug-red", "bowl", "frame"]
    by_id = dict(zip(ids(snap, out.items), out.scores.tolist(), strict=True))
    assert by_id["frame"] == 3 * 0.1
    assert by_id["rug-blue"] == scores[5] + 5 and "rug" not in by_id  # the slow rug is not re-added
    assert [(d.rule_id, snap.ids[d.item]) for d in out.trace if d.action == "removed"] == [
        ("builtin.in-stock", "mug"),
        ("slow", "rug"),
        ("margin", "vase"),
    ]


def test_arrange_dedupes_pins_and_caps_in_that_order() -> None:
    snap = snapshot_of(STORE)
    rules = [
        {"id": "one-variant", "type": "dedupe_variants", "reason": "one colour per rug"},
        {
            "id": "one-per-brand",
            "type": "cap",
            "reason": "diversity",
            "attribute": "brand",
            "max_items": 1,
        },
        {
            "id": "frame-first",
            "type": "pin",
            "reason": "frame promo",
            "product_id": "frame",
            "position": 2,
        },
    ]
    ranked = np.array(
        [snap.index_of(p) for p in ["lamp", "rug-red", "rug-blue", "vase", "bowl", "hook", "fuse"]]
    )
    out = book(snap, *rules).arrange(ctx("home"), ranked, np.zeros(len(ranked)), 4)
    # The pinned frame is a Lumo, so it uses up Lumo's one slot: lamp and vase are capped.
    assert ids(snap, out.items) == ["rug-red", "frame", "bowl", "hook"]
    assert [(snap.ids[d.item], d.rule_id, d.action) for d in out.trace] == [
        ("frame", "frame-first", "pinned"),
        ("rug-blue", "one-variant", "deduped"),
        ("lamp", "one-per-brand", "capped"),
        ("vase", "one-per-brand", "capped"),
    ]


def test_a_pinned_variant_is_served_and_its_higher_ranked_sibling_is_the_one_deduped() -> None:
    snap = snapshot_of(STORE)
    rules = [
        {"id": "one-variant", "type": "dedupe_variants", "reason": "one colour per rug"},
        {
            "id": "blue",
            "type": "pin",
            "reason": "blue promo",
            "product_id": "rug-blue",
            "position": 2,
        },
    ]
    ranked = np.array([snap.index_of(p) for p in ["rug-red", "lamp", "rug-blue", "vase"]])
    out = book(snap, *rules).arrange(ctx("home"), ranked, np.zeros(len(ranked)), 3)
    assert ids(snap, out.items) == ["lamp", "rug-blue", "vase"]
    assert [(snap.ids[d.item], d.action, d.reason) for d in out.trace] == [
        ("rug-blue", "pinned", "blue promo (position 2)"),
        ("rug-red", "deduped", "one colour per rug (variant of a pinned item)"),
    ]


def test_dedupe_drops_variants_of_the_viewed_item() -> None:
    snap = snapshot_of(STORE)
    rule = {"id": "dd", "type": "dedupe_variants", "reason": "no siblings"}
    ranked = np.array([snap.index_of(p) for p in ["rug-red", "lamp"]])
    out = book(snap, rule).arrange(
        ctx(context_items=(snap.index_of("rug-blue"),)), ranked, np.zeros(2), 5
    )
    assert ids(snap, out.items) == ["lamp"]
    assert out.trace[0].action == "deduped" and "viewed" in out.trace[0].reason


def test_a_pin_never_bypasses_the_safety_rules() -> None:
    snap = snapshot_of(STORE)
    rules = [
        {"id": "pin-mug", "type": "pin", "reason": "mug promo", "product_id": "mug", "position": 1},
        {
            "id": "pin-hook",
            "type": "pin",
            "reason": "hook promo",
            "product_id": "hook",
            "position": 1,
            "priority": 5,
        },
    ]
    ranked = np.array([snap.index_of("lamp"), snap.index_of("vase")])
    out = book(snap, *rules).arrange(ctx("home"), ranked, np.zeros(2), 3)
    assert ids(snap, out.items) == ["hook", "lamp", "vase"]
    assert [(d.rule_id, d.action, d.reason) for d in out.trace] == [
        ("pin-hook", "pinned", "hook promo (position 1)"),
        ("pin-mug", "pin_blocked", "mug promo (removed by builtin.in-stock)"),
    ]


def test_a_stored_stock_rule_replaces_the_builtin_one_in_its_scope() -> None:
    snap = snapshot_of(STORE)
    items, scores = everything(snap)
    rule = {
        "id": "email-stock",
        "type": "require_in_stock",
        "reason": "emails need 2",
        "min_qty": 2,
        "scope": {"placements": ["email"]},
    }
    email = book(snap, rule).apply_safety(ctx("email"), items, scores)
    assert [(d.rule_id, snap.ids[d.item]) for d in email.trace] == [
        ("email-stock", "mug"),
        ("email-stock", "bowl"),
    ]
    home = book(snap, rule).apply_safety(ctx("home"), items, scores)
    assert [(d.rule_id, snap.ids[d.item]) for d in home.trace] == [("builtin.in-stock", "mug")]


def test_a_stock_change_applies_on_the_next_evaluation() -> None:
    snap = snapshot_of(STORE)
    items, scores = everything(snap)
    rb = book(snap)
    assert "lamp" in ids(snap, rb.apply_safety(ctx(), items, scores).items)
    snap.repo.put(
        product(
            "lamp", brand="Lumo", category_path="decor/premium/lighting", price=200.0, stock_qty=0
        )
    )  # type: ignore[attr-defined]
    snap.refresh(force=True)
    assert "lamp" not in ids(snap, rb.apply_safety(ctx(), items, scores).items)


def test_scope_segments_and_context_categories() -> None:
    snap = snapshot_of(STORE)
    items, scores = everything(snap)
    rule = {
        "id": "app-kitchen",
        "type": "exclude",
        "reason": "app users in kitchen see no decor",
        "scope": {"segments": {"platform": ["app"]}, "context_categories": ["kitchen"]},
        "when": {"attr": "category", "op": "prefix", "value": "decor"},
    }
    rb = book(snap, rule)
    bowl = snap.index_of("bowl")
    hit = rb.apply_safety(ctx(context_items=(bowl,), segment={"platform": "app"}), items, scores)
    assert ids(snap, hit.items) == ["hook", "bowl"]
    for c in (
        ctx(context_items=(bowl,), segment={"platform": "web"}),
        ctx(segment={"platform": "app"}),
    ):
        assert len(rb.apply_safety(c, items, scores).items) == len(snap) - 1


@pytest.mark.parametrize(
    "body",
    [
        {"type": "pin", "product_id": "mug", "position": 0},
        {"type": "pin", "product_id": "mug", "position": 101},
        {"type": "cap", "attribute": "brand", "max_items": 0},
        {"type": "dedupe_variants", "priority": 5000},
    ],
)
def test_a_whole_number_outside_its_fields_bounds_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_rule({"id": "r", "reason": "bounds", **body})
