"""The bundles of a model folder and the pointer to the promoted one.

``<model_dir>/CURRENT`` names the promoted version and is replaced atomically;
``<model_dir>/PROMOTIONS`` lists every version ever promoted, one a line: the
versions a server may fall back to when the promoted one fails verification.
"""

from __future__ import annotations

import os
from collections.abc import Callable
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
