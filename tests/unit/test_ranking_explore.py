"""A kept order keeps only the rows its exploration plan can serve (``explore.servable``)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.ranking.explore import PROPENSITY_DRAWS, draw, explore_plan, servable


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
