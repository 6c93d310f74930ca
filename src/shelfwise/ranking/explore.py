"""Exploration: a small share of slots for items with little exposure, by Thompson sampling.

Only the candidates handed in (those the rules allowed) are ever considered,
so exploration cannot bypass a rule. An item is eligible when it has been
shown fewer than ``max_exposures`` times. Each eligible item's click rate is
drawn from Beta(1 + prior·p + clicks, 1 + prior·(1 - p) + misses), where p
is the model's own P(engagement): promising but unproven items are tried
first; the pool is the ``POOL`` best-ranked eligible items, which keeps the
draws cheap. The propensity of each explored pick (its chance of being picked
under this rule) is estimated with ``PROPENSITY_DRAWS`` seeded draws and logged,
so offline evaluation can re-weight what exploration showed; exploited items
have propensity 1. The estimate belongs to the scored order (its
:class:`ExplorePlan`, made once per context and time bucket); each request then
draws its own pick from the same Beta posteriors (:func:`draw`), so a kept
order still explores per request with true propensities. Deterministic for a
given seed and request.
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


@dataclass(frozen=True)
class ExplorePlan:
    """What the exploration draws of one scored order start from: the exploited rows,
    the eligible pool competing for the explored slots with its Beta parameters, and
    how often each pool entry won a slot in ``PROPENSITY_DRAWS`` draws (its propensity).

    A plan is fixed for one (context, time bucket): a kept ranked order keeps it, and
    each request draws its own explored items from it (:func:`draw`)."""

    exploit: IntArray
    rest: IntArray  # the rows after the exploited ones, best first
    pool: IntArray
    alpha: FloatArray
    beta: FloatArray
    counts: IntArray  # per pool entry: draws (of PROPENSITY_DRAWS) in which it won a slot
    n_explore: int


def explore_plan(
    order: IntArray,
    k: int,
    probability: FloatArray,
    exposures: FloatArray,
    clicks: FloatArray,
    share: float,
    max_exposures: float,
    rng: np.random.Generator,
) -> ExplorePlan:
    """The plan of ``round(share·k)`` explored slots after the best of ``order``
    (``rng`` estimates the propensities). ``order`` ranks candidate rows best first;
    the other arrays are per candidate row."""
    k = min(k, len(order))
    n_explore = round(share * k)
    exploit = order[: k - n_explore]
    none: FloatArray = np.zeros(0)
    if n_explore == 0:
        return ExplorePlan(exploit, order[:0], order[:0], none, none, np.zeros(0, np.int64), 0)
    rest = order[k - n_explore :]
    pool = rest[exposures[rest] < max_exposures][:POOL]
    if len(pool) <= n_explore:
        return ExplorePlan(exploit, rest, pool, none, none, np.zeros(0, np.int64), n_explore)
    p = np.clip(probability[pool], 1e-6, 1 - 1e-6)
    misses = np.maximum(exposures[pool] - clicks[pool], 0.0)
    alpha = 1.0 + PRIOR_STRENGTH * p + clicks[pool]
    beta = 1.0 + PRIOR_STRENGTH * (1.0 - p) + misses
    draws = rng.beta(alpha, beta, size=(PROPENSITY_DRAWS, len(pool)))
    top = np.argpartition(-draws, n_explore - 1, axis=1)[:, :n_explore]
    counts = np.bincount(top.ravel(), minlength=len(pool))
    return ExplorePlan(exploit, rest, pool, alpha, beta, counts, n_explore)


def chosen_of(plan: ExplorePlan, rng: np.random.Generator) -> IntArray | None:
    """The pool entries one Thompson draw explores, best draw first (None: no draw, the
    whole pool is explored or nothing is)."""
    n_explore = plan.n_explore
    if n_explore == 0 or len(plan.pool) <= n_explore:
        return None
    drawn = rng.beta(plan.alpha, plan.beta)
    top = np.argpartition(-drawn, n_explore - 1)[:n_explore]
    out: IntArray = top[np.argsort(-drawn[top])]
    return out


def draw(plan: ExplorePlan, rng: np.random.Generator) -> Slate:
    """One request's slate from ``plan``: the exploited rows, then the explored picks of
    one Thompson draw (``rng``: the request's own), with their planned propensities."""
    exploit, pool, n_explore = plan.exploit, plan.pool, plan.n_explore
    if n_explore == 0:
        return Slate(exploit, np.zeros(len(exploit), dtype=bool), np.ones(len(exploit)))
    chosen = chosen_of(plan, rng)
    if chosen is None:
        picked, prop = pool, np.ones(len(pool))
    else:
        picked = pool[chosen]
        prop = np.maximum(plan.counts[chosen] / PROPENSITY_DRAWS, 1.0 / PROPENSITY_DRAWS)
    if len(picked) < n_explore:  # not enough fresh items: give the slots back to exploitation
        rest = plan.rest
        fill = rest[~np.isin(rest, picked)][: n_explore - len(picked)]
        exploit = np.concatenate([exploit, fill])
    rows = np.concatenate([exploit, picked]).astype(np.int64)
    explored = np.zeros(len(rows), dtype=bool)
    explored[len(exploit) :] = True
    propensity = np.ones(len(rows))
    propensity[len(exploit) :] = prop
    return Slate(rows, explored, propensity)
