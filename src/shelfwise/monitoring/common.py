"""Shop-wide shifts: what every series' rate shares, measured on the other series.

A module's click-through rate moves with the shop's traffic: a campaign
brings visitors who click less, a rainy Sunday more mobile sessions, the
season a different mood. Those moves are shared by every placement and
category, so the rest of the shop measures them for each series at the same
hour: the **relative** test compares a series with its expectation times the
shop's factor over the same window, measured on the *other* series only
(leave one out, so the series' own incident never lowers its own bar):

    f_s = (O - o_s + k) / (E - e_s + k)

``O``, ``E`` are the window's observed and expected counts over every series,
``o_s``, ``e_s`` the series' own. ``k`` (prior counts) shrinks the factor
toward 1 as far as the others' counting noise (relative variance ``1 / (E -
e_s)``) is large against the shop's shift variance ``τ²`` (``k = 1 / τ²``):
in a small shop, or a shop without shared moves, the factor stays near 1.
``τ²`` is learned per window length from the reference: the relative variance
of the shop's own window totals beyond their counting noise.
"""

from __future__ import annotations

import numpy as np

from shelfwise.monitoring.series import FloatArray

MIN_SHIFT_VARIANCE = 1e-8  # below this the shop shows no shared move: k = 1e8 counts


def prior_counts(window_observed: FloatArray, window_expected: FloatArray) -> float:
    """``k = 1 / τ²`` from (S, n) window sums of one stage over the reference."""
    o, e = window_observed.sum(0), window_expected.sum(0)
    ok = e > 1.0
    if not ok.any():
        return 1.0 / MIN_SHIFT_VARIANCE
    rel = (o[ok] - e[ok]) ** 2 / e[ok] ** 2 - 1.0 / e[ok]
    tau2 = max(float(rel.mean()), MIN_SHIFT_VARIANCE)
    return 1.0 / tau2


def leave_one_out(observed: FloatArray, expected: FloatArray, k: float) -> FloatArray:
    """Each series' shop factor from the other series (axis 0), shrunk by ``k`` prior counts.

    ``observed``, ``expected``: window sums of one stage, shape (S,) or (S, n).
    """
    others_o = observed.sum(0, keepdims=True) - observed
    others_e = expected.sum(0, keepdims=True) - expected
    f: FloatArray = (np.maximum(others_o, 0.0) + k) / (np.maximum(others_e, 0.0) + k)
    return f
