"""The API the serving pipeline calls: rank the rule-allowed candidates of one request.

``Ranker.rank`` builds the features, scores them, turns the score into
P(engagement), multiplies by the placement's value, keeps the best ``k``
(with a few exploration slots), and explains each served item. Without a
trained model it falls back to reciprocal-rank fusion of the sources, so a
fresh install still serves sensible slates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.base import RecContext
from shelfwise.ranking.candidates import CandidateSet
from shelfwise.ranking.compiled import cache_dir_of
from shelfwise.ranking.explain import Explanation, Names, explain, trace_contributions
from shelfwise.ranking.explore import POOL, explore_slate, request_rng
from shelfwise.ranking.features import FeatureSpec, build_features
from shelfwise.ranking.history import FloatArray, IntArray, epoch
from shelfwise.ranking.items import ItemTable
from shelfwise.ranking.model import RankerModel
from shelfwise.ranking.objective import PlacementObjective, RankingSettings
from shelfwise.ranking.state import RankingState


@dataclass(frozen=True)
class Ranked:
    """The served order with everything the decision trace records."""

    items: IntArray
    scores: FloatArray  # expected value = probabilities x values
    probabilities: FloatArray  # P(engagement)
    values: FloatArray
    propensities: FloatArray  # 1 for exploited slots
    explored: npt.NDArray[np.bool_]
    reasons: tuple[tuple[Explanation, ...], ...]
    contributions: list[dict[str, float]]  # every feature's contribution, per served item
    model_version: str
    objective_version: str


def anchor_price(ctx: RecContext, items: ItemTable) -> float | None:
    """The price money is measured against: the dearest known price among the viewed
    products (else the cart's), None without one."""
    for group in (ctx.context_items, ctx.cart_items):
        known = [i for i in group if i < len(items.price)]
        if known:
            prices = np.asarray(items.price[known], dtype=np.float64)
            prices = prices[np.isfinite(prices) & (prices > 0)]
            if len(prices):
                return float(prices.max())
    return None


def chain_fit(cands: CandidateSet, weight: float) -> FloatArray:
    """``(score / best score) ** weight`` of the placement's own chain (the ``blend``
    proposal): how well each candidate does the placement's job (a substitute's
    similarity to the viewed product, a complement's lift). 1 where the chain's
    score is unknown (a ranker trained without the ``blend`` column)."""
    if "blend" not in cands.sources or not len(cands):
        return np.ones(len(cands))
    score = cands.scores[:, cands.sources.index("blend")]
    top = float(np.nanmax(score)) if np.isfinite(score).any() else 0.0
    if top <= 0:
        return np.ones(len(cands))
    rel = np.clip(np.nan_to_num(score / top, nan=0.0), 1e-6, 1.0)
    out: FloatArray = rel**weight
    return out


def _fused(cands: CandidateSet) -> FloatArray:
    """Reciprocal-rank fusion of the sources (the fallback score)."""
    return np.asarray(np.nansum(1.0 / (cands.ranks + 10.0), axis=1), dtype=np.float64)


class Ranker:
    def __init__(
        self,
        state: RankingState,
        names: Names,
        settings: RankingSettings | None = None,
        model: RankerModel | None = None,
        sources: tuple[str, ...] | None = None,
        version: str = "untrained",
    ) -> None:
        if model is None and sources is None:
            raise ValueError("a Ranker without a model needs the list of sources")
        self.state, self.names, self.model = state, names, model
        self.settings = settings or RankingSettings()
        self.spec = model.spec if model is not None else FeatureSpec.of(sources or ())
        self.version = version

    def save(self, folder: Path) -> None:
        """Write the state and the model into ``folder`` (a bundle's ``ranker/``).

        Nothing is compiled into the bundle: the compiled model is specific to a
        machine and lives in a cache outside it (``ranking.compiled``).
        """
        self.state.save(folder)
        if self.model is not None:
            self.model.save(folder)

    @classmethod
    def load(
        cls,
        folder: Path,
        names: Names,
        settings: RankingSettings,
        version: str,
        cache_dir: Path | None = None,
    ) -> Ranker:
        """Read a saved ranker (only read); compiled from ``cache_dir`` when it is set."""
        state = RankingState.load(folder)
        if not (folder / "ranker.json").is_file():
            return cls(state, names, settings, sources=(), version=version)
        model = RankerModel.load(folder, settings.compile_model, cache_dir, label=version)
        return cls(state, names, settings, model, version=version)

    def score(
        self, ctx: RecContext, cands: CandidateSet, items: ItemTable
    ) -> tuple[FloatArray, FloatArray]:
        """(features, P(engagement)) of every candidate."""
        x = build_features(ctx, cands, self.state, items, self.spec)
        if self.model is None:
            fused = _fused(cands)
            return x, fused / max(float(fused.max(initial=0.0)), 1e-12) * 0.5
        return x, self.model.probability(self.model.raw(x))

    def rank(
        self,
        ctx: RecContext,
        cands: CandidateSet,
        items: ItemTable,
        objective: PlacementObjective | None = None,
        k: int = 10,
        explain_items: bool = True,
    ) -> Ranked:
        """The best ``k`` of the (already rule-filtered) candidates for this placement."""
        objective = objective or self.settings.objective_for(ctx.placement)
        x, prob = self.score(ctx, cands, items)
        values = objective.values(cands.items, items, self.state, anchor_price(ctx, items))
        if objective.chain_weight > 0:
            values = values * chain_fit(cands, objective.chain_weight)
        expected = prob * values
        depth = min(len(cands), k + POOL)
        top = np.argpartition(-expected, depth - 1)[:depth] if depth < len(cands) else None
        order = np.arange(len(cands)) if top is None else top
        order = order[np.argsort(-expected[order], kind="stable")]
        s = self.settings
        slate = explore_slate(
            order if top is None else np.concatenate([order, self._rest(len(cands), order)]),
            k,
            prob,
            self.state.exposures[cands.items],
            self.state.clicks[cands.items],
            s.explore_share,
            s.explore_max_exposures,
            request_rng(s.explore_seed, ctx.person_id or "", ctx.placement, str(epoch(ctx.now))),
        )
        rows = slate.rows
        reasons: tuple[tuple[Explanation, ...], ...] = ()
        contributions: list[dict[str, float]] = []
        if explain_items and len(rows):
            contrib = self._contributions(x[rows], cands, rows)
            reasons = tuple(
                explain(
                    ctx,
                    [cands.reasons_of(int(r)) for r in rows],
                    contrib,
                    cands.items[rows],
                    items.category[cands.items[rows]].astype(np.int64),
                    self.spec,
                    self.names,
                    self.state,
                )
            )
            contributions = trace_contributions(contrib, self.spec)
        return Ranked(
            items=cands.items[rows],
            scores=expected[rows],
            probabilities=prob[rows],
            values=values[rows],
            propensities=slate.propensity,
            explored=slate.explored,
            reasons=reasons,
            contributions=contributions,
            model_version=self.version,
            objective_version=objective.digest(),
        )

    @staticmethod
    def _rest(n: int, head: IntArray) -> IntArray:
        mask = np.ones(n, dtype=bool)
        mask[head] = False
        return np.flatnonzero(mask)

    def _contributions(self, x: FloatArray, cands: CandidateSet, rows: IntArray) -> FloatArray:
        if self.model is not None:
            return self.model.contributions(x)
        # fallback: each source's fused term is its contribution (score column), no features
        contrib = np.zeros((len(rows), len(self.spec.names) + 1))
        contrib[:, 0 : 2 * len(self.spec.sources) : 2] = np.nan_to_num(
            1.0 / (cands.ranks[rows] + 10.0)
        )
        return contrib


def ranker_of_bundle(
    bundle_path: Path, names: Names, settings: RankingSettings, version: str
) -> Ranker | None:
    """The ranker stored in a model bundle's ``ranker/`` folder, or None when it has none.

    Load it when the bundle is swapped in (it loads the compiled model once, from
    the cache of the bundle's model folder: ``<model_dir>/.cache/ranker``).
    """
    folder = bundle_path / "ranker"
    if not (folder / "state.json").is_file():
        return None
    return Ranker.load(folder, names, settings, version, cache_dir_of(bundle_path.parent))
