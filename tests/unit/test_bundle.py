from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from shelfwise.bundles import BundleError, BundleInfo, BundleStore, ModelBundle, new_version
from shelfwise.candidates.base import RecContext, SessionEvent
from shelfwise.candidates.config import FactorsConfig, SourcesConfig
from shelfwise.candidates.model import fit_all
from shelfwise.errors import NotFound
from tests.unit.candidates_fixtures import ABC, T0, purchases


def write(root: Path) -> ModelBundle:
    config = SourcesConfig(factors=FactorsConfig(factors=4, iterations=2))
    artifacts = fit_all(purchases(ABC), [None] * 5, config)
    info = BundleInfo(
        version=new_version(config.config_hash()),
        created_at=datetime.now(UTC),
        config_hash=config.config_hash(),
        config=config.model_dump(mode="json"),
        window_start=T0,
        window_end=T0,
        counts={"interactions": 8},
        metrics={"ndcg@10": 0.5},
        timings=artifacts.timings,
    )
    return ModelBundle.write(root, artifacts, info)


def test_bundle_round_trip_memory_mapped(tmp_path: Path) -> None:
    bundle = write(tmp_path)
    assert bundle.artifacts.items == ("A", "B", "C", "D", "E")
    items = bundle.artifacts.cooccurrence.items  # a plain view of the mapped file
    assert type(items) is np.ndarray and isinstance(items.base, np.memmap)
    ctx = RecContext("product_page", T0, context_items=(0,))
    assert bundle.artifacts.blend().propose(ctx, 3).items.tolist()[:2] == [1, 2]
    store = BundleStore(tmp_path)
    with pytest.raises(NotFound):
        store.open()
    store.promote(bundle.version)
    assert store.current_version() == bundle.version == store.open().version
    assert store.versions() == [bundle.version]
    assert (tmp_path / "PROMOTIONS").read_text() == f"{bundle.version}\n"


def test_partial_or_truncated_bundles_are_refused(tmp_path: Path) -> None:
    bundle = write(tmp_path)
    (bundle.path / "MANIFEST.json").rename(bundle.path / "manifest.bak")
    with pytest.raises(BundleError) as err:
        ModelBundle.load(bundle.path)
    assert err.value.code == "bundle_incomplete"
    (bundle.path / "manifest.bak").rename(bundle.path / "MANIFEST.json")
    arrays = bundle.path / "arrays" / "category.npy"
    assert arrays.stat().st_mode & 0o222 == 0  # written read-only
    arrays.chmod(0o644)
    arrays.write_bytes(arrays.read_bytes()[:-1])
    with pytest.raises(BundleError):
        ModelBundle.load(bundle.path)
    manifest = json.loads((bundle.path / "MANIFEST.json").read_text())
    manifest["files"]["arrays/category.npy"]["bytes"] -= 1
    (bundle.path / "MANIFEST.json").chmod(0o644)
    (bundle.path / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError) as err:
        ModelBundle.load(bundle.path, verify=True)
    assert err.value.code == "bundle_corrupt"
    with pytest.raises(BundleError):
        BundleStore(tmp_path).promote(bundle.version)


def test_artifacts_follow_a_reordered_catalog(tmp_path: Path) -> None:
    artifacts = write(tmp_path).artifacts
    ids = ("NEW", "E", "D", "C", "B", "A")  # reordered, one new product
    moved = artifacts.aligned(ids)
    assert moved.items == ids and artifacts.aligned(artifacts.items) is artifacts
    for name in ("cooccurrence", "factors", "buy_again", "popular"):
        before = artifacts.sources()[name].propose(RecContext("home", T0, person_id="p3"), 5)
        after = moved.sources()[name].propose(RecContext("home", T0, person_id="p3"), 5)
        want = {artifacts.items[i]: s for i, s in zip(before.items, before.scores, strict=True)}
        got = {ids[i]: s for i, s in zip(after.items, after.scores, strict=True)}
        assert got == pytest.approx(want), name  # same items and scores (ties may reorder)
    a_new = ids.index("A")
    got = moved.sources()["cooccurrence"].propose(RecContext("pp", T0, context_items=(a_new,)), 5)
    assert [ids[i] for i in got.items] == ["B", "C"]


def as_older(bundle: ModelBundle, arrays: tuple[str, ...], version: int) -> None:
    """Rewrite ``bundle`` as an older shelfwise wrote it: without the ``arrays``
    (name prefixes), of format ``version``."""
    folder = bundle.path
    for p in folder.rglob("*"):
        if p.is_file():
            p.chmod(0o644)
    for p in (folder / "arrays").glob("*.npy"):
        if p.name.startswith(arrays):
            p.unlink()
    info = json.loads((folder / "bundle.json").read_text())
    (folder / "bundle.json").write_text(json.dumps({**info, "format": version}))
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    files = {}
    for rel in manifest["files"]:
        if (folder / rel).is_file():
            data = (folder / rel).read_bytes()
            files[rel] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest = {**manifest, "format": version, "files": files}
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))


def as_format_2(bundle: ModelBundle) -> None:
    """Rewrite ``bundle`` as main's format 2 wrote it: no session index, no basket EASE."""
    as_older(bundle, ("session_knn.", "basket_ease.", "buy_again.repeat"), 2)


def test_a_format_2_bundle_still_serves_its_new_sources_propose_nothing(tmp_path: Path) -> None:
    bundle = write(tmp_path)
    cart = RecContext("cart", T0, cart_items=(0,), exclude=frozenset({0}))
    viewed = (SessionEvent(0, "product_view", T0), SessionEvent(1, "product_view", T0))
    session = RecContext("home", T0, session=viewed)
    assert len(bundle.artifacts.sources()["basket_ease"].propose(cart, 5).items)
    kept = bundle.artifacts.sources()["cooccurrence"].propose(cart, 5).items.tolist()
    as_format_2(bundle)
    store = BundleStore(tmp_path)
    store.promote(bundle.version)  # promoted under format 2, then the server upgraded
    old = store.open()
    assert old.version == bundle.version and old.info.format == 2
    sources = old.artifacts.sources()
    assert len(sources["basket_ease"].propose(cart, 5).items) == 0
    assert len(sources["session_knn"].propose(session, 5).items) == 0
    assert sources["cooccurrence"].propose(cart, 5).items.tolist() == kept
    moved = old.artifacts.aligned(("NEW", *old.artifacts.items))
    assert len(moved.sources()["basket_ease"].propose(cart, 5).items) == 0
    info = json.loads((bundle.path / "bundle.json").read_text())
    (bundle.path / "bundle.json").write_text(json.dumps({**info, "format": 1}))
    with pytest.raises(BundleError):
        ModelBundle.load(bundle.path)


def test_a_bundle_without_repeat_rates_proposes_buy_again_as_before(tmp_path: Path) -> None:
    # ABC: nobody bought anything twice, so the gate leaves buy_again nothing to propose.
    bundle = write(tmp_path)
    p1 = RecContext("cart", T0, person_id="p1")
    assert bundle.artifacts.repeat.tolist() == [0.0] * 5
    assert len(bundle.artifacts.sources()["buy_again"].propose(p1, 5).items) == 0
    as_older(bundle, ("buy_again.repeat",), 3)  # written before the repeat rates
    old = ModelBundle.load(bundle.path, verify=True)
    assert old.artifacts.repeat.tolist() == [1.0] * 5  # every item counts as re-bought
    got = old.artifacts.sources()["buy_again"].propose(p1, 5)
    assert sorted(got.items.tolist()) == [0, 1]  # p1's A and B, as before the gate
    moved = old.artifacts.aligned(("NEW", *old.artifacts.items))
    assert sorted(moved.sources()["buy_again"].propose(p1, 5).items.tolist()) == [1, 2]
