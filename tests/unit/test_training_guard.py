"""The promotion guard: minimum people, the comparison on one window, the verdict, the numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from shelfwise.candidates.config import FactorsConfig, SourcesConfig
from shelfwise.errors import InvalidInput
from shelfwise.evaluation.served import ServedModel
from shelfwise.ranking.impressions import Impression
from shelfwise.ranking.training import RANKER_CHOICES
from shelfwise.training import guard
from shelfwise.training.guard import (
    DAY,
    Measured,
    Served,
    decide,
    judge,
    measure,
    measure_promoted,
)
from tests.unit.candidates_fixtures import ABC, purchases

CONFIG = SourcesConfig(factors=FactorsConfig(factors=4, iterations=2))
SLATE = Impression("r1", "p1", 0, "home", np.array([0, 1]), np.array([3, 0]), np.array([1.0, 1.0]))


def _judge(new: float, old: float | None, people: int, **kw: float) -> tuple[bool, str]:
    current = None if old is None else Measured({"ndcg@10": old, "recall@20": 0.5}, people)
    report = judge(
        Measured({"ndcg@10": new, "recall@20": 0.4}, people),
        current,
        None if old is None else "v1",
        tolerance=kw.get("tolerance", 0.0),
        min_people=int(kw.get("min_people", 200)),
    )
    return report.passed, report.reason


def test_the_first_bundle_is_promoted_whatever_the_count() -> None:
    passed, reason = _judge(0.2, None, people=5)
    assert passed and reason == "first bundle, judged on 5 people"


def test_below_the_minimum_the_guard_refuses_and_names_the_count_and_the_minimum() -> None:
    passed, reason = _judge(0.9, 0.1, people=5)
    assert not passed
    assert "judged 5 people, below the minimum of 200" in reason and "--force" in reason
    passed, reason = _judge(0.9, 0.1, people=5, min_people=5)
    assert passed and reason == "ndcg@10 0.9000 >= 0.1000 on 5 people"


def test_ndcg_decides_with_the_tolerance() -> None:
    assert _judge(0.3, 0.3, people=300)[0]
    passed, reason = _judge(0.29, 0.3, people=300)
    assert not passed and reason.startswith("ndcg@10 0.2900 < 0.3000 (current) on 300 people")
    assert _judge(0.29, 0.3, people=300, tolerance=0.05)[0]


def test_decide_force_and_no_promote() -> None:
    refused = judge(
        Measured({"ndcg@10": 0.1}, 5),
        Measured({"ndcg@10": 0.3}, 5),
        "v1",
        tolerance=0,
        min_people=200,
    )
    assert decide(refused, force=False, promote=True) == (False, refused.reason)
    forced, why = decide(refused, force=True, promote=True)
    assert forced and why == f"forced over the guard: {refused.reason}"
    assert decide(refused, force=True, promote=False) == (False, "promotion not asked for")


def test_the_report_is_a_table_and_flat_numbers_for_the_bundle() -> None:
    report = judge(
        Measured({"ndcg@10": 0.25, "recall@20": 0.5}, 250),
        Measured({"ndcg@10": 0.2, "recall@20": 0.6}, 250),
        "v1",
        tolerance=0.0,
        min_people=200,
    )
    assert [(r.metric, r.current, r.candidate, r.verdict) for r in report.rows] == [
        ("people", 250, 250, "enough"),
        ("ndcg@10", 0.2, 0.25, "no worse"),
        ("recall@20", 0.6, 0.5, "reported, not guarded"),
    ]
    assert report.rows[1].delta == pytest.approx(0.05)
    assert report.metrics() == pytest.approx(
        {
            "guard_people": 250.0,
            "guard_min_people": 200.0,
            "guard_passed": 1.0,
            "ndcg@10": 0.25,
            "current_ndcg@10": 0.2,
            "delta_ndcg@10": 0.05,
            "recall@20": 0.5,
            "current_recall@20": 0.6,
            "delta_recall@20": -0.1,
        }
    )
    assert report.as_dict()["rows"][0]["verdict"] == "enough"


def test_a_guard_window_before_the_first_event_judges_nobody_and_says_why() -> None:
    log = purchases(ABC, days=[0, 1, 2, 3])
    got = measure(log, [], CONFIG, days=30)
    assert (got.people, got.metrics) == (0, {})
    assert got.note is not None and "before the first event" in got.note
    assert measure(log, [], CONFIG, days=0).note == "guard_days is 0: no window is held out"
    report = judge(got, got, "v1", tolerance=0.0, min_people=200)
    assert not report.passed and "before the first event" in report.reason


def test_the_guard_window_scores_the_people_who_bought_on_both_sides() -> None:
    log = purchases([*ABC, ("o5", "p1", ["C"]), ("o6", "p3", ["B"])], days=[0, 0, 0, 0, 20, 20])
    got = measure(log, [], CONFIG, days=10)
    assert got.people == 2 and 0.0 <= got.metrics["ndcg@10"] <= 1.0


class _Info:
    def __init__(self, config: SourcesConfig | dict[str, object], metrics: dict[str, float]):
        self.config = config if isinstance(config, dict) else config.model_dump(mode="json")
        self.config_hash = "other" if isinstance(config, dict) else config.config_hash()
        self.metrics = metrics


def test_the_promoted_config_is_measured_on_the_same_window() -> None:
    log = purchases([*ABC, ("o5", "p1", ["C"]), ("o6", "p3", ["B"])], days=[0, 0, 0, 0, 20, 20])
    candidate = measure(log, [], CONFIG, days=10)
    assert measure_promoted(None, candidate, log, [], CONFIG, 10) is None
    same = measure_promoted(_Info(CONFIG, {}), candidate, log, [], CONFIG, 10)
    assert same is candidate  # same config, same data: not refitted
    other = SourcesConfig(factors=FactorsConfig(factors=2, iterations=1))
    refit = measure_promoted(_Info(other, {}), candidate, log, [], CONFIG, 10)
    assert refit is not None and refit.people == candidate.people
    stale = measure_promoted(
        _Info({"no_such_key": 1}, {"ndcg@10": 0.4, "guard_people": 7.0}),
        candidate,
        log,
        [],
        CONFIG,
        10,
    )
    assert stale == Measured(
        {"ndcg@10": 0.4, "guard_people": 7.0}, 7, "the promoted config no longer loads"
    )


def test_the_guard_ranker_learns_from_the_logged_slates_before_its_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the learned ranker, the guard's served pipeline is given the logged slates
    read up to the guard window's start (their responses too: none from the window it
    scores), as the bundle's ranker learns from those before the end; without it,
    nothing is read."""
    log = purchases([*ABC, ("o5", "p1", ["C"]), ("o6", "p3", ["B"])], days=[0, 0, 0, 0, 20, 20])
    asked: list[float] = []
    built: list[dict[str, Any]] = []

    def logged(before: float) -> list[Impression]:
        asked.append(before)
        return [SLATE]

    class Spy(ServedModel):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built.append(kwargs)
            super().__init__(*args, **kwargs)

        def fit(self, train: Any) -> None:  # as a ranker without enough history stops
            raise InvalidInput("stop", code="ranker_no_data")

    monkeypatch.setattr(guard, "ServedModel", Spy)
    ranked = Served(choices=RANKER_CHOICES, impressions=logged)
    got = measure(log, [], CONFIG, days=10, served=ranked)
    # the window ends just after the last event, as the bundle's "now" does
    assert asked == [int(log.end) + 1 - 10 * DAY] and list(built[0]["impressions"]) == [SLATE]
    assert got.people == 0 and "learned ranker" in (got.note or "")
    measure(log, [], CONFIG, days=10, served=Served(impressions=logged))
    assert len(asked) == 1 and list(built[1]["impressions"]) == []  # the blend: none read
