"""A kept order keeps only the rows its exploration plan can serve (``explore.servable``);
the Thompson draws follow each item's posterior."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from shelfwise.ranking.explore import (
    PRIOR_STRENGTH,
    PROPENSITY_DRAWS,
    _posterior_draws,
    draw,
    explore_plan,
    servable,
)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 120),
    k=st.integers(1, 24),
    share=st.sampled_from([0.0, 0.1, 0.25, 0.5]),
    fresh=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_the_servable_rows_serve_every_draw_as_the_whole_plan(
    n: int, k: int, share: float, fresh: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    prob = rng.uniform(0.0, 1.0, n)
    order = np.argsort(-prob, kind="stable")
    exposures = np.where(rng.uniform(size=n) < fresh, 0.0, 100.0)  # few or many eligible
    clicks = np.minimum(exposures, rng.integers(0, 5, n))
    plan = explore_plan(order, k, prob, exposures, clicks, share, 50, np.random.default_rng(seed))
    rows, kept = servable(plan)
    assert (np.diff(rows) > 0).all() and len(rows) <= n
    served = set()
    for which in range(PROPENSITY_DRAWS):
        whole, small = draw(plan, which), draw(kept, which)
        assert rows[small.rows].tolist() == whole.rows.tolist()
        assert small.explored.tolist() == whole.explored.tolist()
        assert small.propensity.tolist() == whole.propensity.tolist()  # exactly
        served.update(whole.rows.tolist())
    assert served == set(rows.tolist())  # nothing kept that no draw serves


@settings(max_examples=40, deadline=None)
@given(
    p=st.floats(1e-6, 1 - 1e-6),
    clicks=st.integers(0, 30),
    misses=st.integers(0, 300),
    seed=st.integers(0, 2**16),
)
def test_the_draws_have_the_mean_and_variance_of_the_beta_posterior(
    p: float, clicks: int, misses: int, seed: int
) -> None:
    """Each item's draws: the mean and the spread of its Beta posterior (scipy's)."""
    alpha = np.array([1.0 + PRIOR_STRENGTH * p + clicks])
    beta = np.array([1.0 + PRIOR_STRENGTH * (1.0 - p) + misses])
    rng = np.random.default_rng(seed)
    got = np.concatenate([_posterior_draws(alpha, beta, rng)[:, 0] for _ in range(200)])
    law = stats.beta(alpha[0], beta[0])
    assert abs(got.mean() - law.mean()) < 5 * law.std() / np.sqrt(len(got))
    assert abs(got.std() / law.std() - 1.0) < 0.05
