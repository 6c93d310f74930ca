"""The level test: a change-point likelihood ratio against the series' own recent level.

The window and sequential tests compare a series with its baseline (28 days
that end 72 h ago) times the shop's shift. A series' own shift (its stock, a
promotion, a feed change) that lasts hours or days is noise to them that does
not average out, so a 2% loss waits for many windows. The hours just before a
loss share most of that shift, though: comparing the hours since a candidate
onset with the hours before it takes it out. This is what an oracle that knows
the noise model does (``benchmarks/alerts_oracle.py``); here the model is
learned from the reference.

Hourly relative residuals ``r_t = clicks / (impressions x CTR x shop factor) - 1``
(the baseline's rate by hour of week; the shop's factor measured on the other
series, :mod:`.common`, smoothed over the window by the shop's own noise model,
:func:`shop_move`) are taken as Gaussian with covariance

    Σ = diag(counting_t + white) + σ² rho^|i-j| + d [same UTC day] + c 1 1ᵀ

counting noise (``1 / expected``), extra white noise, an AR(1) part (the
series' own shift that fades over hours), a shift per UTC day (what the hours
of one day share beyond that: the between-day variance) and a constant offset
over the window (the baseline's own error and the level's drift since the
reference). For a loss of
``δ`` from hour ``τ`` on (mean ``-δ u_τ``, ``u_τ`` 1 from ``τ``) the
log-likelihood ratio is ``-δ u_τᵀ Σ⁻¹ r - δ² u_τᵀ Σ⁻¹ u_τ / 2``; the statistic is its
maximum over ``τ`` in the last ``changes`` hours (a CUSUM with a known shift
and correlated noise; stateless). ``Σ⁻¹`` is applied in O(N) per right-hand
side: the AR(1) precision is tridiagonal (Woodbury with the diagonal), the
day shifts and the offset a low-rank update (Woodbury: one column per day of
the window, one for the offset).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shelfwise.monitoring.series import FloatArray

RHOS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)
MAX_LAG = 24


@dataclass(frozen=True)
class LevelNoise:
    """Per series (S,): the hourly residuals' noise beyond counting noise."""

    white: FloatArray  # relative variance of independent hourly noise beyond counting
    ar_var: FloatArray  # marginal variance of the AR(1) part
    rho: float  # its lag-1 correlation (one for the shop)
    offset_var: FloatArray  # variance of a level offset constant over a window
    day_var: FloatArray | None = None  # variance of a shift shared by the hours of a UTC day


def tiled(noise: LevelNoise, k: int) -> LevelNoise:
    """``noise``'s series repeated ``k`` times (all of them, then all again): one row
    (the shop's model) for every series, or a store's series for ``k`` draws."""
    return LevelNoise(
        white=np.tile(noise.white, k),
        ar_var=np.tile(noise.ar_var, k),
        rho=noise.rho,
        offset_var=np.tile(noise.offset_var, k),
        day_var=None if noise.day_var is None else np.tile(noise.day_var, k),
    )


def autocovariances(
    r: FloatArray, count_var: FloatArray, day: np.ndarray, lags: int = MAX_LAG
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Precision-weighted autocovariances of residuals ``r`` (S, T) beyond counting
    noise, each series centred on its weighted mean (``day``: (T,) the UTC day of each
    column): (S, lags + 1) over the pairs within one UTC day and (S, lags + 1) over
    the pairs across a day's end (lag 0: the variance less ``count_var``, in both),
    and (S, lags + 1) the weighted share of the pairs at each lag within one day."""
    w = 1.0 / np.maximum(count_var, 1e-12)
    mean = (w * r).sum(1, keepdims=True) / w.sum(1, keepdims=True)
    x = r - mean
    within = np.zeros((r.shape[0], lags + 1))
    across = np.zeros((r.shape[0], lags + 1))
    same = np.ones((r.shape[0], lags + 1))
    w0 = w**2
    within[:, 0] = across[:, 0] = (w0 * (x**2 - count_var)).sum(1) / w0.sum(1)
    for k in range(1, lags + 1):
        wk = w[:, k:] * w[:, :-k]
        prod = wk * x[:, k:] * x[:, :-k]
        one = day[k:] == day[:-k]
        w_in, w_out = (wk * one).sum(1), (wk * ~one).sum(1)
        within[:, k] = (prod * one).sum(1) / np.maximum(w_in, 1e-300)
        across[:, k] = (prod * ~one).sum(1) / np.maximum(w_out, 1e-300)
        same[:, k] = w_in / np.maximum(w_in + w_out, 1e-300)
    return within, across, same


def _two_nonnegative(
    y: FloatArray, a: FloatArray, b: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per row of (S, K): least squares ``y ≈ u a + v b`` with u, v >= 0; returns u, v
    and the residual sum of squares (the best of the interior and the two edges)."""
    aa, bb, ab = (a * a).sum(1), (b * b).sum(1), (a * b).sum(1)
    ay, by = (a * y).sum(1), (b * y).sum(1)
    det = aa * bb - ab**2
    safe = np.where(det > 1e-300, det, 1.0)
    alpha = np.where(det > 1e-300, (bb * ay - ab * by) / safe, -1.0)
    beta = np.where(det > 1e-300, (aa * by - ab * ay) / safe, -1.0)
    interior = (alpha >= 0) & (beta >= 0)
    candidates = [
        (np.where(interior, alpha, 0.0), np.where(interior, beta, 0.0), interior),
        (np.maximum(ay / np.maximum(aa, 1e-300), 0.0), np.zeros_like(ay), np.ones_like(interior)),
        (np.zeros_like(by), np.maximum(by / np.maximum(bb, 1e-300), 0.0), np.ones_like(interior)),
    ]
    best_a, best_b = np.zeros(y.shape[0]), np.zeros(y.shape[0])
    best_sse = (y**2).sum(1)
    for ca, cb, ok in candidates:
        sse = ((y - ca[:, None] * a - cb[:, None] * b) ** 2).sum(1)
        better = ok & (sse < best_sse)
        best_a, best_b = np.where(better, ca, best_a), np.where(better, cb, best_b)
        best_sse = np.where(better, sse, best_sse)
    return best_a, best_b, best_sse


def _equations(
    r: FloatArray, count_var: FloatArray, days: np.ndarray, lags: int, has_day: bool
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """The noise fit's equations for residuals ``r`` (S, T): the within-day
    autocovariances, the left-hand sides ``y``, the square roots of the shares of pairs
    within and across a day's end, the day shift's column ``p`` and the scale ``g0``."""
    within, across, same = autocovariances(r, count_var, days, lags)
    # Each series' equations over its lag-0 variance *with* counting noise: about the
    # sampling sd of its autocovariances, and never near zero. (Over the variance
    # beyond counting, a quiet series' estimate of it - a small difference of large
    # numbers, often negative - set the scale, and its noise picked the shop's rho.)
    w2 = 1.0 / np.maximum(count_var, 1e-12) ** 2
    counting = (w2 * count_var).sum(1) / w2.sum(1)
    g0 = np.maximum(within[:, 0] + counting, 1e-12)[:, None]
    # Pairs within one day and pairs across a day's end apart: a day shift adds d to
    # the first only, an AR(1) part the same to both. (Pooled, ``σ² rho^k + d p_k``
    # with p_k ≈ 1 - k/24 mimics a slower AR(1) as well: the fit split a local AR(1)
    # of rho 0.9 into rho 0.8 and a day shift, and the level test then took a wander
    # across midnight for a step.) Each equation weighs the share of its pairs.
    sqrt_in, sqrt_out = np.sqrt(same[:, 1:]), np.sqrt(1.0 - same[:, 1:])
    y = np.concatenate([within[:, 1:] * sqrt_in, across[:, 1:] * sqrt_out], axis=1) / g0
    p = (
        np.concatenate([sqrt_in, np.zeros_like(sqrt_out)], axis=1) / g0
        if has_day
        else np.zeros_like(y)
    )
    return within, y, sqrt_in, sqrt_out, p, g0


def _ar_columns(
    rho: float, sqrt_in: FloatArray, sqrt_out: FloatArray, g0: FloatArray
) -> FloatArray:
    """The AR(1) part's column of the equations at ``rho``."""
    k = np.arange(1, sqrt_in.shape[1] + 1)
    out: FloatArray = np.concatenate([rho**k * sqrt_in, rho**k * sqrt_out], axis=1) / g0
    return out


def _free_fit(
    y: FloatArray, a: FloatArray, b: FloatArray, has_day: bool
) -> tuple[FloatArray, FloatArray]:
    """Per row: least squares ``y ≈ u a + v b`` without the sign constraints (``v`` 0
    without day shifts). Linear in the autocovariances, so the two halves' difference
    measures its sampling error (a clipped fit's does not: two halves both clipped to 0
    agree)."""
    aa, ay = (a * a).sum(1), (a * y).sum(1)
    if not has_day:
        return ay / np.maximum(aa, 1e-300), np.zeros(y.shape[0])
    bb, ab, by = (b * b).sum(1), (a * b).sum(1), (b * y).sum(1)
    det = aa * bb - ab**2
    ok = det > 1e-12 * np.maximum(aa * bb, 1e-300)
    safe = np.where(ok, det, 1.0)
    u = np.where(ok, (bb * ay - ab * by) / safe, ay / np.maximum(aa, 1e-300))
    v = np.where(ok, (aa * by - ab * ay) / safe, 0.0)
    return u, v


def _half_fits(
    r: FloatArray, count_var: FloatArray, days: np.ndarray, lags: int, has_day: bool, rho: float
) -> tuple[tuple[FloatArray, FloatArray], tuple[FloatArray, FloatArray]] | None:
    """Each series' unconstrained AR(1) and day-shift variances (:func:`_free_fit`) on
    the first and the second half of the window's whole days apart (at the shop's
    ``rho``); None for fewer than two series or a window too short to halve."""
    if r.shape[0] < 2:
        return None
    cut = int(np.searchsorted(days, days[0] + (days[-1] - days[0] + 1) // 2))
    if cut < 2 * lags or r.shape[1] - cut < 2 * lags:
        return None
    fits = []
    for part in (slice(0, cut), slice(cut, None)):
        _, y, ins, outs, p, g0 = _equations(
            r[:, part], count_var[:, part], days[part], lags, has_day
        )
        fits.append(_free_fit(y, _ar_columns(rho, ins, outs, g0), p, has_day))
    return fits[0], fits[1]


def _shrink(own: FloatArray, pooled: float, halves: FloatArray, scale: FloatArray) -> FloatArray:
    """Empirical Bayes: each series' unconstrained estimate ``own`` shrunk toward
    ``pooled`` by ``V / (V + B)``, then kept non-negative.

    ``V``, its sampling variance, is taken proportional to the square of the scale of
    its equations (its lag-0 variance with counting noise: a quiet series' estimate
    is the noisier), the factor from the difference of its two halves' estimates
    (each half's variance about twice the whole's, so ``E (a - b)² = 4 V``) pooled
    over series. ``B``, the variance of the true values between series, is what the
    estimates' mean square around ``pooled`` has beyond the mean ``V`` (at least 0).
    Unweighted: weighted by precision (DerSimonian-Laird) the most precise series set
    ``B`` alone, and eight series with day shifts of 8e-5 among eight without were
    shrunk to ~1e-5. Series alike (their spread is their sampling error) take the
    pooled fit; series that differ keep most of their own.
    """
    unit = float(np.mean((halves / scale) ** 2)) / 4.0
    v = np.maximum(unit * scale**2, 1e-300)
    between = max(float(np.mean((own - pooled) ** 2) - np.mean(v)), 0.0)
    weight = between / (between + v)
    out: FloatArray = np.maximum(weight * own + (1.0 - weight) * pooled, 0.0)
    return out


def fit_level_noise(
    r: FloatArray,
    count_var: FloatArray,
    offset_var: FloatArray,
    day: np.ndarray | None = None,
    lags: int = MAX_LAG,
) -> LevelNoise:
    """The noise of hourly residuals ``r`` (S, T) with counting variance ``count_var``.

    ``rho`` (one for the shop, from :data:`RHOS`), each series' AR(1) variance ``σ²``
    and its day-shift variance ``d`` are fitted to the autocovariances at lags 1 …
    ``lags`` (``σ² rho^k + d p_k``, ``p_k`` the share of the pairs at lag k within one
    UTC day; non-negative least squares, each series relative to its lag-0
    variance including counting noise, about the scale of its autocovariances'
    sampling error); each series' ``σ²`` and ``d`` are then shrunk toward the pooled fit
    by empirical Bayes (:func:`_shrink`, with the sampling error from the window's two
    halves). The white part is what lag 0 holds beyond ``σ² + d``. ``day`` (T,): the UTC
    day of each column (None: no day shifts).
    """
    days = np.zeros(r.shape[1], dtype=np.int64) if day is None else day
    has_day = day is not None
    within, y, ins, outs, p, g0 = _equations(r, count_var, days, lags, has_day)
    best: tuple[float, float, FloatArray, FloatArray] | None = None
    for rho in RHOS:
        sigma2, d, sse = _two_nonnegative(y, _ar_columns(rho, ins, outs, g0), p)
        if best is None or float(sse.sum()) < best[0]:
            best = (float(sse.sum()), rho, sigma2, d)
    assert best is not None
    _, rho, sigma2, d = best
    # One series' split between its AR(1) part and its day shifts rests on 28 days and
    # its counting noise: a busy series under day shifts of 1e-5 was fitted none (and an
    # AR(1) instead), so a day's shift of its own read as a step. Each series' fit is
    # shrunk toward the pooled fit of every series' equations by how much of its
    # spread around it the fit's own sampling error explains (:func:`_shrink`).
    a = _ar_columns(rho, ins, outs, g0)
    pooled_s, pooled_d, _ = _two_nonnegative(y.reshape(1, -1), a.reshape(1, -1), p.reshape(1, -1))
    halves = _half_fits(r, count_var, days, lags, has_day, rho)
    if halves is None:
        sigma2 = 0.5 * sigma2 + 0.5 * pooled_s[0]
        d = 0.5 * d + 0.5 * pooled_d[0]
    else:
        (s_a, d_a), (s_b, d_b) = halves
        free_s, free_d = _free_fit(y, a, p, has_day)
        sigma2 = _shrink(free_s, float(pooled_s[0]), s_a - s_b, g0[:, 0])
        d = _shrink(free_d, float(pooled_d[0]), d_a - d_b, g0[:, 0])
    white = np.maximum(within[:, 0] - sigma2 - d, 0.0)
    return LevelNoise(
        white=white,
        ar_var=sigma2,
        rho=rho,
        offset_var=offset_var,
        day_var=d if day is not None else None,
    )


def tridiagonal_solve(diag: FloatArray, off: float, rhs: FloatArray) -> FloatArray:
    """Solve symmetric tridiagonal systems (Thomas): ``diag`` (B, N), constant off-diagonal
    ``off``, ``rhs`` (B, N, R)."""
    n = diag.shape[1]
    cp = np.empty(diag.shape)
    dp = np.empty(rhs.shape)
    cp[:, 0] = off / diag[:, 0]
    dp[:, 0] = rhs[:, 0] / diag[:, 0, None]
    for i in range(1, n):
        m = diag[:, i] - off * cp[:, i - 1]
        cp[:, i] = off / m
        dp[:, i] = (rhs[:, i] - off * dp[:, i - 1]) / m[:, None]
    x: FloatArray = np.empty(rhs.shape)
    x[:, -1] = dp[:, -1]
    for i in range(n - 2, -1, -1):
        x[:, i] = dp[:, i] - cp[:, i, None] * x[:, i + 1]
    return x


def precision_times(
    noise: LevelNoise, count_var: FloatArray, x: FloatArray, day: np.ndarray | None = None
) -> FloatArray:
    """``Σ⁻¹ x`` for every series: ``count_var`` (S, N), ``x`` (S, N, R); ``day`` (N,) the
    UTC day of each hour (for the day shifts)."""
    s, n = count_var.shape
    dinv = 1.0 / np.maximum(count_var + noise.white[:, None], 1e-12)
    # The low-rank part U C Uᵀ: one column per day of the window (variance d), the offset.
    cols, var = [], []
    if noise.day_var is not None and day is not None:
        for k in np.unique(day):
            cols.append((day == k).astype(float))
            var.append(noise.day_var)
    cols.append(np.ones(n))
    var.append(noise.offset_var)
    u = np.stack(cols, axis=1)  # (N, m)
    c = np.stack(var, axis=1)  # (S, m)
    m = u.shape[1]
    y = np.concatenate([x, np.broadcast_to(u, (s, n, m))], axis=2)
    dy = dinv[:, :, None] * y
    # AR(1) plus the diagonal: Woodbury with the AR(1)'s tridiagonal precision.
    rho = noise.rho
    has_ar = noise.ar_var > 1e-14
    scale = 1.0 / (np.maximum(noise.ar_var, 1e-14) * (1.0 - rho**2))
    base = np.full(n, 1.0 + rho**2)
    base[0] = base[-1] = 1.0
    out = dy.copy()
    if has_ar.any():
        idx = np.nonzero(has_ar)[0]
        # One shop-wide rho but a scale per series: solve each series' system scaled to 1.
        diag = base[None, :] + dinv[idx] / scale[idx, None]
        solved = tridiagonal_solve(diag, -rho, dy[idx]) / scale[idx, None, None]
        out[idx] = dy[idx] - dinv[idx, :, None] * solved
    # Woodbury with U C Uᵀ: Σ⁻¹ = Σ₁⁻¹ - Σ₁⁻¹ U C (I + Uᵀ Σ₁⁻¹ U C)⁻¹ Uᵀ Σ₁⁻¹.
    pu = out[:, :, -m:]  # Σ₁⁻¹ U  (S, N, m)
    px = out[:, :, :-m]
    capacitance = np.eye(m)[None] + np.einsum("nm,snk->smk", u, pu) * c[:, None, :]
    inner = np.linalg.solve(capacitance, np.einsum("nm,snr->smr", u, px))
    result: FloatArray = px - np.einsum("snm,sm,smr->snr", pu, c, inner)
    return result


def covariance(
    noise: LevelNoise, count_var: FloatArray, s: int, day: np.ndarray | None = None
) -> FloatArray:
    """Σ of series ``s`` written out (N, N): ``count_var`` (S, N), ``day`` (N,)."""
    i = np.arange(count_var.shape[1])
    cov: FloatArray = (
        np.diag(count_var[s] + noise.white[s])
        + noise.ar_var[s] * noise.rho ** np.abs(i[:, None] - i[None, :])
        + noise.offset_var[s]
    )
    if noise.day_var is not None and day is not None:
        cov = cov + noise.day_var[s] * (day[:, None] == day[None, :])
    return cov


def shop_move(
    noise: LevelNoise, relative: FloatArray, count_var: FloatArray, day: np.ndarray | None = None
) -> FloatArray:
    """The shop's relative move per hour as the other series measured it, smoothed by its
    noise model: ``E[m | y] = y - C Σ⁻¹ y`` for ``y`` (S, N) the others' relative
    residuals with counting variance ``C`` (S, N), ``m`` Gaussian with ``noise``'s
    covariance (one row per series, the shop's parameters).

    With independent hours (``white`` only, ``1 / k``) this is the shrunk factor of
    :func:`.common.leave_one_out` (``y E / (E + k)``); a move the hours share (a day
    shift, an AR(1) part, the window's offset) is measured on all of them, so a quiet
    night no longer leaves ``k / (E + k)`` of it in every series' residual.
    """
    px = precision_times(noise, count_var, relative[:, :, None], day)[:, :, 0]
    out: FloatArray = relative - count_var * px
    return out


@dataclass(frozen=True)
class LevelStatistic:
    """Per series (S,): the largest log-likelihood ratio, the hour (0-based in the
    window) of the onset behind it (``N`` when the statistic is 0), and at that onset
    the fitted relative loss ``δ̂ = -uᵀΣ⁻¹r / uᵀΣ⁻¹u`` (the generalised least-squares
    step; positive for a loss) and its information ``uᵀΣ⁻¹u`` (``Var δ̂ = 1 / info``)."""

    statistic: FloatArray
    start: np.ndarray
    loss: FloatArray
    information: FloatArray


def level_statistic(
    r: FloatArray,
    count_var: FloatArray,
    noise: LevelNoise,
    drop: float,
    changes: int,
    day: np.ndarray | None = None,
) -> LevelStatistic:
    """The change-point log-likelihood ratio of a relative loss ``drop`` that began in
    the last ``changes`` hours of the residual window ``r`` (S, N); ``day`` (N,) the
    UTC day of each hour."""
    s, n = r.shape
    changes = min(changes, n - 1)
    step = np.tril(np.ones((n, n)))[:, n - changes :]  # column j: 1 from hour n-changes+j
    x = np.concatenate([r[:, :, None], np.broadcast_to(step, (s, n, changes))], axis=2)
    px = precision_times(noise, count_var, x, day)
    m_r = -drop * (step[None, :, :] * px[:, :, :1]).sum(1)
    m_m = drop**2 * (step[None, :, :] * px[:, :, 1:]).sum(1)
    llr = m_r - m_m / 2.0
    best = np.argmax(llr, axis=1)
    rows = np.arange(s)
    stat = np.maximum(llr[rows, best], 0.0)
    start = np.where(stat > 0, n - changes + best, n)
    info = np.where(stat > 0, m_m[rows, best] / drop**2, 0.0)
    loss = np.where(stat > 0, drop * m_r[rows, best] / np.maximum(m_m[rows, best], 1e-300), 0.0)
    return LevelStatistic(statistic=stat, start=start, loss=loss, information=info)
