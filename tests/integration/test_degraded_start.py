"""What a worker reads at start for degraded mode: the store's popularity only when it
will serve without a model bundle (``pipeline.assembly.DegradedBlend``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shelfwise.config import Settings
from shelfwise.contracts.events import ProductView
from shelfwise.contracts.eventstore import EventStore
from shelfwise.pipeline import RecommendRequest
from shelfwise.pipeline.assembly import DegradedBlend, popularity_counts
from shelfwise.runtime import Runtime
from shelfwise.training.job import train
from tests import shop_fixture

RECENT = {"KI2": 2.0, "GA3": 1.0}  # views of the last days: the 90-day popularity


def _fill(rt: Runtime) -> None:
    """The shop of ``shop_fixture`` (its history is years old) and three views of today."""
    shop_fixture.fill(rt)
    now = datetime.now(UTC)
    views = [
        ProductView(
            event_id=f"recent-{n}",
            occurred_at=now - timedelta(hours=n + 1),
            anonymous_id=f"anon-recent-{n}",
            session_id=f"recent-{n}",
            product_id=pid,
        )
        for n, pid in enumerate(["KI2", "KI2", "GA3"])
    ]
    EventStore(rt.db).append(views)


def _page(rt: Runtime) -> dict[str, object]:
    now = shop_fixture.START + timedelta(days=61)
    req = RecommendRequest(placement="product_similar", item=("KI1",), k=4)
    return rt.recommender.recommend(req, now, record=False)


def test_a_worker_with_a_bundle_reads_the_popularity_when_it_first_serves_degraded(
    settings: Settings,
) -> None:
    rt = Runtime.open(settings)
    try:
        _fill(rt)
        train(rt, force=True)
    finally:
        rt.close()
    worker = Runtime.open(settings)  # a worker starting with the promoted bundle
    try:
        assert worker.bundle is not None
        degraded = worker.recommender.baseline_blend
        assert isinstance(degraded, DegradedBlend)
        assert _page(worker)["mode"] == "model"
        assert degraded.counts is None and degraded.blend is None  # never read
        worker.bundle = None  # the bundle is gone: degraded mode from the next request
        slate = _page(worker)
        assert slate["mode"] == "degraded" and slate["items"]
        assert degraded.counts == popularity_counts(worker.db) == RECENT
    finally:
        worker.close()


def test_a_worker_without_a_bundle_reads_the_popularity_before_its_first_request(
    settings: Settings,
) -> None:
    rt = Runtime.open(settings)
    try:
        _fill(rt)
        assert rt.bundle is None
        degraded = rt.recommender.baseline_blend
        assert isinstance(degraded, DegradedBlend)
        assert degraded.counts == RECENT and degraded.blend is not None
        assert _page(rt)["mode"] == "degraded"
    finally:
        rt.close()
