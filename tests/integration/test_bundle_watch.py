"""The bundle file watch follows promotions only (one poll at a time, no thread)."""

from __future__ import annotations

from shelfwise.runtime import Runtime
from shelfwise.training.job import train
from tests import shop_fixture


def _loaded(runtime: Runtime) -> str | None:
    return runtime.bundle.version if runtime.bundle else None


def test_the_watch_follows_promotions_and_keeps_a_pinned_version(runtime: Runtime) -> None:
    shop_fixture.fill(runtime)
    first = train(runtime, force=True).bundle.version
    runtime.load_bundle()
    watch = runtime.bundle_watcher(interval=60)
    assert not watch.check() and _loaded(runtime) == first

    second = train(runtime, promote=False).bundle.version
    assert not watch.check() and _loaded(runtime) == first  # written, not promoted

    runtime.load_bundle(second)  # an operator pins a version by hand
    assert not watch.check() and _loaded(runtime) == second  # the pointer did not move

    third = train(runtime, force=True).bundle.version
    assert watch.check() and _loaded(runtime) == third
    assert not watch.check()  # nothing new since
