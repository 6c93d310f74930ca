"""The protocols' one door into shelfwise: a context in, the served slate's dense ids out."""

from __future__ import annotations

import numpy as np

from shelfwise.candidates.blend import CandidateBlend
from shelfwise.candidates.config import SourcesConfig
from shelfwise.evaluation.served_slates import Context, ServedSlates
from shelfwise.pipeline import Pipeline
from shelfwise.serving.placements import Placement
from tests.unit.rules.catalog import NOW, STORE, snapshot_of
from tests.unit.test_pipeline_offline import PLACEMENT, Fixed

CART = Placement(
    name="cart", page="cart", sources={"fixed": 1.0}, rule_scope="cart", uses_cart=True, k=4
)
ORDER = ["mug", "rug-blue", "vase", "rug-red", "fuse", "hook", "bowl", "frame"]


def served() -> tuple[ServedSlates, dict[str, int]]:
    snap = snapshot_of(STORE)
    blend = CandidateBlend({"fixed": Fixed(snap, ORDER)}, SourcesConfig())
    slates = ServedSlates(Pipeline.offline(snap, blend), {"pdp": PLACEMENT, "cart": CART}, "blend")
    return slates, snap.vocab


def test_a_product_page_context_gets_the_served_slate() -> None:
    slates, vocab = served()
    got = slates.top_k("pdp", Context(at=NOW.timestamp(), items=(vocab["lamp"],)), 4)
    # the mug is out of stock: the built-in rule drops it, as served
    assert got.tolist() == [vocab[p] for p in ("rug-blue", "vase", "rug-red", "fuse")]
    assert got.dtype == np.int64


def test_a_cart_context_never_gets_its_own_items_back() -> None:
    slates, vocab = served()
    cart = (vocab["vase"], vocab["fuse"])
    got = slates.top_k("cart", Context(at=NOW.timestamp(), cart=cart), 4)
    assert got.tolist() == [vocab[p] for p in ("rug-blue", "rug-red", "hook", "bowl")]
    assert "blend ranker" in slates.label("cart")
