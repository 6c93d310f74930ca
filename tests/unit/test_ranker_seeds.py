"""A ranker averaged over training draws (``RankerTrainingConfig.seeds``) served as one
booster (``RankerModel.summed``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shelfwise.ranking.dataset import TrainingSet
from shelfwise.ranking.features import FeatureSpec
from shelfwise.ranking.model import RankerModel
from shelfwise.ranking.training import (
    HOME_DRAWS,
    RANKED_SOURCES,
    RANKER_CHOICES,
    RankerTrainingConfig,
    fit_ranker,
    task_training,
)

SPEC = FeatureSpec.of(RANKED_SOURCES)
SIGNAL = len(SPEC.names) - 1
SMALL = RankerTrainingConfig(rounds=25, patience=10, min_data_in_leaf=5, train_windows=2)


def window(seed: int) -> TrainingSet:
    """60 requests of 20 rows, one row in five bought; the label shows, noisily, in one
    column (so that the draws of the negatives and of bagging give different trees)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(1200) < 0.2).astype(np.int64) * 3
    x = rng.normal(size=(1200, len(SPEC.names)))
    x[:, SIGNAL] = y + rng.normal(scale=2.0, size=1200)
    return TrainingSet(x, y, np.full(60, 20), ["p"] * 60, np.arange(1200), [])


WINDOWS = [window(s) for s in range(3)]


def test_the_sum_scores_as_its_models_summed_and_explains_to_the_last_digit() -> None:
    valid = WINDOWS[0]
    models = [fit_ranker(WINDOWS, SMALL.model_copy(update={"seed": s})) for s in range(3)]
    summed = RankerModel.summed(models, (valid.x, valid.y))
    x = WINDOWS[1].x
    expected = np.sum([m.raw(x) for m in models], axis=0)
    np.testing.assert_allclose(summed.raw(x), expected, rtol=0, atol=1e-9)
    assert summed.booster.num_trees() == sum(m.booster.num_trees() for m in models)
    contributions = summed.contributions(x[:50])
    np.testing.assert_allclose(contributions.sum(axis=1), expected[:50], atol=1e-9)
    assert summed.metrics["ensemble_models"] == 3.0
    # calibrated on the validation rows, as one trained model is: higher raw, higher p
    p = summed.probability(np.sort(summed.raw(valid.x)))
    assert p[-1] > p[0] and np.all(np.diff(p) >= 0)


def test_models_that_read_other_features_are_not_summed() -> None:
    one = fit_ranker(WINDOWS, SMALL)
    other = FeatureSpec(SPEC.sources, SPEC.base[:-1])
    stranger = RankerModel(other, one.booster, one.calibration, dict(one.metrics))
    with pytest.raises(ValueError, match="same features"):
        RankerModel.summed([one, stranger], (WINDOWS[0].x, WINDOWS[0].y))
    with pytest.raises(ValueError, match="same features"):
        RankerModel.summed([], (WINDOWS[0].x, WINDOWS[0].y))


def test_seeds_refit_each_draw_and_serve_their_sum() -> None:
    """``seeds=3`` is three refits summed, for the rounds the first draw's early
    stopping chose: the first is the one-draw model itself, and the draws differ."""
    averaged = fit_ranker(WINDOWS, SMALL.model_copy(update={"seeds": 3}))
    first = fit_ranker(WINDOWS, SMALL)
    rounds = int(first.metrics["best_iteration_early_stopped"])
    assert averaged.metrics["best_iteration_early_stopped"] == rounds
    assert averaged.booster.num_trees() == 3 * rounds == 3 * first.booster.num_trees()
    x = WINDOWS[2].x
    draws = [
        averaged.booster.predict(x, start_iteration=n * rounds, num_iteration=rounds)
        for n in range(3)
    ]
    np.testing.assert_allclose(draws[0], first.raw(x), atol=1e-9)
    np.testing.assert_allclose(averaged.raw(x), np.sum(draws, axis=0), atol=1e-9)
    assert not np.allclose(draws[0], draws[1]) and not np.allclose(draws[1], draws[2])
    assert averaged.metrics["ensemble_models"] == 3.0
    assert "ensemble_models" not in first.metrics


def test_one_draw_is_the_default_and_the_same_model_as_before() -> None:
    """The default trains one draw: LightGBM's seed 7 and the negatives' sample of seed
    0, as every model before ``seeds`` existed."""
    assert RankerTrainingConfig().seeds == 1 and RankerTrainingConfig().seed == 0
    model = fit_ranker(WINDOWS, SMALL)
    again = fit_ranker(WINDOWS, SMALL.model_copy(update={"seed": 0, "seeds": 1}))
    np.testing.assert_array_equal(model.raw(WINDOWS[1].x), again.raw(WINDOWS[1].x))


def test_a_saved_sum_loads_and_compiles_to_the_same_scores(tmp_path: Path) -> None:
    averaged = fit_ranker(WINDOWS, SMALL.model_copy(update={"seeds": 2}))
    averaged.save(tmp_path / "ranker")
    x = WINDOWS[1].x
    for compile in (False, True):
        loaded = RankerModel.load(tmp_path / "ranker", compile=compile)
        np.testing.assert_allclose(loaded.raw(x), averaged.raw(x), atol=1e-6)
        assert loaded.calibration == averaged.calibration


def test_the_home_designs_and_the_new_items_shelf_average_three_draws() -> None:
    """Decided on validation (benchmarks/README.md#backtest, 2026-12-07): the home
    ranker's designs and the new-items shelf's ranker refit three draws; the product
    placements' rankers, not measured that way, keep one."""
    assert [c.seeds for c in RANKER_CHOICES] == [HOME_DRAWS] * 3 and HOME_DRAWS == 3
    assert all(c.seed == 0 for c in RANKER_CHOICES)
    fallback = ("popular",)
    assert task_training("new_items", "new_for_you", {"cooccurrence": 1.0}, fallback)[0].seeds == 3
    assert task_training("bought_with", "product", {"cooccurrence": 1.0}, fallback)[0].seeds == 1
