"""Shared fixtures: settings per backend (SQLite file, PostgreSQL schema), runtimes, clients.

PostgreSQL tests run in a fresh schema each and drop it afterwards, so several
runs can share the ``test`` database. When the server is unreachable the tests
skip locally but fail when ``CI`` is set: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from shelfwise.config import ApiKey, Settings, load_settings
from shelfwise.runtime import Runtime
from tests import burners
from tests.fuzz.seed import EXPLORING

# What each test costs in CPU, printed after the run (tests/cpu_report.py).
pytest_plugins = ("tests.cpu_report",)

# Property tests give the same verdict on every run of the same code and on a loaded
# machine as on an idle one: examples are derived from each test's name (not drawn anew),
# and no check depends on time (no deadline, no too-slow health check). New examples are
# explored on purpose, with ``FUZZ_SEED=random`` (``make explore``).
_PROFILE = {"deadline": None, "database": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("gate", derandomize=True, **_PROFILE)
settings.register_profile("explore", derandomize=False, **_PROFILE)
settings.load_profile("explore" if EXPLORING else "gate")

# Trainings run in the test's own process (settings, CLI commands and servers the tests
# start): three test processes share two cores, and a pool of forked training workers
# on top of them cost a third more CPU and saved no time (measured: 39 s -> 26 s of CPU
# over the ranker-training tests of three files). The workers themselves are tested
# where they are the point (tests/integration/test_train_jobs.py, the email batch's
# --jobs, tests/unit/test_ranking_workers.py), with their number given explicitly.
os.environ.setdefault("SHELFWISE_TRAIN_JOBS", "1")

# Not SHELFWISE_*: the settings loader refuses unknown variables of its own prefix.
PG_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

KEYS = {
    "admin": "admin-secret-key",
    "merchandiser": "merch-secret-key",
    "ingest": "ingest-secret-key",
    "read": "read-secret-key",
    "storefront": "storefront-secret-key",
}
API_KEYS = tuple(ApiKey(name=role, secret=secret, roles=(role,)) for role, secret in KEYS.items())  # type: ignore[arg-type]


def service_missing(what: str) -> None:
    """Skip locally, fail in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI but unreachable")
    pytest.skip(f"{what} unreachable")


def _pg_reachable() -> bool:
    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except sa.exc.OperationalError:
        return False


@pytest.fixture(scope="session")
def pg_available() -> bool:
    return _pg_reachable()


@pytest.fixture
def pg_schema(pg_available: bool) -> Iterator[str]:
    if not pg_available:
        service_missing("PostgreSQL at 127.0.0.1:5432")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield schema
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings on the parametrised backend, with one API key per role."""
    # No bundle file watch in tests unless a test asks for it (tests/e2e/test_model_watch.py).
    common = {"api_keys": API_KEYS, "model_dir": tmp_path / "models", "model_watch_seconds": 0}
    if backend == "sqlite":
        return load_settings(database_url=f"sqlite:///{tmp_path / 'shelfwise.db'}", **common)
    schema = request.getfixturevalue("pg_schema")
    return load_settings(database_url=PG_URL, database_schema=schema, **common)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return load_settings(
        database_url=f"sqlite:///{tmp_path / 'shelfwise.db'}",
        api_keys=API_KEYS,
        model_dir=tmp_path / "models",
        model_watch_seconds=0,
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.open(settings)
    yield rt
    rt.close()


def headers(role: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[role]}


# --- stress mode (tests/burners.py) ---


def pytest_addoption(parser: pytest.Parser) -> None:
    burners.addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    burners.start(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    burners.stop()


def pytest_report_header(config: pytest.Config) -> str | None:
    return burners.header(config)
