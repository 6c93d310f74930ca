"""The detector's arithmetic on inputs whose answers are written out, and its invariants."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.monitoring.common import leave_one_out, prior_counts
from shelfwise.monitoring.detector import (
    DetectorConfig,
    WindowTest,
    evaluate,
    fit_baseline,
    stage_deficits,
)
from shelfwise.monitoring.noise import _fit_b, window_sums
from shelfwise.monitoring.synthetic import SyntheticSpec, generate

REFERENCE = 28 * 24


def test_leave_one_out_factor_known_answer() -> None:
    observed = np.array([10.0, 20.0, 30.0])
    expected = np.array([10.0, 10.0, 10.0])
    # Without prior counts: the others' observed over the others' expected.
    assert leave_one_out(observed, expected, 0.0).tolist() == [2.5, 2.0, 1.5]
    # 20 prior counts pull each toward 1: (50 + 20) / (20 + 20) = 1.75 for the first.
    assert leave_one_out(observed, expected, 20.0).tolist() == [1.75, 1.5, 1.25]


def test_prior_counts_are_one_over_the_shift_variance_beyond_counting_noise() -> None:
    # Two series; the shop's windows alternate 1% above and 1% below expectation,
    # with 10^6 expected counts a window: tau^2 = 1e-4 - 1e-6.
    e = np.full((2, 8), 0.5e6)
    o = e * np.array([1.01, 0.99] * 4)
    assert prior_counts(o, e) == 1.0 / (1e-4 - 1e-6)
    # No shared move beyond counting noise: the factor is held at 1.
    assert prior_counts(e + np.sqrt(e) * 0.0, e) == 1e8


def test_window_sums_and_the_shift_variance_fit_known_answers() -> None:
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    assert window_sums(x, 2).tolist() == [[3.0, 5.0, 7.0]]
    # Squared deficits exactly E + b E^2 with b = 0.0004: the fit returns b.
    e = np.array([[100.0, 400.0, 900.0, 2500.0]])
    assert np.allclose(_fit_b(e + 0.0004 * e**2, e), [0.0004])
    # Less spread than counting noise: b is held at 0.
    assert _fit_b(0.5 * e, e).tolist() == [0.0]


@settings(max_examples=60, deadline=None)
@given(
    expected=st.lists(st.floats(1.0, 1e5), min_size=2, max_size=12),
    shift=st.floats(0.5, 1.5),
    own=st.floats(0.0, 2.0),
    k=st.floats(0.0, 1e4),
)
def test_a_series_own_counts_never_move_its_own_factor(
    expected: list[float], shift: float, own: float, k: float
) -> None:
    e = np.array(expected)
    o = e * shift
    f = leave_one_out(o, e, k)
    # A shift shared by every series is what each one's factor measures (k = 0) ...
    if k == 0.0:
        assert np.allclose(f, shift)
    # ... shrunk toward 1, never past it ...
    assert np.all((f - 1.0) * (shift - 1.0) >= -1e-12)
    # ... and whatever the first series did, its own factor is unchanged.
    o2 = o.copy()
    o2[0] = e[0] * own
    assert np.isclose(leave_one_out(o2, e, k)[0], f[0])


def _shop() -> tuple[SyntheticSpec, np.ndarray]:
    spec = SyntheticSpec(days=32, seed=3, ctr_day_sd=0.01, ctr_local_share=0.1)
    return spec, np.arange(REFERENCE + 72, REFERENCE + 84)


def test_a_shift_the_whole_shop_shares_is_not_a_loss_of_one_series() -> None:
    spec, hours = _shop()
    store = generate(spec)
    series = store.series
    base = fit_baseline(series.window(0, REFERENCE))
    series.clicks[:, hours] = np.round(series.clicks[:, hours] * 0.97)  # the shop clicks 3% less
    cur = series.window(int(hours[0]), int(hours[-1]) + 1)
    rel = stage_deficits(base, cur, 12, relative=True)
    raw = stage_deficits(base, cur, 12)
    home = slice(0, 8)
    assert np.abs(rel.z[home, 0]).max() < 3.0
    # Against its own expectation each series shows the shop's 3% (less the 1% day
    # shifts the raw test must allow for): about two sigma more than the relative test.
    assert raw.z[home, 0].mean() - rel.z[home, 0].mean() > 1.5
    assert evaluate(base, series, int(hours[-1]) + 1, DetectorConfig()) == []


def test_an_outage_of_every_module_still_pages_through_the_raw_test() -> None:
    spec, hours = _shop()
    series = generate(spec).series
    base = fit_baseline(series.window(0, REFERENCE))
    series.clicks[:, hours] = np.round(series.clicks[:, hours] * 0.7)  # 30% fewer clicks
    end = int(hours[0]) + 3
    test = WindowTest.at(base, series, end, 3)
    assert np.all(test.p[:8, 0] <= 2 * test.relative.z.shape[0] * 1e-6)
    found = evaluate(base, series, end, DetectorConfig())
    assert {f.key for f in found if f.severity == "page"} >= set(series.keys[:8])


def test_the_synthetic_noise_splits_between_the_shop_and_each_series() -> None:
    from shelfwise.monitoring.synthetic import correlated_ctr_noise

    hours = np.arange(24 * 200, dtype=np.int64)
    shared = correlated_ctr_noise(SyntheticSpec(ctr_day_sd=0.01, ctr_local_share=0.0), 4, hours)
    assert np.array_equal(shared[0], shared[3])  # the whole shop moves as one
    split = correlated_ctr_noise(SyntheticSpec(ctr_day_sd=0.01, ctr_local_share=0.1), 4, hours)
    daily = split[:, ::24]
    # Each series' own part has 10% of the variance: its sd 1% x sqrt(0.1).
    own = daily - daily.mean(0)
    assert 0.0025 < own.std() * np.sqrt(4 / 3) < 0.0039
    assert 0.0085 < daily.std() < 0.0115


def test_a_drop_under_shop_wide_day_shifts_is_found_and_nothing_else_fires() -> None:
    # The done-when incident (2% of CTR on the home page's top category at a 20:00
    # peak) in a shop whose CTR moves 1% a day, 90% of it shared: only the relative
    # test can tell the drop from the day (in benchmarks/alerts.py the raw test alone
    # found 1 of 20 such drops).
    from shelfwise.monitoring.detector import scan
    from shelfwise.monitoring.synthetic import NOISE_FAMILIES, Incident, peak_hour

    at = peak_hour(SyntheticSpec(), 32)
    spec = SyntheticSpec(
        days=35,
        seed=11,
        incidents=(Incident("home_top_picks", "bedding", 0.02, at),),
        **NOISE_FAMILIES["day_to_day"],
    )
    series = generate(spec).series
    found = scan(series, REFERENCE, DetectorConfig(), start=at - 48)
    assert {d.key for d in found} == {("home_top_picks", "bedding")}
    assert 0 < min(d.detected_at for d in found) - at <= 24
