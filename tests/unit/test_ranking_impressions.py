"""Training groups from logged impressions: one group per served slate, labels graded by the
responses that carry its rec_id, inverse-propensity weights for explored slots."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shelfwise.candidates.config import SourcesConfig
from shelfwise.candidates.model import fit_all
from shelfwise.catalog.model import Product
from shelfwise.config import load_settings
from shelfwise.ranking.features import FeatureSpec
from shelfwise.ranking.history import from_interactions
from shelfwise.ranking.impressions import (
    LoggedRow,
    build_impression_set,
    impressions_before,
    impressions_of,
    read_impressions,
)
from shelfwise.ranking.state import DAY, RankingState
from shelfwise.ranking.training import (
    RANKED_SOURCES,
    RankerTrainingConfig,
    build_windows,
    item_columns,
    propose_all,
)
from shelfwise.runtime import Runtime
from shelfwise.simulate import SimulationSpec, simulate
from shelfwise.store.tables import decisions
from shelfwise.training.reader import read_log

ITEMS = ("a", "b", "c", "d")


def row(rec: str, typ: str, pid: str, at: float = 100.0, pos: int | None = None) -> LoggedRow:
    return LoggedRow(rec, typ, "p1", pid, at, pos, "home")


def test_labels_are_the_best_attributed_response_per_shown_product() -> None:
    rows = [
        row("r1", "rec_impression", "c", pos=2),
        row("r1", "rec_impression", "a", pos=1),
        row("r1", "rec_impression", "b", pos=3),
        row("r1", "rec_impression", "zz", pos=4),  # not in the catalog: dropped
        row("r1", "rec_click", "a", 101),
        row("r1", "add_to_cart", "a", 102),
        row("r1", "rec_click", "b", 103),
        row("r1", "purchase", "c", 104),
        row("r1", "purchase", "d", 105),  # not shown in r1: says nothing about it
        row("r2", "rec_click", "a", 90),  # no impression for r2
    ]
    (imp,) = impressions_of(rows, ITEMS, {"r1": {"b": 0.25}})
    assert imp.rec_id == "r1" and imp.person == "p1" and imp.at == 100
    assert imp.items.tolist() == [0, 2, 1]  # position order: a, c, b
    assert imp.labels.tolist() == [2, 3, 1]
    assert imp.propensity.tolist() == [1.0, 1.0, 0.25]
    assert imp.weights.tolist() == [1.0, 1.0, 4.0]
    # cut at a time, only the responses before it count (a window's end)
    assert imp.labels_before(102).tolist() == [1, 0, 0]
    assert imp.labels_before(104).tolist() == [2, 0, 1]
    assert imp.labels_before(105).tolist() == imp.labels.tolist() == [2, 3, 1]
    assert imp.labels_before(100).tolist() == [0, 0, 0]


def test_the_slates_before_a_time_are_those_a_read_up_to_it_gives() -> None:
    rows = [
        row("r1", "rec_impression", "a", 100, pos=1),
        row("r1", "rec_impression", "b", 100, pos=2),
        row("r1", "rec_click", "a", 150),
        row("r1", "purchase", "b", 200),  # at the cut: after it, as a read up to 200 has it
        row("r1", "rec_click", "b", 250),
        row("r2", "rec_impression", "c", 199, pos=1),
        row("r2", "add_to_cart", "c", 199.5),
        row("r3", "rec_impression", "a", 200, pos=1),  # shown at the cut: not before it
        row("r3", "rec_click", "a", 201),
    ]
    every = impressions_of(rows, ITEMS, {"r1": {"b": 0.5}})
    for end in (100, 150, 199, 200, 260):
        read = impressions_of([r for r in rows if r.at < end], ITEMS, {"r1": {"b": 0.5}})
        cut = impressions_before(every, end)
        assert [i.rec_id for i in cut] == [i.rec_id for i in read], end
        for a, b in zip(cut, read, strict=True):
            assert (a.person, a.at, a.placement, a.responses) == (
                b.person, b.at, b.placement, b.responses
            )  # fmt: skip
            assert a.items.tolist() == b.items.tolist()
            assert a.labels.tolist() == b.labels.tolist()
            assert a.propensity.tolist() == b.propensity.tolist()
    assert [i.labels.tolist() for i in impressions_before(every, 200)] == [[1, 0], [2]]


def test_an_impression_without_known_products_is_skipped() -> None:
    assert impressions_of([row("r1", "rec_impression", "zz", pos=1)], ITEMS) == []


SPEC = SimulationSpec(seed=3, products=120, people=1_200, days=8)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A simulated store whose incumbent recommender served slates; events in SQLite."""
    sim = simulate(SPEC)
    folder: Path = tmp_path_factory.mktemp("imp")
    runtime = Runtime.open(load_settings(database_url=f"sqlite:///{folder / 'db.sqlite'}"))
    runtime.catalog.upsert([Product.model_validate(r) for r in sim.world.catalog.records])
    report = runtime.ingestor.ingest(sim.events)
    assert report.counts()["accepted"] == len(sim.events)
    runtime.snapshot.load()
    yield sim, runtime
    runtime.close()


def expected_from_events(events: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """rec_id -> {shown product: best grade}, straight from the simulator's events."""
    shown: dict[str, dict[str, int]] = {}
    responses: dict[str, dict[str, int]] = defaultdict(dict)

    def note(rec: str | None, pid: str, grade: int) -> None:
        if rec:
            responses[rec][pid] = max(responses[rec].get(pid, 0), grade)

    for e in events:
        if e["type"] == "rec_impression":
            shown[e["rec_id"]] = {i["product_id"]: 0 for i in e["items"]}
        elif e["type"] in ("rec_click", "product_view"):
            note(e.get("rec_id"), e["product_id"], 1)
        elif e["type"] == "add_to_cart":
            note(e.get("rec_id"), e["product_id"], 2)
        elif e["type"] == "purchase":
            for line in e["lines"]:
                note(line.get("rec_id"), line["product_id"], 3)
    return {rec: {pid: responses[rec].get(pid, 0) for pid in items} for rec, items in shown.items()}


def test_read_impressions_matches_the_simulated_slates(store: Any) -> None:
    sim, runtime = store
    ids = list(runtime.snapshot.ids)
    expected = expected_from_events(sim.events)
    got = read_impressions(runtime.db, ids)
    assert len(got) == len(expected) > 50
    for imp in got:
        labels = {ids[i]: int(g) for i, g in zip(imp.items, imp.labels, strict=True)}
        assert labels == expected[imp.rec_id]
    grades = np.concatenate([imp.labels for imp in got])
    assert (grades == 1).any() and (grades == 3).any()  # clicks and orders came back
    assert all((imp.propensity == 1.0).all() for imp in got)  # no decision log: exploited


def test_logged_propensities_become_inverse_weights(store: Any) -> None:
    sim, runtime = store
    ids = list(runtime.snapshot.ids)
    first = next(e for e in sim.events if e["type"] == "rec_impression")
    explored = first["items"][-1]["product_id"]
    with runtime.db.engine.begin() as conn:
        conn.execute(
            decisions.insert().values(
                rec_id=first["rec_id"],
                served_at=datetime.now(UTC),
                placement=first["placement"],
                mode="model",
                request={},
                items=[
                    {
                        "product_id": i["product_id"],
                        "propensity": 0.2 if i["product_id"] == explored else 1.0,
                    }
                    for i in first["items"]
                ],
            )
        )
    imp = next(i for i in read_impressions(runtime.db, ids) if i.rec_id == first["rec_id"])
    weights = {ids[i]: w for i, w in zip(imp.items, imp.weights, strict=True)}
    assert weights[explored] == pytest.approx(5.0)
    assert all(w == 1.0 for pid, w in weights.items() if pid != explored)


def test_the_training_set_holds_one_group_per_answered_slate(store: Any) -> None:
    """Impressions served in a window become groups of that window, with their labels."""
    _sim, runtime = store
    ids = list(runtime.snapshot.ids)
    log = read_log(runtime.db, items=ids)
    impressions = read_impressions(runtime.db, ids)
    artifacts = fit_all(log, list(runtime.snapshot.products), SourcesConfig())
    items = item_columns(artifacts, list(runtime.snapshot.products), log.item_prices())
    end = int(log.end) + 1
    start = end - 4 * DAY
    history = from_interactions(log)
    state = RankingState.fit(from_interactions(log), items, start)
    spec = FeatureSpec.of(RANKED_SOURCES)
    got = build_impression_set(
        impressions, history, items, state, spec, propose_all(artifacts, 20), start, end
    )
    answered = [i for i in impressions if start <= i.at < end and i.labels.any()]
    assert len(got.groups) == len(answered) > 10
    assert got.groups.tolist() == [len(i.items) for i in answered]
    assert got.y.tolist() == np.concatenate([i.labels for i in answered]).tolist()
    assert got.items.tolist() == np.concatenate([i.items for i in answered]).tolist()
    assert got.persons == [i.person for i in answered]
    assert got.x.shape == (len(got.y), len(spec.names))
    assert got.weights is not None and (got.weights == 1.0).all()
    # at most ``limit`` of the window's slates, drawn evenly and the same each time;
    # each drawn slate's rows are those the whole window made for it
    some = [build_impression_set(
        impressions, history, items, state, spec, propose_all(artifacts, 20), start, end,
        limit=7,
    ) for _ in range(2)]  # fmt: skip
    assert len(some[0].groups) == 7 and some[0].persons == some[1].persons
    np.testing.assert_array_equal(some[0].x, some[1].x)

    def slates(made: Any) -> list[tuple[str, tuple[int, ...], Any]]:
        cut = np.cumsum(made.groups)[:-1]
        return [
            (person, tuple(its.tolist()), x)
            for person, its, x in zip(
                made.persons, np.split(made.items, cut), np.split(made.x, cut), strict=True
            )
        ]

    whole: dict[tuple[str, tuple[int, ...]], list[Any]] = {}
    for person, its, x in slates(got):  # a person may be shown the same slate twice
        whole.setdefault((person, its), []).append(x)
    picked = slates(some[0])
    for person, its, x in picked:
        assert any(np.array_equal(x, w, equal_nan=True) for w in whole[(person, its)])
    assert [k[:2] for k in picked] != [k[:2] for k in slates(got)[:7]]  # not the first seven

    cfg = RankerTrainingConfig(horizon_days=4.0, train_windows=1, depth=20)
    plain = build_windows(log, list(runtime.snapshot.products), items, SourcesConfig(), end, cfg)
    mixed = build_windows(
        log,
        list(runtime.snapshot.products),
        items,
        SourcesConfig(),
        end,
        cfg,
        impressions=impressions,
    )
    assert len(mixed[False][0].groups) == len(plain[False][0].groups) + len(answered)
    assert mixed[False][0].y[-len(got.y) :].tolist() == got.y.tolist()
