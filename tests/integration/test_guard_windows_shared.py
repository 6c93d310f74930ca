"""The promotion guard hands its home-ranker windows to the bundle's ranker.

The guard's served pipeline is refitted on the events before its window, which
ends where the bundle's "now" does, so its ranker's decision times are the
bundle's, one window earlier. The training builds the seven (the bundle's six and
the guard's one more) in one map before either trains. Built apart, the windows
they share are the same rows, features, labels and weights (logged slates
included: a slate's labels count the responses before its window's end, however
late the training read them, and the guard's slates are those of the one read
before its window); built once and shared, the bundle is the same.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shelfwise.config import load_settings
from shelfwise.contracts.events import Purchase, RecClick, RecImpression, ShownItem
from shelfwise.contracts.eventstore import EventStore
from shelfwise.ranking import RankingSettings, training
from shelfwise.ranking.dataset import TrainingSet
from shelfwise.ranking.impressions import Impression, impressions_before, read_impressions
from shelfwise.ranking.state import DAY
from shelfwise.ranking.training import RankerTrainingConfig, WindowMemo
from shelfwise.runtime import Runtime
from shelfwise.training import job
from shelfwise.training.job import TrainResult, train
from tests import shop_fixture

LATE = timedelta(days=10)  # a response read long after its slate: past its window's end


def slates() -> list[RecImpression | RecClick]:
    """A home slate before every order of the shop's history, clicked within minutes;
    every third one clicked again on another product ten days later (within the history)."""
    rng = random.Random(5)
    ids = [p.product_id for p in shop_fixture.products()]
    out: list[RecImpression | RecClick] = []
    for e in shop_fixture.events():
        if not isinstance(e, Purchase):
            continue
        bought = [line.product_id for line in e.lines]
        shown = [*bought, *rng.sample([i for i in ids if i not in bought], 2)]
        at = e.occurred_at - timedelta(minutes=30)
        who = {"anonymous_id": e.anonymous_id, "customer_id": e.customer_id}
        rec = f"r-{e.order_id}"
        out.append(
            RecImpression(
                event_id=f"i-{e.order_id}", occurred_at=at, rec_id=rec, placement="home",
                items=tuple(ShownItem(product_id=p, position=n + 1) for n, p in enumerate(shown)),
                **who,
            )
        )  # fmt: skip
        out.append(
            RecClick(
                event_id=f"c-{e.order_id}", occurred_at=at + timedelta(minutes=2), rec_id=rec,
                placement="home", product_id=bought[0], **who,
            )
        )  # fmt: skip
        if len(out) % 3 == 0 and at + LATE < shop_fixture.START + timedelta(days=55):
            out.append(
                RecClick(
                    event_id=f"l-{e.order_id}", occurred_at=at + LATE, rec_id=rec,
                    placement="home", product_id=shown[-1], **who,
                )
            )  # fmt: skip
    return out


def trained_with_slates(folder: Path, jobs: int | None = None) -> TrainResult:
    """The shop with its logged slates, trained with the learned ranker in ``folder``."""
    folder.mkdir()
    settings = load_settings(
        database_url=f"sqlite:///{folder / 'shelfwise.db'}", model_dir=folder / "models"
    ).model_copy(update={"ranking": RankingSettings(compile_model=False, explore_share=0.0)})
    runtime = Runtime.open(settings)
    try:
        shop_fixture.fill(runtime)
        EventStore(runtime.db).append(slates())
        return train(runtime, force=True, with_ranker=True, jobs=jobs)
    finally:
        runtime.close()


def _trained(folder: Path, monkeypatch: pytest.MonkeyPatch, memo: type[WindowMemo]) -> TrainResult:
    monkeypatch.setattr(job, "WindowMemo", memo)
    return trained_with_slates(folder)


def _same(a: TrainingSet, b: TrainingSet) -> bool:
    return (
        np.array_equal(a.x, b.x, equal_nan=True)
        and np.array_equal(a.y, b.y)
        and np.array_equal(a.groups, b.groups)
        and np.array_equal(a.items, b.items)
        and a.persons == b.persons
        and np.array_equal(a.row_weights(), b.row_weights())
    )


def _same_impression(a: Impression, b: Impression) -> bool:
    return (
        (a.rec_id, a.person, a.at, a.placement, a.responses)
        == (b.rec_id, b.person, b.at, b.placement, b.responses)
        and np.array_equal(a.items, b.items)
        and np.array_equal(a.labels, b.labels)
        and np.array_equal(a.propensity, b.propensity)
    )


def test_the_guard_hands_its_ranker_windows_to_the_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[tuple[tuple[Any, ...], TrainingSet]] = []

    class Apart(WindowMemo):  # keeps nothing: each training builds its own windows
        def get(self, key: tuple[Any, ...]) -> TrainingSet | None:
            return None

        def put(self, key: tuple[Any, ...], made: TrainingSet) -> None:
            built.append((key, made))

    apart = _trained(tmp_path / "apart", monkeypatch, Apart)
    by_key: dict[tuple[Any, ...], list[TrainingSet]] = defaultdict(list)
    for key, made in built:
        by_key[key].append(made)
    windows = RankerTrainingConfig().train_windows
    # the seven built first (the bundle's six, the guard's one more), then the guard's
    # six and the bundle's six again, five of them the same decision times
    assert len(built) == (windows + 2) + 2 * (windows + 1)
    assert sorted(len(made) for made in by_key.values()) == [2, 2] + [3] * windows
    assert all(all(_same(made[0], m) for m in made[1:]) for made in by_key.values())
    thrice = {key: made for key, made in by_key.items() if len(made) == 3}
    latest = max(thrice, key=lambda k: k[0])
    assert thrice[latest][0].positives > 0 and len(thrice[latest][0].groups) > 10

    # the fixture does what the sharing must survive: a slate served in a shared window
    # whose response the bundle reads and the guard does not (it came after the guard's
    # window began)
    runtime = Runtime.open(
        load_settings(database_url=f"sqlite:///{tmp_path / 'apart' / 'shelfwise.db'}")
    )
    try:
        ids = list(runtime.snapshot.ids)
        end = apart.bundle.info.window_end
        assert end is not None
        cutoff = end - timedelta(days=14)
        read = read_impressions(runtime.db, ids, end=end + timedelta(seconds=1))
        full = {i.rec_id: i for i in read}
        early = {i.rec_id: i for i in read_impressions(runtime.db, ids, end=cutoff)}
    finally:
        runtime.close()
    # one read serves both: the slates before the guard's window as read up to it
    cut = impressions_before(read, cutoff.timestamp())
    assert [i.rec_id for i in cut] == list(early)
    assert all(_same_impression(i, early[i.rec_id]) for i in cut)
    assert sum(i.responses != full[i.rec_id].responses for i in cut) > 10
    start = latest[0]
    assert any(
        start <= imp.at < start + 14 * DAY and not np.array_equal(imp.labels, early[rec].labels)
        for rec, imp in full.items()
        if rec in early
    )

    kept: list[WindowMemo] = []

    class Shared(WindowMemo):
        def __init__(self, keep: int = 8) -> None:
            super().__init__(keep)
            kept.append(self)

    shared = _trained(tmp_path / "shared", monkeypatch, Shared)
    (memo,) = kept
    # seven built first; the guard and the bundle find their six there
    assert memo.misses == windows + 2 and memo.hits == 2 * (windows + 1)
    assert memo.memo == {}  # let go once the bundle's home ranker is trained
    assert shared.bundle.info.metrics == apart.bundle.info.metrics
    assert shared.guard.as_dict() == apart.guard.as_dict()

    # A guard whose keys differ from the bundle's (as when an unpriced product's median
    # price moves in the guard's window) builds its own six; the seven built first stay
    # for the bundle, which builds none, and the bundle is the same.
    real = training._window_key

    def by_log(log: Any, *args: Any) -> tuple[Any, ...]:
        return (*real(log, *args), len(log))  # the guard's log is cut at its window

    monkeypatch.setattr(training, "_window_key", by_log)
    kept.clear()
    missed = _trained(tmp_path / "missed", monkeypatch, Shared)
    (memo,) = kept
    assert memo.misses == (windows + 2) + (windows + 1) and memo.hits == windows + 1
    assert missed.bundle.info.metrics == apart.bundle.info.metrics
    assert missed.guard.as_dict() == apart.guard.as_dict()


def test_a_full_memo_keeps_the_windows_nobody_has_read_yet() -> None:
    memo = WindowMemo(keep=2)
    a, b, c = TrainingSet.concat([], 3), TrainingSet.concat([], 3), TrainingSet.concat([], 3)
    memo.put((10, "a"), a)
    memo.put((20, "b"), b)
    memo.put((5, "c"), c)  # both still wait for a reader: not kept
    assert set(memo.memo) == {(10, "a"), (20, "b")}
    assert memo.get((20, "b")) is b
    memo.put((5, "c"), c)  # the read one goes, though (10, "a") is earlier
    assert set(memo.memo) == {(10, "a"), (5, "c")}
    assert memo.get((10, "a")) is a and memo.get((5, "c")) is c
    memo.put((30, "d"), a)  # both read: the earliest decision time goes
    assert set(memo.memo) == {(10, "a"), (30, "d")}
