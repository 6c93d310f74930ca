"""Bundles in the database (``BUNDLE_STORE=database``), so every machine reads them.

Training writes a bundle's folder as always (into its own ``MODEL_DIR``), then
:meth:`DatabaseBundleStore.write` publishes it: each file's content goes into
``bundle_chunks`` addressed by its SHA-256 and byte offset, in chunks of a few
MiB (no value near PostgreSQL's 1 GB ``bytea`` limit, no file held in memory),
then a ``bundle_blobs`` row says that content is complete, then one ``bundles``
row holds the manifest. Content an earlier bundle already holds is not written
again; nothing is ever updated. Promotion is a row of ``bundle_promotions``: the
latest names the promoted bundle, and every worker's watch polls just that row.

A server's ``MODEL_DIR`` is its local cache. :meth:`DatabaseBundleStore.open`
fetches a bundle the machine does not hold yet into a hidden folder, one chunk
at a time, checks each file against the manifest's digest, writes the manifest
last and renames the folder into place: the same layout (read-only files,
memory-mapped arrays) a folder store has, loaded and verified the same way. The
workers of one machine fetch a version once (a file lock). A cached copy that
fails verification is set aside and fetched again; content that fails its digest
in the database is refused (``bundle_corrupt``) like an altered file, and is not
fetched again by that process.

Concurrent writers: chunks and blobs are written with "insert, or keep the row
that is there" (a chunk's key says what its bytes are, so any writer's row is
right), each chunk in its own short transaction (SQLite's one write lock is
never held for a whole file); a version is inserted once (a second writer gets
``bundle_exists``).

Pruning (:meth:`DatabaseBundleStore.prune`) deletes old bundles' rows and the
content no remaining bundle names, in one transaction that holds the bundles
table against writers (PostgreSQL: an EXCLUSIVE table lock, which lets readers
through; SQLite: the database's write lock). A promotion reads its bundle's row
``FOR SHARE`` in its own transaction, so it never names a bundle a pruning is
deleting; a publication checks, in the transaction that inserts its manifest,
that every blob it named is still there, and puts back what a pruning took.
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

from sqlalchemy import Connection, delete, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from shelfwise.bundles.model import MANIFEST, READ_ONLY, BundleError, BundleInfo, ModelBundle
from shelfwise.bundles.store import BundleStore, Pruning, locked, retained
from shelfwise.candidates.model import Artifacts
from shelfwise.config import Settings
from shelfwise.errors import NotFound
from shelfwise.store import Database
from shelfwise.store.tables import bundle_blobs, bundle_chunks, bundle_promotions, bundles


class _ContentPruned(Exception):
    """A pruning deleted content a publication had found already stored."""


CHUNK_BYTES = 4 << 20  # 4 MiB: small for a database value, large enough for few round trips


def bundle_store(settings: Settings, db: Database) -> BundleStore:
    """The bundle store ``settings.bundle_store`` names: the model folder, or the database
    (with ``model_dir`` as this machine's cache)."""
    if settings.bundle_store == "database":
        return DatabaseBundleStore(db, settings.model_dir)
    return BundleStore(settings.model_dir)


def _holds(folder: Path, manifest: str) -> bool:
    """``folder`` is a complete copy of the bundle ``manifest`` describes (its files are
    checked when it is loaded)."""
    try:
        return (folder / MANIFEST).read_text() == manifest
    except OSError:
        return False


class DatabaseBundleStore(BundleStore):
    """Bundles and promotions in ``db``; ``cache`` (the ``model_dir``) holds the bundles
    this machine has written or fetched."""

    def __init__(self, db: Database, cache: Path, chunk_bytes: int = CHUNK_BYTES) -> None:
        super().__init__(cache)
        self.db = db
        self.chunk_bytes = chunk_bytes
        # Versions whose content failed its digest in the database: immutable, so
        # fetching them again (at every poll of the watch) would only fail again.
        self._refused: dict[str, BundleError] = {}

    # --- what the database holds -----------------------------------------------

    def versions(self) -> list[str]:
        with self.db.engine.connect() as conn:
            return list(
                conn.execute(select(bundles.c.version).order_by(bundles.c.version)).scalars()
            )

    def current_version(self) -> str | None:
        """The latest promotion: one indexed row, what every worker's watch polls."""
        with self.db.engine.connect() as conn:
            version: str | None = conn.execute(
                select(bundle_promotions.c.version).order_by(bundle_promotions.c.id.desc()).limit(1)
            ).scalar_one_or_none()
        return version

    def promoted_versions(self) -> set[str]:
        with self.db.engine.connect() as conn:
            return set(conn.execute(select(bundle_promotions.c.version).distinct()).scalars())

    def manifest(self, version: str) -> str:
        """The manifest of ``version`` as written (NotFound when no such bundle)."""
        with self.db.engine.connect() as conn:
            text: str | None = conn.execute(
                select(bundles.c.manifest).where(bundles.c.version == version)
            ).scalar_one_or_none()
        if text is None:
            raise NotFound(f"unknown model bundle {version!r}", code="model_not_found")
        return text

    # --- writing ---------------------------------------------------------------

    def write(
        self,
        artifacts: Artifacts,
        info: BundleInfo,
        extra: Callable[[Path], None] | None = None,
    ) -> ModelBundle:
        """Write the bundle into this machine's cache, then publish it to the database."""
        bundle = super().write(artifacts, info, extra)
        self.publish(bundle.path)
        return bundle

    def publish(self, folder: Path) -> None:
        """Copy a complete bundle folder into the database: every file's content that is
        not there yet, then the manifest (the bundle exists from that commit on)."""
        written = (folder / MANIFEST).read_text()
        manifest = json.loads(written)
        files: dict[str, dict[str, Any]] = manifest["files"]
        row = {
            "version": manifest["version"],
            "manifest": written,
            "bytes": sum(int(m["bytes"]) for m in files.values()),
            "created_at": datetime.now(UTC),
        }
        needed = {meta["sha256"] for meta in files.values()}
        for _ in range(3):  # a pruning can take shared content between the two steps
            for rel, meta in files.items():
                self._put_blob(folder / rel, meta["sha256"], meta["bytes"])
            try:
                with self.db.checked_write() as conn:
                    conn.execute(insert(bundles).values(**row))
                    if self._held(conn, needed) < len(needed):
                        raise _ContentPruned
                return
            except _ContentPruned:
                continue
            except IntegrityError as e:
                raise BundleError(
                    f"bundle {manifest['version']} exists already", code="bundle_exists"
                ) from e
        raise BundleError(
            f"bundle {manifest['version']}: its content was pruned while it was published",
            code="bundle_incomplete",
        )

    @staticmethod
    def _held(conn: Connection, shas: set[str]) -> int:
        if not shas:
            return 0
        found = conn.execute(
            select(func.count()).where(bundle_blobs.c.sha256.in_(sorted(shas)))
        ).scalar_one()
        return int(found)

    def _insert_or_keep(self, conn: Connection, table: Any, row: dict[str, Any]) -> None:
        dialect = postgresql if self.db.backend == "postgresql" else sqlite
        conn.execute(dialect.insert(table).values(**row).on_conflict_do_nothing())

    def _put_blob(self, path: Path, sha256: str, size: int) -> None:
        with self.db.engine.connect() as conn:
            held = conn.execute(
                select(bundle_blobs.c.bytes).where(bundle_blobs.c.sha256 == sha256)
            ).scalar_one_or_none()
        if held is not None:
            return
        digest, start = hashlib.sha256(), 0
        with path.open("rb") as f:
            for data in iter(lambda: f.read(self.chunk_bytes), b""):
                digest.update(data)
                with self.db.engine.begin() as conn:
                    row = {"sha256": sha256, "start": start, "data": data}
                    self._insert_or_keep(conn, bundle_chunks, row)
                start += len(data)
        if (start, digest.hexdigest()) != (size, sha256):
            raise BundleError(f"{path} changed while it was published", code="bundle_corrupt")
        with self.db.engine.begin() as conn:
            self._insert_or_keep(conn, bundle_blobs, {"sha256": sha256, "bytes": size})

    def promote(self, version: str) -> None:
        """Add a promotion row: from its commit on, every worker's watch loads ``version``."""
        with self.db.checked_write() as conn:
            # A published (so complete) bundle, or NotFound; FOR SHARE: not pruned meanwhile.
            row = select(bundles.c.version).where(bundles.c.version == version)
            if self.db.backend == "postgresql":
                row = row.with_for_update(read=True)
            if conn.execute(row).scalar_one_or_none() is None:
                raise NotFound(f"unknown model bundle {version!r}", code="model_not_found")
            conn.execute(
                insert(bundle_promotions).values(version=version, promoted_at=datetime.now(UTC))
            )

    # --- pruning ---------------------------------------------------------------

    def sizes(self) -> dict[str, int]:
        with self.db.engine.connect() as conn:
            return {v: int(b) for v, b in conn.execute(select(bundles.c.version, bundles.c.bytes))}

    def prune(self, keep: int, *, dry_run: bool = False) -> Pruning:
        """Delete every bundle :func:`retained` does not keep, and the content no kept
        bundle names (its chunks with it); then drop from this machine's cache the
        versions the database no longer holds (a cached version newer than every
        published one is a bundle this machine is still publishing: it stays)."""
        if keep < 0:
            raise ValueError("keep must be 0 or more")
        with self.db.checked_write() as conn:
            if self.db.backend == "postgresql":
                conn.execute(text("LOCK TABLE bundles IN EXCLUSIVE MODE"))
            manifests = {
                v: json.loads(m)["files"]
                for v, m in conn.execute(select(bundles.c.version, bundles.c.manifest))
            }
            current = conn.execute(
                select(bundle_promotions.c.version).order_by(bundle_promotions.c.id.desc()).limit(1)
            ).scalar_one_or_none()
            promoted = set(conn.execute(select(bundle_promotions.c.version)).scalars())
            kept = retained(manifests, current, promoted, keep)
            gone = sorted(set(manifests) - kept)
            named = {m["sha256"] for v in kept for m in manifests[v].values()}
            freed_shas = sorted({m["sha256"] for v in gone for m in manifests[v].values()} - named)
            freed = sum(
                int(b)
                for b in conn.execute(
                    select(bundle_blobs.c.bytes).where(bundle_blobs.c.sha256.in_(freed_shas))
                ).scalars()
            )
            if not dry_run and gone:
                conn.execute(delete(bundles).where(bundles.c.version.in_(gone)))
                conn.execute(delete(bundle_blobs).where(bundle_blobs.c.sha256.in_(freed_shas)))
                conn.execute(delete(bundle_chunks).where(bundle_chunks.c.sha256.in_(freed_shas)))
        if not dry_run:
            self._tidy_cache(set(kept))
        return Pruning(tuple(sorted(kept)), tuple(gone), freed, dry_run)

    def _tidy_cache(self, published: set[str]) -> None:
        newest = max(published, default="")
        for version in BundleStore.versions(self):
            if version not in published and version < newest:
                self.discard(version)

    # --- reading ---------------------------------------------------------------

    def open(
        self, version: str | None = None, *, mmap: bool = True, verify: bool = False
    ) -> ModelBundle:
        """The given version, or the promoted one, from this machine's cache (fetched
        first when the cache lacks it); ``verify``: re-hash every cached file."""
        version = version or self.current_version()
        if version is None:
            raise NotFound("no model bundle has been promoted yet", code="model_not_found")
        if version in self._refused:
            raise self._refused[version]
        manifest = self.manifest(version)
        path = self.root / version
        if not _holds(path, manifest):
            self._fetch(version, manifest)
        try:
            return ModelBundle.load(path, mmap=mmap, verify=verify)
        except BundleError:
            # The local copy went bad (a disk, a hand); the database's copy is the truth.
            self._fetch(version, manifest, replace=True)
            return ModelBundle.load(path, mmap=mmap, verify=verify)

    def _fetch(self, version: str, manifest: str, *, replace: bool = False) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / version
        with locked(self.root / f".fetch-{version}.lock"):
            if _holds(final, manifest) and not replace:
                return  # another worker of this machine fetched it meanwhile
            self.discard(version)  # mapped files stay valid for who maps them
            tmp = self.root / f".fetch-{version}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                for rel, meta in json.loads(manifest)["files"].items():
                    target = tmp / rel
                    if not target.resolve().is_relative_to(tmp.resolve()):
                        raise BundleError(
                            f"bundle {version} names a file outside it: {rel!r}",
                            code="bundle_invalid",
                        )
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self._get_blob(meta["sha256"], int(meta["bytes"]), target, f"{version}: {rel}")
                    target.chmod(READ_ONLY)
                (tmp / MANIFEST).write_text(manifest)
                (tmp / MANIFEST).chmod(READ_ONLY)
                os.rename(tmp, final)
            except BundleError as e:
                self._refused[version] = e
                raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

    def _get_blob(self, sha256: str, size: int, target: Path, what: str) -> None:
        """Stream one file's content into ``target``, checking its size and digest."""
        digest, start = hashlib.sha256(), 0
        with self.db.engine.connect() as conn, target.open("wb") as out:
            held = conn.execute(
                select(func.count()).where(bundle_blobs.c.sha256 == sha256)
            ).scalar_one()
            if not held:
                raise BundleError(f"bundle {what} is missing", code="bundle_incomplete")
            while start < size:
                data = conn.execute(
                    select(bundle_chunks.c.data).where(
                        bundle_chunks.c.sha256 == sha256, bundle_chunks.c.start == start
                    )
                ).scalar_one_or_none()
                if not data:
                    raise BundleError(
                        f"bundle {what} is missing bytes from {start}", code="bundle_incomplete"
                    )
                digest.update(data)
                out.write(data)
                start += len(data)
        if (start, digest.hexdigest()) != (size, sha256):
            raise BundleError(f"bundle {what} does not match its checksum", code="bundle_corrupt")
