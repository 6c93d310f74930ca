"""The ranker's probability calibration: a logistic fit of "bought or not" on the raw
score, which must reach the optimum however widely the scores spread."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from shelfwise.ranking.model import fit_platt


def _optimum(raw: np.ndarray, label: np.ndarray) -> np.ndarray:
    def loss(w: np.ndarray) -> float:
        z = w[0] * raw + w[1]
        return float(np.sum(np.logaddexp(0.0, z) - label * z))

    return minimize(loss, np.zeros(2), method="BFGS", options={"gtol": 1e-8}).x


@settings(max_examples=25, deadline=None)
@given(
    spread=st.floats(0.5, 6.0),
    slope=st.floats(0.3, 1.5),
    offset=st.floats(-5.0, -1.0),
    seed=st.integers(0, 2**16),
)
def test_the_fit_is_the_logistic_optimum_however_wide_the_scores(
    spread: float, slope: float, offset: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    raw = rng.normal(0.0, spread, 5_000)
    label = (rng.random(len(raw)) < 1 / (1 + np.exp(-(slope * raw + offset)))).astype(float)
    if label.sum() < 5 or label.sum() > len(label) - 5:
        return
    a, b = fit_platt(raw, label)
    np.testing.assert_allclose([a, b], _optimum(raw, label), rtol=1e-3, atol=1e-3)


def test_widely_spread_scores_with_a_rare_label_do_not_run_off_to_a_step() -> None:
    """Scores spread as a sum of three models' (sd 3): undamped Newton steps from
    (1, 0) ran off to a slope of ~1e10, which made every probability 0 or 1."""
    rng = np.random.default_rng(3)
    raw = rng.normal(0.0, 3.0, 20_000)
    label = (rng.random(len(raw)) < 1 / (1 + np.exp(-(0.8 * raw - 4)))).astype(float)
    a, b = fit_platt(raw, label)
    np.testing.assert_allclose([a, b], _optimum(raw, label), rtol=1e-4)
    assert 0.7 < a < 0.9
