"""The ranker end to end on the synthetic store: model, objective, reasons, exploration."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.candidates.base import Proposal, Reason, RecContext
from shelfwise.ranking import (
    CandidateSet,
    FeatureSpec,
    HistoryLog,
    ItemColumns,
    PlacementObjective,
    Ranker,
    RankerModel,
    RankingSettings,
    RankingState,
    TableNames,
    build_training_set,
)
from shelfwise.ranking.explain import seen_items
from shelfwise.ranking.explore import POOL, PROPENSITY_DRAWS
from shelfwise.ranking.exposure import Floors
from shelfwise.ranking.history import PURCHASE
from shelfwise.ranking.model import DEFAULT_PARAMS
from shelfwise.ranking.ranker import Scored
from shelfwise.ranking.state import DAY
from shelfwise.ranking.synthetic import (
    SOURCES,
    START,
    StateSources,
    SyntheticStore,
    synthetic_store,
)


@dataclass
class Trained:
    store: SyntheticStore
    state: RankingState
    model: RankerModel
    t: int


def _trained_model(store: SyntheticStore, spec: FeatureSpec, rounds: int) -> RankerModel:
    """A model of ``spec`` trained at day 25 and validated at day 35 of ``store``."""

    def training_set(t: int):  # type: ignore[no-untyped-def]
        state = RankingState.fit(store.log, store.items, t)
        return build_training_set(
            store.log, store.items, state, spec, StateSources(state, store.items), t, 10 * DAY
        )

    a, b = training_set(START + 25 * DAY), training_set(START + 35 * DAY)
    return RankerModel.train(spec, (a.x, a.y, a.groups), (b.x, b.y, b.groups), rounds=rounds)[0]


@pytest.fixture(scope="module")
def trained() -> Trained:
    store = synthetic_store(n_items=120, n_persons=250, days=50, seed=1)
    model = _trained_model(store, FeatureSpec.of(SOURCES), rounds=60)
    t = START + 45 * DAY
    return Trained(store, RankingState.fit(store.log, store.items, t), model, t)


def _ranker(tr: Trained, **settings_kw: float) -> Ranker:
    names = TableNames(tr.store.titles, tr.store.categories)
    return Ranker(tr.state, names, RankingSettings(**settings_kw), tr.model)  # type: ignore[arg-type]


def _request(
    tr: Trained, person: str = "p7", placement: str = "home"
) -> tuple[RecContext, CandidateSet]:
    ctx = RecContext(placement, datetime.fromtimestamp(tr.t, UTC), person_id=person)
    return ctx, CandidateSet.from_proposals(StateSources(tr.state, tr.store.items)(ctx), SOURCES)


def test_compiled_model_scores_like_lightgbm(trained: Trained, tmp_path: Path) -> None:
    ctx, cands = _request(trained)
    x, _ = _ranker(trained).score(ctx, cands, trained.store.items)
    folder, cache = tmp_path / "ranker", tmp_path / "cache"
    trained.model.save(folder)
    plain = RankerModel.load(folder, compile=False)
    compiled = RankerModel.load(folder, compile=True, cache_dir=cache, label="v1")
    assert compiled.compiled is not None
    assert sorted(p.name for p in folder.iterdir()) == ["ranker.json", "ranker.txt"]
    (entry,) = cache.glob("v1-*.so")  # cached outside the model's folder
    again = RankerModel.load(folder, compile=True, cache_dir=cache, label="v1")
    assert list(cache.glob("*.so")) == [entry]  # a hit: loaded, not compiled again
    np.testing.assert_allclose(again.raw(x), compiled.raw(x), rtol=1e-12)
    np.testing.assert_allclose(compiled.raw(x), plain.raw(x), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(plain.raw(x), trained.model.raw(x), rtol=1e-12)
    assert plain.metrics["best_iteration"] >= 1


def test_rank_returns_k_explained_items_from_the_candidates(trained: Trained) -> None:
    ctx, cands = _request(trained)
    ranked = _ranker(trained, explore_share=0.0).rank(ctx, cands, trained.store.items, k=10)
    assert len(ranked.items) == 10
    assert set(ranked.items.tolist()) <= set(cands.items.tolist())
    assert (np.diff(ranked.scores) <= 0).all()
    np.testing.assert_allclose(ranked.scores, ranked.probabilities * ranked.values)
    assert all(len(r) >= 1 for r in ranked.reasons)
    assert len(ranked.contributions[0]) == len(trained.model.spec.names) + 1
    assert (ranked.propensities == 1.0).all()


def test_a_high_margin_and_a_high_click_item_trade_places(trained: Trained) -> None:
    items = ItemColumns.unknown(2, price=[20.0, 20.0])
    items.margin_band[:] = [2, 0]  # item 0: high margin, item 1: low margin
    state = RankingState.fit(trained.store.log.before(0), items, trained.t)
    # without a model, P(engagement) follows the sources: item 1 is everyone's first choice
    proposals = [
        Proposal(
            "popular",
            np.array([1, 0]),
            np.array([2.0, 1.0]),
            (Reason("popular", "popular_in"),) * 2,
        ),
        Proposal(
            "history", np.array([1, 0]), np.array([2.0, 1.0]), (Reason("history", "for_you"),) * 2
        ),
    ]
    cands = CandidateSet.from_proposals(proposals, SOURCES)
    ranker = Ranker(state, TableNames((), ()), RankingSettings(explore_share=0.0), sources=SOURCES)
    ctx = RecContext("any", datetime.fromtimestamp(trained.t, UTC))
    discovery = PlacementObjective(click=1.0, revenue=0.0, margin=0.0)
    margin = PlacementObjective(click=0.0, revenue=0.0, margin=1.0)
    assert ranker.rank(ctx, cands, items, discovery, k=2).items.tolist() == [1, 0]
    assert ranker.rank(ctx, cands, items, margin, k=2).items.tolist() == [0, 1]


def test_exploration_is_seeded_and_stays_within_the_candidates(trained: Trained) -> None:
    ctx, cands = _request(trained, "p3")
    allowed = cands.take(np.arange(0, len(cands), 2))  # as if the rules removed every other one
    ranker = _ranker(trained, explore_share=0.3, explore_max_exposures=1.0, explore_seed=11)
    first = ranker.rank(ctx, allowed, trained.store.items, k=10)
    again = ranker.rank(ctx, allowed, trained.store.items, k=10)
    assert first.explored.sum() == 3
    np.testing.assert_array_equal(first.items, again.items)
    np.testing.assert_array_equal(first.propensities, again.propensities)
    assert set(first.items.tolist()) <= set(allowed.items.tolist())
    assert ((first.propensities > 0) & (first.propensities <= 1)).all()
    assert (first.propensities[~first.explored] == 1.0).all()
    other_seed = _ranker(trained, explore_share=0.3, explore_max_exposures=1.0, explore_seed=12)
    runs = [other_seed.rank(ctx, allowed, trained.store.items, k=10).items for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])


def test_reason_names_an_item_the_shopper_bought_but_never_an_unseen_one() -> None:
    items = ItemColumns.unknown(3, price=[1.0, 2.0, 3.0])
    titles = ("Linen duvet cover", "Oak side table", "Secret item")
    log = HistoryLog.build(["ann"], [0], [0], [PURCHASE], [START])
    state = RankingState.fit(log, items, START + DAY)
    proposals = [
        Proposal(
            "history",
            np.array([1, 0]),
            np.array([2.0, 1.0]),
            (
                Reason("history", "often_bought_with", anchor=0),
                Reason("history", "similar_to", anchor=2),  # ann never saw item 2
            ),
        )
    ]
    cands = CandidateSet.from_proposals(proposals, SOURCES)
    names = TableNames(titles, ("",))
    ranker = Ranker(state, names, RankingSettings(explore_share=0), sources=SOURCES)
    ctx = RecContext("home", datetime.fromtimestamp(START + DAY, UTC), person_id="ann")
    ranked = ranker.rank(ctx, cands, items, k=2)
    reasons = dict(zip(ranked.items.tolist(), ranked.reasons, strict=True))
    assert [e.text for e in reasons[1]] == ["Often bought with Linen duvet cover"]
    assert [e.text for e in reasons[0]] == ["Recommended for you"]
    assert reasons[0][0].fallback


@settings(max_examples=30, deadline=None)
@given(
    anchors=st.lists(st.integers(0, 119), min_size=1, max_size=30),
    person=st.integers(0, 249),
)
def test_reasons_never_mention_an_item_the_shopper_has_not_seen(
    trained: Trained, anchors: list[int], person: int
) -> None:
    ctx = RecContext("home", datetime.fromtimestamp(trained.t, UTC), person_id=f"p{person}")
    cand_items = np.unique(np.array(anchors[::-1], dtype=np.int64) * 7 % 120)
    reasons = tuple(
        Reason("category", "because_you_viewed", anchor=anchors[i % len(anchors)])
        for i in range(len(cand_items))
    )
    proposal = Proposal("category", cand_items, np.linspace(1, 0, len(cand_items)), reasons)
    cands = CandidateSet.from_proposals([proposal], SOURCES)
    ranked = _ranker(trained).rank(ctx, cands, trained.store.items, k=10)
    seen = seen_items(ctx, trained.state)
    titles = trained.store.titles
    for reasons_of_item in ranked.reasons:
        assert reasons_of_item
        for e in reasons_of_item:
            assert e.anchor is None or e.anchor in seen
            unseen_titles = [titles[a] for a in set(anchors) - seen]
            assert not any(e.text.endswith(" " + t) for t in unseen_titles)


def test_a_saved_ranker_ranks_as_before(trained: Trained, tmp_path: Path) -> None:
    ctx, cands = _request(trained, "p21")
    before = _ranker(trained, explore_share=0.1, compile_model=False)
    before.save(tmp_path)
    names = TableNames(trained.store.titles, trained.store.categories)
    after = Ranker.load(
        tmp_path, names, RankingSettings(explore_share=0.1, compile_model=False), "v1"
    )
    a, b = before.rank(ctx, cands, trained.store.items), after.rank(ctx, cands, trained.store.items)
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_allclose(a.scores, b.scores)
    assert b.model_version == "v1"
    assert a.reasons == b.reasons


def test_path_contributions_add_up_to_the_raw_score(trained: Trained) -> None:
    ctx, cands = _request(trained, "p5")
    x, _ = _ranker(trained).score(ctx, cands, trained.store.items)
    x[::3, 5] = np.nan  # missing values take each split's default branch
    contrib = trained.model.contributions(x)
    np.testing.assert_allclose(contrib.sum(1), trained.model.raw(x), atol=1e-9)
    shap = trained.model.shap(x)
    np.testing.assert_allclose(shap.sum(1), contrib.sum(1), atol=1e-9)
    # same sign on the dominant feature of most rows
    top = np.abs(shap[:, :-1]).argmax(1)
    agree = np.sign(contrib[np.arange(len(x)), top]) == np.sign(shap[np.arange(len(x)), top])
    assert agree.mean() > 0.9


def test_a_scored_order_keeps_only_the_rows_its_draws_can_serve(trained: Trained) -> None:
    """A kept order's bytes (``Scored.nbytes``, from its arrays) are bounded by the rows
    a draw can serve, not by the candidates; every draw is served from them."""
    ctx, cands = _request(trained, "p5")
    ranker = _ranker(trained, explore_share=0.1, explore_max_exposures=1e9)
    objective = ranker.settings.objective_for("home")
    k = 10
    scored = ranker.scored(ctx, cands, trained.store.items, objective, k)
    n_explore = round(0.1 * k)
    rows = len(scored.cands)
    assert scored.n_candidates == len(cands) > rows
    assert rows <= k + min(POOL, PROPENSITY_DRAWS * n_explore)
    width = len(ranker.spec.names) + 1 + 3 * len(ranker.spec.sources) + 5  # float64/int64 a row
    plan_bytes = PROPENSITY_DRAWS * n_explore + 2 * POOL + 8 * 2 * rows
    assert scored.nbytes() <= 8 * width * rows + plan_bytes
    served = set()
    for which in range(PROPENSITY_DRAWS):
        ranked = ranker.draw(scored, ctx, which)
        assert len(ranked.items) == k and len(ranked.contributions) == k
        served.update(ranked.items.tolist())
    assert served == set(scored.cands.items.tolist())
    # every row explained now: its reasons and contributions (a row each) are kept
    assert scored.nbytes() <= 8 * (width + len(ranker.spec.names) + 1) * rows + plan_bytes


def test_exploration_never_picks_what_the_exposure_cap_demoted(trained: Trained) -> None:
    """With floors, the three best items are demoted: no draw of the plan explores them
    back into the slate, the arrangement's fill is the others in the ranker's order,
    and the demoted follow (``ranking.exposure``)."""
    ctx, cands = _request(trained, "p5")
    cands = cands.take(np.arange(20))  # fewer than k + POOL: every one may be explored
    ranker = _ranker(trained, explore_share=0.3, explore_max_exposures=1e9)
    objective = ranker.settings.objective_for("home")
    items = trained.store.items
    k = 5
    _, prob, values = ranker.valued(ctx, cands, items, objective)
    best = np.argsort(-(prob * values), kind="stable")
    floor = np.zeros(int(cands.items.max()) + 1)
    floor[cands.items[best[:3]]] = 1e9  # no margin reaches it
    scored = ranker.scored(ctx, cands, items, objective, k, floors=Floors(floor, k))
    held_back = set(cands.items[best[:3]].tolist())
    assert set(scored.below_floor.tolist()) == held_back
    assert scored.fill.tolist() == cands.items[best[3 : 3 + len(scored.fill)]].tolist()
    for which in range(PROPENSITY_DRAWS):
        ranked = ranker.draw(scored, ctx, which)
        assert len(ranked.items) == k and ranked.explored.sum() == 2
        assert not held_back & set(ranked.items.tolist())


def test_one_request_at_several_clocks_is_valued_as_each_clock_alone(trained: Trained) -> None:
    """``valued_at`` scores a request's clocks in one call of the model: the very values
    of :meth:`Ranker.valued` at each clock (the exposure cap's calibration reads them),
    and the clocks differ (the features read an item's age)."""
    ctx, cands = _request(trained, "p5")
    ranker = _ranker(trained)
    objective = ranker.settings.objective_for("home")
    items = trained.store.items
    contexts = [replace(ctx, now=ctx.now + timedelta(days=d)) for d in (0, 20, 60)]
    prob, values = ranker.valued_at(contexts, cands, items, objective)
    assert prob.shape == (3, len(cands)) and values.shape == (len(cands),)
    for row, c in zip(prob, contexts, strict=True):
        _, alone, alone_values = ranker.valued(c, cands, items, objective)
        assert row.tolist() == alone.tolist()
        assert values.tolist() == alone_values.tolist()
    assert prob[0].tolist() != prob[2].tolist()


def test_leaf_contributions_are_the_deltas_along_each_rows_path(trained: Trained) -> None:
    """Against a plain walk of the model's dump, row by row, tree by tree."""
    ctx, cands = _request(trained, "p5")
    x, _ = _ranker(trained).score(ctx, cands, trained.store.items)
    x = x[:12].copy()
    x[::4, 5] = np.nan
    model = trained.model
    dump = model.booster.dump_model(num_iteration=model.best_iteration)
    width = len(model.spec.names) + 1
    expected = np.zeros((len(x), width))

    def value(node: dict[str, Any]) -> float:
        return float(node.get("leaf_value", node.get("internal_value", 0.0)))

    for r, row in enumerate(x):
        for tree in dump["tree_info"]:
            node = tree["tree_structure"]
            expected[r, -1] += value(node)
            while "leaf_value" not in node:
                v = row[node["split_feature"]]
                if np.isnan(v) and node["missing_type"] == "NaN":
                    left = node["default_left"]
                else:
                    left = (0.0 if np.isnan(v) else v) <= node["threshold"]
                child = node["left_child" if left else "right_child"]
                expected[r, node["split_feature"]] += value(child) - value(node)
                node = child
    np.testing.assert_allclose(model.contributions(x), expected, atol=1e-9)


def test_a_model_of_an_earlier_version_keeps_ranking_after_an_upgrade(
    trained: Trained, tmp_path: Path
) -> None:
    """A bundle trained before features were added reads its own features (each still
    computed): it loads, ranks, explains and saves as it was, with no warning to retrain;
    a model naming a feature this version does not compute is refused at load."""
    from shelfwise.ranking.features import BASE_FEATURES, build_features

    old_base = tuple(f for f in BASE_FEATURES if f not in ("rebuy_28d", "rebuy_expected"))
    old = FeatureSpec(SOURCES, old_base)
    keep = np.r_[np.arange(2 * len(SOURCES)), 2 * len(SOURCES) + old.base_columns]
    store = trained.store
    model = _trained_model(store, old, rounds=30)
    model.save(tmp_path / "old")
    loaded = RankerModel.load(tmp_path / "old", compile=False)
    assert loaded.spec == old and loaded.spec.names == old.names
    ctx, cands = _request(trained, "p21")
    full = build_features(ctx, cands, trained.state, store.items, FeatureSpec.of(SOURCES))
    mine = build_features(ctx, cands, trained.state, store.items, loaded.spec)
    np.testing.assert_array_equal(mine, full[:, keep])  # its columns, in its order
    names = TableNames(store.titles, store.categories)
    ranker = Ranker(trained.state, names, RankingSettings(explore_share=0.0), loaded)
    ranked = ranker.rank(ctx, cands, store.items, k=8)
    assert len(ranked.items) == 8 and all(ranked.reasons)
    want = model.probability(model.raw(mine))[_rows(cands, ranked)]
    np.testing.assert_allclose(ranked.probabilities, want)
    assert len(ranked.contributions[0]) == len(old.names) + 1

    meta = tmp_path / "old" / "ranker.json"
    meta.write_text(meta.read_text().replace('"buy_lag_days"', '"from_the_future"'))
    with pytest.raises(ValueError, match="from_the_future"):
        RankerModel.load(tmp_path / "old", compile=False)


def _rows(cands: CandidateSet, ranked: Any) -> np.ndarray:
    order = {item: row for row, item in enumerate(cands.items.tolist())}
    return np.array([order[i] for i in ranked.items.tolist()])


def test_a_state_saved_before_the_re_buy_rates_loads_with_them_at_zero(
    trained: Trained, tmp_path: Path
) -> None:
    """An earlier version's bundle has no ``rebuy_28d`` in its ranking state; its model
    does not read it, so the state loads (the rate at zero) instead of the placement
    losing its learned ranker until a retrain. Any other missing array is refused."""
    trained.state.save(tmp_path)
    with np.load(tmp_path / "state.npz") as data:
        arrays = {k: data[k] for k in data.files}
    assert trained.state.rebuy_28d.any()
    del arrays["rebuy_28d"]
    np.savez(tmp_path / "state.npz", **arrays)  # type: ignore[arg-type]
    loaded = RankingState.load(tmp_path)
    assert loaded.rebuy_28d.tolist() == [0.0] * len(trained.state.pop_7d)
    np.testing.assert_array_equal(loaded.pop_7d, trained.state.pop_7d)
    del arrays["pop_28d"]
    np.savez(tmp_path / "state.npz", **arrays)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pop_28d"):
        RankingState.load(tmp_path)


def _train_and_valid_rows(spec: FeatureSpec):  # type: ignore[no-untyped-def]
    """(x, y, groups) of a small synthetic store's training window at day 25 and
    validation window at day 35 (10-day labels)."""
    store = synthetic_store(n_items=60, n_persons=120, days=50, seed=3)

    def rows(t: int):  # type: ignore[no-untyped-def]
        state = RankingState.fit(store.log, store.items, t)
        made = build_training_set(
            store.log, store.items, state, spec, StateSources(state, store.items), t, 10 * DAY
        )
        return made.x, made.y, made.groups

    return rows(START + 25 * DAY), rows(START + 35 * DAY)


def test_a_model_trained_without_early_stopping_skips_scoring_the_validation_rows() -> None:
    """A refit (``patience=None``) is the same booster as one that scored its
    validation rows at every round, without the ``valid_*`` metric; it is calibrated
    on those rows all the same."""
    spec = FeatureSpec.of(SOURCES)
    train, valid = _train_and_valid_rows(spec)
    refit, raw = RankerModel.train(spec, train, valid, rounds=25, patience=None)
    assert refit.metrics == {"best_iteration": 0.0}
    assert refit.booster.num_trees() == 25
    # What the refit was before: the same rounds with the validation rows scored.
    names = list(spec.names)
    dtrain = lgb.Dataset(train[0], train[1], group=train[2], feature_name=names)
    dvalid = lgb.Dataset(valid[0], valid[1], group=valid[2], reference=dtrain)
    scored = lgb.train(DEFAULT_PARAMS, dtrain, num_boost_round=25, valid_sets=[dvalid])
    assert scored.best_score["valid_0"]["ndcg@10"] > 0
    np.testing.assert_array_equal(refit.raw(valid[0]), scored.predict(valid[0]))
    np.testing.assert_array_equal(raw, refit.raw(valid[0]))  # the scores it calibrated on
    assert refit.calibration != (1.0, 0.0)


def test_the_sources_threads_give_lightgbm_its_threads_unless_the_params_name_them() -> None:
    from shelfwise.ranking.training import RankerTrainingConfig, _params, with_threads

    cfg = RankerTrainingConfig()
    assert with_threads(cfg, 1) is cfg  # one thread: LightGBM's default here
    assert DEFAULT_PARAMS["num_threads"] == 1
    two = with_threads(cfg, 2)
    assert _params(two, 100_000)["num_threads"] == 2
    assert with_threads(cfg, 0).params == {"num_threads": 0}  # every core
    own = RankerTrainingConfig(params={"num_threads": 3, "max_bin": 63})
    assert with_threads(own, 2).params == {"num_threads": 3, "max_bin": 63}


def test_a_ranker_fitted_on_two_threads_ranks_like_one_on_one() -> None:
    """LightGBM's deterministic mode: the thread count changes the time, not the model
    (to the float's last bits)."""
    spec = FeatureSpec.of(SOURCES)
    train, valid = _train_and_valid_rows(spec)
    one, _ = RankerModel.train(spec, train, valid, rounds=25, patience=None)
    two, _ = RankerModel.train(spec, train, valid, {"num_threads": 2}, rounds=25, patience=None)
    np.testing.assert_allclose(one.raw(valid[0]), two.raw(valid[0]), rtol=1e-9, atol=1e-12)


def test_draws_explained_together_are_explained_as_each_alone(trained: Trained) -> None:
    """A batch's draws (``Ranker.explain_draws``: one call of the model for the rows of
    every draw) give each draw the reasons and contributions it would make alone."""
    ranker = _ranker(trained, explore_share=0.3, explore_max_exposures=1e9)
    objective = ranker.settings.objective_for("home")
    items = trained.store.items
    requests = [_request(trained, person) for person in ("p1", "p5", "p7", "p12")]

    def scored() -> list[Scored]:
        return [ranker.scored(ctx, cands, items, objective, 6) for ctx, cands in requests]

    alone, together = scored(), scored()
    ctxs = [ctx for ctx, _ in requests]
    draws = [(s, ctx, which) for s, ctx, which in zip(together, ctxs, (0, 3, 5, 3), strict=True)]
    ranker.explain_draws(draws)
    assert all(s.explained for s in together)  # explained before any draw asked
    for a, (t, ctx, which) in zip(alone, draws, strict=True):
        one, two = ranker.draw(a, ctx, which), ranker.draw(t, ctx, which)
        assert one.items.tolist() == two.items.tolist()
        assert one.reasons == two.reasons and len(one.reasons) == 6
        assert [dict(c) for c in one.contributions] == [dict(c) for c in two.contributions]
        assert sorted(a.explained) == sorted(t.explained)
