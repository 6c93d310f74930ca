"""What one kept context of the learned path holds, field by field.

    .venv/bin/python benchmarks/kept_memory.py [--requests 300] [--kept-orders 4000]

On the learned store of ``benchmarks/learned_store.py``, in process: ``--requests``
new contexts of each mix (personal home, product pages, carts; ``learned_profile``'s
mixes), every one kept (the stores are sized above the total), then each of the
three stores a worker keeps per (context, time bucket) is walked object by object:
the kept candidates (every source's proposal and the pool), the scored orders and
the learned slates. Reported per store and per field: bytes per kept context
(numpy arrays by their buffers, a view by the array it keeps alive; Python objects
by ``sys.getsizeof``; an object reached twice counted once, at its first field;
``entry.0`` is the value, ``entry.1`` the catalog indices it depends on), and
``tracemalloc``'s count of what the kept entries hold (the memory freed when the
stores are emptied) as a check on the walk.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import sys
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from learned_profile import mixes, open_store  # noqa: E402
from learned_store import DAYS, prepare_learned  # noqa: E402


def deep_size(obj: Any, seen: set[int]) -> int:
    """Bytes ``obj`` holds that ``seen`` has not counted yet (it is updated)."""
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        own = sys.getsizeof(obj)  # a view's header only; an owner's buffer too
        return own + (deep_size(obj.base, seen) if obj.base is not None else 0)
    if isinstance(obj, str | bytes | int | float | bool | type(None)):
        return sys.getsizeof(obj)
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        return size + sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    if isinstance(obj, list | tuple | set | frozenset):
        return size + sum(deep_size(v, seen) for v in obj)
    if dataclasses.is_dataclass(obj):
        fields = [getattr(obj, f.name) for f in dataclasses.fields(obj)]
        if hasattr(obj, "__dict__"):
            size += sys.getsizeof(obj.__dict__)
        return size + sum(deep_size(v, seen) for v in fields)
    return size


def breakdown(obj: Any, seen: set[int], prefix: str, out: dict[str, int], depth: int) -> None:
    """Bytes per field path (``depth`` levels of dataclass/tuple fields named)."""
    if depth == 0 or not (dataclasses.is_dataclass(obj) or isinstance(obj, tuple)):
        out[prefix] += deep_size(obj, seen)
        return
    if id(obj) in seen:
        return
    seen.add(id(obj))
    out[prefix + " (object)"] += sys.getsizeof(obj)
    if dataclasses.is_dataclass(obj):
        parts = [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)]
    else:
        parts = [(str(i), v) for i, v in enumerate(obj)]
    for name, v in parts:
        breakdown(v, seen, f"{prefix}.{name}", out, depth - 1)


def entries(store: Any) -> list[Any]:
    """Each kept entry and the catalog indices it depends on (``pipeline/kept.py``)."""
    return [(value, deps) for value, deps, _, _ in store._data.values()]


def measured(values: list[Any], seen: set[int], depth: int) -> dict[str, Any]:
    fields: dict[str, int] = defaultdict(int)
    for v in values:
        breakdown(v, seen, "entry", fields, depth)
    n = max(len(values), 1)
    total = sum(fields.values())
    return {
        "entries": len(values),
        "bytes_per_entry": round(total / n),
        "fields_bytes_per_entry": {
            k: round(b / n) for k, b in sorted(fields.items(), key=lambda kv: -kv[1]) if b / n >= 50
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=300, help="new contexts of each mix")
    ap.add_argument("--kept-orders", type=int, default=4000)
    ap.add_argument("--depth", type=int, default=4, help="levels of fields named")
    ap.add_argument("--products", type=int, default=2_000)
    ap.add_argument("--people", type=int, default=2_000)
    ap.add_argument("--days", type=int, default=DAYS)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/shelfwise-bench-serve"))
    args = ap.parse_args()
    folder = prepare_learned(args.workdir, args.products, args.people, args.days)
    load = os.getloadavg()
    rt = open_store(folder)
    rec = rt.recommender
    for store in (rec.kept_orders.candidates, rec.kept_orders.scored, rec.learned_slates):
        store.max_entries = args.kept_orders
    try:
        batches = mixes(rt, args.requests)
        tracemalloc.start()
        for reqs in batches.values():
            for r in reqs:
                rec.recommend(r)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
        stores = {
            "candidates": rec.kept_orders.candidates,
            "scored": rec.kept_orders.scored,
            "learned_slates": rec.learned_slates,
        }
        contexts = max(len(s) for s in stores.values())
        seen: set[int] = set()
        out: dict[str, Any] = {
            "load_average": [round(x, 2) for x in load],
            "requests": {m: len(r) for m, r in batches.items()},
        }
        walked = {name: entries(store) for name, store in stores.items()}  # alive: ids unique
        for name, values in walked.items():
            out[name] = measured(values, seen, args.depth)
        del walked
        for store in stores.values():
            store._data.clear()
        gc.collect()
        freed = held - tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        out["kept_contexts"] = contexts
        out["bytes_per_context_walked"] = round(
            sum(out[n]["bytes_per_entry"] * out[n]["entries"] for n in stores) / contexts
        )
        out["bytes_per_context_tracemalloc"] = round(freed / contexts)
        print(json.dumps(out, indent=2))
    finally:
        rt.close()


if __name__ == "__main__":
    main()
