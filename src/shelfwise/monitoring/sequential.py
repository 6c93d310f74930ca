"""Sequential accumulation of small losses: a Page CUSUM over consecutive windows.

A per-window test asks each window on its own whether the series fell short.
A sustained 2% loss of clicks is only ~3 sd in a 3-hour window of the busiest
series, while one false alert a month over 200 series needs ~4.5 sd: one window
rarely shows it. Consecutive windows each carry the loss, so their evidence
adds up. Page's CUSUM accumulates the log-likelihood ratio of "the rate fell
by ``drop``" against "nothing changed" over the non-overlapping windows that
end now, restarting from 0 whenever the evidence turns against a loss:

    S_0 = 0,  S_i = max(0, S_{i-1} + δ_i z_i - δ_i² / 2)

``z_i`` is a window's standardised shortfall (the relative test's, as a normal
score of its one-sided p-value) and ``δ_i = drop · E_i / sd_i`` the shortfall
the target loss would cause there, in standard deviations: a busy peak window
counts fully, a quiet night window little, so evidence is weighed as the
traffic carries it. ``S`` equals the largest log-likelihood ratio of any run of
recent windows (the CUSUM's stateless form: the maximum over suffixes), so the
evaluator needs no state between runs and its start gives the onset.

The threshold ``h`` sets the average run length (ARL) between false alarms
when nothing is wrong. For a constant ``δ`` (in units of the window's sd: the
reference value ``k = δ / 2`` and the decision interval ``H = h / δ``)
Siegmund's approximation gives it in closed form (:func:`average_run_length`);
:func:`threshold_for_arl` inverts it. Consecutive windows of real traffic are
not independent (a series' own shift lasts longer than a window), so the
threshold the detector uses is checked, and picked, on replayed healthy
traffic (``benchmarks/alerts.py``), not taken from the formula alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from shelfwise.monitoring.series import FloatArray

SIEGMUND_CORRECTION = 1.166  # overshoot of a Gaussian random walk past a boundary
MAX_SCORE = 8.0  # normal scores are clipped: one window never decides alone


def page_cusum(increments: FloatArray) -> FloatArray:
    """Page's one-sided CUSUM along the last axis: ``S_i = max(0, S_{i-1} + x_i)``, ``S_0 = 0``."""
    x = np.asarray(increments, dtype=float)
    out = np.empty_like(x)
    s = np.zeros(x.shape[:-1])
    for i in range(x.shape[-1]):
        s = np.maximum(s + x[..., i], 0.0)
        out[..., i] = s
    return out


def log_likelihood_ratios(z: FloatArray, delta: FloatArray) -> FloatArray:
    """Per window, log of N(δ, 1) over N(0, 1) at ``z``: ``δ z - δ² / 2``."""
    llr: FloatArray = delta * z - delta**2 / 2.0
    return llr


def average_run_length(mean: float, k: float, h: float) -> float:
    """Siegmund's approximation of a CUSUM's average run length, in windows.

    Increments ``z - k`` with ``z ~ N(mean, 1)`` and decision interval ``h``
    (both in standard deviations): with ``Δ = mean - k`` and ``b = h + 1.166``,
    ``ARL = (exp(-2Δb) + 2Δb - 1) / (2Δ²)``, and ``b²`` when ``Δ = 0``.
    """
    return float(np.exp(log_average_run_length(mean, k, h)))


def log_average_run_length(mean: float, k: float, h: float) -> float:
    """The log of :func:`average_run_length`, without overflow for long runs."""
    d, b = mean - k, h + SIEGMUND_CORRECTION
    if abs(d) < 1e-9:
        return float(2.0 * np.log(b))
    x = -2.0 * d * b
    # exp(x) - x - 1 > 0 for x != 0; for large x it is exp(x) (1 - (x + 1) exp(-x)).
    top = x + np.log1p(-(x + 1.0) * np.exp(-x)) if x > 30 else np.log(np.expm1(x) - x)
    return float(top - np.log(2.0 * d * d))


def threshold_for_arl(delta: float, arl: float) -> float:
    """The log-likelihood-ratio threshold ``h`` whose in-control ARL is ``arl`` windows
    for a CUSUM tuned to a shift of ``delta`` standard deviations (Siegmund)."""
    if delta <= 0 or arl <= 1:
        raise ValueError("delta must be positive and the ARL above one window")
    k, target = delta / 2.0, float(np.log(arl))

    def gap(big_h: float) -> float:
        return log_average_run_length(0.0, k, big_h) - target

    # Imported here: scipy.optimize costs ~0.15 s of CPU at import, in every server
    # worker, and only this inversion (benchmarks, calibration) needs it.
    from scipy import optimize

    big_h = optimize.brentq(gap, -SIEGMUND_CORRECTION + 1e-6, 1e4)
    return float(big_h * delta)


def normal_scores(p: FloatArray) -> FloatArray:
    """One-sided p-values as standard normal scores (a shortfall is positive), clipped."""
    z: FloatArray = np.clip(-special.ndtri(np.clip(p, 1e-300, 1.0)), -MAX_SCORE, MAX_SCORE)
    return z


@dataclass(frozen=True)
class Accumulated:
    """The statistic of each series and stage (S, 2) over windows ending now, oldest first.

    ``start`` is the index of the first window of the run behind ``statistic``
    (the onset; ``windows`` when the statistic is 0), ``money`` the deficit's
    money over that run and ``hours`` its length.
    """

    statistic: FloatArray
    start: np.ndarray
    money: FloatArray
    hours: FloatArray


def run_log_likelihood_ratios(z: FloatArray, delta: FloatArray, shared: FloatArray) -> FloatArray:
    """The log-likelihood ratio of every run of windows that ends now (last axis: runs
    starting at each window), when part of each window's noise is shared by the run.

    A window's deficit is ``E (c + ε_i)``: ``ε_i`` independent between windows and
    ``c`` a relative shift every window of the run shares (a series' own shift that
    lasts, the baseline's own error), ``shared`` = ``κ_i``, the share of window i's
    variance that ``c`` makes up. Against a loss of ``δ_i`` sd in each window the
    ratio of the run is (Sherman-Morrison on the covariance ``D + c E Eᵀ``)

        Σ (δ_i z_i - δ_i² / 2) / (1 - κ_i)  /  (1 + Σ κ_i / (1 - κ_i))

    which is Page's suffix sum when nothing is shared (κ = 0), and does not let
    a shared shift that the run's windows all show count as new evidence each time.
    """
    kappa = np.clip(shared, 0.0, 0.95)
    top = np.cumsum((log_likelihood_ratios(z, delta) / (1.0 - kappa))[..., ::-1], axis=-1)
    bottom = 1.0 + np.cumsum((kappa / (1.0 - kappa))[..., ::-1], axis=-1)
    out: FloatArray = (top / bottom)[..., ::-1]
    return out


def accumulate(
    z: FloatArray,
    delta: FloatArray,
    money: FloatArray,
    window_hours: int,
    shared: FloatArray | None = None,
) -> Accumulated:
    """The largest log-likelihood ratio of a run of windows ending now (0 if none is
    positive: Page's CUSUM when nothing is shared), over the last axis of (S, 2, n)
    scores, target shifts, money and shared shares of the variance."""
    runs = run_log_likelihood_ratios(z, delta, np.zeros_like(z) if shared is None else shared)
    n = runs.shape[-1]
    best = np.argmax(runs, axis=-1)
    stat = np.maximum(np.take_along_axis(runs, best[..., None], -1)[..., 0], 0.0)
    start = np.where(stat > 0, best, n)
    money_suffix = np.cumsum(money[..., ::-1], axis=-1)[..., ::-1]
    run_money = np.where(
        stat > 0,
        np.take_along_axis(money_suffix, np.minimum(best, n - 1)[..., None], -1)[..., 0],
        0.0,
    )
    hours = ((n - start) * window_hours).astype(float)
    return Accumulated(statistic=stat, start=start, money=run_money, hours=hours)
