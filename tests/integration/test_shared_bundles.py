"""Bundles in the database (``bundle_store = "database"``), on SQLite and PostgreSQL: what
one machine writes and promotes, another fetches into its own cache, verified; chunks,
shared content, altered copies and concurrent writers."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from shelfwise.bundles import BundleError, DatabaseBundleStore, ModelBundle
from shelfwise.config import Settings
from shelfwise.errors import NotFound
from shelfwise.runtime import Runtime
from shelfwise.store.tables import bundle_blobs, bundle_chunks, bundles
from shelfwise.training.job import train
from tests import shop_fixture
from tests.unit.test_bundle import write

CHUNK = 1000  # bytes: every array of the tiny bundle spans several chunks


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def publish(store: DatabaseBundleStore, scratch: Path) -> ModelBundle:
    """A bundle written into ``scratch`` (a trainer's folder), published to ``store``."""
    bundle = write(scratch)
    store.publish(bundle.path)
    return bundle


def count(runtime: Runtime, table: object) -> int:
    with runtime.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_a_promoted_bundle_is_fetched_chunk_by_chunk_into_another_cache(
    runtime: Runtime, tmp_path: Path
) -> None:
    trainer = DatabaseBundleStore(runtime.db, tmp_path / "trainer", chunk_bytes=CHUNK)
    server = DatabaseBundleStore(runtime.db, tmp_path / "server")
    assert server.current_version() is None
    with pytest.raises(NotFound):
        server.open()
    first = publish(trainer, tmp_path / "trainer")
    assert server.current_version() is None  # written, not promoted
    trainer.promote(first.version)
    assert server.current_version() == first.version and server.versions() == [first.version]

    opened = server.open(verify=True)
    assert opened.path == tmp_path / "server" / first.version
    assert files_of(opened.path) == files_of(first.path)
    assert all(p.stat().st_mode & 0o222 == 0 for p in opened.path.rglob("*") if p.is_file())
    assert opened.artifacts.items == ("A", "B", "C", "D", "E")
    biggest = max(p.stat().st_size for p in first.path.rglob("*") if p.is_file())
    assert biggest > CHUNK and count(runtime, bundle_chunks) > count(runtime, bundle_blobs)
    assert not [
        p for p in (tmp_path / "server").iterdir() if p.name.startswith(".fetch-") and p.is_dir()
    ]

    # A second bundle: only the content the first lacks is stored again.
    blobs = count(runtime, bundle_blobs)
    second = publish(trainer, tmp_path / "trainer")
    trainer.promote(second.version)
    files = files_of(second.path)
    changed = {k for k, v in files_of(first.path).items() if files.get(k) != v}
    assert "bundle.json" in changed
    assert count(runtime, bundle_blobs) == blobs + len(changed) - 1  # less MANIFEST.json
    assert server.open(verify=True).version == second.version
    assert server.promoted_versions() == {first.version, second.version}


def test_content_altered_in_the_database_is_refused_and_the_last_good_one_serves(
    runtime: Runtime, tmp_path: Path
) -> None:
    trainer = DatabaseBundleStore(runtime.db, tmp_path / "trainer", chunk_bytes=CHUNK)
    good = publish(trainer, tmp_path / "trainer")
    trainer.promote(good.version)
    spoilt = publish(trainer, tmp_path / "trainer")
    trainer.promote(spoilt.version)
    ModelBundle.load(spoilt.path, verify=True)  # the trainer's own copy is fine
    sha = _sha_of(runtime, spoilt.version, "bundle.json")  # content of this bundle only
    with runtime.db.engine.begin() as conn:
        altered = conn.execute(
            update(bundle_chunks)
            .where(bundle_chunks.c.sha256 == sha, bundle_chunks.c.start == 0)
            .values(data=b"{" + b" " * (CHUNK - 1))
        )
        assert altered.rowcount == 1

    server = DatabaseBundleStore(runtime.db, tmp_path / "server")
    with pytest.raises(BundleError) as err:
        server.open(spoilt.version, verify=True)
    assert err.value.code == "bundle_corrupt" and "checksum" in err.value.message
    assert not (tmp_path / "server" / spoilt.version).exists()
    bundle, refused = DatabaseBundleStore(runtime.db, tmp_path / "other").open_last_good()
    assert bundle is not None and bundle.version == good.version
    assert [(v, e.code) for v, e in refused] == [(spoilt.version, "bundle_corrupt")]


def _sha_of(runtime: Runtime, version: str, rel: str) -> str:
    with runtime.db.engine.connect() as conn:
        manifest = conn.execute(
            select(bundles.c.manifest).where(bundles.c.version == version)
        ).scalar_one()
    return str(json.loads(manifest)["files"][rel]["sha256"])


def test_an_altered_cached_copy_is_fetched_again(runtime: Runtime, tmp_path: Path) -> None:
    trainer = DatabaseBundleStore(runtime.db, tmp_path / "trainer")
    bundle = publish(trainer, tmp_path / "trainer")
    trainer.promote(bundle.version)
    server = DatabaseBundleStore(runtime.db, tmp_path / "server")
    cached = server.open().path / "arrays" / "popular.scores.npy"
    cached.chmod(0o644)
    data = bytearray(cached.read_bytes())
    data[-1] ^= 0xFF
    cached.write_bytes(bytes(data))
    with pytest.raises(BundleError):
        ModelBundle.load(cached.parents[1], verify=True)
    assert server.open(verify=True).version == bundle.version
    assert cached.read_bytes() == (bundle.path / "arrays" / "popular.scores.npy").read_bytes()


def test_concurrent_writers_share_content_and_a_version_is_written_once(
    runtime: Runtime, tmp_path: Path
) -> None:
    folders = [write(tmp_path / f"trainer{i}") for i in range(3)]
    outcomes: list[tuple[str, str]] = []  # (version, "published" or the error's code)

    def publish_all(i: int) -> None:
        store = DatabaseBundleStore(runtime.db, tmp_path / f"trainer{i}", chunk_bytes=CHUNK)
        for bundle in folders:
            try:
                store.publish(bundle.path)
                outcomes.append((bundle.version, "published"))
            except BundleError as e:
                outcomes.append((bundle.version, e.code))

    threads = [threading.Thread(target=publish_all, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for bundle in folders:  # each version written by one writer; the others were told
        mine = sorted(code for version, code in outcomes if version == bundle.version)
        assert mine == ["bundle_exists", "bundle_exists", "published"]
    server = DatabaseBundleStore(runtime.db, tmp_path / "server")
    assert server.versions() == sorted(b.version for b in folders)
    for bundle in folders:
        assert files_of(server.open(bundle.version, verify=True).path) == files_of(bundle.path)


def test_a_second_machine_follows_the_trainers_promotions(
    settings: Settings, tmp_path: Path
) -> None:
    shared = settings.model_copy(update={"bundle_store": "database"})
    trainer = Runtime.open(shared.model_copy(update={"model_dir": tmp_path / "trainer"}))
    machine = Runtime.open(shared.model_copy(update={"model_dir": tmp_path / "machine"}))
    try:
        shop_fixture.fill(trainer)
        first = train(trainer, force=True).bundle.version
        machine.load_last_good_bundle()
        assert machine.bundle is not None and machine.bundle.version == first
        watch = machine.bundle_watcher(interval=60)
        assert not watch.check()
        second = train(trainer, promote=False).bundle.version
        assert not watch.check() and machine.bundle.version == first  # not promoted
        third = train(trainer, force=True).bundle.version
        assert watch.check() and machine.bundle.version == third
        assert sorted(
            p.name for p in (tmp_path / "machine").iterdir() if not p.name.startswith(".")
        ) == [first, third]
        assert {first, second, third} <= set(machine.bundle_store.versions())
    finally:
        trainer.close()
        machine.close()


def test_a_manifest_naming_a_file_outside_its_bundle_is_refused(
    runtime: Runtime, tmp_path: Path
) -> None:
    trainer = DatabaseBundleStore(runtime.db, tmp_path / "trainer")
    bundle = publish(trainer, tmp_path / "trainer")
    trainer.promote(bundle.version)
    manifest = json.loads((bundle.path / "MANIFEST.json").read_text())
    manifest["files"]["../../escaped.json"] = manifest["files"].pop("items.json")
    with runtime.db.engine.begin() as conn:
        conn.execute(
            update(bundles)
            .where(bundles.c.version == bundle.version)
            .values(manifest=json.dumps(manifest))
        )
    server = DatabaseBundleStore(runtime.db, tmp_path / "cache" / "server")
    with pytest.raises(BundleError) as err:
        server.open(verify=True)
    assert err.value.code == "bundle_invalid"
    assert not list(tmp_path.rglob("escaped.json"))


def _blob_shas(runtime: Runtime, table: Any) -> set[str]:
    with runtime.db.engine.connect() as conn:
        return set(conn.execute(select(table.c.sha256).distinct()).scalars())


def _named(folder: Path) -> dict[str, int]:
    """sha256 -> bytes of every file a bundle folder's manifest names."""
    files = json.loads((folder / "MANIFEST.json").read_text())["files"]
    return {m["sha256"]: int(m["bytes"]) for m in files.values()}


def test_pruning_deletes_old_bundles_and_the_content_only_they_held(
    runtime: Runtime, tmp_path: Path
) -> None:
    trainer = DatabaseBundleStore(runtime.db, tmp_path / "trainer", chunk_bytes=CHUNK)
    b = [publish(trainer, tmp_path / "trainer") for _ in range(4)]
    for x in b[:3]:
        trainer.promote(x.version)  # b[2] promoted; b[3] written after it
    server = DatabaseBundleStore(runtime.db, tmp_path / "server")
    server.open(b[0].version)
    server.open()
    chunks = count(runtime, bundle_chunks)

    dry = server.prune(keep=1, dry_run=True)
    assert dry.removed == (b[0].version,)
    assert dry.kept == (b[1].version, b[2].version, b[3].version)
    only_b0 = set(_named(b[0].path)) - {s for x in b[1:] for s in _named(x.path)}
    assert only_b0 and dry.freed_bytes == sum(_named(b[0].path)[s] for s in only_b0)
    assert count(runtime, bundle_chunks) == chunks and len(server.versions()) == 4

    done = server.prune(keep=1)
    assert (done.removed, done.freed_bytes) == (dry.removed, dry.freed_bytes)
    assert server.versions() == [x.version for x in b[1:]]
    named = {s for x in b[1:] for s in _named(x.path)}
    # Every blob a kept bundle names stayed; nothing else did.
    assert _blob_shas(runtime, bundle_blobs) == named
    assert _blob_shas(runtime, bundle_chunks) == named
    cached = sorted(p.name for p in (tmp_path / "server").iterdir() if not p.name.startswith("."))
    assert cached == [b[2].version]  # b[0]'s copy left this machine's cache
    fresh = DatabaseBundleStore(runtime.db, tmp_path / "fresh")
    for x in b[1:]:
        assert files_of(fresh.open(x.version, verify=True).path) == files_of(x.path)
    with pytest.raises(NotFound):
        trainer.promote(b[0].version)
    assert server.prune(keep=1).removed == ()


def test_a_publication_puts_back_shared_content_a_pruning_took(
    runtime: Runtime, tmp_path: Path
) -> None:
    trainer = DatabaseBundleStore(runtime.db, tmp_path / "trainer", chunk_bytes=CHUNK)
    old = publish(trainer, tmp_path / "trainer")  # never promoted: a pruning takes it all
    new = write(tmp_path / "trainer")
    n_files = len(json.loads((new.path / "MANIFEST.json").read_text())["files"])
    put = trainer._put_blob
    calls: list[str] = []

    def put_then_prune(path: Path, sha256: str, size: int) -> None:
        put(path, sha256, size)
        calls.append(sha256)
        if len(calls) == n_files:  # every file found or stored; the manifest is next
            pruned = DatabaseBundleStore(runtime.db, tmp_path / "admin").prune(keep=0)
            assert pruned.removed == (old.version,)

    trainer._put_blob = put_then_prune  # type: ignore[method-assign]
    trainer.publish(new.path)
    assert len(calls) == 2 * n_files  # found gone at the manifest's insert: put again
    assert trainer.versions() == [new.version]
    server = DatabaseBundleStore(runtime.db, tmp_path / "server")
    assert files_of(server.open(new.version, verify=True).path) == files_of(new.path)
