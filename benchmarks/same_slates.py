"""The learned store's slates, byte for byte: to check that a speed change changed none.

    .venv/bin/python benchmarks/same_slates.py --out after.jsonl
    PYTHONPATH=<other checkout>/src .venv/bin/python benchmarks/same_slates.py --out before.jsonl
    cmp before.jsonl after.jsonl

(``run_all.py`` runs it once: the answers go to ``slates.jsonl`` in the work directory.)

On the store of ``benchmarks/learned_store.py``: ``--requests`` contexts of each mix
of ``learned_profile.py`` (home, both product-page placements, carts), each asked
four times at a fixed clock, unrecorded, with fixed ``rec_id``s (which seed the
exploration draws): explained (computed), explained again under another ``rec_id``
(from the kept order), plain under that ``rec_id`` and plain under its own. Every
answer is one JSON line (keys sorted; the stage timings left out): items, scores,
propensities, reasons, contributions, the trace with the rules' decisions.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from learned_profile import MIXES, mixes, open_store  # noqa: E402
from learned_store import store_arguments, store_of  # noqa: E402

NOW = datetime(2026, 12, 7, 12, 0, 30, tzinfo=UTC)


def timeless(answer: Any) -> Any:
    """The answer without its stage timings (wall clock: never the same twice)."""
    if isinstance(answer, dict):
        return {k: timeless(v) for k, v in answer.items() if k != "stages_ms"}
    if isinstance(answer, list):
        return [timeless(v) for v in answer]
    return answer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=150, help="contexts per mix")
    ap.add_argument("--out", type=Path, help="default: slates.jsonl in the work directory")
    store_arguments(ap)
    args = ap.parse_args()
    folder = store_of(args)
    path = args.out or args.workdir / "slates.jsonl"
    rt = open_store(folder)
    written = 0
    try:
        rec, batches = rt.recommender, mixes(rt, args.requests)
        with path.open("w") as out:
            for mix in MIXES:
                for i, req in enumerate(batches[mix][: args.requests]):
                    explained = req.model_copy(update={"explain": True})
                    asks = (
                        (explained, f"{mix}-{i}-a"),
                        (explained, f"{mix}-{i}-b"),
                        (req, f"{mix}-{i}-b"),
                        (req, f"{mix}-{i}-d"),
                    )
                    for n, (r, rec_id) in enumerate(asks):
                        answer = rec.recommend(r, NOW, record=False, rec_id=rec_id)
                        line = {"mix": mix, "i": i, "ask": n, "answer": timeless(answer)}
                        out.write(json.dumps(line, sort_keys=True) + "\n")
                        written += 1
    finally:
        rt.close()
    print(f"{written} answers written to {path}")


if __name__ == "__main__":
    main()
