"""The Dockerfile and docker-compose.yml, checked where no Docker runs: every
setting the compose file gives is one shelfwise knows and accepts, every command it
runs parses, and the image runs as a non-root user. (``shelfwise train --every`` itself
is tested in tests/e2e/test_train_schedule.py.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from shelfwise.cli.main import app
from shelfwise.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def _interpolate(value: Any) -> Any:
    """Compose's ``${VAR:-default}`` as an unset VAR gives it (``${VAR:?msg}``: a value)."""
    if isinstance(value, str):
        return VARIABLE.sub(lambda m: m.group(3) if m.group(2) == "-" else "x" * 32, value)
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return dict(_interpolate(data))


@pytest.mark.parametrize("service", ["api", "trainer"])
def test_the_settings_given_are_known_and_valid(
    compose: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = compose["services"][service]["environment"]
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    settings = load_settings()  # an unknown SHELFWISE_* variable would be an error
    assert settings.database_url.startswith("postgresql+psycopg://shelfwise")
    assert settings.redis_url == "redis://redis:6379/0"
    # Bundles in the database every container reads; MODEL_DIR is a container's own cache.
    assert settings.bundle_store == "database"
    assert str(settings.model_dir) == "/data/models"
    assert "volumes" not in compose["services"][service]
    assert set(compose["volumes"]) == {"pgdata"}


@pytest.mark.parametrize("service", ["api", "trainer"])
def test_the_commands_parse(compose: dict[str, Any], service: str) -> None:
    command = compose["services"][service]["command"]
    assert command[0] == "shelfwise"
    # --help after every option: click refuses an unknown option or a bad value first.
    result = CliRunner().invoke(app, [*command[1:], "--help"])
    assert result.exit_code == 0, result.output


def test_the_trainer_retrains_on_a_schedule(compose: dict[str, Any]) -> None:
    command = compose["services"]["trainer"]["command"]
    assert float(command[command.index("--every") + 1]) == 6 * 3600
    assert "--ranker" in command
    assert int(command[command.index("--keep-bundles") + 1]) >= 1  # fallbacks stay


def test_the_image_runs_as_a_user_and_checks_readiness() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", dockerfile, flags=re.M)
    assert users == ["shelfwise"]
    assert "/ready" in dockerfile
    assert dockerfile.count("FROM python:3.11-slim") == 2  # built in one stage, run in another
