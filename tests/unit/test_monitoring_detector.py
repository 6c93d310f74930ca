"""Cost-weighted alerts on synthetic series whose truth is known."""

from __future__ import annotations

import numpy as np

from shelfwise.monitoring.detector import DetectorConfig, benjamini_hochberg, scan
from shelfwise.monitoring.synthetic import SyntheticSpec, generate, incident_spec

REFERENCE = 28 * 24


def test_benjamini_hochberg_step_up() -> None:
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    # q = 0.05, m = 10: thresholds 0.005, 0.010, 0.015, ...; the largest k with
    # p_(k) <= k q / m is k = 2.
    assert benjamini_hochberg(p, 0.05).tolist() == [True, True] + [False] * 8
    assert not benjamini_hochberg(np.array([0.5, 0.9]), 0.05).any()


def test_incident_on_the_big_module_fires_and_the_small_one_does_not() -> None:
    spec = incident_spec(seed=11)
    store = generate(spec)
    big = spec.incidents[0]
    detections = scan(store.series, REFERENCE, DetectorConfig())
    fired = {d.key for d in detections}
    assert fired == {(big.placement, big.category)}
    first = min(detections, key=lambda d: d.detected_at)
    time_to_detect = first.detected_at - big.start_hour
    print(f"time to detect: {time_to_detect} h ({first.severity})")
    assert 0 < time_to_detect <= 12
    assert {d.severity for d in detections} == {"page", "ticket"}


def test_revenue_at_risk_is_within_20_percent_of_the_truth() -> None:
    from shelfwise.monitoring.detector import fit_baseline, onset

    spec = incident_spec(seed=11)
    store = generate(spec)
    big = spec.incidents[0]
    series = store.series
    s = series.keys.index((big.placement, big.category))
    base = fit_baseline(series.window(0, REFERENCE))
    o = onset(base, series, s, series.hours, DetectorConfig(), ("click_through",))
    truth = store.truth_per_hour(s, big.start_hour, series.hours)
    assert abs(o.start - big.start_hour) <= 6
    assert abs(o.at_risk_per_hour - truth) / truth < 0.2


def test_stationary_store_raises_no_alert() -> None:
    store = generate(SyntheticSpec(seed=5))
    assert scan(store.series, REFERENCE, DetectorConfig()) == []


def test_truth_is_the_expected_loss() -> None:
    spec = incident_spec(seed=11)
    store = generate(spec)
    big = spec.incidents[0]
    s = store.series.keys.index((big.placement, big.category))
    assert store.expected_loss[s, : big.start_hour].sum() == 0
    # 2% of CTR 4% x conversion 5% x order value 70 per impression.
    per_impression = 0.02 * 0.04 * 0.05 * 70
    at = big.start_hour
    assert store.expected_loss[s, at] == np.float64(
        store.series.impressions[s, at] * per_impression
    )
