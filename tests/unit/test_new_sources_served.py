"""The session neighbourhood and basket EASE through the served pipeline: every
reason they put on a slate is true for the request."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from shelfwise.candidates.base import RecContext, SessionEvent
from shelfwise.candidates.basket_ease import BasketEaseSource, fit_basket_ease
from shelfwise.candidates.blend import CandidateBlend
from shelfwise.candidates.config import BasketEaseConfig, SessionKNNConfig, SourcesConfig
from shelfwise.candidates.log import InteractionLog, Row
from shelfwise.candidates.session_knn import SessionIndex, SessionKNNSource
from shelfwise.catalog import CatalogSnapshot
from shelfwise.pipeline import Pipeline
from shelfwise.serving.placements import Placement
from tests.unit.rules.catalog import NOW, STORE, snapshot_of

HOME = Placement(name="home", page="home", sources={"session_knn": 1.0}, rule_scope="home", k=4)
CART = Placement(
    name="cart", page="cart", sources={"basket_ease": 1.0}, rule_scope="cart", uses_cart=True
)
ALSO = "Shoppers who viewed what you viewed also viewed"
BASKETS = [["lamp", "fuse"], ["lamp", "fuse", "hook"], ["vase", "bowl"], ["hook", "frame"]]


def pipeline(snap: CatalogSnapshot) -> Pipeline:
    ids = snap.ids
    rows = [
        Row("p", item, "purchase", NOW - timedelta(days=1), f"o{n}")
        for n, basket in enumerate(BASKETS)
        for item in basket
    ]
    log = InteractionLog.from_rows(rows, items=ids)
    config = BasketEaseConfig(regularization=1.0, min_support=1)
    v = snap.vocab
    sessions = [np.array([v[p] for p in s]) for s in (["lamp", "vase", "bowl"], ["hook", "fuse"])]
    sources = {
        "basket_ease": BasketEaseSource(fit_basket_ease(log, config)),
        "session_knn": SessionKNNSource(SessionIndex.of(sessions, len(ids)), SessionKNNConfig()),
    }
    return Pipeline.offline(snap, CandidateBlend(sources, SourcesConfig()))


def test_also_viewed_only_with_a_session_and_bought_with_names_a_co_bought_cart_item() -> None:
    snap = snapshot_of(STORE)
    v, p = snap.vocab, pipeline(snap)
    viewed = (SessionEvent(v["lamp"], "product_view", NOW),)
    home = p.run(RecContext("home", NOW, session=viewed), HOME, 4)
    assert [s.product_id for s in home.items] == ["vase", "bowl"]
    assert {r.text for s in home.items for r in s.reasons} == {ALSO}
    assert len(p.run(RecContext("home", NOW), HOME, 4).items) == 0  # no session: no claim
    cart = (v["lamp"], v["hook"])
    slate = p.run(RecContext("cart", NOW, cart_items=cart, exclude=frozenset(cart)), CART, 4)
    assert {s.product_id for s in slate.items} == {"fuse", "frame"}
    together = {frozenset(b) for b in BASKETS}
    for shown in slate.items:
        (reason,) = shown.reasons
        assert reason.anchor in ("lamp", "hook")
        assert reason.text == f"Often bought with {snap.products[v[reason.anchor]].title}"
        assert any({reason.anchor, shown.product_id} <= b for b in together)
