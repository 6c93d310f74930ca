"""Which entries a full kept store should keep: the served policy against two others.

Replays, per worker, the traffic of ``benchmarks/serve.py``'s learned mixes (run one
after the other, as the benchmark runs them: personal home, every product distinct,
the popularity mix, carts; ``--rounds`` rounds) against ``pipeline.kept.KeptStore``
(least recently used out first: what serving uses) and two scan-resistant
admissions written here for the comparison:

- *first come*: a full store of the current time bucket's entries refuses new ones
  (the policy served between 527c91d and this benchmark);
- *ask counts*: a new entry displaces the least asked of the 8 least recently used
  entries only when asked more often (counts halved every 10 x capacity reads, as in
  TinyLFU).

Each key holds the context and its 60 s bucket, as the learned path's keys do. Printed:
the share of each run's requests served from the store, per policy and per offset of
the first run within its bucket (where the bucket boundaries fall changes the result).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Hashable
from itertools import islice

import numpy as np

from shelfwise.pipeline.kept import KeptStore

UNCHANGED = np.zeros(1, np.int64)
NOTHING = np.zeros(0, np.int32)
# Requests per second a worker gets in each run (half of serve.py's, 2 workers).
RATES = {"home": 700, "pages": 230, "popular": 700, "carts": 220}


class FirstCome(KeptStore[int]):
    def put(self, key: Hashable, stamp: Hashable, value: int, deps: object, seq: int) -> None:
        bucket = key[1]  # type: ignore[index]
        if len(self._data) >= self.max_entries and key not in self._data:
            oldest = next(iter(self._data))
            if oldest[1] >= bucket:  # type: ignore[index]
                return
        super().put(key, stamp, value, deps, seq)  # type: ignore[arg-type]


class AskCounts(KeptStore[int]):
    def __init__(self, max_entries: int) -> None:
        super().__init__(max_entries)
        self.asks: dict[Hashable, int] = {}
        self.reads = 0

    def get(self, key: Hashable, stamp: Hashable, changed_seq: object) -> int | None:
        self.asks[key] = self.asks.get(key, 0) + 1
        self.reads += 1
        if self.reads >= 10 * self.max_entries:
            self.reads = 0
            self.asks = {k: n // 2 for k, n in self.asks.items() if n > 1}
        return super().get(key, stamp, changed_seq)  # type: ignore[arg-type]

    def put(self, key: Hashable, stamp: Hashable, value: int, deps: object, seq: int) -> None:
        data = self._data
        if len(data) >= self.max_entries and key not in data:
            oldest = next(iter(data))
            if oldest[1] >= key[1]:  # type: ignore[index]
                victim = min(islice(data, 8), key=lambda k: self.asks.get(k, 0))
                if self.asks.get(key, 0) <= self.asks.get(victim, 0):
                    return
                del data[victim]
        super().put(key, stamp, value, deps, seq)  # type: ignore[arg-type]


def trace(rng: np.random.Generator, n: int, rounds: int, seconds: float, start: float) -> list:
    """(run, round, clock, context) per request, the runs in serve.py's order."""
    perm = rng.permutation(n)
    weight = 1.0 / np.arange(1, n + 1)
    weight /= weight.sum()
    out = []
    t = start
    for r in range(rounds):
        t += seconds + 3.0  # /health's run
        for run, rate in RATES.items():
            t += 1.5  # the ranker checks; then a warm-up second and the run
            m = int(rate * (seconds + 1))
            if run == "home":
                keys: list[Hashable] = [("h", int(p)) for p in rng.integers(0, n, m)]
            elif run == "pages":
                keys = [("p", int(perm[(r * n // rounds + 2 * i) % n])) for i in range(m)]
            elif run == "popular":
                keys = [("p", int(perm[i])) for i in rng.choice(n, m, p=weight)]
            else:
                who, item = rng.integers(0, n, m), rng.choice(n, m, p=weight)
                keys = [("c", int(p), int(i)) for p, i in zip(who, item, strict=True)]
            out += [(run, r, t + (seconds + 1) * i / m, k) for i, k in enumerate(keys)]
            t += seconds + 1
    return out


def served_share(store: KeptStore[int], requests: list) -> dict[str, float]:
    got: dict[str, list[int]] = {}
    for run, r, t, context in requests:
        key = (context, math.ceil(t / 60) * 60)
        hit = store.get(key, 1, UNCHANGED) is not None
        if not hit:
            store.put(key, 1, 1, NOTHING, 0)
        got.setdefault(f"{run}{r + 1}", []).append(hit)
    return {k: round(float(np.mean(v)), 2) for k, v in got.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--products", type=int, default=2_000, help="and as many people")
    ap.add_argument("--entries", type=int, default=1_600, help="kept_orders")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    policies = {"least recently used (served)": KeptStore, "first come": FirstCome}
    policies["ask counts"] = AskCounts
    for start in (0.0, 20.0, 40.0):
        requests = trace(np.random.default_rng(0), args.products, args.rounds, args.seconds, start)
        print(f"first run {start:.0f} s into its bucket")
        for name, policy in policies.items():
            shares = served_share(policy(args.entries), requests)
            print(f"  {name:30s}", " ".join(f"{k} {v:.2f}" for k, v in shares.items()))


if __name__ == "__main__":
    main()
