"""The API the serving pipeline calls: rank the rule-allowed candidates of one request.

``Ranker.rank`` builds the features, scores them, turns the score into
P(engagement), multiplies by the placement's value, keeps the best ``k``
(with a few exploration slots), and explains each served item. Without a
trained model it falls back to reciprocal-rank fusion of the sources, so a
fresh install still serves sensible slates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.base import RecContext
from shelfwise.ranking.candidates import CandidateSet
from shelfwise.ranking.compiled import cache_dir_of
from shelfwise.ranking.explain import Explanation, Names, TraceContributions, explain
from shelfwise.ranking.explore import (
    POOL,
    PROPENSITY_DRAWS,
    ExplorePlan,
    draw,
    explore_plan,
    request_rng,
    servable,
)
from shelfwise.ranking.exposure import Floors, judged, served_order
from shelfwise.ranking.features import FeatureSpec, build_features
from shelfwise.ranking.history import FloatArray, IntArray, epoch
from shelfwise.ranking.items import ItemTable
from shelfwise.ranking.model import RankerModel
from shelfwise.ranking.objective import PlacementObjective, RankingSettings, item_values
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
    # every feature's contribution, per served item (made when first read)
    contributions: Sequence[dict[str, float]]
    model_version: str
    objective_version: str


def anchor_price(ctx: RecContext, items: ItemTable, line_units: FloatArray) -> float | None:
    """The money a candidate's is measured against: the dearest known purchase among
    the viewed products (else the cart's), a purchase worth its price times
    ``line_units`` (the ranker state's), None without a known price."""
    for group in (ctx.context_items, ctx.cart_items):
        known = [i for i in group if i < len(items.price)]
        if known:
            prices = np.asarray(items.price[known], dtype=np.float64) * line_units[known]
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
    # (fmax skips NaN: nanmax, and clip of NaN -> 0, without their copies)
    top = float(np.fmax.reduce(score)) if np.isfinite(score).any() else 0.0
    if top <= 0:
        return np.ones(len(cands))
    rel = np.minimum(np.fmax(score / top, 1e-6), 1.0)
    out: FloatArray = rel**weight
    return out


@dataclass
class Scored:
    """One request's candidates as the ranker scored them: the part of ``Ranker.rank``
    that depends only on the context (its clock included) and the candidates, so one
    scoring can serve every request of the same context and time bucket
    (``pipeline/learned.py`` keeps it). Each request then draws its own exploration
    from ``plan`` (:meth:`Ranker.draw`); the explanations of rows already served are
    remembered in ``explained``.

    Only the rows a draw of the plan can serve are kept (``explore.servable``: the
    exploited rows, the pool entries some draw picks, the fill), with their features
    (for their explanations); ``plan`` indexes them. A kept order's memory: about 20
    rows instead of every candidate and its features."""

    cands: CandidateSet  # the servable rows only
    x: FloatArray  # their features
    prob: FloatArray
    values: FloatArray
    expected: FloatArray
    categories: IntArray  # (the reasons name them)
    plan: ExplorePlan
    objective_version: str
    n_candidates: int  # every candidate scored
    # per row served so far: its reasons and its contributions (the model's raw row;
    # the trace's {name: value} is made from it on each draw)
    explained: dict[int, tuple[tuple[Explanation, ...], FloatArray]] = field(default_factory=dict)
    # the items the exposure cap demoted out of the best k (``ranking.exposure``), with
    # their margin over the best candidate left out
    demoted: tuple[tuple[int, float], ...] = ()
    # every candidate below its floor, those the cap holds back least first (the
    # arrangement fills with them last)
    below_floor: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # with floors: the best candidates not below theirs, best first (the arrangement
    # fills a slot it empties with them, in this order, as the calibration does)
    fill: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def nbytes(self) -> int:
        """The bytes of its arrays (the candidates' proposals are the kept candidates')."""
        c, p = self.cands, self.plan
        arrays = (c.items, c.scores, c.ranks, c.reason_at, self.x, self.prob, self.values,
                  self.expected, self.categories, p.exploit, p.rest, p.pool, p.winners,
                  p.counts, self.below_floor,
                  *(row for _, row in self.explained.values()))  # fmt: skip
        return sum(a.nbytes for a in arrays)


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
        task: str = "requests",
    ) -> None:
        if model is None and sources is None:
            raise ValueError("a Ranker without a model needs the list of sources")
        self.state, self.names, self.model = state, names, model
        self.settings = settings or RankingSettings()
        self.spec = model.spec if model is not None else FeatureSpec.of(sources or ())
        self.version = version
        self.task = task  # the training task (Placement.ranker), stamped on the trace

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
        task: str = "requests",
    ) -> Ranker:
        """Read a saved ranker (only read); compiled from ``cache_dir`` when it is set."""
        state = RankingState.load(folder)
        if not (folder / "ranker.json").is_file():
            return cls(state, names, settings, sources=(), version=version, task=task)
        model = RankerModel.load(folder, settings.compile_model, cache_dir, label=version)
        return cls(state, names, settings, model, version=version, task=task)

    def score(
        self, ctx: RecContext, cands: CandidateSet, items: ItemTable
    ) -> tuple[FloatArray, FloatArray]:
        """(features, P(engagement)) of every candidate."""
        x = build_features(ctx, cands, self.state, items, self.spec)
        return x, self._probability(x, cands, 1)

    def _probability(self, x: FloatArray, cands: CandidateSet, times: int) -> FloatArray:
        """P(engagement) of the rows of ``x``: ``cands``'s features, ``times`` over."""
        if self.model is None:
            fused = _fused(cands)
            return np.tile(fused / max(float(fused.max(initial=0.0)), 1e-12) * 0.5, times)
        return self.model.probability(self.model.raw(x))

    def rank(
        self,
        ctx: RecContext,
        cands: CandidateSet,
        items: ItemTable,
        objective: PlacementObjective | None = None,
        k: int = 10,
        explain_items: bool = True,
        rng: np.random.Generator | None = None,
    ) -> Ranked:
        """The best ``k`` of the (already rule-filtered) candidates for this placement.

        ``rng``: the exploration of this request (default: seeded by the settings,
        the person, the placement and the context's clock): the plan's draws, then
        which of them the request takes."""
        objective = objective or self.settings.objective_for(ctx.placement)
        rng = rng if rng is not None else self.context_rng(ctx)
        scored = self.scored(ctx, cands, items, objective, k, rng)
        return self.draw(scored, ctx, int(rng.integers(PROPENSITY_DRAWS)), explain_items)

    def context_rng(self, ctx: RecContext) -> np.random.Generator:
        """The generator of a context: the settings' seed, person, placement and clock."""
        return request_rng(
            self.settings.explore_seed, ctx.person_id or "", ctx.placement, str(epoch(ctx.now))
        )

    def scored(
        self,
        ctx: RecContext,
        cands: CandidateSet,
        items: ItemTable,
        objective: PlacementObjective,
        k: int,
        rng: np.random.Generator | None = None,
        floors: Floors | None = None,
    ) -> Scored:
        """Features, P(engagement), value and order of every candidate, and the
        exploration plan of ``k`` slots (``rng`` estimates its propensities; default
        :meth:`context_rng`): everything of :meth:`rank` but the request's own draw.

        ``floors``: the placement's exposure floors over the catalog
        (``ranking.exposure``): a candidate below its floor goes after every other."""
        x, prob, values = self.valued(ctx, cands, items, objective)
        expected = prob * values
        depth = min(len(cands), k + POOL)
        demoted_rows: tuple[tuple[int, float], ...] = ()
        below: IntArray = np.zeros(0, dtype=np.int64)
        fill: IntArray = np.zeros(0, dtype=np.int64)
        exposures = self.state.exposures[cands.items]
        if floors is not None and len(cands):
            demote, stand, rel = judged(cands.items, expected, floors)
            order = served_order(expected, demote, stand)[:depth]
            fill = cands.items[order[~demote[order]]]
            # exploration never picks what the cap demoted (it would take its slot back)
            exposures = np.where(demote, np.inf, exposures)
            if demote.any():
                rows = np.flatnonzero(demote)
                below = cands.items[rows[np.argsort(-stand[rows], kind="stable")]]
                plain = np.argsort(-expected, kind="stable")[:k]
                demoted_rows = tuple(
                    (int(cands.items[r]), float(rel[r])) for r in plain.tolist() if demote[r]
                )
            top = order if depth < len(cands) else None
        else:
            top = np.argpartition(-expected, depth - 1)[:depth] if depth < len(cands) else None
            order = np.arange(len(cands)) if top is None else top
            order = order[np.argsort(-expected[order], kind="stable")]
        s = self.settings
        plan = explore_plan(
            order if top is None else np.concatenate([order, self._rest(len(cands), order)]),
            k,
            prob,
            exposures,
            self.state.clicks[cands.items],
            s.explore_share,
            s.explore_max_exposures,
            rng if rng is not None else self.context_rng(ctx),
        )
        categories = items.category[cands.items].astype(np.int64)
        rows, plan = servable(plan)
        return Scored(
            cands.take(rows),
            x[rows],
            prob[rows],
            values[rows],
            expected[rows],
            categories[rows],
            plan,
            objective.digest(),
            len(cands),
            demoted=demoted_rows,
            below_floor=below,
            fill=fill,
        )

    def valued(
        self, ctx: RecContext, cands: CandidateSet, items: ItemTable, objective: PlacementObjective
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(features, P(engagement), value) of every candidate: P(engagement) x value is
        what it is ranked by, served (:meth:`scored`) and in the exposure cap's
        calibration (``pipeline.learned.LearnedRank.valued``)."""
        x, prob = self.score(ctx, cands, items)
        return x, prob, self.values(ctx, cands, items, objective)

    def valued_at(
        self,
        contexts: Sequence[RecContext],
        cands: CandidateSet,
        items: ItemTable,
        objective: PlacementObjective,
    ) -> tuple[FloatArray, FloatArray]:
        """(P(engagement), value) of every candidate of one request at several clocks:
        ``contexts`` differ only in their clock, which only the features read (an
        item's age), not the value; P(engagement) has a row per context, all scored
        in one call of the model. :meth:`valued` for each context, at a fraction of
        its cost: the exposure cap's calibration (``pipeline/exposure.py``)."""
        if not contexts:
            return np.zeros((0, len(cands))), np.zeros(len(cands))
        x = np.concatenate(
            [build_features(c, cands, self.state, items, self.spec) for c in contexts]
        )
        prob = self._probability(x, cands, len(contexts)).reshape(len(contexts), len(cands))
        return prob, self.values(contexts[0], cands, items, objective)

    def values(
        self, ctx: RecContext, cands: CandidateSet, items: ItemTable, objective: PlacementObjective
    ) -> FloatArray:
        """The placement's value of one engagement with each candidate (the chain's fit
        included): P(engagement) x this is what it is ranked by."""
        anchor = anchor_price(ctx, items, self.state.line_units)
        values = item_values(objective, cands.items, items, self.state, anchor)
        if objective.chain_weight > 0:
            values = values * chain_fit(cands, objective.chain_weight)
        return values

    def draw(
        self,
        scored: Scored,
        ctx: RecContext,
        which: int,
        explain_items: bool = True,
        chain: frozenset[str] = frozenset(),
    ) -> Ranked:
        """One request's slate of a scored order: its own exploration draw (the plan's
        draw ``which``), and the reasons and contributions of the rows it serves
        (``chain``: the sources of the placement's chain, whose reasons come first)
        (remembered per row)."""
        cands = scored.cands
        slate = draw(scored.plan, which)
        rows = slate.rows
        reasons: tuple[tuple[Explanation, ...], ...] = ()
        contributions: Sequence[dict[str, float]] = []
        if explain_items and len(rows):
            known = scored.explained
            wanted = rows.tolist()
            missing = _unexplained(scored, rows)
            if len(missing):
                contrib = self._contributions(scored.x[missing], cands, missing)
                self._explain(scored, ctx, missing, contrib, chain)
            reasons = tuple(known[r][0] for r in wanted)
            contributions = TraceContributions(np.stack([known[r][1] for r in wanted]), self.spec)
        return Ranked(
            items=cands.items[rows],
            scores=scored.expected[rows],
            probabilities=scored.prob[rows],
            values=scored.values[rows],
            propensities=slate.propensity,
            explored=slate.explored,
            reasons=reasons,
            contributions=contributions,
            model_version=self.version,
            objective_version=scored.objective_version,
        )

    def explain_draws(
        self,
        draws: Sequence[tuple[Scored, RecContext, int]],
        chain: frozenset[str] = frozenset(),
    ) -> None:
        """Explain the rows each (scored order, context, draw) of a batch serves, the
        contributions of all of them in one call of the model: then :meth:`draw` finds
        them explained (the same reasons and contributions, row by row, as its own)."""
        if self.model is None:
            return  # :meth:`draw` explains each one (no model to call)
        missing = [
            _unexplained(scored, draw(scored.plan, which).rows) for scored, _, which in draws
        ]
        if not any(len(m) for m in missing):
            return
        x = np.concatenate([scored.x[m] for (scored, _, _), m in zip(draws, missing, strict=True)])
        contrib = self.model.contributions(x)
        start = 0
        for (scored, ctx, _), rows in zip(draws, missing, strict=True):
            if len(rows):
                self._explain(scored, ctx, rows, contrib[start : start + len(rows)], chain)
                start += len(rows)

    def _explain(
        self,
        scored: Scored,
        ctx: RecContext,
        rows: IntArray,
        contrib: FloatArray,
        chain: frozenset[str],
    ) -> None:
        """The reasons of ``rows`` of a scored order, kept with their contributions."""
        cands = scored.cands
        explained = explain(
            ctx,
            cands.reasons_at(rows),
            contrib,
            cands.items[rows],
            scored.categories[rows],
            self.spec,
            self.names,
            self.state,
            chain=chain,
        )
        for n, (r, why) in enumerate(zip(rows.tolist(), explained, strict=True)):
            scored.explained[r] = (why, contrib[n])

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


def _unexplained(scored: Scored, rows: IntArray) -> IntArray:
    """The distinct ``rows`` (in order) the scored order has not explained yet."""
    known = scored.explained
    return np.array([r for r in dict.fromkeys(rows.tolist()) if r not in known], dtype=np.int64)


def ranker_folder(task: str = "requests") -> str:
    """The bundle folder of a ranker training task's model: ``ranker`` for the
    ``requests`` task (home), ``ranker_<task>`` for any other."""
    return "ranker" if task == "requests" else f"ranker_{task}"


def ranker_of_bundle(
    bundle_path: Path,
    names: Names,
    settings: RankingSettings,
    version: str,
    task: str = "requests",
) -> Ranker | None:
    """The ranker of training task ``task`` stored in a model bundle
    (:func:`ranker_folder`), or None when it has none.

    Load it when the bundle is swapped in (it loads the compiled model once, from
    the cache of the bundle's model folder: ``<model_dir>/.cache/ranker``).
    """
    folder = bundle_path / ranker_folder(task)
    if not (folder / "state.json").is_file():
        return None
    return Ranker.load(folder, names, settings, version, cache_dir_of(bundle_path.parent), task)
