"""Pruning old model bundles: which versions stay (every server's promoted bundle and
its fallbacks, whatever the history), and the model folder's pruning, its dry run and
the ``shelfwise models`` commands."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from shelfwise.bundles import BundleStore, ModelBundle
from shelfwise.bundles.store import retained
from shelfwise.cli.main import app
from shelfwise.ranking.compiled import cache_dir_of
from tests.unit.test_bundle import write


def test_the_promoted_bundle_its_fallbacks_and_the_newer_ones_stay() -> None:
    versions = [f"v{i}" for i in range(1, 10)]  # v1 oldest
    promoted = {"v1", "v2", "v4", "v6", "v9"}
    # v6 promoted again after v9 (a rollback): v9 is newer than it, v4 and v2 its fallbacks.
    assert retained(versions, "v6", promoted, keep=2) == {"v6", "v4", "v2", "v9", "v8"}
    assert retained(versions, "v6", promoted, keep=0) == {"v6"}
    assert retained(versions, "v6", None, keep=2) == {"v6", "v5", "v4", "v9", "v8"}
    assert retained(versions, None, set(), keep=3) == {"v9", "v8", "v7"}
    assert retained(versions, None, set(), keep=0) == set()


@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=25, unique=True),
    st.data(),
    st.integers(0, 5),
)
def test_pruning_never_takes_what_a_server_would_load(
    numbers: list[int], data: st.DataObject, keep: int
) -> None:
    versions = [f"{n:03d}" for n in numbers]
    promoted = set(data.draw(st.lists(st.sampled_from(versions), min_size=1)))
    current = data.draw(st.sampled_from(sorted(promoted)))
    kept = retained(versions, current, promoted, keep)
    fallbacks = sorted((v for v in promoted if v < current), reverse=True)
    assert current in kept and set(fallbacks[:keep]) <= kept
    assert kept <= set(versions) and len(kept) <= 1 + 2 * keep
    # Pruning twice removes nothing more.
    assert retained(kept, current, promoted, keep) == kept


def bundles(root: Path, n: int) -> list[ModelBundle]:
    return [write(root) for _ in range(n)]


def test_the_model_folder_loses_old_bundles_and_their_compiled_rankers(tmp_path: Path) -> None:
    store = BundleStore(tmp_path)
    b = bundles(tmp_path, 5)
    for i in (0, 1, 3):
        store.promote(b[i].version)
    cache = cache_dir_of(tmp_path)
    cache.mkdir(parents=True)
    for x in b:
        (cache / f"{x.version}-0123abcd.so").write_bytes(b"object")
    sizes = store.sizes()

    dry = store.prune(keep=1, dry_run=True)
    assert dry.removed == (b[0].version, b[2].version)
    assert dry.kept == (b[1].version, b[3].version, b[4].version)
    assert dry.freed_bytes == sizes[b[0].version] + sizes[b[2].version] > 0
    assert store.versions() == [x.version for x in b]  # nothing gone yet

    done = store.prune(keep=1)
    assert done.removed == dry.removed and not done.dry_run
    assert store.versions() == [b[1].version, b[3].version, b[4].version]
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        f"{b[i].version}-0123abcd.so" for i in (1, 3, 4)
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".discarded-")]
    assert store.open_last_good()[0].version == b[3].version  # type: ignore[union-attr]
    assert store.fallbacks(b[3].version) == [b[1].version]
    assert store.prune(keep=1).removed == ()


def test_the_models_commands_list_and_prune(tmp_path: Path) -> None:
    models = tmp_path / "models"
    store = BundleStore(models)
    b = bundles(models, 3)
    store.promote(b[0].version)
    store.promote(b[1].version)
    env = {
        "SHELFWISE_DATABASE_URL": f"sqlite:///{tmp_path / 'shelfwise.db'}",
        "SHELFWISE_MODEL_DIR": str(models),
    }
    runner = CliRunner()

    listed = runner.invoke(app, ["models", "list", "--keep", "0", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)["bundles"]
    assert [(r["version"], r["state"], r["pruned"]) for r in rows] == [
        (b[2].version, "never promoted", True),
        (b[1].version, "promoted", False),
        (b[0].version, "fallback", True),
    ]

    pruned = runner.invoke(app, ["models", "prune", "--keep", "0", "--json"], env=env)
    assert pruned.exit_code == 0, pruned.output
    assert json.loads(pruned.output)["removed"] == [b[0].version, b[2].version]
    assert store.versions() == [b[1].version]

    refused = runner.invoke(app, ["models", "prune", "--keep", "-1"], env=env)
    assert refused.exit_code == 2 and store.versions() == [b[1].version]
