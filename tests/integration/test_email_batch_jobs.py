"""An email batch on several worker processes: the same slates as in one process, in the
segment's order, every decision logged once under an id of its own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from shelfwise.config import load_settings
from shelfwise.pipeline import batch
from shelfwise.pipeline.batch import email_lines, segment_people
from shelfwise.ranking import RankingSettings
from shelfwise.runtime import Runtime
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
