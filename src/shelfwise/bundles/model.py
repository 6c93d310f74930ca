"""The versioned model bundle: a folder of memory-mappable arrays and a manifest written last.

Layout of ``<model_dir>/<version>/``::

    arrays/*.npy      every fitted array (memory-mapped read-only: workers share pages)
    items.json        the item vocabulary the arrays are indexed by
    people.json       the person vocabulary
    bundle.json       BundleInfo: config + hash, data window, counts, metrics, timings
    MANIFEST.json     size and SHA-256 of every file above, written last

A folder without a manifest, or whose files disagree with it, is a partial
bundle and is refused. ``<model_dir>/CURRENT`` names the promoted version and is
replaced atomically; ``<model_dir>/PROMOTIONS`` lists every version promoted,
one a line, so a server whose promoted bundle fails verification can fall back
to the last good one (:meth:`shelfwise.bundles.store.BundleStore.open_last_good`).

A bundle is immutable once written: every file is covered by the manifest and
made read-only, and loading only reads (what serving compiles from a bundle,
the ranker, is cached outside it: ``ranking.compiled``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from shelfwise.candidates.base import load_array
from shelfwise.candidates.config import SourcesConfig
from shelfwise.candidates.factors import Factors
from shelfwise.candidates.history import PersonHistory
from shelfwise.candidates.model import Artifacts
from shelfwise.candidates.neighbours import NeighbourTable
from shelfwise.candidates.popular import Popularity
from shelfwise.candidates.session_knn import SessionIndex
from shelfwise.errors import ShelfwiseError

MANIFEST = "MANIFEST.json"
CURRENT = "CURRENT"
PROMOTIONS = "PROMOTIONS"
READ_ONLY = 0o444
FORMAT = 3  # 2: adds the regression neighbours; 3: the session index and basket EASE
OLDEST_FORMAT = 2  # still loaded: sources whose arrays a bundle lacks propose nothing


class BundleError(ShelfwiseError):
    code = "bundle_invalid"
    http_status = 409


class BundleInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = FORMAT
    version: str
    created_at: datetime
    config_hash: str
    config: dict[str, Any]
    window_start: datetime | None
    window_end: datetime | None
    counts: dict[str, int]
    metrics: dict[str, float]
    timings: dict[str, float]
    settings_fingerprint: str | None = None


def new_version(config_hash: str, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S%f}-{config_hash[:8]}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _save_arrays(folder: Path, a: Artifacts) -> None:
    a.cooccurrence.save(folder, "cooccurrence")
    a.content.save(folder, "content")
    a.regression.save(folder, "regression")
    a.copurchase.save(folder, "copurchase")
    a.basket_ease.save(folder, "basket_ease")
    a.sessions.save(folder, "session_knn")
    a.history.save(folder)
    arrays: dict[str, np.ndarray[Any, Any]] = {
        "factors.people": a.factors.people,
        "factors.items": a.factors.items,
        "buy_again.cycles": a.cycles,
        "buy_again.repeat": a.repeat,
        "popular.scores": a.popularity.scores,
        "popular.label": a.popularity.label,
        "category": a.category,
        "price": a.price,
        "category_lift": a.category_lift,
    }
    for name, arr in arrays.items():
        np.save(folder / f"{name}.npy", arr)


def _empty_table(n_items: int) -> NeighbourTable:
    return NeighbourTable(np.full((n_items, 1), -1, np.int32), np.zeros((n_items, 1), np.float32))


def _load_arrays(
    folder: Path,
    info: BundleInfo,
    items: tuple[str, ...],
    people: tuple[str, ...],
    category_names: tuple[str, ...],
    mmap: bool,
) -> Artifacts:
    def arr(name: str) -> Any:
        return load_array(folder / f"{name}.npy", mmap)

    category = arr("category")
    n_items, n_cat = len(items), len(category_names)
    # Bundles written before the substitutes and complements sources lack their
    # arrays: those sources then propose nothing until the next training.
    older = not (folder / "price.npy").is_file()
    # Format-2 bundles lack the session index and the basket EASE table: the
    # session_knn and basket_ease sources propose nothing until the next training.
    has_sessions = info.format >= 3 and (folder / "session_knn.indptr.npy").is_file()
    has_ease = (folder / "basket_ease.items.npy").is_file()
    # Bundles written before the repeat rates: every item counts as re-bought, so
    # buy_again proposes what it did then (no gate) until the next training.
    has_repeat = (folder / "buy_again.repeat.npy").is_file()

    return Artifacts(
        config=SourcesConfig.model_validate(info.config),
        items=items,
        people=people,
        history=PersonHistory.load(folder, people, mmap=mmap),
        cooccurrence=NeighbourTable.load(folder, "cooccurrence", mmap=mmap),
        content=NeighbourTable.load(folder, "content", mmap=mmap),
        regression=NeighbourTable.load(folder, "regression", mmap=mmap),
        factors=Factors(arr("factors.people"), arr("factors.items")),
        cycles=arr("buy_again.cycles"),
        repeat=arr("buy_again.repeat") if has_repeat else np.ones(n_items),
        popularity=Popularity(arr("popular.scores"), arr("popular.label")),
        category=category,
        category_names=category_names,
        price=np.full(n_items, np.nan) if older else arr("price"),
        copurchase=_empty_table(n_items)
        if older
        else NeighbourTable.load(folder, "copurchase", mmap=mmap),
        category_lift=np.zeros((n_cat, n_cat), np.float32) if older else arr("category_lift"),
        sessions=SessionIndex.load(folder, "session_knn", mmap=mmap)
        if has_sessions
        else SessionIndex.empty(n_items),
        basket_ease=NeighbourTable.load(folder, "basket_ease", mmap=mmap)
        if has_ease
        else _empty_table(n_items),
        timings=dict(info.timings),
    )


class ModelBundle:
    """A loaded bundle: its folder, its info, its artifacts (memory-mapped by default)."""

    def __init__(self, path: Path, info: BundleInfo, artifacts: Artifacts) -> None:
        self.path = path
        self.info = info
        self.artifacts = artifacts

    @property
    def version(self) -> str:
        return self.info.version

    @classmethod
    def write(
        cls,
        root: Path,
        artifacts: Artifacts,
        info: BundleInfo,
        extra: Callable[[Path], None] | None = None,
    ) -> ModelBundle:
        """Write into a hidden temporary folder, then rename it into place.

        ``extra(folder)`` may add files (e.g. the ranker in ``ranker/``) before
        the manifest is written, so they are checked like the rest.
        """
        root.mkdir(parents=True, exist_ok=True)
        final = root / info.version
        if final.exists():
            raise BundleError(f"bundle {info.version} exists already", code="bundle_exists")
        tmp = root / f".tmp-{info.version}"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "arrays").mkdir(parents=True)
        _save_arrays(tmp / "arrays", artifacts)
        (tmp / "items.json").write_text(json.dumps(list(artifacts.items)))
        (tmp / "people.json").write_text(json.dumps(list(artifacts.people)))
        (tmp / "categories.json").write_text(json.dumps(list(artifacts.category_names)))
        (tmp / "bundle.json").write_text(info.model_dump_json(indent=2))
        if extra is not None:
            extra(tmp)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        manifest = {
            "format": FORMAT,
            "version": info.version,
            "files": {
                str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
                for p in files
            },
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        for p in (*files, tmp / MANIFEST):
            p.chmod(READ_ONLY)
        os.replace(tmp, final)
        return cls.load(final)

    @classmethod
    def load(cls, path: Path, *, mmap: bool = True, verify: bool = False) -> ModelBundle:
        """Open a bundle; refuse it when the manifest is missing or the files disagree.

        Sizes are always checked; ``verify`` also re-hashes every file.
        """
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise BundleError(
                f"{path} has no {MANIFEST}: a partial or foreign bundle", code="bundle_incomplete"
            )
        manifest = json.loads(manifest_path.read_text())
        for rel, meta in manifest["files"].items():
            f = path / rel
            if not f.is_file() or f.stat().st_size != meta["bytes"]:
                raise BundleError(
                    f"{path}: {rel} is missing or truncated", code="bundle_incomplete"
                )
            if verify and _sha256(f) != meta["sha256"]:
                raise BundleError(
                    f"{path}: {rel} does not match its checksum", code="bundle_corrupt"
                )
        info = BundleInfo.model_validate_json((path / "bundle.json").read_text())
        if not OLDEST_FORMAT <= info.format <= FORMAT:
            raise BundleError(
                f"{path}: bundle format {info.format} is not {OLDEST_FORMAT} to {FORMAT}"
            )
        items = tuple(json.loads((path / "items.json").read_text()))
        people = tuple(json.loads((path / "people.json").read_text()))
        names = tuple(json.loads((path / "categories.json").read_text()))
        try:
            artifacts = _load_arrays(path / "arrays", info, items, people, names, mmap)
        except (OSError, ValueError) as e:
            raise BundleError(f"{path}: unreadable arrays: {e}", code="bundle_corrupt") from e
        return cls(path, info, artifacts)
