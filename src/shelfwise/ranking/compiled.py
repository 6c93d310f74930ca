"""The compiled ranker: lleaves' machine code, cached on this machine, never in a bundle.

A model bundle is immutable once written: its manifest covers every file and
loading only reads. lleaves compiles a booster for *this* host's CPU with this
LLVM, so the object does not belong in a bundle that other machines load. It is
cached outside the bundle, in ``<model_dir>/.cache/ranker/``, one entry per
(bundle version, SHA-256 of ``ranker.txt``, served iterations, lleaves and LLVM
versions, CPU): ``<entry>.txt`` (the served trees, lleaves' input) and
``<entry>.so`` (the object).

Workers that start together do not race: on a miss each takes an exclusive
lock on ``<entry>.lock``; the first compiles into temporary names that are
renamed into place (the object last, so an existing ``.so`` is always whole),
the others wake up to a hit and only load it. ``shelfwise train`` compiles
once after writing the bundle, so a server on the same machine starts with a
hit. When the cache folder cannot be written, the model is compiled in memory
for this process only.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import lightgbm as lgb

from shelfwise.ranking.history import FloatArray

log = logging.getLogger(__name__)


class Compiled(Protocol):
    def predict(self, data: FloatArray, n_jobs: int | None = ...) -> FloatArray: ...


def cache_dir_of(model_dir: Path) -> Path:
    """Where the compiled rankers of the bundles under ``model_dir`` are cached."""
    return model_dir / ".cache" / "ranker"


def _toolchain() -> str:
    """What the object depends on besides the model: lleaves, LLVM and this CPU."""
    import llvmlite  # type: ignore[import-untyped]
    import llvmlite.binding as llvm  # type: ignore[import-untyped]

    return "|".join(
        (
            importlib.metadata.version("lleaves"),
            llvmlite.__version__,
            llvm.get_host_cpu_name(),
            llvm.get_host_cpu_features().flatten(),
        )
    )


def entry_name(model_file: Path, iterations: int | None, label: str = "") -> str:
    """The cache entry of ``model_file`` served with ``iterations`` trees (None: all)."""
    digest = hashlib.sha256(model_file.read_bytes())
    digest.update(f"|{iterations}|{_toolchain()}".encode())
    key = digest.hexdigest()[:24]
    return f"{label}-{key}" if label else key


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file is closed
        yield


def _compile(model_text: Path, cache: Path | None) -> Compiled:
    import lleaves  # type: ignore[import-untyped]

    model = lleaves.Model(model_file=str(model_text))
    # lleaves writes the object to ``cache`` when it does not exist, else loads it.
    model.compile(cache=None if cache is None else str(cache), raw_score=True)
    compiled: Compiled = model
    return compiled


def _fill(entry: Path, booster: lgb.Booster, iterations: int | None) -> None:
    """Compile into temporary names, then rename the text and, last, the object."""
    tmp_txt = entry.with_name(f".{entry.name}.{os.getpid()}.txt")
    tmp_obj = entry.with_name(f".{entry.name}.{os.getpid()}.so")
    started = time.perf_counter()
    try:
        booster.save_model(str(tmp_txt), num_iteration=iterations)
        tmp_obj.unlink(missing_ok=True)  # a leftover would be loaded, not written
        _compile(tmp_txt, tmp_obj)
        os.replace(tmp_txt, entry.with_suffix(".txt"))
        os.replace(tmp_obj, entry.with_suffix(".so"))
        log.info("compiled the ranker %s in %.1f s", entry.name, time.perf_counter() - started)
    finally:
        tmp_txt.unlink(missing_ok=True)
        tmp_obj.unlink(missing_ok=True)


def _cached(
    model_file: Path, booster: lgb.Booster, iterations: int | None, cache_dir: Path, label: str
) -> Compiled:
    entry = cache_dir / entry_name(model_file, iterations, label)
    obj = entry.with_suffix(".so")
    if not obj.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        with _locked(entry.with_suffix(".lock")):
            if not obj.is_file():  # another worker may have compiled it meanwhile
                _fill(entry, booster, iterations)
    return _compile(entry.with_suffix(".txt"), obj)


def _in_memory(booster: lgb.Booster, iterations: int | None) -> Compiled:
    with tempfile.TemporaryDirectory(prefix="shelfwise-ranker-") as tmp:
        text = Path(tmp) / "ranker.txt"
        booster.save_model(str(text), num_iteration=iterations)
        return _compile(text, None)


def compile_ranker(
    model_file: Path,
    booster: lgb.Booster,
    iterations: int | None,
    cache_dir: Path | None,
    label: str = "",
) -> Compiled | None:
    """``booster`` (loaded from ``model_file``) compiled with its first ``iterations``
    trees, from the cache when it holds it; None when lleaves is unavailable or fails
    (compilation is an optimisation: LightGBM scores the same)."""
    try:
        import lleaves  # noqa: F401
    except ImportError:
        log.info("lleaves is not installed; scoring with LightGBM")
        return None
    try:
        if cache_dir is not None:
            try:
                return _cached(model_file, booster, iterations, cache_dir, label)
            except OSError as e:
                log.warning("ranker cache %s is not usable (%s); compiling in memory", cache_dir, e)
        return _in_memory(booster, iterations)
    except Exception as e:  # compilation is an optimisation: never fatal
        log.warning("compiling the ranker failed (%s); scoring with LightGBM", type(e).__name__)
        return None
