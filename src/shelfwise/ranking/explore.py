"""Exploration: a small share of slots for items with little exposure, by Thompson sampling.

Only the candidates handed in (those the rules allowed) are ever considered,
so exploration cannot bypass a rule. An item is eligible when it has been
shown fewer than ``max_exposures`` times. Each eligible item's click rate is
drawn from Beta(1 + prior·p + clicks, 1 + prior·(1 - p) + misses), where p
is the model's own P(engagement): promising but unproven items are tried
first; the pool is the ``POOL`` best-ranked eligible items, which keeps the
draws cheap. The propensity of each explored pick (its chance of being picked
under this rule) is estimated with the same seeded draws and logged, so
offline evaluation can re-weight what exploration showed; exploited items
have propensity 1. Deterministic for a given seed and request.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shelfwise.ranking.history import FloatArray, IntArray

PRIOR_STRENGTH = 10.0
PROPENSITY_DRAWS = 128
POOL = 40  # the most promising eligible items compete for the explored slots


@dataclass(frozen=True)
class Slate:
    rows: IntArray  # candidate rows in served order
    explored: npt.NDArray[np.bool_]
    propensity: FloatArray


def request_rng(seed: int, *parts: str) -> np.random.Generator:
    """A generator fixed by the seed and the request's identity (person, placement, time)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return np.random.default_rng([seed, int.from_bytes(digest, "little")])


def explore_slate(
    order: IntArray,
    k: int,
    probability: FloatArray,
    exposures: FloatArray,
    clicks: FloatArray,
    share: float,
    max_exposures: float,
    rng: np.random.Generator,
) -> Slate:
    """Fill ``k`` slots: the best by ``order`` and ``round(share·k)`` explored items at the end.

    ``order`` ranks candidate rows best first; the other arrays are per candidate row.
    """
    k = min(k, len(order))
    n_explore = round(share * k)
    exploit = order[: k - n_explore]
    if n_explore == 0:
        return Slate(exploit, np.zeros(k, dtype=bool), np.ones(k))
    rest = order[k - n_explore :]
    pool = rest[exposures[rest] < max_exposures][:POOL]
    if len(pool) <= n_explore:
        picked, prop = pool, np.ones(len(pool))
    else:
        p = np.clip(probability[pool], 1e-6, 1 - 1e-6)
        misses = np.maximum(exposures[pool] - clicks[pool], 0.0)
        alpha = 1.0 + PRIOR_STRENGTH * p + clicks[pool]
        beta = 1.0 + PRIOR_STRENGTH * (1.0 - p) + misses
        draws = rng.beta(alpha, beta, size=(PROPENSITY_DRAWS + 1, len(pool)))
        top = np.argpartition(-draws, n_explore - 1, axis=1)[:, :n_explore]
        chosen = top[0][np.argsort(-draws[0, top[0]])]
        counts = np.bincount(top[1:].ravel(), minlength=len(pool))
        picked = pool[chosen]
        prop = np.maximum(counts[chosen] / PROPENSITY_DRAWS, 1.0 / PROPENSITY_DRAWS)
    if len(picked) < n_explore:  # not enough fresh items: give the slots back to exploitation
        fill = rest[~np.isin(rest, picked)][: n_explore - len(picked)]
        exploit = np.concatenate([exploit, fill])
    rows = np.concatenate([exploit, picked]).astype(np.int64)
    explored = np.zeros(len(rows), dtype=bool)
    explored[len(exploit) :] = True
    propensity = np.ones(len(rows))
    propensity[len(exploit) :] = prop
    return Slate(rows, explored, propensity)
