"""The fuzzed app, once per backend and module, and the seed every fuzz test runs with.

A red run names its seed in the report header and in every failure:
``FUZZ_SEED=<seed> pytest tests/fuzz`` replays it exactly.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from shelfwise.api import create_app
from shelfwise.config import Settings, load_settings
from shelfwise.runtime import Runtime
from shelfwise.simulate import CatalogSpec, generate_catalog
from tests.conftest import API_KEYS, PG_URL, _pg_reachable, service_missing
from tests.fuzz.seed import SEED, replay_hint


def pytest_report_header() -> str:
    return f"fuzz seed: {SEED} ({replay_hint()})"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.failed and item.path.parent == Path(__file__).parent:
        report.sections.append(("fuzz seed", replay_hint()))
    return report


def _fuzz_settings(backend: str, where: Path, schema: str | None) -> Settings:
    common = {"api_keys": API_KEYS, "model_dir": where / "models", "model_watch_seconds": 0}
    if backend == "sqlite":
        return load_settings(database_url=f"sqlite:///{where / 'fuzz.db'}", **common)
    return load_settings(database_url=PG_URL, database_schema=schema, **common)


class FuzzStores:
    """Opens fresh stores (a SQLite file or its own PostgreSQL schema) with a small generated
    catalog on one backend, each behind its own app; closes and drops them all at the end."""

    def __init__(self, backend: str, where: Path) -> None:
        self.backend = backend
        self.where = where
        self._runtimes: list[Runtime] = []
        self._schemas: list[str] = []
        self._opened = 0

    def open(self) -> FastAPI:
        self._opened += 1
        schema = None
        if self.backend == "postgresql":
            schema = f"fuzz_{uuid.uuid4().hex[:12]}"
            self._schemas.append(schema)
        where = self.where / f"store-{self._opened}"
        where.mkdir()
        settings = _fuzz_settings(self.backend, where, schema)
        runtime = Runtime.open(settings)
        self._runtimes.append(runtime)
        runtime.catalog.upsert(generate_catalog(CatalogSpec(n_products=60, seed=3)))
        runtime.snapshot.load()
        return create_app(settings, runtime=runtime)

    def close_all(self) -> None:
        for runtime in self._runtimes:
            runtime.close()
        self._runtimes.clear()
        if self._schemas:
            engine = sa.create_engine(PG_URL)
            with engine.begin() as conn:
                for schema in self._schemas:
                    conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            engine.dispose()
            self._schemas.clear()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def fuzz_stores(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzStores]:
    backend = str(request.param)
    if backend == "postgresql" and not _pg_reachable():
        service_missing("PostgreSQL at 127.0.0.1:5432")
    stores = FuzzStores(backend, tmp_path_factory.mktemp(f"fuzz-{backend}"))
    try:
        yield stores
    finally:
        stores.close_all()


@pytest.fixture(scope="module")
def fuzz_app(fuzz_stores: FuzzStores) -> FastAPI:
    """The app on one fresh store, shared by every operation fuzzed in one module on one
    backend."""
    return fuzz_stores.open()
