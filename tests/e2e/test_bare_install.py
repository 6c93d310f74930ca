"""``pip install shelfwise`` without extras runs every command.

A fresh virtual environment (``python -m venv``) gets the package from a copy
of this checkout with its runtime dependencies only — none of the ``dev``
extras. Then: every module imports, ``shelfwise --help`` and every
subcommand's ``--help`` answer, and ``shelfwise serve`` serves /health, /docs with
its own scripts, a catalog posted by ``shelfwise simulate --url`` and a slate for an API key.
This test never skips: a missing runtime dependency fails it, locally and in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.e2e.server import run_cli, running_server

REPO = Path(__file__).resolve().parents[2]
DEV_ONLY = ("pytest", "hypothesis", "schemathesis", "playwright", "ruff", "mypy")
KEY = "bare-admin-key"

# Run by the bare environment's Python: import every module of the package, then
# ask every command of the CLI for its --help, in one process (one import of each).
CHECK = """
import importlib, importlib.util, json, pkgutil, typer.main, typer.testing
import shelfwise
from shelfwise.cli.main import app

modules = [m.name for m in pkgutil.walk_packages(shelfwise.__path__, "shelfwise.")]
for name in modules:
    if not name.endswith("__main__"):  # running it is the command itself
        importlib.import_module(name)

def walk(command, path):
    yield path
    for name, sub in getattr(command, "commands", {}).items():  # a group's subcommands
        yield from walk(sub, [*path, name])

runner = typer.testing.CliRunner()
helps = {}
for path in walk(typer.main.get_command(app), []):
    out = runner.invoke(app, [*path, "--help"])
    helps[" ".join(path)] = [out.exit_code, "Usage" in out.output, repr(out.exception)]
present = [n for n in DEV_ONLY if importlib.util.find_spec(n) is not None]
print(json.dumps({"modules": len(modules), "helps": helps, "dev_only_present": present}))
"""


def _bare_env(tmp: Path) -> dict[str, str]:
    """The caller's environment (pip's settings included) without anything of this checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SHELFWISE_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env["SHELFWISE_DATABASE_URL"] = f"sqlite:///{tmp / 'shelfwise.db'}"
    env["SHELFWISE_MODEL_DIR"] = str(tmp / "models")
    env["SHELFWISE_API_KEYS"] = json.dumps([{"name": "admin", "secret": KEY, "roles": ["admin"]}])
    env["SHELFWISE_ALERT_EVALUATE_EVERY_SECONDS"] = "0"
    return env


def _install_without_extras(tmp: Path, env: dict[str, str]) -> Path:
    """A fresh venv with ``pip install <copy of this checkout>``; returns its bin folder."""
    source = tmp / "shelfwise-source"  # a copy: building in the checkout would leave build/ there
    shutil.copytree(
        REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    venv = tmp / "venv"
    # This environment's pip installs into the new one (--python): bootstrapping a pip
    # of its own would double the time of creating it.
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, env=env, timeout=60
    )
    target = ["--python", str(venv / "bin" / "python")]
    pip = [sys.executable, "-m", "pip", *target, "install", "--quiet", "--no-compile"]
    done = subprocess.run(
        [*pip, str(source)], env=env, capture_output=True, text=True, timeout=540, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return venv / "bin"


def _start(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    pipe = subprocess.PIPE
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=pipe, stderr=pipe, text=True)


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_command_runs_from_an_install_without_extras(tmp_path: Path) -> None:
    env = _bare_env(tmp_path)
    bin_dir = _install_without_extras(tmp_path, env)
    shelfwise = [str(bin_dir / "shelfwise")]

    # `shelfwise --help` and the walk over modules and commands run while the server starts.
    top = _start([*shelfwise, "--help"], env, tmp_path)
    walk = _start(
        [str(bin_dir / "python"), "-c", f"DEV_ONLY = {DEV_ONLY!r}\n{CHECK}"], env, tmp_path
    )
    try:
        with running_server(env, cwd=tmp_path, command=shelfwise) as base:
            health = httpx.get(f"{base}/health", timeout=30)
            assert (health.status_code, health.json()["status"]) == (200, "ok")
            # The API docs' scripts come with the install (fastapi-offline), not from a CDN.
            docs = httpx.get(f"{base}/docs", timeout=30)
            assert docs.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in docs.text
            script = httpx.get(f"{base}/docs/assets/swagger-ui-bundle.js", timeout=30)
            assert script.status_code == 200 and len(script.content) > 100_000

            args = ["simulate", "--url", base, "--api-key", KEY, "--json"]
            args += ["--products", "30", "--people", "20", "--days", "3"]
            posted = run_cli(args, env, cwd=tmp_path, command=shelfwise)
            assert posted.returncode == 0, posted.stdout + posted.stderr
            products = json.loads(posted.stdout)["posted"]["products"]
            assert (products["sent"], products["failed_batches"]) == (30, 0), posted.stdout

            params = {"placement": "home", "k": 5}
            url = f"{base}/v1/recommendations"
            assert httpx.get(url, params=params, timeout=30).status_code == 401
            slate = httpx.get(url, params=params, headers={"X-API-Key": KEY}, timeout=30)
            assert slate.status_code == 200, slate.text
            assert slate.json()["rec_id"]
            assert len(slate.json()["items"]) == 5
    finally:
        (top_code, top_out, top_err), (walk_code, walk_out, walk_err) = _finish(top), _finish(walk)

    assert top_code == 0 and "Usage" in top_out, top_out + top_err
    assert walk_code == 0, walk_out + walk_err
    found = json.loads(walk_out.splitlines()[-1])
    assert found["dev_only_present"] == []  # the venv really is bare
    assert found["modules"] > 100
    helps = found["helps"]
    assert {"", "serve", "demo", "simulate", "train", "rules apply", "db upgrade"} <= set(helps)
    assert {path: h for path, h in helps.items() if h[:2] != [0, True]} == {}
