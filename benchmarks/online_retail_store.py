"""UCI Online Retail in a SQLite store, imported by this checkout (setup, not measured).

A store file left by an earlier run was imported by the code of that day: the
events are the same, but what the catalog import derives (prices, categories)
may have changed since, and with it every figure of shelfwise's own sources
while the peers' (events only) stay put. A backtest at one commit gave 0.3532
NDCG@10 at 2011-09-02 on a file kept from an earlier session and 0.3547 on one
imported afresh. So by default every run imports into a temporary file of its
own (about a minute); ``--db PATH`` keeps one for repeated runs of one checkout.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shelfwise.config import load_settings
from shelfwise.contracts.eventstore import EventStore
from shelfwise.importers import load_source
from shelfwise.importers.registry import read_dataset
from shelfwise.runtime import Runtime


def shared_data() -> Path:
    """``SHARED_DATA_DIR``, else the first ``shared/data`` walking up (clone or worktree)."""
    given = os.environ.get("SHARED_DATA_DIR")
    if given:
        return Path(given)
    here = Path(__file__).resolve()
    return next(
        (f / "shared" / "data" for f in here.parents if (f / "shared" / "data").is_dir()),
        here.parents[2] / "shared" / "data",
    )


@contextmanager
def online_retail(db: Path | None = None, model_dir: Path | None = None) -> Iterator[Runtime]:
    """A runtime on Online Retail: in ``db`` (imported into when it holds no event, else
    used as it is), or in a temporary file imported now and removed afterwards."""
    if db is None:
        scratch: Path | None = Path(tempfile.mkdtemp(prefix="shelfwise-or-"))
        path = scratch / "online_retail.db"
    else:
        scratch, path = None, db
    extra = {} if model_dir is None else {"model_dir": model_dir}
    runtime = Runtime.open(load_settings(database_url=f"sqlite:///{path}", **extra))
    try:
        if EventStore(runtime.db).count() == 0:
            print("importing Online Retail (setup, not measured) ...", flush=True)
            data = read_dataset("online_retail", None, shared_data())
            load_source(data, runtime.catalog, runtime.ingestor)
            runtime.snapshot.load()
        yield runtime
    finally:
        runtime.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
