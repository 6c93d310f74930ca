"""The pipeline without a store or a Runtime: a snapshot, a blend, a rulebook, a rank stage."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from shelfwise.candidates.base import Proposal, Reason, RecContext
from shelfwise.candidates.blend import CandidateBlend
from shelfwise.candidates.config import SourcesConfig
from shelfwise.catalog import CatalogSnapshot
from shelfwise.pipeline import Pipeline, Slate
from shelfwise.pipeline.encode import Served, slate_json
from shelfwise.pipeline.request import ReasonOut, SlateItem, SlateOut
from shelfwise.rules import Rulebook, parse_rule
from shelfwise.serving.placements import Placement
from tests.unit.rules.catalog import NOW, STORE, snapshot_of

PLACEMENT = Placement(
    name="pdp",
    page="product",
    sources={"fixed": 1.0},
    rule_scope="product_page",
    k=4,
)


class Fixed:
    """A source whose answer is written out: these items, best first, similar to the anchor."""

    name = "fixed"

    def __init__(self, snapshot: CatalogSnapshot, ids: list[str]) -> None:
        self.items = np.array([snapshot.vocab[i] for i in ids], dtype=np.int64)

    def propose(self, ctx: RecContext, k: int) -> Proposal:
        keep = np.array([i not in ctx.exclude for i in self.items.tolist()], dtype=bool)
        items = self.items[keep][:k]
        anchor = ctx.context_items[0] if ctx.context_items else None
        reason = Reason(self.name, "similar_to", anchor=anchor)
        scores = np.linspace(1.0, 0.5, len(items))
        return Proposal(self.name, items, scores, (reason,) * len(items))


@pytest.fixture
def snap() -> CatalogSnapshot:
    return snapshot_of(STORE)


def _pipeline(snap: CatalogSnapshot, rulebook: Rulebook | None = None) -> Pipeline:
    # mug is out of stock; rug-blue and rug-red are variants of one group
    order = ["mug", "rug-blue", "vase", "rug-red", "fuse", "hook", "bowl", "frame"]
    blend = CandidateBlend({"fixed": Fixed(snap, order)}, SourcesConfig())
    return Pipeline.offline(snap, blend, rulebook=rulebook)


def _ctx(snap: CatalogSnapshot) -> RecContext:
    lamp = snap.vocab["lamp"]
    return RecContext(placement="pdp", now=NOW, context_items=(lamp,), exclude=frozenset({lamp}))


def test_an_empty_rulebook_keeps_the_built_in_stock_rule(snap: CatalogSnapshot) -> None:
    slate = _pipeline(snap).run(_ctx(snap), PLACEMENT, k=4, explain=True)
    assert isinstance(slate, Slate)
    assert [s.product_id for s in slate.items] == ["rug-blue", "vase", "rug-red", "fuse"]
    assert [s.position for s in slate.items] == [1, 2, 3, 4]
    assert slate.mode == "model" and slate.placement == "pdp"
    assert (slate.versions.model, slate.versions.rulebook) == (None, "0")
    assert (slate.versions.ranker, slate.versions.objective) == ("blend", None)
    first = slate.items[0].reasons[0]
    assert (first.kind, first.source, first.anchor) == ("similar_to", "fixed", "lamp")
    assert first.text == "Similar to Item lamp"
    assert slate.trace.drops == {"builtin.in-stock": 1}
    assert slate.trace.rules[0]["items"] == ["mug"]
    assert set(slate.trace.stages) == {"candidates", "safety", "rank", "arrange"}
    assert slate.items[0].contributions is not None  # explained


def test_the_rulebook_removes_and_dedupes_and_the_trace_says_so(snap: CatalogSnapshot) -> None:
    rules = [
        {
            "id": "no-parts",
            "type": "exclude",
            "reason": "parts",
            "when": {"attr": "tags", "op": "in", "value": ["replacement-part"]},
        },
        {"id": "one-rug", "type": "dedupe_variants", "reason": "one colour"},
    ]
    book = Rulebook([parse_rule(r) for r in rules], snap, version=7)
    slate = _pipeline(snap, book).run(_ctx(snap), PLACEMENT, k=4, explain=True)
    shown = [s.product_id for s in slate.items]
    assert shown == ["rug-blue", "vase", "hook", "bowl"]
    assert slate.versions.rulebook == "7"
    assert slate.trace.drops["no-parts"] == 1
    traced = {(d["rule"], d["action"]) for d in slate.trace.rules}
    assert ("no-parts", "removed") in traced and ("one-rug", "deduped") in traced


def test_a_slate_is_frozen_and_encodes_as_the_api_answers(snap: CatalogSnapshot) -> None:
    slate = _pipeline(snap).run(_ctx(snap), PLACEMENT, k=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        slate.items = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        slate.items[0].score = 2.0  # type: ignore[misc]
    answer = slate_json(slate, Served("r1", "pv1"))
    assert list(answer) == [
        "rec_id",
        "placement",
        "mode",
        "ranker",
        "objective_version",
        "items",
        "model_version",
        "rulebook_version",
        "placements_version",
        "experiment",
    ]
    item = answer["items"][0]
    assert item["product_id"] == "rug-blue" and item["position"] == 1
    assert "contributions" not in item  # only explained slates carry them
    assert item["reasons"][0] == {
        "kind": "similar_to",
        "source": "fixed",
        "text": "Similar to Item lamp",
        "anchor": "lamp",
        "label": None,
        "fallback": False,
    }


def test_the_same_context_gives_the_same_slate(snap: CatalogSnapshot) -> None:
    pipeline = _pipeline(snap)
    a = pipeline.run(_ctx(snap), PLACEMENT, k=4, seed=3)
    b = pipeline.run(_ctx(snap), PLACEMENT, k=4, seed=3)
    assert a.items == b.items


def test_the_encoder_speaks_the_documented_slate_contract(snap: CatalogSnapshot) -> None:
    """The encoded slate is what ``SlateOut`` (the OpenAPI description) says, key for key:
    the shown items and the response models cannot drift apart unnoticed."""
    slate = _pipeline(snap).run(_ctx(snap), PLACEMENT, k=3, explain=True)
    answer = slate_json(slate, Served("r1", "pv1"), explain=True)
    assert set(answer) == set(SlateOut.model_fields)
    for item in answer["items"]:
        assert set(item) == set(SlateItem.model_fields)
        for reason in item["reasons"]:
            assert set(reason) == set(ReasonOut.model_fields)
    assert SlateOut.model_validate(answer).model_dump(mode="json") == answer
