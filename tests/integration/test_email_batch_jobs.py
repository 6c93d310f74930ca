"""An email batch on several worker processes: the same slates as in one process, in the
segment's order, every decision logged once under an id of its own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from shelfwise.config import Settings, load_settings
from shelfwise.pipeline import RecommendRequest, batch
from shelfwise.pipeline.batch import email_lines, segment_people
from shelfwise.pipeline.flow import Pipeline, Run
from shelfwise.pipeline.recommender import RecIds
from shelfwise.pipeline.slate import Slate
from shelfwise.ranking import RankingSettings
from shelfwise.runtime import Runtime
from shelfwise.serving.session import SessionRecord
from shelfwise.training.job import train
from tests import shop_fixture

NOW = datetime(2024, 3, 5, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shop with a trained bundle and its learned ranker (the batch's real path)."""
    tmp = tmp_path_factory.mktemp("email_jobs")
    rt = Runtime.open(_settings(tmp))
    try:
        shop_fixture.fill(rt)
        train(rt, force=True, with_ranker=True)
    finally:
        rt.close()
    return tmp


def _settings(tmp: Path, db: str = "shelfwise.db"):  # type: ignore[no-untyped-def]
    return load_settings(
        database_url=f"sqlite:///{tmp / db}",
        model_dir=tmp / "models",
        decision_trace="full",
        # no exploration: the slates of two runs are the same (draws follow each slate id)
        ranking=RankingSettings(compile_model=False, explore_share=0.0),
    )


@pytest.fixture
def runtime(folder: Path, tmp_path: Path) -> Iterator[Runtime]:
    """A fresh process's view of the shop: nothing kept from another test's slates."""
    (tmp_path / "shelfwise.db").write_bytes((folder / "shelfwise.db").read_bytes())
    settings = _settings(tmp_path).model_copy(update={"model_dir": folder / "models"})
    rt = Runtime.open(settings)
    rt.load_bundle()
    yield rt
    rt.close()


def _run(rt: Runtime, jobs: int) -> list[dict]:  # type: ignore[type-arg]
    people = segment_people(rt.db, "active:90", NOW)
    done: list[int] = []
    lines = email_lines(rt.recommender, rt.db, people, NOW, jobs=jobs, on_progress=done.append)
    got = [orjson.loads(line) for line in lines]
    assert [s["person"] for s in got] == people
    return got


def test_the_batch_on_two_workers_serves_and_logs_what_one_process_does(
    runtime: Runtime, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "CHUNK", 5)  # 48 people: the first chunk here, 9 on two workers
    parallel = _run(runtime, jobs=2)
    assert len(parallel) == 48
    assert {s["mode"] for s in parallel} == {"model"}
    # every slate logged once, under its own id, with what was served
    runtime.decisions.flush()
    ids = [s["rec_id"] for s in parallel]
    assert len(set(ids)) == 48
    logged = {d.rec_id: d for d in runtime.decisions.recent(placement="email", limit=100)}
    assert set(logged) == set(ids)
    for s in parallel:
        d = logged[s["rec_id"]]
        assert d.person_id == s["person"] or d.request["person"] == s["person"]
        assert [i["product_id"] for i in d.items] == [i["product_id"] for i in s["items"]]
        assert d.trace is not None and d.trace["ranker"]["kind"] == "learned"
    # the same slates, in the same order, from one process with nothing kept
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "shelfwise.db").write_bytes((folder / "shelfwise.db").read_bytes())
    settings = _settings(tmp_path / "one").model_copy(update={"model_dir": folder / "models"})
    one_rt = Runtime.open(settings)
    try:
        one_rt.load_bundle()
        one = _run(one_rt, jobs=1)
    finally:
        one_rt.close()

    def slates(got: list[dict]) -> list[tuple[str, list[str]]]:  # type: ignore[type-arg]
        return [(s["person"], [i["product_id"] for i in s["items"]]) for s in got]

    assert slates(parallel) == slates(one)


def test_a_batch_serves_each_person_the_slate_a_request_alone_would_get(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``recommend_many`` (the batch's stage-by-stage run, exploration on) serves, under
    the same slate ids, exactly the slates of one ``recommend`` per person; ids without
    a history share one context: the batch computes it once, the others wait for it."""
    (tmp_path / "shelfwise.db").write_bytes((folder / "shelfwise.db").read_bytes())
    settings = _settings(tmp_path).model_copy(
        update={
            "model_dir": folder / "models",
            "ranking": RankingSettings(compile_model=False, explore_share=0.3),
        }
    )
    people = [*segment_people_of(settings), *(f"stranger-{n}" for n in range(6))]
    batches: list[int] = []
    many_of = Pipeline.run_many

    def spy(self: Pipeline, runs: list[Run]) -> list[Slate]:
        batches.append(len(runs))
        return many_of(self, runs)

    def served(batch: bool) -> list[dict]:  # type: ignore[type-arg]
        rt = Runtime.open(settings)  # a fresh process's view: nothing kept
        try:
            rt.load_bundle()
            rec = rt.recommender
            rec.rec_ids = RecIds(tag="batch", clock=lambda: 1)
            history = batch_histories(rt, people)
            reqs = [RecommendRequest(placement="email", person=p) for p in people]
            if batch:
                t = time.perf_counter()
                got = rec.recommend_many(reqs, NOW, [history.get(p, []) for p in people])
                took = time.perf_counter() - t
                # each computed slate's latency is its share of the run, not the whole run
                samples = {
                    x.name.rsplit("_", 1)[-1]: x.value
                    for m in rt.metrics.latency.collect()
                    for x in m.samples
                    if x.labels.get("placement") == "email" and not x.name.endswith("_bucket")
                }
                assert samples["count"] == len(people)
                assert samples["sum"] < 2 * took
                return got
            return [
                rec.recommend(q, NOW, records=history.get(p, []))
                for q, p in zip(reqs, people, strict=True)
            ]
        finally:
            rt.close()

    alone = served(batch=False)
    monkeypatch.setattr(Pipeline, "run_many", spy)
    together = served(batch=True)
    assert together == alone
    assert len({s["rec_id"] for s in together}) == len(people)
    assert any(s["items"][n].get("explored") for s in together for n in range(len(s["items"])))
    # the strangers' one context computed once in the batch; the others were served after
    assert 48 <= batches[0] <= len(people) - 5


def segment_people_of(settings: Settings) -> list[str]:
    rt = Runtime.open(settings)
    try:
        return segment_people(rt.db, "active:90", NOW)
    finally:
        rt.close()


def batch_histories(rt: Runtime, people: list[str]) -> dict[str, list[SessionRecord]]:
    return batch.histories(rt.db, people, NOW, rt.settings.session_max_events)
