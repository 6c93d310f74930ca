"""Choosing the blend weights honestly: on a validation window *before* the cutoff.

The validation split trains on ``[start, cutoff - w)`` and tests on
``[cutoff - w, cutoff)`` where ``w`` is the test window's length, so the test
window is never looked at. Each source's proposals are computed once per
person; coordinate ascent over a weight grid then maximises NDCG@K of the blend.

A validation window that does not fit in the data is an error, never an
untuned blend in disguise: ``validation_window_outside_data`` when it starts at
or before the first event (nothing to fit on before it),
``validation_window_empty`` when nobody bought on both sides of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.base import Proposal, RecContext
from shelfwise.candidates.config import PlacementChain, SourcesConfig
from shelfwise.candidates.log import InteractionLog
from shelfwise.candidates.model import Artifacts, fit_all
from shelfwise.candidates.neighbours import top_k
from shelfwise.catalog.model import Product
from shelfwise.errors import InvalidInput
from shelfwise.evaluation.metrics import accuracy
from shelfwise.evaluation.split import PROTOCOLS, Protocol, Split, Target, time_split

GRID = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
TUNED = ("buy_again", "cooccurrence", "regression", "factors", "content", "popular")


@dataclass(frozen=True)
class Cached:
    """One person's proposals as a dense (candidates x sources) block of max-scaled scores."""

    items: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float64]
    target: Target

    @classmethod
    def of(cls, proposals: Sequence[Proposal], target: Target) -> Cached:
        items = np.unique(np.concatenate([p.items for p in proposals]))
        block = np.zeros((len(items), len(proposals)))
        for j, p in enumerate(proposals):
            if len(p.items):
                block[np.searchsorted(items, p.items), j] = p.scores / (
                    np.abs(p.scores).max() or 1.0
                )
        return cls(items, block, target)

    def ndcg(self, weights: npt.NDArray[np.float64], k: int) -> float:
        if not len(self.items):
            return 0.0
        return accuracy(self.items[top_k(self.scores @ weights, k)], self.target, k)["ndcg"]


@dataclass(frozen=True)
class Stacked:
    """Every person's block padded into one (people x candidates x sources) array, so one
    weight vector scores everybody at once: the same NDCG@k as :meth:`Cached.ndcg` per
    person (best first, ties by candidate position; padding sorts last and never hits)."""

    scores: npt.NDArray[np.float64]  # people x candidates x sources
    valid: npt.NDArray[np.bool_]  # people x candidates: a real candidate
    hit: npt.NDArray[np.bool_]  # people x candidates: a target item
    ideal: npt.NDArray[np.float64]  # per person: the DCG of a perfect list at k
    k: int

    @classmethod
    def of(cls, cached: Sequence[Cached], k: int) -> Stacked:
        width = max((len(c.items) for c in cached), default=0)
        sources = cached[0].scores.shape[1] if cached else 0
        scores = np.zeros((len(cached), width, sources))
        valid = np.zeros((len(cached), width), dtype=bool)
        hit = np.zeros((len(cached), width), dtype=bool)
        discounts = 1.0 / np.log2(np.arange(2, k + 2))
        ideal = np.ones(len(cached))
        for n, c in enumerate(cached):
            m = len(c.items)
            scores[n, :m] = c.scores
            valid[n, :m] = True
            hit[n, :m] = np.isin(c.items, c.target.items)
            ideal[n] = discounts[: min(len(c.target.items), k)].sum()
        return cls(scores, valid, hit, ideal, k)

    def mean_ndcg(self, weights: npt.NDArray[np.float64]) -> float:
        if not len(self.ideal):
            return 0.0
        scored = np.where(self.valid, self.scores @ weights, -np.inf)
        scored, hit = _contenders(scored, self.valid, self.hit, self.k)
        top = np.argsort(-scored, axis=1, kind="stable")[:, : self.k]
        discounts = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
        gained = np.take_along_axis(hit, top, axis=1) @ discounts
        return float((gained / self.ideal).sum()) / len(self.ideal)


def _contenders(
    scored: npt.NDArray[np.float64],
    valid: npt.NDArray[np.bool_],
    hit: npt.NDArray[np.bool_],
    k: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Each row's candidates that can reach its top ``k`` (a score at least the row's
    ``k``-th best, padding left out: it sorts after every real candidate), in their order,
    packed to the left of a narrower array padded with ``-inf`` and no hits: its stable sort
    puts the same hits in the first ``k`` places as the whole row's does, for a partition
    and a sort of a few columns instead of a sort of all of them."""
    width = scored.shape[1]
    if k >= width or not len(scored):
        return scored, hit
    kth = -np.partition(-scored, k - 1, axis=1)[:, k - 1]
    keep = valid & (scored >= kth[:, None])
    counts = keep.sum(axis=1)
    narrow = max(int(counts.max()), k)  # at least k columns: the same hits @ discounts
    if narrow >= width:
        return scored, hit
    rows, cols = np.nonzero(keep)
    slots = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    packed = np.full((len(scored), narrow), -np.inf)
    packed[rows, slots] = scored[rows, cols]
    hits = np.zeros((len(scored), narrow), dtype=bool)
    hits[rows, slots] = hit[rows, cols]
    return packed, hits


def coordinate_ascent(
    cached: Sequence[Cached], start: npt.NDArray[np.float64], k: int, passes: int = 3
) -> tuple[npt.NDArray[np.float64], float]:
    """Change one weight at a time to its best grid value until nothing improves."""
    stacked = Stacked.of(cached, k)
    best = start.copy()
    best_score = stacked.mean_ndcg(best)
    for _ in range(passes):
        improved = False
        for j in range(len(best)):
            for value in GRID:
                if value == best[j]:
                    continue
                trial = best.copy()
                trial[j] = value
                if not trial.any():
                    continue
                score = stacked.mean_ndcg(trial)
                if score > best_score + 1e-9:
                    best, best_score, improved = trial, score, True
        if not improved:
            break
    return best, best_score


def validation_split(log: InteractionLog, cutoff: float, window: float) -> Split:
    """The split ``[start, cutoff - window) | [cutoff - window, cutoff)``, or a clear error."""
    start = cutoff - window
    first = float(log.at.min()) if len(log) else cutoff

    def day(t: float) -> str:
        return f"{datetime.fromtimestamp(t, UTC):%Y-%m-%d %H:%M}"

    if start <= first or start >= cutoff:
        raise InvalidInput(
            f"the validation window [{day(start)}, {day(cutoff)}) does not fit in the data "
            f"(first event {day(first)}): it is as long as the test window and ends at the "
            "cutoff; move the cutoff later, end the test earlier (--end), or skip tuning "
            "(--no-tune)",
            code="validation_window_outside_data",
        )
    split = time_split(log.before(cutoff), start, cutoff)
    if not split.targets["all"]:
        raise InvalidInput(
            f"nobody bought both before and inside the validation window "
            f"[{day(start)}, {day(cutoff)}): there is nothing to tune the blend on; move the "
            "cutoff, or skip tuning (--no-tune)",
            code="validation_window_empty",
        )
    return split


def tune_chains(
    log: InteractionLog,
    cutoff: float,
    window: float,
    config: SourcesConfig,
    products: Sequence[Product | None] = (),
    k: int = 10,
    depth: int = 100,
    step: Callable[[str], None] | None = None,
    fit_sources: Callable[[InteractionLog], Artifacts] | None = None,
) -> dict[Protocol, tuple[PlacementChain, float]]:
    """The best blend per protocol on the validation window, with its validation NDCG@k."""
    split = validation_split(log, cutoff, window)
    if step:
        step("fit on the validation window")
    train = split.train
    fitted = fit_sources(train) if fit_sources is not None else fit_all(train, products, config)
    sources = fitted.sources()
    now = datetime.fromtimestamp(train.end, UTC)
    out: dict[Protocol, tuple[PlacementChain, float]] = {}
    for protocol in PROTOCOLS:
        if step:
            step(f"tune the {protocol!r} blend")
        targets = split.targets[protocol]
        cached = []
        for t in targets:
            exclude = frozenset(t.history.tolist()) if protocol == "new" else frozenset()
            person = train.people[t.person]
            ctx = RecContext(placement="home", now=now, person_id=person, exclude=exclude)
            cached.append(Cached.of([sources[n].propose(ctx, depth) for n in TUNED], t))
        weights, score = coordinate_ascent(cached, np.full(len(TUNED), 0.5), k)
        blend = {n: float(w) for n, w in zip(TUNED, weights, strict=True) if w > 0}
        chain = PlacementChain(blend=blend, depth=depth)
        out[protocol] = (chain, score)
    return out
