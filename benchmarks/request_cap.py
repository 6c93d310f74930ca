"""How many home requests a training window needs: the ranker's validation NDCG against the cap.

    .venv/bin/python benchmarks/request_cap.py --products 20000 --people 4100 --days 84
        [--caps 500,1000,2000] [--seeds 3]

On the (built) store of ``benchmarks/learned_store.py``, the home ranker's windows
(the ``requests`` task, as ``shelfwise train --ranker`` makes them, without the
logged impressions) are built once with every active person asked (``max_people``
None). For each cap, each training window keeps at most that many of its requests,
drawn evenly (``--seeds`` draws), and the ranker is trained early-stopped on them
(``ranking.training``'s own fit); it is scored by NDCG@10 on the whole validation
window, as the training's choice among designs scores it. Only the validation
window (the training's own) is read: this chooses ``max_people``. Wall and CPU
seconds of building the windows are reported too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from learned_store import _settings, store_arguments  # noqa: E402
from shelfwise.candidates.content import fit_content  # noqa: E402
from shelfwise.candidates.model import SourceFits  # noqa: E402
from shelfwise.ranking.dataset import TrainingSet  # noqa: E402
from shelfwise.ranking.training import (  # noqa: E402
    RankerTrainingConfig,
    build_windows,
    group_ndcg,
    item_columns,
)
from shelfwise.ranking.training import _early_stopped as early_stopped  # noqa: E402
from shelfwise.runtime import Runtime  # noqa: E402
from shelfwise.training.job import _last_event, load_sources_config  # noqa: E402
from shelfwise.training.reader import read_log  # noqa: E402


def capped(window: TrainingSet, cap: int, seed: int) -> TrainingSet:
    """At most ``cap`` of the window's requests, drawn evenly."""
    if len(window.groups) <= cap:
        return window
    keep = np.sort(np.random.default_rng(seed).choice(len(window.groups), cap, replace=False))
    return window.keep_groups(keep)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    store_arguments(ap)
    ap.add_argument("--caps", default="500,1000,2000", help="requests a window, comma-separated")
    ap.add_argument("--seeds", type=int, default=3, help="draws of each cap")
    args = ap.parse_args()
    folder = args.workdir / f"learned-{args.products}-{args.people}-{args.days}-{args.seed}"
    shop = Runtime.open(_settings(folder))
    try:
        config = load_sources_config(None)
        last = _last_event(shop)
        assert last is not None, "the store has no events"
        end = last + timedelta(microseconds=1)
        shop.snapshot.refresh()
        ids = list(shop.snapshot.ids)
        people = shop.identity.snapshot()
        log = read_log(shop.db, end - timedelta(days=400), end, items=ids, resolve=people)
        products = list(shop.snapshot.products)
    finally:
        shop.close()
    started, cpu = time.perf_counter(), time.process_time()
    prices = log.item_prices()
    content = fit_content([*products, *[None] * (log.n_items - len(products))], prices,
                          config.content)  # fmt: skip
    fits = SourceFits(products, config, content=content)
    artifacts = fits(log)
    items = item_columns(artifacts, products, log.item_prices())
    cfg = RankerTrainingConfig(max_people=None)
    windows = build_windows(log, products, items, config, int(log.end) + 1, cfg, fit_sources=fits)[
        False
    ]
    built = {"wall_s": round(time.perf_counter() - started, 1),
             "cpu_s": round(time.process_time() - cpu, 1)}  # fmt: skip
    sizes = [len(w.groups) for w in windows]
    print(json.dumps({"windows' requests (validation first)": sizes, "built": built}), flush=True)
    valid = windows[0]
    rows: dict[str, object] = {}
    for cap in [None, *(int(c) for c in args.caps.split(","))]:
        scores = []
        for seed in range(1 if cap is None else args.seeds):
            train = [windows[0]] + [
                w if cap is None else capped(w, cap, 1_000 * seed + n)
                for n, w in enumerate(windows[1:], 1)
            ]
            t = time.process_time()
            _, joined = early_stopped(train, cfg)
            scores.append(group_ndcg(joined.valid_raw, valid.y, valid.groups))
            fit = time.process_time() - t
        rows[str(cap or "all")] = {
            "ndcg@10": round(statistics.mean(scores), 4),
            "range": [round(min(scores), 4), round(max(scores), 4)],
            "train requests": joined.requests,
            "fit cpu_s": round(fit, 1),
        }
        print(json.dumps({str(cap or "all"): rows[str(cap or "all")]}), flush=True)
    out = folder / "request_cap.json"
    out.write_text(json.dumps({"windows": sizes, "built": built, "caps": rows}, indent=2))


if __name__ == "__main__":
    main()
