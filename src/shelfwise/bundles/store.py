"""The bundles of a model folder and the pointer to the promoted one.

``<model_dir>/CURRENT`` names the promoted version and is replaced atomically;
``<model_dir>/PROMOTIONS`` lists every version ever promoted, one a line: the
versions a server may fall back to when the promoted one fails verification.

Bundles are never rewritten, but old ones can be removed (:meth:`BundleStore.prune`,
``shelfwise models prune``): the promoted bundle, the fallbacks a server would try
after it and the newest bundles written after it always stay (:func:`retained`).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shelfwise.bundles.model import (
    CURRENT,
    MANIFEST,
    PROMOTIONS,
    BundleError,
    BundleInfo,
    ModelBundle,
)
from shelfwise.candidates.model import Artifacts
from shelfwise.errors import NotFound, ShelfwiseError
from shelfwise.ranking.compiled import cache_dir_of

LOCK = ".bundles.lock"  # held by a promotion and a pruning of a model folder


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` among the processes of this machine."""
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def retained(
    versions: Iterable[str], current: str | None, promoted: set[str] | None, keep: int
) -> set[str]:
    """The versions a pruning keeps: the promoted one; the ``keep`` fallbacks a server
    tries after it (older versions promoted once, newest first; every older version when
    nothing records promotions); and the ``keep`` newest versions written after it (a
    bundle awaiting promotion, or one the guard refused, kept to be looked at). With
    nothing promoted yet: the ``keep`` newest. Versions sort in the order they were
    written (``new_version``)."""
    ordered = sorted(versions, reverse=True)  # newest first
    if current is None:
        return set(ordered[:keep])
    older = [v for v in ordered if v < current and (promoted is None or v in promoted)]
    newer = [v for v in ordered if v > current]
    return {current, *older[:keep], *newer[:keep]}


@dataclass(frozen=True)
class Pruning:
    """What a pruning removed (or, with ``dry_run``, would remove)."""

    kept: tuple[str, ...]
    removed: tuple[str, ...]
    freed_bytes: int  # content no kept bundle shares
    dry_run: bool


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class BundleStore:
    """The bundles under ``model_dir`` and the pointer to the promoted one."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(
        self,
        artifacts: Artifacts,
        info: BundleInfo,
        extra: Callable[[Path], None] | None = None,
    ) -> ModelBundle:
        """Write a new bundle (:meth:`ModelBundle.write`); not promoted yet."""
        return ModelBundle.write(self.root, artifacts, info, extra)

    def versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        # A hidden folder is a write in progress (or one a crash left behind).
        return sorted(
            p.name
            for p in self.root.iterdir()
            if not p.name.startswith(".") and (p / MANIFEST).is_file()
        )

    def current_version(self) -> str | None:
        pointer = self.root / CURRENT
        if not pointer.is_file():
            return None
        return pointer.read_text().strip() or None

    def open(
        self, version: str | None = None, *, mmap: bool = True, verify: bool = False
    ) -> ModelBundle:
        """The given version, or the promoted one (``verify``: re-hash every file)."""
        version = version or self.current_version()
        if version is None:
            raise NotFound("no model bundle has been promoted yet", code="model_not_found")
        path = self.root / version
        if not path.is_dir():
            raise NotFound(f"unknown model bundle {version!r}", code="model_not_found")
        return ModelBundle.load(path, mmap=mmap, verify=verify)

    def promote(self, version: str) -> None:
        """Point ``CURRENT`` at ``version`` (a complete bundle) with one atomic rename,
        and add it to ``PROMOTIONS``."""
        self.root.mkdir(parents=True, exist_ok=True)
        with locked(self.root / LOCK):  # not pruned meanwhile
            ModelBundle.load(self.root / version)
            tmp = self.root / f".{CURRENT}.tmp"
            tmp.write_text(version + "\n")
            os.replace(tmp, self.root / CURRENT)
            with (self.root / PROMOTIONS).open("a") as log:  # one short append: atomic
                log.write(version + "\n")

    def fallbacks(self, version: str) -> list[str]:
        """What to serve when ``version`` fails verification, best first: the versions
        older than it that were promoted once, newest first (every older complete
        version when the folder predates ``PROMOTIONS``). A bundle the promotion guard
        refused is never a fallback."""
        older = [v for v in self.versions() if v < version]
        promoted = self.promoted_versions()
        if promoted is not None:
            older = [v for v in older if v in promoted]
        return older[::-1]

    def promoted_versions(self) -> set[str] | None:
        """Every version ever promoted (None: a folder from before ``PROMOTIONS``)."""
        log = self.root / PROMOTIONS
        return set(log.read_text().split()) if log.is_file() else None

    def open_last_good(self) -> tuple[ModelBundle | None, list[tuple[str, ShelfwiseError]]]:
        """The promoted bundle, re-hashed against its manifest; when it fails, the first
        of its :meth:`fallbacks` that passes. Also every version refused on the way,
        with the reason. ``(None, [])`` when nothing was promoted yet."""
        promoted = self.current_version()
        if promoted is None:
            return None, []
        refused: list[tuple[str, ShelfwiseError]] = []
        for version in (promoted, *self.fallbacks(promoted)):
            try:
                return self.open(version, verify=True), refused
            except (BundleError, NotFound) as e:
                refused.append((version, e))
        return None, refused

    def sizes(self) -> dict[str, int]:
        """Every complete version and its bytes."""
        return {v: folder_bytes(self.root / v) for v in self.versions()}

    def prune(self, keep: int, *, dry_run: bool = False) -> Pruning:
        """Remove every bundle :func:`retained` does not keep, with its compiled ranker
        in this machine's cache. A worker that still maps a removed bundle's files keeps
        reading them (the folder is unlinked, not changed)."""
        if keep < 0:
            raise ValueError("keep must be 0 or more")
        if not self.root.is_dir():
            return Pruning((), (), 0, dry_run)
        with locked(self.root / LOCK):  # no promotion meanwhile
            sizes = self.sizes()
            kept = retained(sizes, self.current_version(), self.promoted_versions(), keep)
            gone = sorted(set(sizes) - kept)
            if not dry_run:
                for version in gone:
                    self.discard(version)
        freed = sum(sizes[v] for v in gone)
        return Pruning(tuple(sorted(kept)), tuple(gone), freed, dry_run)

    def discard(self, version: str) -> None:
        """Delete ``version``'s folder (renamed aside first: never seen half deleted) and
        its compiled rankers."""
        folder = self.root / version
        if folder.is_dir():
            aside = self.root / f".discarded-{version}-{uuid.uuid4().hex[:8]}"
            os.rename(folder, aside)
            shutil.rmtree(aside, ignore_errors=True)
        cache = cache_dir_of(self.root)
        if cache.is_dir():
            for entry in cache.glob(f"{version}-*"):
                entry.unlink(missing_ok=True)
