"""The exposure cap end to end: calibrated when the bundle is trained, on what the
served path values, applied by ``Recommender.recommend``, and named in the trace
(on every backend)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from shelfwise.config import Settings
from shelfwise.pipeline import Pipeline, RecommendRequest
from shelfwise.pipeline.exposure import CLOCKS, anchor_slates
from shelfwise.pipeline.learned import LearnedRank
from shelfwise.ranking import RankingSettings
from shelfwise.ranking.exposure import AnchorCandidates, ExposureFloors
from shelfwise.rules import Rulebook
from shelfwise.rules.model import parse_rule
from shelfwise.rules.store import RuleStore
from shelfwise.runtime import Runtime
from shelfwise.training.job import TrainResult, train
from tests import shop_fixture

CAP = 0.1
K = 2
# The placement's own depth, under the ranker's training depth (100): the calibration
# must ask the chain as serving asks it, or its margins are another slate's.
DEPTH = 4


def _placements(tmp: Path, name: str, uncapped: str, cap: float, **update: Any) -> Path:
    """The packaged placements, with placement ``name`` changed by ``update`` and capped
    at ``cap``, and the same placement without a cap (``uncapped``) to show what the cap
    changes."""
    raw: dict[str, Any] = yaml.safe_load(
        resources.files("shelfwise.serving").joinpath("placements.yaml").read_text()
    )
    capped = next(p for p in raw["placements"] if p["name"] == name)
    capped.update(update)
    capped["objective"]["exposure_cap"] = cap
    plain = {**capped, "name": uncapped, "objective": dict(capped["objective"])}
    del plain["objective"]["exposure_cap"]
    raw["placements"].append(plain)
    path = tmp / "placements.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _shares(
    rt: Runtime, placement: str, anchors: list[str], now: datetime
) -> tuple[Counter[str], list[Any]]:
    counts: Counter[str] = Counter()
    traces = []
    for pid in anchors:
        got = rt.recommender.recommend(
            RecommendRequest(placement=placement, item=(pid,), k=K, explain=True),
            now,
            record=False,
        )
        counts.update(it["product_id"] for it in got["items"])
        traces.append(got["trace"]["ranker"])
    return counts, traces


def _capped(settings: Settings, placements: Path) -> Settings:
    """``settings`` with ``placements``, no exploration."""
    return settings.model_copy(
        update={
            "placements_file": placements,
            "ranking": RankingSettings(compile_model=False, explore_share=0.0),
        }
    )


def _similar_capped(settings: Settings, tmp: Path) -> Settings:
    """``product_similar`` at k 2, its chain at a depth of 4 and a cap, and the same
    placement without one (``similar_uncapped``)."""
    placements = _placements(
        tmp, "product_similar", "similar_uncapped", CAP, k=K, depth=DEPTH, max_candidates=DEPTH
    )
    return _capped(settings, placements)


@contextmanager
def _trained(settings: Settings) -> Iterator[tuple[Runtime, TrainResult]]:
    """The shop trained with its ranker and its bundle served (closed after)."""
    rt = Runtime.open(settings)
    try:
        shop_fixture.fill(rt)
        result = train(rt, force=True, with_ranker=True)
        rt.load_bundle()
        yield rt, result
    finally:
        rt.close()


def test_the_cap_keeps_every_item_within_its_share(settings: Settings, tmp_path: Path) -> None:
    settings = _similar_capped(settings, tmp_path)
    with _trained(settings) as (rt, result):
        assert (result.bundle.path / "exposure" / "product_similar.json").is_file()
        assert not (result.bundle.path / "exposure" / "similar_uncapped.json").exists()
        assert result.bundle.info.timings["exposure product_similar"] > 0
        anchors = [p.product_id for p in rt.snapshot.products if p is not None and p.is_available]
        limit = int(CAP * len(anchors))
        trained = result.bundle.info.window_end  # the calibration's clock

        plain, plain_traces = _shares(rt, "similar_uncapped", anchors, trained)
        capped, traces = _shares(rt, "product_similar", anchors, trained)
        later, _ = _shares(rt, "product_similar", anchors, trained + timedelta(days=1))
        valued = _calibration_slates(rt, settings, "similar_uncapped", trained)
    # without the cap one item takes more than its share; with it none does, at the
    # calibration's clock; a day later (features read another clock) within one slate
    assert max(plain.values()) > limit
    assert max(capped.values()) <= limit, capped.most_common(3)
    assert max(later.values()) <= limit + 1, later.most_common(3)
    assert sum(capped.values()) == sum(plain.values())  # demoted, not removed: slates stay full
    assert all("exposure" not in t for t in plain_traces)
    demoted = [d for t in traces for d in t["exposure"]["demoted"]]
    assert demoted and all(t["exposure"]["cap"] == CAP for t in traces)
    assert {d["action"] for d in demoted} == {"demoted"}
    # (a floor sits just above one slot's margin: the two may round alike to six digits)
    assert all(d["margin"] <= d["floor"] for d in demoted), demoted
    # the calibration values exactly what serving ranks: the same candidates, the same
    # expected values (the trace's probability x value, rounded to six digits)
    assert len(valued) == len(anchors) == len(plain_traces)
    for (items, expected, *_), t in zip(valued, plain_traces, strict=True):
        served = t["items"][:K]
        assert [it["product_id"] for it in served] == [rt.snapshot.ids[i] for i in items[:K]]
        for it, e in zip(served, expected[:K], strict=True):
            assert it["probability"] * it["value"] == pytest.approx(e, rel=1e-4, abs=1e-6)
    # what the trace says was demoted is the uncapped slate's top item, out of the slate
    top = plain.most_common(1)[0][0]
    assert top in {d["product_id"] for d in demoted}
    for t in traces:
        served = {it["product_id"] for it in t["items"][:K]}
        assert not served & {d["product_id"] for d in t["exposure"]["demoted"]}


def test_the_clocks_share_what_does_not_read_the_clock(settings: Settings, tmp_path: Path) -> None:
    """Each anchor's candidates, rules and variant groups are computed once for the
    clocks whose month and open rule windows are alike, and its clocks valued in one
    call of the model: the very slates of every clock computed on its own, also when a
    rule's window opens between the clocks."""
    settings = _similar_capped(settings, tmp_path)
    rt = Runtime.open(settings)
    try:
        shop_fixture.fill(rt)
        trained = train(rt, force=True, with_ranker=True).bundle.info.window_end
        rt.load_bundle()
        later = {
            "id": "no-kitchenco-later",
            "type": "suppress",
            "reason": "supplier dispute",
            "values": ["Kitchenco"],
            "window": {"start": (trained + timedelta(hours=12)).isoformat()},
        }
        rt.rules.store.save(parse_rule(later), who="test", why="dispute")
        shared = _calibration_slates(rt, settings, "similar_uncapped", trained, CLOCKS)
        alone = _calibration_slates(rt, settings, "similar_uncapped", trained, CLOCKS, False)
        kitchen = {i for i, p in enumerate(rt.snapshot.products) if p and p.brand == "Kitchenco"}
    finally:
        rt.close()
    assert [s.clock for s in shared] == [s.clock for s in alone]
    assert {s.clock for s in shared} == {0, 1, 2, 3}
    for a, b in zip(shared, alone, strict=True):
        assert a.items.tolist() == b.items.tolist()
        assert a.expected.tolist() == b.expected.tolist()  # exactly: the same model call
        assert (a.groups is None) == (b.groups is None)
        assert a.groups is None or a.groups.tolist() == b.groups.tolist()
    # the window opens between the clocks: kitchenco items are candidates at 0 and 8
    # hours after training, and none from 16 hours on (the rules read every clock)
    offered = {n: {i for s in shared if s.clock == n for i in s.items.tolist()} for n in range(4)}
    assert offered[0] & kitchen and offered[1] & kitchen
    assert not offered[2] & kitchen and not offered[3] & kitchen
    # (Whether the clocks move the values depends on the trained model: its features
    # read an item's age, but a model trained on this small shop may not split on it.
    # tests/unit/test_ranking_ranker.py values one request at several clocks.)


def _calibration_slates(
    rt: Runtime,
    settings: Settings,
    placement: str,
    now: datetime,
    clocks: Sequence[timedelta] = (timedelta(0),),
    reuse: bool = True,
) -> list[AnchorCandidates]:
    """Every anchor's candidates as the bundle's calibration values them
    (``training.job.exposure_floors``), for the served bundle and rules."""
    rec = rt.recommender
    view = rec.bundle_view()
    assert view is not None
    p = rec.placements.get(placement)
    ranker = rec.learned.of(view, p.ranker)
    assert ranker is not None
    rank = LearnedRank(
        ranker, rec.learned.objective(p), bucket=settings.ranking.time_bucket_seconds
    )
    version, rules = RuleStore(rt.db).snapshot()
    book = Rulebook(list(rules), rt.snapshot, version=version)
    pipeline = Pipeline.offline(rt.snapshot, view, book, rank)
    return anchor_slates(pipeline, rank, p, K, now, clocks=clocks, reuse=reuse)


HOME_CAP = 0.15
HOME_K = 4


def _home_capped(settings: Settings, tmp: Path) -> Settings:
    """``home`` at k 4 and a cap, and the same placement without one (``home_uncapped``)."""
    return _capped(settings, _placements(tmp, "home", "home_uncapped", HOME_CAP, k=HOME_K))


def test_the_home_cap_is_calibrated_over_people(settings: Settings, tmp_path: Path) -> None:
    """Home has no viewed product: its cap is calibrated over the people the bundle
    knows, and the served home slates of those people keep every item within it."""
    settings = _home_capped(settings, tmp_path)
    with _trained(settings) as (rt, result):
        floors = ExposureFloors.load(result.bundle.path / "exposure", "home")
        assert not (result.bundle.path / "exposure" / "home_uncapped.json").exists()
        view = rt.recommender.bundle_view()
        assert view is not None
        people = list(view.bundle.artifacts.history.people)
        trained = result.bundle.info.window_end

        def shares(placement: str) -> tuple[Counter[str], list[Any]]:
            counts: Counter[str] = Counter()
            traces = []
            for person in people:
                got = rt.recommender.recommend(
                    RecommendRequest(placement=placement, person=person, explain=True),
                    trained,
                    record=False,
                )
                assert got["trace"]["ranker"]["kind"] == "learned"
                counts.update(it["product_id"] for it in got["items"])
                traces.append(got["trace"]["ranker"])
            return counts, traces

        plain, _ = shares("home_uncapped")
        capped, traces = shares("home")
    # the floors: one per item over its share, calibrated over every known person
    assert floors is not None and floors.floors
    assert (floors.cap, floors.k, floors.anchors) == (HOME_CAP, HOME_K, len(people))
    limit = int(HOME_CAP * len(people))
    assert max(plain.values()) > limit, plain.most_common(3)
    assert max(capped.values()) <= limit, capped.most_common(3)
    assert sum(capped.values()) == sum(plain.values())  # demoted, not removed
    demoted = {d["product_id"] for t in traces for d in t["exposure"]["demoted"]}
    assert plain.most_common(1)[0][0] in demoted
