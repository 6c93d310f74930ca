"""``shelfwise train --ranker`` on several worker processes writes the bundle one process
writes: the same metrics and guard report to the last digit, the same rankers and
exposure floors byte for byte; a worker that dies fails the training with a stable
code instead of hanging it."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from shelfwise.config import load_settings
from shelfwise.ranking import training, workers
from shelfwise.ranking.workers import WorkerFailed
from shelfwise.training import guard, job
from tests.integration.test_guard_windows_shared import trained_with_slates

# what differs between two trainings of the same data: their version, when they were
# made and how long each stage took (the info's other fields are compared one by one)
WRITTEN_APART = {"MANIFEST.json", "bundle.json"}


def _files(bundle: Path) -> dict[str, bytes]:
    return {
        str(f.relative_to(bundle)): f.read_bytes()
        for f in sorted(bundle.rglob("*"))
        if f.is_file() and f.name not in WRITTEN_APART
    }


def _spy(monkeypatch: pytest.MonkeyPatch, forked: list[int]) -> None:
    """Count the parts each map sends to worker processes (none when it runs here)."""
    real = workers.forked_map

    def spied(fn: Callable[[Any], Any], items: Sequence[Any], jobs: int) -> list[Any]:
        forked.append(len(items) if workers.workers_for(jobs, len(items)) else 0)
        return real(fn, items, jobs)

    monkeypatch.setattr(training, "forked_map", spied)
    monkeypatch.setattr(job, "forked_map", spied)
    monkeypatch.setattr(guard, "forked_map", spied)


def test_two_workers_write_the_bundle_one_process_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forked: list[int] = []
    _spy(monkeypatch, forked)
    one = trained_with_slates(tmp_path / "one", jobs=1)
    assert forked and not any(forked)
    forked.clear()
    two = trained_with_slates(tmp_path / "two", jobs=2)
    # to the workers: the home rankers' seven windows (the bundle's six, the guard's
    # one more; the guard and the bundle then build none), the guard's three designs
    # and its refit's three draws, its people's slates in parts, the bundle's home
    # ranker's designs and draws, the product pages' six windows (their one draw
    # here), the two floors
    assert forked == [7, 0, 3, 3, guard.PARTS, 0, 3, 3, 6, 0, 2]

    assert two.bundle.info.metrics == one.bundle.info.metrics
    for field in ("counts", "config", "config_hash", "window_start", "window_end"):
        assert getattr(two.bundle.info, field) == getattr(one.bundle.info, field), field
    assert two.guard.as_dict() == one.guard.as_dict()
    a, b = _files(one.bundle.path), _files(two.bundle.path)
    assert sorted(a) == sorted(b)
    assert any("ranker" in name for name in a)
    assert [name for name in a if a[name] != b[name]] == []


def test_the_jobs_are_not_in_the_settings_fingerprint() -> None:
    settings = load_settings()
    assert settings.model_copy(update={"train_jobs": 7}).fingerprint() == settings.fingerprint()


@pytest.mark.timeout(300)
def test_a_worker_that_dies_fails_the_training_with_a_stable_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = training._early_stopped
    parent = os.getpid()

    def killed(*args: Any, **kwargs: Any) -> Any:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer ends one
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "_early_stopped", killed)
    with pytest.raises(WorkerFailed) as caught:
        trained_with_slates(tmp_path / "killed", jobs=2)
    assert caught.value.code == "training_worker_failed"
