"""How much a windowed sum of counts varies when nothing is wrong, learned from past windows.

Alerts compare counts summed over a window of ``w`` hours (3 h, 12 h) with
their expectation. If the hours were independent Poisson draws, the variance
of ``observed - expected`` would be the expectation itself. Shop traffic is not
like that: a click-through rate that sits 1% high all day, or wanders for a
few hours (autocorrelated noise), moves every hour of a window together, and
the variance of the sum grows with the *square* of the expectation.

So for every series, stage and window length the model is

    Var(observed - expected over w hours) = a · E + b · E²

with ``a = 1`` (counting noise: every impression is a Bernoulli draw, so a
sum of clicks is Poisson-like) and ``b >= 0`` (the relative variance of a
rate shift shared over the window), fitted to the residuals of every
``w``-hour window of the reference period by iteratively reweighted least
squares. ``a`` is held at 1 because ``a E`` and ``b E²`` can hardly be told
apart within one series (its windows' expectations differ by a few times at
most): letting both float put day-to-day shifts into ``a`` and halved the
variance. Any overdispersion of the counts themselves is absorbed by ``b``.

Because overlapping and neighbouring windows share their shocks, the variance
estimate rests on fewer independent windows than there are windows: ``df`` is
the effective number (Bartlett: ``n / (1 + 2 Σ r_k²)``, ``r_k`` the lag-k
autocorrelation of non-overlapping windows, over two days of lags), and the
test uses a Student t with that many degrees of freedom. Each series' ``b`` is
shrunk toward the precision-weighted mean of the shop's series, which a quiet
series then mostly inherits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shelfwise.monitoring.series import FloatArray

MIN_EXPECTED = 0.5  # windows expecting fewer counts say nothing about the variance
MIN_DF = 4.0
PRIOR_DF = 14.0  # the shop's pooled shift variance counts as two weeks of a series' own


@dataclass(frozen=True)
class WindowNoise:
    """Variance model of a ``window``-hour sum, per series and stage: arrays of shape (S, 2)."""

    window: int
    a: FloatArray
    b: FloatArray
    df: FloatArray

    def variance(self, expected: FloatArray) -> FloatArray:
        v: FloatArray = self.a * expected + self.b * expected**2
        return v


def window_sums(x: FloatArray, w: int) -> FloatArray:
    """Sums of every ``w`` consecutive columns of (S, T) ``x``: shape (S, T - w + 1)."""
    c = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    out: FloatArray = c[:, w:] - c[:, :-w]
    return out


def _fit_b(y: FloatArray, e: FloatArray) -> FloatArray:
    """Per row, ``b >= 0`` in ``y ≈ e + b e²``, weights 1 / fitted² (iterated)."""
    ok = e > MIN_EXPECTED
    e = np.where(ok, e, 0.0)
    b = np.zeros(y.shape[0])
    for _ in range(4):
        v = np.maximum(e + b[:, None] * e**2, MIN_EXPECTED)
        wt = np.where(ok, 1.0 / v**2, 0.0)
        b = np.maximum((wt * (y - e) * e**2).sum(1) / np.maximum((wt * e**4).sum(1), 1e-300), 0.0)
    return b


def _effective_df(z: FloatArray, max_lag: int) -> FloatArray:
    """Bartlett's effective number of independent values behind a variance, per row of z."""
    n = np.isfinite(z).sum(1).astype(float)
    z = np.where(np.isfinite(z), z, 0.0)
    z = z - z.sum(1, keepdims=True) / np.maximum(n, 1.0)[:, None]
    z0 = (z * z).sum(1)
    total = np.zeros(z.shape[0])
    for k in range(1, min(max_lag, z.shape[1] - 1) + 1):
        rho = (z[:, k:] * z[:, :-k]).sum(1) / np.maximum(z0, 1e-300)
        total += np.maximum(rho**2 - 1.0 / np.maximum(n, 1.0), 0.0)
    df: FloatArray = np.clip(n / (1.0 + 2.0 * total), MIN_DF, np.maximum(n, MIN_DF))
    return df


def _pooled(b: FloatArray, df: FloatArray, mean_e: FloatArray) -> FloatArray:
    """Shrink each series' shift variance toward the shop's (empirical Bayes).

    A series' ``b`` rests on a few dozen independent windows; its sampling
    variance is about ``2 (1/E + b)² / df``, so a quiet series (counting noise
    dominates) says almost nothing about ``b`` and a busy one a fair amount.
    The pool is the precision-weighted mean; it counts as ``PRIOR_DF`` windows.
    """
    own = df / (1.0 / mean_e + b) ** 2
    pool = float((own * b).sum() / max(own.sum(), 1e-300))
    prior = PRIOR_DF / (1.0 / mean_e + pool) ** 2
    out: FloatArray = (own * b + prior * pool) / (own + prior)
    return out


def fit_window_noise(
    observed: tuple[FloatArray, ...],
    expected: tuple[FloatArray, ...],
    w: int,
    *,
    in_sample_share: FloatArray | None = None,
    factors: tuple[FloatArray, ...] | None = None,
) -> WindowNoise:
    """Fit the variance of ``w``-hour sums of each stage's (S, T) observed around expected.

    ``in_sample_share`` (S, stages): the share of a shared shift that the
    baseline's own rates absorbed because they were fitted on the same hours;
    the residual variance is scaled back up by ``1 / (1 - share)``.
    ``factors`` (per stage, (S, T - w + 1)): multipliers of each window's
    expected sum (the shop's shift, :mod:`.common`) for the relative test.
    """
    a_cols, b_cols, df_cols = [], [], []
    for k, (o, e) in enumerate(zip(observed, expected, strict=True)):
        ew = window_sums(e, w)
        if factors is not None:
            ew = ew * factors[k]
        dw = window_sums(o, w) - ew
        b = _fit_b(dw**2, ew)
        a = np.ones_like(b)
        if in_sample_share is not None:
            b = b / np.maximum(1.0 - in_sample_share[:, k], 0.5)
        # Non-overlapping windows, standardised by the fit, for the effective df.
        pick = dw[:, ::w], ew[:, ::w]
        sd = np.sqrt(np.maximum(a[:, None] * pick[1] + b[:, None] * pick[1] ** 2, 1e-12))
        z = np.where(pick[1] > MIN_EXPECTED, pick[0] / sd, np.nan)
        df = _effective_df(z, max(1, -(-48 // w)))
        mean_e = np.maximum(ew.sum(1) / max(ew.shape[1], 1), MIN_EXPECTED)
        a_cols.append(a)
        b_cols.append(_pooled(b, df, mean_e))
        df_cols.append(df)
    return WindowNoise(
        window=w,
        a=np.stack(a_cols, axis=1),
        b=np.stack(b_cols, axis=1),
        df=np.stack(df_cols, axis=1),
    )
