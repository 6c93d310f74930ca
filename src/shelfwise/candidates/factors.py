"""Matrix factorisation: implicit-feedback ALS on confidence-weighted interactions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from shelfwise.candidates.base import Proposal, Reason, RecContext
from shelfwise.candidates.config import EventWeights, FactorsConfig
from shelfwise.candidates.cooccurrence import interaction_matrix
from shelfwise.candidates.history import PersonHistory
from shelfwise.candidates.log import InteractionLog
from shelfwise.candidates.neighbours import drop_excluded, excluded, top_k

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Factors:
    people: F32  # (n_people, f)
    items: F32  # (n_items, f)


def fit_factors(
    log: InteractionLog,
    config: FactorsConfig,
    weights: EventWeights,
    half_life_days: float,
    threads: int = 1,
) -> Factors:
    from implicit.cpu.als import AlternatingLeastSquares

    m = interaction_matrix(log, log.person, log.n_people, weights, half_life_days)
    m.data = (config.alpha * m.data).astype(np.float32)
    # implicit's kernels are parallel already; nested BLAS threads only thrash.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=config.factors,
            regularization=config.regularization,
            iterations=config.iterations,
            random_state=config.seed,
            num_threads=threads,
            calculate_training_loss=False,
        )
        model.fit(m.tocsr().astype(np.float32), show_progress=False)
    return Factors(
        np.ascontiguousarray(model.user_factors, dtype=np.float32),
        np.ascontiguousarray(model.item_factors, dtype=np.float32),
    )


@dataclass(eq=False)
class FactorsSource:
    """Items whose factors align with the person's (or, for a stranger, the session's)."""

    factors: Factors
    history: PersonHistory
    name: str = "factors"

    def propose(self, ctx: RecContext, k: int) -> Proposal:
        p = self.history.index(ctx.person_id)
        n = len(self.factors.items)
        if p is not None and p < len(self.factors.people):
            u = self.factors.people[p]
        else:
            seen = [i for i in (*ctx.context_items, *ctx.cart_items) if i < n]
            seen += [e.item for e in ctx.session if e.item < n]
            if not seen:
                return Proposal.empty(self.name)
            u = self.factors.items[np.array(seen)].mean(axis=0)
        scores = (self.factors.items @ u).astype(np.float64)
        banned = excluded(ctx.exclude)
        if len(banned):
            scores[banned[banned < n]] = -np.inf
        top = top_k(scores, k)
        top = top[np.isfinite(scores[top]) & drop_excluded(top, banned)]
        reason = Reason(self.name, "for_you")
        return Proposal(self.name, top.astype(np.int64), scores[top], (reason,) * len(top))
