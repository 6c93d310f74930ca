"""The compiled ranker is cached outside the model's folder, once, whoever asks first."""

from __future__ import annotations

import logging
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from shelfwise.ranking.features import FeatureSpec
from shelfwise.ranking.model import RankerModel
from shelfwise.ranking.training import RANKED_SOURCES

SPEC = FeatureSpec.of(RANKED_SOURCES)


def _data(seed: int, groups: int = 40, size: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(groups * size, len(SPEC.names)))
    y = (x[:, 0] + rng.normal(scale=0.5, size=len(x)) > 1).astype(np.int64)
    return x, y, np.full(groups, size, np.int64)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model") / "ranker"
    params = {"min_data_in_leaf": 5}
    RankerModel.train(SPEC, _data(1), _data(2), params, rounds=40, patience=5)[0].save(folder)
    return folder


def _load_compiled(folder: Path, cache: Path) -> tuple[list[float], bool]:
    """In a fresh process: the compiled scores of a fixed input, and whether it compiled."""
    compiled: list[str] = []

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            compiled.append(record.getMessage())

    logger = logging.getLogger("shelfwise.ranking.compiled")
    logger.addHandler(Seen())
    logger.setLevel(logging.INFO)
    model = RankerModel.load(folder, compile=True, cache_dir=cache, label="v1")
    assert model.compiled is not None
    scores = model.raw(_data(3)[0])
    return scores.tolist(), any(m.startswith("compiled") for m in compiled)


def test_workers_starting_together_compile_once_and_share_it(saved: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.starmap(_load_compiled, [(saved, cache), (saved, cache)])
    assert sorted(did for _, did in results) == [False, True]  # one compiled, one waited
    plain = RankerModel.load(saved, compile=False).raw(_data(3)[0])
    for scores, _ in results:
        np.testing.assert_allclose(scores, plain, rtol=1e-9, atol=1e-9)
    names = sorted(p.name for p in cache.iterdir())
    assert len(names) == 3 and [n.rsplit(".", 1)[1] for n in names] == ["lock", "so", "txt"]
    assert all(n.startswith("v1-") for n in names)  # no temporary file left behind
    assert sorted(p.name for p in saved.iterdir()) == ["ranker.json", "ranker.txt"]


def test_an_unusable_cache_compiles_in_memory(
    saved: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("")
    model = RankerModel.load(saved, compile=True, cache_dir=not_a_folder)
    assert model.compiled is not None and "compiling in memory" in caplog.text
    plain = RankerModel.load(saved, compile=False).raw(_data(4)[0])
    np.testing.assert_allclose(model.raw(_data(4)[0]), plain, rtol=1e-9, atol=1e-9)
