"""The rolling-origin backtest: London-midnight origins, choices made before each origin only,
and pooled paired intervals over (person, origin) units."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from shelfwise.candidates.log import InteractionLog
from shelfwise.errors import InvalidInput
from shelfwise.evaluation.backtest import (
    Fold,
    backtest,
    default_origins,
    largest_first,
    midnight,
    served_factory,
)
from shelfwise.evaluation.backtest_report import markdown
from shelfwise.evaluation.baselines import EASE, ImplicitALS, ItemKNN, PastThenPopular, Recommender
from shelfwise.evaluation.peers import Family
from shelfwise.ranking.training import RankerTrainingConfig

SMALL = (  # small grids: the choice is what is tested, not the peers' quality
    Family("item_knn", ItemKNN, ({"neighbours": 5}, {"neighbours": 20})),
    Family("implicit_als", ImplicitALS, ({"factors": 4}, {"factors": 8})),
    Family("ease", EASE, ({"regularization": 10.0}, {"regularization": 100.0})),
)
START = datetime(2011, 6, 1, tzinfo=UTC)
DAY = 86400.0


def shop(days: int = 150, seed: int = 3, people: int = 80, items: int = 40) -> InteractionLog:
    """People with a taste (a block of items) who buy from it every few days, and some noise."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[Any]] = {k: [] for k in ("people", "products", "at", "baskets")}
    for p in range(people):
        taste = rng.choice(items, size=6, replace=False)
        t = START.timestamp() + rng.uniform(0, 10 * DAY)
        n = 0
        while t < START.timestamp() + days * DAY:
            basket = [*rng.choice(taste, size=2, replace=False).tolist(), int(rng.integers(items))]
            for item in basket:
                rows["people"].append(f"p{p}")
                rows["products"].append(f"i{item}")
                rows["at"].append(t)
                rows["baskets"].append(f"b{p}-{n}")
            n += 1
            t += rng.uniform(2, 12) * DAY
    n_rows = len(rows["at"])
    return InteractionLog.from_columns(
        people=rows["people"],
        products=rows["products"],
        kinds=["purchase"] * n_rows,
        at=np.array(rows["at"]),
        baskets=rows["baskets"],
        quantity=np.ones(n_rows),
        price=np.full(n_rows, 2.0),
    )


class Recorder:
    """A served factory that fits past-then-popular and records what each fold let it see."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, float, float]] = []

    def __call__(self, fold: Fold) -> tuple[Sequence[Recommender], dict[str, Any]]:
        self.seen.append((fold.validation.train.end, fold.validation_start, fold.cutoff))
        model = PastThenPopular()
        model.name = "shelfwise-test"  # type: ignore[misc]
        return [model], {"seen_rows": len(fold.validation.train)}


def test_origins_are_london_midnights_one_window_apart() -> None:
    last_event = datetime(2011, 12, 9, 12, 50, tzinfo=UTC).timestamp()
    got = default_origins(last_event, 4, 14)
    assert [o.date() for o in got] == [
        date(2011, 10, 14),
        date(2011, 10, 28),
        date(2011, 11, 11),
        date(2011, 11, 25),
    ]
    assert got[0].isoformat() == "2011-10-14T00:00:00+01:00"  # British Summer Time
    assert got[-1].isoformat() == "2011-11-25T00:00:00+00:00"
    assert [o.date() for o in default_origins(last_event, 2, 14, 28)] == [
        date(2011, 10, 28),
        date(2011, 11, 25),
    ]
    with pytest.raises(InvalidInput) as err:
        default_origins(last_event, 0)
    assert err.value.code == "bad_backtest"


def test_choices_do_not_see_the_test_window() -> None:
    log = shop()
    origins = [midnight(date(2011, 9, 2)), midnight(date(2011, 9, 16))]
    recorder = Recorder()
    first = backtest(
        log, origins, served=recorder, served_label="test", resamples=200, families=SMALL, jobs=1
    )
    for validation_end, start, cutoff in recorder.seen:
        assert validation_end < start < cutoff
    # Rewrite every purchase at and after the first origin: every choice stays the same.
    later = log.at >= origins[0].timestamp()
    shuffled = InteractionLog(
        person=log.person,
        item=np.where(later, (log.item + 7) % log.n_items, log.item),
        kind=log.kind,
        at=log.at,
        basket=log.basket,
        quantity=log.quantity,
        price=log.price,
        people=log.people,
        items=log.items,
    )
    second = backtest(
        shuffled,
        origins[:1],
        served=Recorder(),
        served_label="test",
        resamples=0,
        families=SMALL,
        jobs=1,
    )
    assert second.origins[0].notes == first.origins[0].notes
    tuned = first.origins[0].notes["implicit_als"]
    grid = SMALL[1].grid
    assert tuned["all"]["params"] in [dict(g) for g in grid]


def test_pooled_units_are_every_person_at_every_origin() -> None:
    log = shop()
    origins = [midnight(date(2011, 9, 2)), midnight(date(2011, 9, 16))]
    result = backtest(
        log, origins, served=Recorder(), served_label="test", resamples=300, families=SMALL, jobs=1
    )
    assert result.served == "shelfwise-test"
    assert set(result.peers) == {
        "item_knn",
        "implicit_als",
        "ease",
        "popularity",
        "recent_popularity",
        "past_then_popular",
    }
    assert result.origins[0].end == midnight(date(2011, 9, 16))
    for protocol in ("all", "new"):
        pooled = result.find("pooled", protocol, 10, "ndcg", "ease")
        means = [result.find(s, protocol, 10, "ndcg", "ease") for s in result.scopes()[:2]]
        people = [r.people[protocol] for r in result.origins]
        expected = sum(m.model_value.mean * n for m, n in zip(means, people, strict=True)) / sum(
            people
        )
        assert pooled.model_value.mean == pytest.approx(expected)
        assert pooled.ratio.mean == pytest.approx(pooled.model_value.mean / pooled.peer_value.mean)
        assert pooled.ratio.low <= pooled.ratio.mean <= pooled.ratio.high
        assert pooled.delta.low <= pooled.delta.mean <= pooled.delta.high
    # past-then-popular under another name: the same lists, a ratio of exactly 1.
    same = result.find("pooled", "all", 10, "recall", "past_then_popular")
    assert same.ratio.low == same.ratio.high == pytest.approx(1.0)
    assert same.delta.mean == 0.0
    text = markdown(result)
    assert "midnight Europe/London" in text and "2011-09-02 00:00 BST" in text
    # every peer's ratio with its interval, per origin and pooled: past-then-popular is x1
    row = next(line for line in text.splitlines() if line.startswith("| all | past_then_popular |"))
    assert row.count("x1.000 [1.000, 1.000]") == 3  # two origins and pooled
    ease = result.find("2011-09-16", "new", 10, "ndcg", "ease").ratio
    assert f"x{ease.mean:.3f} [{ease.low:.3f}, {ease.high:.3f}]" in text


def test_an_origin_without_room_for_its_windows_is_refused() -> None:
    log = shop(days=60)
    with pytest.raises(InvalidInput) as err:
        backtest(log, [midnight(date(2011, 7, 25))], served=Recorder(), served_label="test")
    assert err.value.code == "backtest_window_outside_data"
    with pytest.raises(InvalidInput) as err:
        backtest(log, [datetime(2011, 6, 20)], served=Recorder(), served_label="test")
    assert err.value.code == "bad_backtest"


def test_a_window_is_fourteen_calendar_days_across_the_clock_change() -> None:
    origin = midnight(date(2011, 10, 21))
    end = midnight(origin.date() + timedelta(days=14))
    assert end.timestamp() - origin.timestamp() == 14 * DAY + 3600  # BST -> GMT on 30 Oct


TIMINGS = {"seconds", "cpu_seconds", "fit_seconds", "recommend_ms", "source_fits", "jobs"}


def untimed(data: Any) -> Any:
    """``data`` without its timings and the memo's counts (which differ run to run)."""
    if isinstance(data, dict):
        return {k: untimed(v) for k, v in data.items() if k not in TIMINGS}
    if isinstance(data, list):
        return [untimed(v) for v in data]
    return data


def test_origins_in_worker_processes_give_the_serial_result() -> None:
    """Two worker processes (the served pipeline with a small learned ranker, tuned peers):
    every figure, choice and note is the one a single process gets."""
    log = shop(days=100, people=40, items=30)
    origins = [midnight(date(2011, 8, 5)), midnight(date(2011, 8, 19))]
    small = RankerTrainingConfig(rounds=20, patience=5, train_windows=2)
    both = small.model_copy(update={"new_item_requests": True})
    served = served_factory(choices=(small,), new_items_choices=(small, both))
    runs = [
        backtest(log, origins, served=served, resamples=50, families=SMALL[2:], jobs=jobs)
        for jobs in (1, 2)
    ]
    serial, parallel = (untimed(r.as_dict()) for r in runs)
    assert (runs[0].notes["jobs"], runs[1].notes["jobs"]) == (1, 2)
    assert serial["served"] == "shelfwise"
    assert parallel == serial
    for origin in runs[1].origins:  # the new-items shelf chose among its own
        scores = origin.notes["new_items[shelfwise]"]["validation_ndcg@10"]
        assert set(scores) == {
            "blend",
            "ranker(windows=2, leaves=63)",
            "ranker(windows=2, leaves=63, new-item requests)",
        }
    assert runs[1].cpu_seconds > 0  # the workers' CPU counts


def test_the_latest_origins_go_to_the_workers_first() -> None:
    assert largest_first(4) == [3, 2, 1, 0]
    assert largest_first(1) == [0]


def test_ease_scores_people_in_batches_as_it_scores_one() -> None:
    """EASE's lists come from one matrix product per batch: each is the top of the rows of B
    summed over the person's history, without the excluded items."""
    log = shop(days=60, people=300, items=40)
    model = EASE(regularization=10.0)
    model.fit(log)
    people = list(range(log.n_people))
    excludes = [np.array([p % 40], dtype=np.int64) for p in people]
    batched = model.recommend_many(people, 5, excludes)
    for p in (0, 1, 255, 256, 299):
        scores = model.b.astype(np.float64)[model.x[p].indices].sum(axis=0)
        scores[excludes[p]] = -np.inf
        assert batched[p].tolist() == np.argsort(-scores, kind="stable")[:5].tolist()
        assert model.recommend(p, 5, excludes[p]).tolist() == batched[p].tolist()
