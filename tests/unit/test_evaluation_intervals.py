"""Bootstrap intervals over people, paired comparisons in the report, and honest validation windows."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from shelfwise.candidates.config import FactorsConfig, SourcesConfig
from shelfwise.candidates.log import InteractionLog
from shelfwise.errors import InvalidInput
from shelfwise.evaluation import compare
from shelfwise.evaluation.intervals import interval, resampled_means
from shelfwise.evaluation.report import markdown
from shelfwise.evaluation.run import evaluate
from shelfwise.evaluation.split import time_split
from tests.unit.candidates_fixtures import ABC, T0, purchases

IntArray = np.ndarray


def test_resamples_are_seeded_and_shared_by_every_series() -> None:
    rng = np.random.default_rng(3)
    a = rng.random(400)
    b = a - 0.1  # every person exactly 0.1 worse
    means = resampled_means([a, b], 500, seed=7)
    np.testing.assert_array_equal(means, resampled_means([a, b], 500, seed=7))
    assert not np.array_equal(means, resampled_means([a, b], 500, seed=8))
    paired = interval(0.1, means[:, 0] - means[:, 1])
    assert paired.low == pytest.approx(0.1) and paired.high == pytest.approx(0.1)
    alone = interval(float(a.mean()), means[:, 0])
    assert alone.low < a.mean() < alone.high and alone.high - alone.low > 0.02
    same = interval(0.0, means[:, 0] - resampled_means([a, a], 500, seed=7)[:, 1])
    assert (same.low, same.high) == (0.0, 0.0) and not same.excludes_zero()


class _Fixed:
    """Recommends the same list to everyone."""

    def __init__(self, name: str, items: list[int]) -> None:
        self.name, self.items = name, np.array(items, dtype=np.int64)

    def fit(self, train: InteractionLog) -> None:
        pass

    def recommend(self, person: int, k: int, exclude: IntArray) -> IntArray:
        return self.items[~np.isin(self.items, exclude)][:k]


def _log() -> InteractionLog:
    baskets = [(f"b{i}", f"p{i % 6}", ["A", "B"] if i % 2 else ["C"]) for i in range(12)]
    later = [(f"c{i}", f"p{i}", ["D"] if i % 3 else ["E"]) for i in range(6)]
    return purchases([*baskets, *later], days=[0] * 12 + [10] * 6)


def test_evaluation_reports_paired_intervals_against_each_peer() -> None:
    log = _log()
    split = time_split(log, log.at.min() + 5 * 86400)
    models = [_Fixed("popularity", [0, 1, 2]), _Fixed("ease", [4]), _Fixed("shelfwise", [3, 4])]
    result = evaluate(split, models, ks=(2,), resamples=200, seed=1)
    assert result.people == {"all": 6, "new": 6}
    pairs = [(c.model, c.peer, c.protocol, c.k) for c in result.comparisons]
    assert pairs == [
        ("shelfwise", "popularity", "all", 2),
        ("shelfwise", "ease", "all", 2),
        ("shelfwise", "popularity", "new", 2),
        ("shelfwise", "ease", "new", 2),
    ]
    versus_popularity = result.comparisons[0]
    # shelfwise hits every person (D or E in its top 2); popularity hits nobody
    assert versus_popularity.model_ndcg.mean > 0.5 and versus_popularity.peer_ndcg.mean == 0.0
    assert versus_popularity.delta.low > 0 and versus_popularity.delta.excludes_zero()
    data = result.as_dict()
    assert data["intervals"]["resamples"] == 200 and data["intervals"]["level"] == 0.95
    assert data["intervals"]["comparisons"][0]["significant"] is True
    assert set(data["models"][0]["ndcg_interval"]["all"]["2"]) == {"mean", "low", "high"}
    text = markdown(result)
    assert "shelfwise against each peer" in text and "| all | 2 | shelfwise | popularity |" in text
    again = evaluate(split, models, ks=(2,), resamples=200, seed=1)
    assert [c.delta for c in again.comparisons] == [c.delta for c in result.comparisons]
    assert evaluate(split, models, ks=(2,), resamples=0).comparisons == []


CONFIG = SourcesConfig(factors=FactorsConfig(factors=4, iterations=2))


def test_a_validation_window_before_the_first_event_is_a_clear_error() -> None:
    log = purchases([*ABC, ("o5", "p1", ["C"])], days=[0, 1, 2, 3, 20])
    cutoff = T0 + timedelta(days=10)  # test window 10 days long: validation from day 0 - 0
    with pytest.raises(InvalidInput) as e:
        compare(log, cutoff, T0 + timedelta(days=30), config=CONFIG, with_baselines=False)
    assert e.value.code == "validation_window_outside_data"
    assert "--no-tune" in e.value.message and "first event" in e.value.message
    untuned = compare(
        log, cutoff, T0 + timedelta(days=30), config=CONFIG, with_baselines=False, tune=False
    )
    assert [m.name for m in untuned.models] == ["shelfwise"]


def test_a_validation_window_with_nobody_to_judge_is_a_clear_error() -> None:
    # validation window [day 10, day 20): nobody buys in it
    log = purchases([*ABC, ("o5", "p1", ["C"])], days=[0, 1, 2, 3, 25])
    with pytest.raises(InvalidInput) as e:
        compare(log, T0 + timedelta(days=20), T0 + timedelta(days=30), config=CONFIG)
    assert e.value.code == "validation_window_empty"
