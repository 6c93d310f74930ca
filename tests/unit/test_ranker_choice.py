"""Choosing the ranker on the validation window only (``ranking.training.choose_ranker``),
or on it and the windows before it (``choice_windows``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from shelfwise.candidates.config import SourcesConfig
from shelfwise.ranking import training
from shelfwise.ranking.dataset import TrainingSet
from shelfwise.ranking.features import FeatureSpec
from shelfwise.ranking.training import (
    RANKED_SOURCES,
    RANKER_CHOICES,
    RankerTrainingConfig,
    _best,
    _early_stopped,
    _refitted,
    _scored,
    choose_for,
    choose_ranker,
    chosen_rankers,
    group_ndcg,
    requests_of,
)

SPEC = FeatureSpec.of(RANKED_SOURCES)
BLEND = SPEC.source_columns()["blend"][0]
SIGNAL = len(SPEC.names) - 1  # a base feature column
# Every row trains (``negatives=1``): these tests design which column orders which
# requests; a sample of the negatives is tested on its own (test_ranking_thinned.py).
SMALL = RankerTrainingConfig(
    rounds=30, patience=10, min_data_in_leaf=5, train_windows=2, negatives=1.0
)


def test_group_ndcg_written_out() -> None:
    # request 1: labels [0, 3, 1] ordered by scores [0.9, 0.5, NaN] -> 0, 3, 1
    # DCG = 7 / log2(3) + 1 / log2(4), ideal = 7 + 1 / log2(3)
    # request 2: labels [1, 0] ordered [1, 0] -> perfect
    scores = np.array([0.9, 0.5, np.nan, 2.0, 1.0])
    labels = np.array([0, 3, 1, 1, 0])
    first = (7 / np.log2(3) + 1 / 2) / (7 + 1 / np.log2(3))
    got = group_ndcg(scores, labels, np.array([3, 2]))
    assert got == pytest.approx((first + 1.0) / 2)
    assert group_ndcg(scores, labels, np.array([3, 2]), k=1) == pytest.approx(0.5)


def window(seed: int, blend_agrees: bool, signal_agrees: bool) -> TrainingSet:
    """40 requests of 20 rows; one row in five bought. The label shows in the signal
    column and in the blend's score, each either as is or reversed."""
    rng = np.random.default_rng(seed)
    groups = np.full(40, 20)
    y = (rng.random(800) < 0.2).astype(np.int64) * 3
    x = rng.normal(size=(800, len(SPEC.names)))
    x[:, SIGNAL] = (y if signal_agrees else -y) + rng.normal(scale=0.1, size=800)
    x[:, BLEND] = (y if blend_agrees else -y) + rng.normal(scale=0.1, size=800)
    return TrainingSet(x, y, groups, ["p"] * 40, np.arange(800), [])


def test_the_ranker_is_chosen_when_it_orders_the_validation_window_better() -> None:
    windows = [window(s, blend_agrees=False, signal_agrees=True) for s in range(3)]
    model, choice = choose_ranker(windows, [SMALL, SMALL.model_copy(update={"num_leaves": 4})])
    assert model is not None and choice.config is not None
    scores = choice.scores
    assert scores["blend"] < 0.5 < max(v for k, v in scores.items() if k != "blend")
    assert choice.as_dict()["chosen"].startswith("ranker(windows=2")
    assert "train_rows_early_stopped" not in model.metrics  # refitted on every window
    assert "best_iteration_early_stopped" in model.metrics


def test_the_blend_is_chosen_when_the_validation_window_disagrees_with_the_past() -> None:
    # the training windows teach "the signal column"; in the validation window the
    # signal is reversed and only the blend's order is right
    valid = window(0, blend_agrees=True, signal_agrees=False)
    train = [window(s, blend_agrees=False, signal_agrees=True) for s in (1, 2)]
    model, choice = choose_ranker([valid, *train], [SMALL])
    assert model is None and choice.config is None
    assert choice.as_dict()["chosen"] == "blend"
    assert choice.scores["blend"] > 0.9 > choice.scores["ranker(windows=2, leaves=63)"]


def _new_window(seed: int, other: int) -> TrainingSet:
    """A new-items window: the label shows in column ``other``, not in the signal."""
    w = window(seed, blend_agrees=False, signal_agrees=True)
    w.x[:, other] = w.x[:, SIGNAL]
    w.x[:, SIGNAL] = np.random.default_rng(seed + 10).normal(size=len(w.y))
    return w


def test_each_placement_chooses_on_its_own_kind_of_request() -> None:
    """All-items requests are ordered by one column, new-items requests by another
    (the first is noise there). The all-items placement keeps the all-items ranker;
    the new-items placement, scored on the new-items validation requests, takes the
    ranker trained on them. The all-items config both placements consider is trained
    once (the shared memo)."""
    built = {
        False: [window(s, blend_agrees=False, signal_agrees=True) for s in range(3)],
        True: [_new_window(s, SIGNAL - 1) for s in range(3, 6)],
    }
    only_new = SMALL.model_copy(update={"new_items_only": True})
    stopped: dict[str, Any] = {}
    model, choice = choose_for(built, [SMALL], False, stopped)
    assert model is not None and choice.config == SMALL
    model_new, choice_new = choose_for(built, [SMALL, only_new], True, stopped)
    assert model_new is not None and choice_new.config == only_new
    scores = choice_new.scores
    assert scores["ranker(windows=2, leaves=63, new items only)"] > 0.9
    assert scores["ranker(windows=2, leaves=63)"] < 0.7
    assert len(stopped) == 2


def test_the_choice_reads_the_validation_scores_training_gave() -> None:
    """Each design's scores of a kind's validation requests are cut from its own
    validation rows where it saw them (``_scored``), and are what predicting them
    again gives; the choice's scores are the same either way."""
    built = {
        False: [window(s, blend_agrees=False, signal_agrees=True) for s in range(3)],
        True: [_new_window(s, SIGNAL - 1) for s in range(3, 6)],
    }
    designs = [
        SMALL,
        SMALL.model_copy(update={"new_items_only": True}),
        SMALL.model_copy(update={"new_item_requests": True}),
    ]
    trained = [(c, _early_stopped(requests_of(built, c), c)) for c in designs]
    for kind in (False, True):
        valid = built[kind][0]
        for cfg, (model, joined) in trained:
            got = _scored(built, cfg, joined, kind)
            saw = cfg.new_item_requests or cfg.new_items_only == kind
            assert (got is not None) == saw
            if got is not None:
                np.testing.assert_array_equal(got, model.raw(valid.x))
        known = _best(valid, trained, [_scored(built, c, j, kind) for c, (_, j) in trained])
        assert known == _best(valid, trained)
        assert known[1]["blend"] < 0.5 < max(known[1].values())  # a real choice


def _blurred(seed: int, blend_agrees: bool, signal_agrees: bool, blur: float) -> TrainingSet:
    """``window`` with the blend's score blurred by noise of scale ``blur``."""
    w = window(seed, blend_agrees, signal_agrees)
    w.x[:, BLEND] += np.random.default_rng(seed + 20).normal(scale=blur, size=len(w.y))
    return w


def test_two_inner_windows_choose_by_the_mean_of_both() -> None:
    """The latest window's people follow the blend, a little (the ranker, which learned
    the signal, is worse there); one window earlier they follow the signal, the ranker
    is right and the blend wrong. One window chooses the blend; two choose the
    ranker, whose mean is higher, and refit it as one window's choice would."""
    built = {
        False: [
            _blurred(0, blend_agrees=True, signal_agrees=False, blur=3.0),
            *(window(s, blend_agrees=False, signal_agrees=True) for s in (1, 2, 3)),
        ]
    }
    two = SMALL.model_copy(update={"choice_windows": 2})
    one_model, one = choose_for(built, [SMALL], False)
    assert one_model is None and one.by_window == ()
    stopped: dict[str, Any] = {}
    model, choice = choose_for(built, [two], False, stopped)
    assert model is not None and choice.config == two
    latest, earlier = choice.by_window
    label = "ranker(windows=2, leaves=63)"
    assert latest == one.scores  # the latest window scored as before
    assert latest["blend"] > latest[label] and earlier[label] > 0.9 > 0.5 > earlier["blend"]
    for name, score in choice.scores.items():
        assert score == pytest.approx((latest[name] + earlier[name]) / 2, abs=1e-4)
    assert choice.as_dict()["validation_ndcg@10_by_window"] == [latest, earlier]
    assert len(stopped) == 2  # each window's early-stopped model, kept apart
    # the winner's refit is the one-window one: early-stopped on windows 1-2, refitted
    stopped_one, joined = _early_stopped(built[False], two)
    refit = _refitted(stopped_one, built[False], joined, two)
    np.testing.assert_array_equal(model.raw(built[False][0].x), refit.raw(built[False][0].x))


def test_an_earlier_window_without_history_is_left_out() -> None:
    """Two windows only: one window earlier there is nothing to train on, and the
    choice is the one window's."""
    built = {False: [window(s, blend_agrees=False, signal_agrees=True) for s in (0, 1)]}
    two = SMALL.model_copy(update={"choice_windows": 2})
    _, one = choose_for(built, [SMALL], False)
    _, choice = choose_for(built, [two], False)
    assert choice.by_window == () and choice.scores == one.scores
    assert choice.config == two and "validation_ndcg@10_by_window" not in choice.as_dict()


def test_the_windows_are_built_for_the_choice_s_earlier_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``chosen_rankers`` builds one more window for a second inner window (5 training
    windows + 2 inner validation windows: 7 decision times), none more without."""
    asked: list[int] = []

    class Built(Exception):
        pass

    def build_windows(*args: Any, **kwargs: Any) -> None:
        asked.append(args[5].train_windows)
        raise Built

    monkeypatch.setattr(training, "item_columns", lambda *args: None)
    monkeypatch.setattr(training, "build_windows", build_windows)
    log = SimpleNamespace(end=0.0, item_prices=lambda: None)
    sources = SourcesConfig()
    for windows in (1, 2):
        designs = [c.model_copy(update={"choice_windows": windows}) for c in RANKER_CHOICES]
        with pytest.raises(Built):
            chosen_rankers(log, [], None, sources, None, {False: designs})  # type: ignore[arg-type]
    assert asked == [5, 6]
