"""Evaluation measures the served pipeline: rules in force, the rank stage as served, in 3 lines."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from shelfwise.candidates.config import FactorsConfig, SourcesConfig
from shelfwise.candidates.log import InteractionLog, Row
from shelfwise.catalog.model import Product
from shelfwise.evaluation import Notebook, ServedModel, evaluate, time_split
from shelfwise.evaluation.baselines import GlobalPopularity
from shelfwise.pipeline import Trace
from shelfwise.pipeline.learned import LearnedRank
from shelfwise.pipeline.request import RecommendRequest
from shelfwise.ranking.history import PURCHASE, VIEW
from shelfwise.ranking.synthetic import synthetic_store
from shelfwise.ranking.training import RANKER_CHOICES, RankerTrainingConfig, label_of
from shelfwise.rules import parse_rule
from shelfwise.serving.placements import shipped_placements
from tests.unit.candidates_fixtures import ABC, T0, purchases

CONFIG = SourcesConfig(factors=FactorsConfig(factors=4, iterations=2))
KINDS = {VIEW: "view", PURCHASE: "purchase"}
FAST_RANKER = RankerTrainingConfig(train_windows=2, horizon_days=10, rounds=40, patience=10)
NO_PARTS = {
    "id": "no-parts",
    "type": "exclude",
    "reason": "spare parts are not recommended",
    "when": {"attr": "tags", "op": "in", "value": ["part"]},
}


def _products(tagged: dict[str, list[str]]) -> list[Product]:
    return [
        Product(product_id=i, title=f"Item {i}", price=10.0, tags=tagged.get(i, []))
        for i in ("A", "B", "C", "D", "E")
    ]


def _log() -> InteractionLog:
    return purchases(
        [*ABC, ("o5", "p1", ["C"]), ("o6", "p3", ["B"]), ("o7", "p4", ["A", "B"])],
        days=[0, 0, 0, 0, 20, 20, 20],
    )


def test_the_served_model_lists_what_the_offline_pipeline_serves() -> None:
    log = _log()
    products = _products({})
    model = ServedModel(CONFIG, products)
    model.fit(log.before((T0 + timedelta(days=10)).timestamp()))
    spot = shipped_placements().get("home")
    for person in ("p1", "p3"):
        index = model.train.people.index(person)
        got = model.recommend(index, 3, np.zeros(0, np.int64)).tolist()
        req = RecommendRequest(placement="home", person=person, k=3)
        ctx = model.pipeline.context(req, spot, [], model.now, person, Trace(enabled=False))
        slate = model.pipeline.run(ctx, spot, 3)
        assert got == [s.item for s in slate.items] and len(got) == 3
        assert slate.versions.rulebook == "0" and slate.versions.ranker == "blend"


def test_the_rules_in_force_shape_the_lists_and_the_forbidden_targets_are_counted() -> None:
    """B is a spare part: the merchant never shows it, so the targets B are out of reach."""
    log = _log()
    split = time_split(log, (T0 + timedelta(days=10)).timestamp())
    products = _products({"B": ["part"]})
    free = ServedModel(CONFIG, products, name="shelfwise free")
    ruled = ServedModel(CONFIG, products, rules=[parse_rule(NO_PARTS)], rulebook_version=4)
    result = evaluate(split, [ruled, free], ks=(3,), resamples=0)
    # after the cutoff p1 buys C, p3 buys B, p4 buys A and B: all new to them
    assert result.target_items == {"all": 4, "new": 4}
    by_name = {m.name: m for m in result.models}
    assert by_name["shelfwise"].forbidden == {"all": 2, "new": 2}  # the two Bs
    assert by_name["shelfwise free"].forbidden == {"all": 0, "new": 0}
    said = "the rules in force forbid 2 of 4 (all), 2 of 4 (new) target items"
    assert result.forbidden_text() == said
    b = log.items.index("B")
    for t in split.targets["all"]:
        assert b not in ruled.recommend(t.person, 4, np.zeros(0, np.int64)).tolist()
        # p1 owns B (bought once; nobody here buys anything again): left out for them.
        owner = free.train.people[t.person] == "p1"
        assert (b in free.recommend(t.person, 4, np.zeros(0, np.int64)).tolist()) != owner
    assert result.as_dict()["models"][0]["targets_forbidden_by_rules"] == {"all": 2, "new": 2}


def test_a_notebook_fits_and_recommends_the_served_pipeline_in_three_lines() -> None:
    log, products = _log(), _products({"B": ["part"]})
    rules = [parse_rule(NO_PARTS)]
    # -- the three lines of docs/evaluation.md
    nb = Notebook.fit(log, T0 + timedelta(days=10), CONFIG, products, rules=rules)
    recs = nb.recommend("p3", k=3, new_only=True)
    # --
    # p3 had A and C (new only: excluded), B is a part (the rule): D and E are left
    assert sorted(r.product_id for r in recs) == ["D", "E"]
    assert all(r.text for r in recs)  # each with the reason a shopper reads


def _zero_price_store(days: int = 70) -> tuple[InteractionLog, datetime]:
    """The synthetic store with every price 0 (as DIGINETICA ships it): no catalog prices."""
    store = synthetic_store(n_items=120, n_persons=300, days=days, seed=3)
    h = store.log
    rows = [
        Row(
            person=h.persons[int(p)],
            item=f"i{int(i)}",
            kind=KINDS.get(int(k), "add_to_cart"),
            at=datetime.fromtimestamp(int(t), UTC),
            basket=f"{int(p)}-{int(t) // 3600}",
            price=0.0,
        )
        for p, i, k, t in zip(h.person, h.item, h.kind, h.at, strict=True)
    ]
    log = InteractionLog.from_rows(rows, items=[f"i{j}" for j in range(120)])
    return log, datetime.fromtimestamp(float(log.end), UTC) - timedelta(days=10)


@pytest.mark.timeout(300)
def test_with_every_price_zero_the_learned_ranker_still_ranks() -> None:
    """All prices 0: every value the ranker serves is finite, and its order carries the
    people's preferences (it is no worse than the blend it re-ranks), not noise."""
    log, cutoff = _zero_price_store()
    split = time_split(log, cutoff.timestamp())
    assert np.all(np.nan_to_num(log.price) == 0.0)
    placement = shipped_placements().get("home").model_copy(update={"exploration": 0.0})
    blend = ServedModel(CONFIG, placement=placement, cutoff=cutoff.timestamp(), name="blend")
    ranked = ServedModel(
        CONFIG,
        placement=placement,
        cutoff=cutoff.timestamp(),
        ranker=FAST_RANKER,
        name="shelfwise+ranker",
    )
    ranked.ranking = ranked.ranking.model_copy(update={"explore_share": 0.0})
    result = evaluate(split, [GlobalPopularity(), blend, ranked], ks=(10,), resamples=0)
    assert ranked.learned is not None and ranked.learned.state.ref_price == 1.0
    for t in split.targets["all"][:40]:
        slate = ranked.slate(log.people[t.person], 10)
        scores = [s.score for s in slate.items]
        assert all(np.isfinite(scores)) and scores == sorted(scores, reverse=True)
        assert slate.versions.ranker == "learned"
    ndcg = {m.name: m.metrics["all"]["10"]["ndcg"] for m in result.models}
    # measured: popularity 0.108, blend 0.174, ranker 0.183 (an arbitrary order: ~popularity)
    assert ndcg["shelfwise+ranker"] >= 0.8 * ndcg["blend"], ndcg
    assert ndcg["shelfwise+ranker"] >= 1.3 * ndcg["popularity"], ndcg


@pytest.mark.timeout(300)
def test_a_notebook_ranks_with_the_learned_ranker_when_asked() -> None:
    log, cutoff = _zero_price_store()
    nb = Notebook.fit(log, cutoff, CONFIG, ranker=FAST_RANKER)
    person = log.people[int(log.person[0])]
    recs = nb.recommend(person, k=8)
    assert nb.model.learned is not None and len(recs) == 8
    scores = [r.score for r in recs]
    assert all(np.isfinite(scores)) and scores == sorted(scores, reverse=True)
    assert nb.model.slate(person, 8).versions.ranker == "learned"


def test_a_notebook_asked_for_the_ranker_chooses_it_as_the_training_job_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``ranker=True``: the home ranker's designs and the blend, chosen on validation
    (``RANKER_CHOICES``, as ``shelfwise train --ranker``); a config: that one design."""
    fitted: list[ServedModel] = []
    monkeypatch.setattr(ServedModel, "fit", lambda self, train: fitted.append(self))
    log, cutoff = _zero_price_store()
    Notebook.fit(log, cutoff, CONFIG, ranker=True)
    Notebook.fit(log, cutoff, CONFIG, ranker=FAST_RANKER)
    Notebook.fit(log, cutoff, CONFIG)
    chosen, one, none = fitted
    assert tuple(chosen.choices) == RANKER_CHOICES and chosen.ranker is None
    assert not one.choices and one.ranker == FAST_RANKER
    assert not none.choices and none.ranker is None


@pytest.mark.timeout(300)
def test_the_new_protocol_is_served_by_a_new_items_shelf_with_its_own_ranker() -> None:
    """With ``new_items_choices`` the ``new`` lists come from the placement as a
    new-items shelf: the person's history is left out by the placement itself (no
    exclusion asked), ranked by the ranker chosen on the new-items requests; the
    ``all`` lists keep the history and the home ranker."""
    log, cutoff = _zero_price_store()
    split = time_split(log, cutoff.timestamp())
    both = FAST_RANKER.model_copy(update={"new_item_requests": True})
    model = ServedModel(
        CONFIG,
        cutoff=cutoff.timestamp(),
        choices=(FAST_RANKER,),
        new_items_choices=(FAST_RANKER, both),
    )
    model.fit(split.train)
    assert model.choice is not None and model.new_items_choice is not None
    scores = model.new_items_choice.as_dict()["validation_ndcg@10"]
    assert set(scores) == {"blend", label_of(FAST_RANKER), label_of(both)}
    chosen = model.new_items_choice.config
    assert (model.learned_new is model.learned) == (chosen == model.choice.config)
    assert model.plan_for("new").new_items_only and model.plan_for("new").ranker == "new_items"
    assert not model.plan_for("all").new_items_only
    kept_history = 0
    for t in split.targets["all"][:30]:
        history = set(t.history.tolist())
        model.set_protocol("new")
        new = model.recommend(t.person, 10, np.zeros(0, np.int64)).tolist()
        assert new and not set(new) & history
        model.set_protocol("all")
        kept_history += bool(set(model.recommend(t.person, 10, np.zeros(0, np.int64))) & history)
    assert kept_history > 10  # the all-items slates do offer the history


@pytest.mark.timeout(300)
def test_a_capped_home_is_measured_with_its_floors_calibrated_over_people() -> None:
    """The backtest and the guard measure what a store serves: a home placement with an
    exposure cap is served with floors calibrated over the people the fit knows (as the
    training job calibrates a bundle's), so no item takes more than its share of their
    slates; the new-items shelf, another placement, is not capped by home's floors."""
    log, cutoff = _zero_price_store()
    split = time_split(log, cutoff.timestamp())
    home = shipped_placements().get("home")
    plain = home.model_copy(
        update={
            "exploration": 0.0,
            "objective": home.objective.model_copy(update={"exposure_cap": None}),
        }
    )
    capped = plain.model_copy(
        update={"objective": plain.objective.model_copy(update={"exposure_cap": 0.2})}
    )
    shares = {}
    for name, placement in (("plain", plain), ("capped", capped)):
        model = ServedModel(
            CONFIG, placement=placement, cutoff=cutoff.timestamp(), ranker=FAST_RANKER
        )
        model.ranking = model.ranking.model_copy(update={"explore_share": 0.0})
        model.fit(split.train)
        people = model.artifacts.history.people
        counts: Counter[int] = Counter()
        for person in people:
            counts.update(s.item for s in model.slate(person, placement.k).items)
        shares[name] = counts
        all_items, new_items = model.pipelines["all"].rank, model.pipelines["new"].rank
        assert isinstance(all_items, LearnedRank) and isinstance(new_items, LearnedRank)
        assert (all_items.floors is None) == (name == "plain")
        assert new_items.floors is None
    limit = int(0.2 * len(people))
    assert max(shares["plain"].values()) > limit, shares["plain"].most_common(3)
    assert max(shares["capped"].values()) <= limit, shares["capped"].most_common(3)
    assert sum(shares["capped"].values()) == sum(shares["plain"].values())
