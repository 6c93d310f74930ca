"""Coherence of the product placements read from the decision log, on both stores: which
slates count (window, placement, viewed product), how the catalog prices and
categorises them, and what a slate asked without a person may not claim."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shelfwise.catalog.model import Product
from shelfwise.runtime import Runtime
from shelfwise.serving.decisions import Decision

T0 = datetime(2026, 11, 2, 10, tzinfo=UTC)
CATALOG = [
    Product(product_id="SOAP", title="Soap dispenser", category_path="bath", price=10.0),
    Product(product_id="TRAY", title="Soap tray", category_path="bath", price=12.0),
    Product(product_id="TOWEL", title="Towel", category_path="bath", price=20.0),
    Product(product_id="PAN", title="Saucepan", category_path="kitchen", price=40.0),
    Product(product_id="LID", title="Pan lid", category_path="kitchen", price=8.0),
    Product(
        product_id="GONE", title="Old lamp", category_path="lighting", price=30.0, active=False
    ),
]


def _item(pid: str, kind: str = "similar") -> dict[str, object]:
    return {"product_id": pid, "score": 1.0, "reasons": [{"kind": kind, "text": "x"}]}


def _slate(
    rec_id: str,
    anchor: str | None,
    shown: list[str],
    minutes: int = 0,
    placement: str = "product_similar",
    person: str | None = None,
) -> Decision:
    return Decision(
        rec_id=rec_id,
        served_at=T0 + timedelta(minutes=minutes),
        placement=placement,
        mode="model",
        request={"placement": placement, **({"item": [anchor]} if anchor else {})},
        items=[_item(p) for p in shown],
        person_id=person,
    )


@pytest.fixture
def logged(runtime: Runtime) -> Runtime:
    runtime.catalog.upsert(CATALOG, source="test")
    runtime.snapshot.refresh(force=True)
    log = runtime.decisions
    log.record(_slate("s1", "SOAP", ["TRAY", "TOWEL", "PAN"], 1))
    log.record(_slate("s2", "TRAY", ["SOAP", "PAN"], 2))
    # anonymous, yet claims the shopper's history: a false claim
    claim = _slate("s3", "PAN", ["LID", "SOAP"], 3)
    log.record(replace(claim, items=[_item("LID", "because_you_viewed"), _item("SOAP")]))
    # the same claim with a person is true
    known = _slate("s4", "PAN", ["LID"], 4, person="ann")
    log.record(replace(known, items=[_item("LID", "because_you_viewed")]))
    # a kept slate: its items arrive encoded
    kept = b'[{"product_id":"PAN","score":1.0,"reasons":[]}]'
    log.record(replace(_slate("s5", "LID", [], 5), items=[]), items_json=kept)
    # not counted: outside the window, another placement, no viewed product
    log.record(_slate("old", "SOAP", ["PAN"], -120))
    log.record(_slate("home", "SOAP", ["PAN"], 6, placement="home"))
    log.record(_slate("none", None, ["PAN"], 0))
    log.flush()
    return runtime


def test_the_log_s_product_slates_read_as_the_merchant_sees_them(logged: Runtime) -> None:
    rep = logged.coherence(T0, T0 + timedelta(hours=1))
    assert rep.placements == ("product_similar", "product_bought_with")
    assert rep.truncated == ()
    (overall,) = rep.overall()
    c = overall.coherence
    assert (overall.placement, overall.category) == ("product_similar", None)
    # s1..s5: 3 + 2 + 2 + 1 + 1 items
    assert (c.slates, c.items_shown, c.empty_slates) == (5, 9, 0)
    # same category: TRAY, TOWEL (s1), SOAP (s2), LID (s3), LID (s4), PAN (s5) = 6 of 9
    assert c.same_category == pytest.approx(6 / 9)
    # ratios: 1.2, 2, 4 | 10/12, 40/12 | 0.2, 0.25 | 0.2 | 5 -> median of 9 = 1.2
    assert c.median_price_ratio == pytest.approx(1.2)
    # PAN is in s1, s2, s5; LID in s3, s4; SOAP in s2, s3
    assert (c.top_item, overall.top_title, c.top_item_share) == ("PAN", "Saucepan", 0.6)
    # five distinct items shown over five available products (GONE is inactive)
    assert c.coverage == pytest.approx(1.0)
    assert c.personal_claims == 1

    by_cat = {r.category: r.coherence for r in rep.by_category("product_similar")}
    assert list(by_cat) == ["kitchen", "bath"]  # most slates first
    assert (by_cat["bath"].slates, by_cat["kitchen"].slates) == (2, 3)
    assert by_cat["kitchen"].same_category == pytest.approx(3 / 4)
    assert by_cat["kitchen"].personal_claims == 1 and by_cat["bath"].personal_claims == 0
    assert rep.by_category("product_bought_with") == []


def test_the_newest_slates_are_read_up_to_the_limit(logged: Runtime) -> None:
    from shelfwise.monitoring.coherence import served_coherence

    rep = served_coherence(
        logged.decisions, logged.snapshot, ["product_similar"], T0, T0 + timedelta(hours=1), 2
    )
    assert rep.truncated == ("product_similar",)
    (overall,) = rep.overall()
    # s5 (LID -> PAN) and s4 (PAN -> LID): the newest two
    assert (overall.coherence.slates, overall.coherence.items_shown) == (2, 2)
    assert overall.coherence.same_category == 1.0


def test_an_empty_window_has_no_rows(logged: Runtime) -> None:
    rep = logged.coherence(T0 + timedelta(days=1), T0 + timedelta(days=2))
    assert rep.rows == [] and rep.as_dict()["rows"] == []


def test_a_slate_stored_with_a_nan_score_is_still_read(logged: Runtime) -> None:
    """The log stores a NaN as null (JSON has no NaN, and PostgreSQL's jsonb refuses
    one): the slate is read like any other."""
    odd = _slate("nan", "TOWEL", ["SOAP"], 8)
    logged.decisions.record(replace(odd, items=[{**_item("SOAP"), "score": float("nan")}]))
    logged.decisions.flush()
    rep = logged.coherence(T0 + timedelta(minutes=8), T0 + timedelta(minutes=9))
    (overall,) = rep.overall()
    assert (overall.coherence.slates, overall.coherence.top_item) == (1, "SOAP")
