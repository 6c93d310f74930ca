"""A written bundle never changes; one that fails verification is refused loudly and the
last good bundle serves (in process; ``tests/e2e/test_bundle_restart.py`` over HTTP)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from shelfwise.bundles import BundleStore
from shelfwise.config import Settings
from shelfwise.pipeline import RecommendRequest
from shelfwise.ranking import RankingSettings
from shelfwise.ranking.compiled import cache_dir_of
from shelfwise.runtime import Runtime
from shelfwise.training.job import train
from tests import shop_fixture
from tests.e2e.test_bundle_restart import files_of


def _spoil(path: Path) -> None:
    path.chmod(0o644)  # bundles are written read-only
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    path.write_bytes(bytes(data))


def _failures(runtime: Runtime, code: str) -> float:
    value = runtime.metrics.registry.get_sample_value(
        "shelfwise_model_bundle_verification_failures_total", {"code": code}
    )
    return value or 0.0


def _gauge(runtime: Runtime, name: str) -> float | None:
    return runtime.metrics.registry.get_sample_value(name)


def test_loading_and_serving_a_ranker_bundle_never_writes_into_it(
    sqlite_settings: Settings,
) -> None:
    settings = sqlite_settings.model_copy(
        update={"ranking": RankingSettings(compile_model=True, explore_share=0.0)}
    )
    runtime = Runtime.open(settings)
    shop_fixture.fill(runtime)
    bundle = train(runtime, force=True, with_ranker=True).bundle
    runtime.close()
    written = files_of(bundle.path)
    assert all(mode & 0o222 == 0 for _, _, mode in written.values())
    # by train, one per ranker training task (home's; product pages' bought_with)
    compiled = sorted(cache_dir_of(settings.model_dir).glob(f"{bundle.version}-*.so"))
    assert len(compiled) == 2

    for _ in range(2):  # a start, then a start that finds its compiled ranker cached
        runtime = Runtime.open(settings)
        try:
            for req in (
                RecommendRequest(placement="product_similar", item=("KI1",), k=4),
                RecommendRequest(placement="home", person="c0", k=4),
            ):
                slate = runtime.recommender.recommend(req)
                assert (slate["ranker"], slate["model_version"]) == ("learned", bundle.version)
            runtime.load_bundle()
            runtime.load_bundle(bundle.version)
            assert not runtime.bundle_watcher(60).check()
        finally:
            runtime.close()
        assert files_of(bundle.path) == written
    assert sorted(cache_dir_of(settings.model_dir).glob("*.so")) == compiled


def test_a_spoilt_promoted_bundle_falls_back_to_the_last_good_promoted_one(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    shop_fixture.fill(runtime)
    good = train(runtime, force=True).bundle.version
    unpromoted = train(runtime, promote=False).bundle.version  # what the guard refuses
    spoilt = train(runtime, force=True).bundle.version
    store = BundleStore(runtime.settings.model_dir)
    assert store.fallbacks(spoilt) == [good]  # never the bundle that was not promoted
    _spoil(runtime.settings.model_dir / spoilt / "arrays" / "popular.scores.npy")

    restarted = Runtime.open(runtime.settings)
    try:
        assert restarted.bundle is not None and restarted.bundle.version == good
        assert unpromoted != good
        assert restarted.bundle_error_code == "bundle_corrupt"
        assert restarted.bundle_error is not None
        assert "checksum" in restarted.bundle_error and f"serving {good}" in restarted.bundle_error
        assert _gauge(restarted, "shelfwise_model_bundle_loaded") == 1
        assert _gauge(restarted, "shelfwise_model_bundle_refused") == 1
        assert _failures(restarted, "bundle_corrupt") == 1
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert f"model bundle {spoilt} refused [bundle_corrupt]" in errors[0]
        slate = restarted.recommender.recommend(RecommendRequest(placement="home", k=3))
        assert (slate["mode"], slate["model_version"]) == ("model", good)

        # The watch keeps the good bundle: the spoilt one is refused, logged and counted once.
        watch = restarted.bundle_watcher(60)
        watch.seen = good
        assert not watch.check() and not watch.check()
        assert restarted.bundle.version == good and _failures(restarted, "bundle_corrupt") == 1

        # Once a good bundle is promoted, it loads and the refusal is over.
        fixed = train(restarted, force=True).bundle.version
        assert watch.check() and restarted.bundle.version == fixed
        assert restarted.bundle_error is None and restarted.bundle_error_code is None
        assert _gauge(restarted, "shelfwise_model_bundle_refused") == 0
    finally:
        restarted.close()


def test_with_no_good_bundle_left_the_server_starts_degraded(runtime: Runtime) -> None:
    shop_fixture.fill(runtime)
    only = train(runtime, force=True).bundle.version
    _spoil(runtime.settings.model_dir / only / "bundle.json")
    restarted = Runtime.open(runtime.settings)
    try:
        assert restarted.bundle is None and restarted.bundle_error_code == "bundle_corrupt"
        assert _gauge(restarted, "shelfwise_model_bundle_loaded") == 0
        slate = restarted.recommender.recommend(RecommendRequest(placement="home", k=3))
        assert slate["mode"] == "degraded"
    finally:
        restarted.close()
