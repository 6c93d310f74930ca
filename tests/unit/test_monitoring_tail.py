"""The level test's fitted tail (``monitoring.tail``): episode peaks, the exponential fit
and its bound on written-out answers and simulated tails, and the replay's use of it."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from shelfwise.cli.alerts import _fitted
from shelfwise.monitoring.calibrate import calibrate, opened, record
from shelfwise.monitoring.detector import DetectorConfig
from shelfwise.monitoring.synthetic import NOISE_FAMILIES, Incident, SyntheticSpec, generate
from shelfwise.monitoring.tail import TailFit, episode_peaks

REFERENCE = 28 * 24


def test_episode_peaks_split_where_the_quiet_hours_run_out() -> None:
    # Series 0 passes 6 at hours 1-2 (peak 8), again at hour 5 after 2 quiet hours
    # (peak 9) and at hour 9 after 3 (peak 7); series 1 never passes.
    column = [0.0, 7.0, 8.0, 1.0, 2.0, 9.0, 0.0, 3.0, 0.0, 7.0]
    stat = np.stack([column, [5.9] * 10], axis=1)
    assert episode_peaks(stat, 6.0, 1).tolist() == [8.0, 9.0, 7.0]
    assert episode_peaks(stat, 6.0, 3).tolist() == [9.0, 7.0]  # hour 5 joins hours 1-2
    assert episode_peaks(stat, 6.0, 4).tolist() == [9.0]
    assert episode_peaks(stat, 8.5, 1).tolist() == [9.0]
    with pytest.raises(ValueError):
        episode_peaks(stat, 6.0, 0)


def test_the_fit_on_written_out_peaks() -> None:
    # Five peaks 0.5 ... 2.5 over the base 6: mean excess 1.5. 64 series over 30 days
    # (one month each), one alert of the other tests.
    fit = TailFit(6.0, np.array([6.5, 7.0, 7.5, 8.0, 8.5]), series=64, hours=720, others=1)
    assert fit.fitted and fit.scale == pytest.approx(1.5)
    assert fit.level(9.0) == pytest.approx(5 * math.exp(-2.0))
    assert fit.per_month(9.0) == pytest.approx(1 + 5 * math.exp(-2.0))
    x = 2.0
    assert fit.level_upper(9.0) == pytest.approx(
        5 * math.exp(-x + 1.6448536269514722 * math.sqrt((1 + x**2) / 5))
    )
    # The other tests' bound for one alert (Poisson, 95%) is 4.74.
    assert fit.per_month_upper(9.0) - fit.level_upper(9.0) == pytest.approx(4.7439, abs=1e-3)
    # Within 10 a month per 200 series: (1 + level_upper) x 200 / 64 <= 10, i.e.
    # level_upper <= 2.2: first on the grid at 11.5 (2.09; at 11 2.31). Five peaks
    # leave the bound wide: the point estimate at 11 is 0.18.
    grid = np.arange(6.0, 16.01, 0.5)
    assert fit.lowest_threshold(10.0, grid) == 11.5
    assert fit.lowest_threshold(3.0, grid) == math.inf  # 3.1 for the other tests alone
    with pytest.raises(ValueError):
        fit.per_month(5.0)


def test_too_few_peaks_take_a_likelihood_ratio_tail_and_the_poisson_bound() -> None:
    fit = TailFit(6.0, np.array([9.0, 12.0]), series=32, hours=1440, others=0)
    assert not fit.fitted and fit.scale == 1.0
    assert fit.level(8.0) == pytest.approx(2 * math.exp(-2.0))
    assert fit.level_upper(8.0) == pytest.approx(6.2958 * math.exp(-2.0), rel=1e-4)
    assert fit.per_month(8.0) == pytest.approx(fit.level(8.0) / 2)  # two months


def test_the_bound_covers_the_true_rate_about_19_times_in_20() -> None:
    # Peaks over 6 with exponential excess of scale 1.3, 20 expected per replay: the
    # expected count over 10 is 20 e^{-4/1.3}; the 95% bound should miss it about 5%.
    rng = np.random.default_rng(7)
    truth = 20 * math.exp(-4.0 / 1.3)
    misses, low = 0, 0
    for _ in range(1000):
        peaks = 6.0 + rng.exponential(1.3, size=rng.poisson(20))
        fit = TailFit(6.0, peaks, series=200, hours=720, others=0)
        misses += fit.level_upper(10.0) < truth
        low += fit.level(10.0) < truth
    assert 0.02 <= misses / 1000 <= 0.09
    assert 0.35 <= low / 1000 <= 0.75  # the estimate itself is not biased far


def test_pooled_fits_add_their_series_and_peaks() -> None:
    a = TailFit(6.0, np.array([7.0]), series=32, hours=720, others=1)
    b = TailFit(6.0, np.array([8.0, 9.0]), series=32, hours=720, others=0)
    both = TailFit.pooled([a, b])
    assert both.series == 64 and both.others == 1
    assert sorted(both.peaks.tolist()) == [7.0, 8.0, 9.0]
    with pytest.raises(ValueError):
        TailFit.pooled([a, replace(b, hours=360)])


def test_the_replay_tail_counts_what_the_level_test_would_open() -> None:
    # Four days of a slow-drift store replayed with the level test recording at base 3
    # (low, so that the statistic passes it): every episode of the level test's own
    # alerts at a threshold over the base is one of the tail's peaks over it.
    cfg = replace(DetectorConfig(), level_tail_base=3.0)
    spec = SyntheticSpec(days=28 + 3 + 4, seed=3, **NOISE_FAMILIES["slow_drift_local"])
    series = generate(spec).series
    rec = record(series, REFERENCE, cfg, series.hours - 96, series.hours)
    assert rec.level is not None
    tail = rec.tail(cfg)
    assert tail.series == 32 and tail.hours == 96
    assert tail.peaks.size > 0 and (tail.peaks > 3.0).all()
    others = rec.firing(replace(cfg, level_threshold=0.0))
    for h in (3.0, float(np.median(tail.peaks))):
        level_only = [
            {f.series for f in lv.findings(rec.keys, replace(cfg, level_threshold=h))} - other
            for lv, other in zip(rec.level, others, strict=True)
        ]
        # The statistic the tail reads alarms exactly where the findings do.
        assert [set(np.nonzero(lv.alarmable(cfg) > h)[0].tolist()) for lv in rec.level] == [
            {f.series for f in lv.findings(rec.keys, replace(cfg, level_threshold=h))}
            for lv in rec.level
        ]
        assert len(opened(level_only, cfg.resolve_after_hours)) >= int((tail.peaks > h).sum())
    assert len(opened(others, cfg.resolve_after_hours)) == tail.others


def test_the_calibration_report_states_the_fitted_rate() -> None:
    spec = SyntheticSpec(days=28 + 3 + 4, seed=3, **NOISE_FAMILIES["slow_drift_local"])
    series = generate(spec).series
    cfg = DetectorConfig()
    cal = calibrate(series, REFERENCE, cfg, 96)
    assert cal.tail is not None and cal.level_threshold == cfg.level_threshold
    assert cal.per_month_expected == pytest.approx(cal.tail.per_month(cfg.level_threshold))
    assert cal.per_month_expected_upper is not None
    assert cal.per_month_expected_upper > cal.per_month_expected
    # What `shelfwise alerts calibrate --json` prints of it.
    fitted = _fitted(cal)
    assert fitted["alerts_per_month_expected"] == round(cal.per_month_expected, 3)
    assert fitted["level_tail"] == {
        "threshold": cfg.level_threshold,
        "base": cfg.level_tail_base,
        "episodes_over_base": cal.tail.peaks.size,
        "scale": round(cal.tail.scale, 3),
        "fitted": cal.tail.fitted,
        "other_tests_alerts": cal.tail.others,
    }
    # The other tests enter by their own fitted tail, not by their count.
    others = cal.tail.others_fit
    assert others is not None and others.base == cfg.others_tail_base
    months = 96 / 720
    assert cal.per_month_expected == pytest.approx(
        (others.level(0.0) + cal.tail.level(cfg.level_threshold)) / months
    )
    assert fitted["other_tests_tail"] == {
        "base": cfg.others_tail_base,
        "episodes_over_base": others.peaks.size,
        "scale": round(others.scale, 3),
        "fitted": others.fitted,
        "alerts_per_month_expected": round(others.level(0.0) / months, 3),
        "alerts_per_month_expected_upper_95": round(others.level_upper(0.0) / months, 3),
    }
    off = calibrate(series, REFERENCE, replace(cfg, level_threshold=0.0), 96)
    assert off.tail is None and off.per_month_expected is None and _fitted(off) == {}
    # A threshold below the tail's base is fitted from the threshold up.
    low = calibrate(series, REFERENCE, replace(cfg, level_threshold=4.0), 96)
    assert low.tail is not None and low.tail.base == 4.0
    assert low.per_month_expected is not None


def test_the_other_tests_tail_replaces_their_count_and_its_bound_enters_the_rule() -> None:
    # The level part as in test_the_fit_on_written_out_peaks; the other tests' excess
    # past their thresholds: four peaks over -4 (mean excess 1.5, too few to fit, so
    # scale 1 and the Poisson bound of 4 events, 9.154).
    others = TailFit(-4.0, np.array([-3.5, -3.0, -2.5, -1.0]), series=64, hours=720, others=0)
    assert not others.fitted
    fit = TailFit(6.0, np.array([6.5, 7.0, 7.5, 8.0, 8.5]), 64, 720, others=1, others_fit=others)
    assert fit.others_expected() == pytest.approx(4 * math.exp(-4.0))
    assert fit.others_upper() == pytest.approx(9.1535 * math.exp(-4.0), rel=1e-4)
    assert fit.per_month(9.0) == pytest.approx(4 * math.exp(-4.0) + 5 * math.exp(-2.0))
    assert fit.per_month_upper(9.0) == pytest.approx(fit.others_upper() + fit.level_upper(9.0))
    # Within 10 a month per 200 series: level_upper <= 3.2 - 0.168 = 3.03, first at 10
    # (2.82; at 9.5 3.14); counted, the other tests' one alert allowed 2.2: 11.5.
    grid = np.arange(6.0, 16.01, 0.5)
    assert fit.lowest_threshold(10.0, grid) == 10.0
    assert replace(fit, others_fit=None).lowest_threshold(10.0, grid) == 11.5
    # Pooled with their tails; a pool where some lack it is refused.
    both = TailFit.pooled([fit, fit])
    assert both.others_fit is not None and both.others_fit.peaks.size == 8
    assert both.others_fit.fitted and both.others_fit.scale == pytest.approx(1.5)
    with pytest.raises(ValueError):
        TailFit.pooled([fit, replace(fit, others_fit=None)])


def test_the_other_tests_excess_fires_exactly_where_their_findings_do() -> None:
    # Four days of a slow-drift store with a 5% loss on the home page's top category from
    # the first evening: at the configured thresholds and with every one of them moved
    # by the same number of log units, a series fires by the window and sequential tests
    # exactly at the hours its excess reaches the move.
    cfg = DetectorConfig()
    start = (28 + 3) * 24
    spec = SyntheticSpec(
        days=28 + 3 + 4,
        seed=3,
        incidents=(Incident("home_top_picks", "bedding", 0.05, start + 20),),
        **NOISE_FAMILIES["slow_drift"],
    )
    series = generate(spec).series
    rec = record(series, REFERENCE, cfg, start, start + 96)
    excess = rec.others_excess(cfg)
    assert excess.shape == (96, 32)
    fired = 0
    for shift in (-6.0, -4.0, 0.0, 3.0):
        moved = replace(
            cfg,
            level_threshold=0.0,
            fdr=cfg.fdr * math.exp(-shift),
            sequential_threshold=cfg.sequential_threshold + shift,
        )
        firing = rec.firing(moved)
        assert firing == [set(np.nonzero(x >= shift)[0].tolist()) for x in excess]
        fired += sum(map(len, firing))
    assert fired > 200  # the loss fires at every shift, the healthy series at -6 as well
    # The tail of that excess in the replay's report, over the configured base.
    tail = rec.tail(cfg, fit_others=True)
    assert tail.others_fit is not None and tail.others_fit.base == cfg.others_tail_base
    assert (tail.others_fit.peaks > cfg.others_tail_base).all()
    assert rec.tail(cfg).others_fit is None
