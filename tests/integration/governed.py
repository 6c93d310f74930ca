"""One governed simulated store per test run, each test on its own copy.

``benchmarks.preview.governed_shop`` sets a store up the way a merchant does
(catalog, history through ingestion, rulebook, a trained bundle with the learned
ranker): most of a minute of CPU, the same every time for one spec. The first
test of a run that asks for a spec builds it on SQLite (the other test processes
wait for it); every test then opens a copy of its files, so no test sees what
another served, saved or ingested.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest
from benchmarks.preview import governed_settings, governed_shop

from shelfwise.bundles.store import locked
from shelfwise.config import Settings
from shelfwise.runtime import Runtime
from shelfwise.simulate import SimulationSpec, World

DB = "shelfwise.db"


def _run_folder(factory: pytest.TempPathFactory) -> Path:
    """A folder of this test run that every test process sees (under xdist each
    process has its own base folder inside the run's one)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _at(settings: Settings, folder: Path) -> Settings:
    return settings.model_copy(
        update={"database_url": f"sqlite:///{folder / DB}", "model_dir": folder / "models"}
    )


def governed_copy(
    factory: pytest.TempPathFactory, settings: Settings, spec: SimulationSpec, mine: Path
) -> tuple[World, Runtime]:
    """The world of ``spec`` and a runtime on a fresh copy (in ``mine``) of its
    governed store, opened with ``settings`` (SQLite) as ``governed_shop`` opens it."""
    run = _run_folder(factory)
    key = f"governed-{spec.seed}-{spec.products}-{spec.people}-{spec.days}"
    built = run / key
    with locked(run / f"{key}.lock"):
        if not (built / "done").exists():
            shutil.rmtree(built, ignore_errors=True)
            built.mkdir()
            world, shop = governed_shop(_at(settings, built), spec)
            shop.close()
            # The world as its history left it (who owns which device, say).
            (built / "world.pickle").write_bytes(pickle.dumps(world))
            (built / "done").touch()
    shutil.copytree(built, mine)
    shop = Runtime.open(governed_settings(_at(settings, mine)))
    try:
        shop.load_bundle()
    except BaseException:
        shop.close()
        raise
    return pickle.loads((mine / "world.pickle").read_bytes()), shop
