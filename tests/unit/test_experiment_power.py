"""LOW_POWER for every primary metric, on the variance the estimate really used;
relative lift bounds that respect what a non-negative metric can be."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from shelfwise.experiments.attribution import METRICS
from shelfwise.experiments.model import Arm, Experiment, ExperimentSpec
from shelfwise.experiments.report import compare
from shelfwise.experiments.stats import (
    LOW_POWER,
    Moments,
    check_power,
    cuped,
    fieller,
    ratio,
    welch,
)

Z = NormalDist().inv_cdf(0.975) + NormalDist().inv_cdf(0.8)


def _ctr_arm(rng: np.random.Generator, n: int) -> Moments:
    impressions = rng.poisson(20, n).astype(float)
    clicks = rng.binomial(impressions.astype(int), 0.05).astype(float)
    return Moments.of(["clicks", "impressions"], np.c_[clicks, impressions])


def test_a_ratio_primary_at_60_persons_per_arm_is_low_powered() -> None:
    rng = np.random.default_rng(3)
    c, t = _ctr_arm(rng, 60), _ctr_arm(rng, 60)
    est = ratio("ctr", "clicks", "impressions", c, t)
    assert est.control is not None and est.standard_error is not None
    mde = Z * est.standard_error / est.control
    assert 0.3 < mde < 0.8  # a 5% change is far below what 60 persons can see
    assert LOW_POWER in check_power(est, 0.05).warnings
    # 60,000 persons per arm can see 5%: no warning.
    big = ratio("ctr", "clicks", "impressions", _ctr_arm(rng, 60_000), _ctr_arm(rng, 60_000))
    assert big.standard_error is not None and big.control is not None
    assert Z * big.standard_error / big.control < 0.05
    assert LOW_POWER not in check_power(big, 0.05).warnings


def test_cuped_gives_the_power_that_the_raw_variance_lacks() -> None:
    rng = np.random.default_rng(5)
    n = 1_500

    def arm() -> Moments:
        pre = rng.gamma(2.0, 25.0, n)
        revenue = pre + rng.normal(0.0, 7.0, n)  # the pre-period explains ~96% of the variance
        return Moments.of(["revenue", "pre_revenue"], np.c_[revenue, pre])

    c, t = arm(), arm()
    raw, adjusted = welch("revenue", c, t), cuped("revenue", "pre_revenue", c, t)
    assert raw.standard_error is not None and adjusted.standard_error is not None
    assert adjusted.standard_error < 0.3 * raw.standard_error
    assert LOW_POWER in check_power(raw, 0.05).warnings
    assert LOW_POWER not in check_power(adjusted, 0.05).warnings
    # The check reads the standard error CUPED used, by hand:
    assert adjusted.control is not None
    mde = Z * adjusted.standard_error / adjusted.control
    assert mde < 0.05 < Z * raw.standard_error / raw.control  # type: ignore[operator]


def test_an_estimate_without_a_standard_error_is_low_powered() -> None:
    c = Moments.of(["y"], np.ones(40))
    est = welch("y", c, c)  # no variation at all: no interval
    assert est.standard_error is None
    assert LOW_POWER in check_power(est, 0.05).warnings


def test_revenue_lift_never_falls_below_minus_100_percent() -> None:
    rng = np.random.default_rng(7)
    # Revenue is mostly zero with a few large orders: a wide interval on the ratio.
    c = Moments.of(["revenue"], np.r_[np.zeros(170), rng.gamma(2.0, 60.0, 30)])
    t = Moments.of(["revenue"], np.r_[np.zeros(195), rng.gamma(2.0, 60.0, 5)])
    est = welch("revenue", c, t)
    assert est.control is not None and est.treatment is not None
    vc, vt = c.var("revenue") / c.n, t.var("revenue") / t.n
    q = float(NormalDist().inv_cdf(0.975))
    raw = fieller(est.control, est.treatment, vc, vt, q)
    assert raw is not None and raw[0] < 0  # Fieller alone says "below -100%"
    assert est.lift_low == -1.0  # revenue cannot be negative
    assert est.lift is not None and est.lift_high is not None
    assert est.lift_low <= est.lift < est.lift_high
    assert math.isclose(est.lift_high, raw[1] - 1.0, rel_tol=0.05)


def _experiment(primary: str) -> Experiment:
    from datetime import UTC, datetime

    spec = ExperimentSpec(
        experiment_id="power",
        name="power",
        arms=(Arm(name="control", share=0.5), Arm(name="treatment", share=0.5)),
        start=datetime(2026, 11, 1, tzinfo=UTC),
        primary_metric=primary,  # type: ignore[arg-type]
    )
    now = datetime(2026, 11, 2, tzinfo=UTC)
    return Experiment(spec=spec, version=1, status="running", created_at=now, updated_at=now)


def _persons(rng: np.random.Generator, n: int) -> Moments:
    x = np.zeros((n, len(METRICS)))
    col = {m: i for i, m in enumerate(METRICS)}
    x[:, col["impressions"]] = rng.poisson(20, n)
    x[:, col["clicks"]] = rng.binomial(x[:, col["impressions"]].astype(int), 0.05)
    x[:, col["pre_revenue"]] = rng.gamma(2.0, 25.0, n)
    x[:, col["revenue"]] = x[:, col["pre_revenue"]] + rng.normal(0.0, 7.0, n)
    x[:, col["orders"]] = x[:, col["converted"]] = x[:, col["purchases"]] = 1.0
    return Moments.of(METRICS, x)


def test_the_readout_checks_power_on_the_primary_it_reports() -> None:
    rng = np.random.default_rng(11)
    small = _persons(rng, 60), _persons(rng, 60)
    ctr = compare(_experiment("ctr"), *small, use_cuped=True)
    assert LOW_POWER in ctr["ctr"].warnings  # a ratio primary at 60 persons per arm
    assert LOW_POWER not in ctr["aov"].warnings  # only the primary is checked
    mid = _persons(rng, 1_500), _persons(rng, 1_500)
    revenue = _experiment("revenue_per_person")
    assert LOW_POWER not in compare(revenue, *mid, use_cuped=True)["revenue_per_person"].warnings
    assert LOW_POWER in compare(revenue, *mid, use_cuped=False)["revenue_per_person"].warnings
