from __future__ import annotations

from pathlib import Path

import pytest

from shelfwise.config import hash_key, load_settings
from shelfwise.errors import ConfigError


def test_defaults_are_the_embedded_store() -> None:
    s = load_settings()
    assert s.database_url == "sqlite:///./shelfwise.db"
    assert s.redis_url is None
    assert s.is_sqlite


def test_explicit_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path / "missing.yaml")
    assert e.value.code == "config_file_missing"


def test_unknown_key_in_file_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "s.yaml"
    cfg.write_text("database_url: sqlite:///x.db\nreddis_url: redis://x\n")
    with pytest.raises(ConfigError) as e:
        load_settings(cfg)
    assert e.value.code == "config_unknown_key"
    assert "reddis_url" in e.value.message


def test_unknown_environment_variable_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELFWISE_DATABSE_URL", "sqlite:///typo.db")
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert "SHELFWISE_DATABSE_URL" in e.value.message


def test_environment_beats_file_and_overrides_beat_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "s.yaml"
    cfg.write_text("port: 9001\nmax_k: 7\n")
    monkeypatch.setenv("SHELFWISE_PORT", "9002")
    s = load_settings(cfg)
    assert (s.port, s.max_k) == (9002, 7)
    assert load_settings(cfg, port=9003).port == 9003


def test_postgres_url_gets_the_psycopg_driver() -> None:
    s = load_settings(database_url="postgresql://u@h/db")
    assert s.database_url == "postgresql+psycopg://u@h/db"


def test_unsupported_backend_rejected() -> None:
    with pytest.raises(ConfigError):
        load_settings(database_url="mysql://x/y")


def test_api_keys_from_environment_are_hashed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SHELFWISE_API_KEYS", '[{"name": "shop", "secret": "s3cret-key", "roles": ["read"]}]'
    )
    (key,) = load_settings().api_keys
    assert key.digest() == hash_key("s3cret-key")
    assert "s3cret-key" not in repr(key)
