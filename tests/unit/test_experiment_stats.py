"""The statistics are calibrated: A/A false positives at alpha, CI coverage, SRM, Holm, CUPED."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shelfwise.experiments.checks import (
    holm as holm_adjust,
)
from shelfwise.experiments.checks import (
    incrementality,
    non_inferiority,
    power_plan,
    sample_ratio,
)
from shelfwise.experiments.model import ExperimentSpec
from shelfwise.experiments.report import minimum_per_arm
from shelfwise.experiments.stats import (
    LIFT_UNBOUNDED,
    NO_PRE_PERIOD,
    NOT_ESTIMABLE,
    SMALL_SAMPLE,
    ZERO_BASELINE,
    Moments,
    cuped,
    fieller,
    persons_per_arm,
    ratio,
    welch,
)
from shelfwise.experiments.synthetic import World

NAMES = ("revenue", "orders")
BUY_P, EXTRA_ORDERS, MU, SIGMA = 0.12, 0.5, 3.5, 1.0
ORDER_VALUE = math.exp(MU + SIGMA**2 / 2)  # true AOV


def _arms(
    rng: np.random.Generator, experiments: int, n: int, lift: float = 0.0
) -> tuple[list[Moments], list[Moments]]:
    """Per-arm sufficient statistics of many simulated experiments at once.

    Each person buys with probability BUY_P, then 1 + Poisson(EXTRA_ORDERS)
    orders, each worth a lognormal amount (x(1+lift) in treatment): revenue per
    person is zero for most and heavily skewed for the rest.
    """
    out: list[list[Moments]] = [[], []]
    for arm in (0, 1):
        persons = experiments * n
        orders = (rng.random(persons) < BUY_P) * (1 + rng.poisson(EXTRA_ORDERS, persons))
        owner = np.repeat(np.arange(persons), orders)
        values = rng.lognormal(MU, SIGMA, owner.size) * (1 + lift * arm)
        revenue = np.bincount(owner, weights=values, minlength=persons)
        x = np.stack([revenue, orders.astype(np.float64)], axis=1).reshape(experiments, n, 2)
        sums = x.sum(axis=1)
        cross = np.einsum("eni,enj->eij", x, x)
        out[arm] = [Moments(NAMES, n, sums[e], cross[e]) for e in range(experiments)]
    return out[0], out[1]


def test_aa_false_positive_rate_and_coverage() -> None:
    rng = np.random.default_rng(20261127)
    control, treatment = _arms(rng, 2_000, 1_000)
    rpp = [welch("revenue", c, t) for c, t in zip(control, treatment, strict=True)]
    aov = [ratio("aov", "revenue", "orders", c, t) for c, t in zip(control, treatment, strict=True)]
    fpr_rpp = np.mean([e.p_value is not None and e.p_value < 0.05 for e in rpp])
    fpr_aov = np.mean([e.p_value is not None and e.p_value < 0.05 for e in aov])
    assert 0.035 <= fpr_rpp <= 0.065, fpr_rpp
    assert 0.035 <= fpr_aov <= 0.065, fpr_aov
    # Coverage of the difference (truth 0) and of the relative lift (truth 0).
    cover = np.mean([e.diff_low <= 0 <= e.diff_high for e in rpp])  # type: ignore[operator]
    cover_lift = np.mean([e.lift_low <= 0 <= e.lift_high for e in aov])  # type: ignore[operator]
    assert 0.935 <= cover <= 0.965, cover
    assert 0.935 <= cover_lift <= 0.965, cover_lift


def test_ab_intervals_cover_a_known_lift() -> None:
    rng = np.random.default_rng(7)
    control, treatment = _arms(rng, 1_000, 1_000, lift=0.10)
    true_rpp = BUY_P * (1 + EXTRA_ORDERS) * ORDER_VALUE * 0.10
    rpp = [welch("revenue", c, t) for c, t in zip(control, treatment, strict=True)]
    aov = [ratio("aov", "revenue", "orders", c, t) for c, t in zip(control, treatment, strict=True)]
    cover_rpp = np.mean([e.diff_low <= true_rpp <= e.diff_high for e in rpp])  # type: ignore[operator]
    cover_aov = np.mean([e.lift_low <= 0.10 <= e.lift_high for e in aov])  # type: ignore[operator]
    assert 0.935 <= cover_rpp <= 0.965, cover_rpp
    assert 0.935 <= cover_aov <= 0.965, cover_aov


def test_fieller_by_hand_and_near_the_delta_method_on_large_samples() -> None:
    # (2 - θ·1)² ≤ 4·(0.01 + θ²·0.0025): 0.99 θ² - 4 θ + 3.96 ≤ 0
    lo, hi = fieller(1.0, 2.0, 0.0025, 0.01, 2.0)  # type: ignore[misc]
    assert (lo, hi) == pytest.approx(((4 - math.sqrt(16 - 4 * 0.99 * 3.96)) / 1.98,
                                      (4 + math.sqrt(16 - 4 * 0.99 * 3.96)) / 1.98))  # fmt: skip
    delta = 2.0 * math.sqrt(0.01 / 1.0 + 4.0 * 0.0025 / 1.0)
    assert (hi - lo) / 2 == pytest.approx(delta, rel=0.05)


def test_a_treatment_near_zero_keeps_an_honest_relative_interval() -> None:
    # Control barely above zero, treatment all zeros: the delta method would
    # give lift -1 with a zero-width interval; the ratio is unbounded instead.
    c = Moments.of(["y"], np.r_[np.zeros(98), np.full(2, 0.4)])
    t = Moments.of(["y"], np.zeros(100))
    e = welch("y", c, t)
    assert e.lift == -1.0 and e.lift_low is None and e.lift_high is None
    assert LIFT_UNBOUNDED in e.warnings
    # With a clearly positive control the bounds exist and contain the estimate.
    c = Moments.of(["y"], np.r_[np.zeros(50), np.full(50, 2.0)])
    t = Moments.of(["y"], np.r_[np.zeros(99), [0.5]])
    e = welch("y", c, t)
    assert e.lift_low is not None and e.lift_high is not None and e.lift is not None
    assert e.lift_low < e.lift < e.lift_high and e.lift_high - e.lift_low > 0.01


@given(st.floats(0.1, 100), st.floats(-100, 100), st.floats(1e-6, 1.0), st.floats(0.0, 10.0))
def test_fieller_bounds_contain_the_ratio(mc: float, mt: float, vc: float, vt: float) -> None:
    bounds = fieller(mc, mt, vc * mc * mc / 8, vt, 1.96)
    assert bounds is not None
    lo, hi = bounds
    assert lo <= mt / mc + 1e-9 and mt / mc - 1e-9 <= hi


def test_welch_by_hand() -> None:
    c = Moments.of(["y"], np.array([1.0, 2.0, 3.0, 4.0]))
    t = Moments.of(["y"], np.array([2.0, 4.0, 6.0, 8.0]))
    e = welch("y", c, t)
    assert (e.control, e.treatment, e.diff, e.lift) == (2.5, 5.0, 2.5, 1.0)
    # se² = 1.6667/4 + 6.6667/4 = 2.0833; df = 2.0833² / (0.4167²/3 + 1.6667²/3) = 4.41
    assert e.diff_low == pytest.approx(2.5 - 2.67755 * math.sqrt(2.083333), abs=1e-3)
    # scipy.stats.ttest_ind(t, c, equal_var=False): t = 1.7321, df = 4.4118, p = 0.15158
    assert e.p_value == pytest.approx(0.15158, abs=1e-5)
    assert e.warnings == [SMALL_SAMPLE]


def test_zero_baseline_and_tiny_samples_warn_instead_of_raising() -> None:
    zero = Moments.of(["y"], np.zeros(40))
    some = Moments.of(["y"], np.r_[np.zeros(39), 5.0])
    e = welch("y", zero, some)
    assert e.lift is None and ZERO_BASELINE in e.warnings and e.diff == 0.125
    one = Moments.of(["y"], np.array([1.0]))
    assert welch("y", one, some).warnings == [NOT_ESTIMABLE]
    assert ratio("r", "y", "y", zero, some).warnings == [NOT_ESTIMABLE]


def test_cuped_shrinks_the_interval_and_keeps_the_estimate_unbiased() -> None:
    rng = np.random.default_rng(3)
    pre = rng.gamma(2.0, 20.0, size=(2, 4_000))
    post = 0.8 * pre + rng.normal(0, 10, size=(2, 4_000))
    post[1] += 2.0
    c = Moments.of(["y", "pre"], np.stack([post[0], pre[0]], axis=1))
    t = Moments.of(["y", "pre"], np.stack([post[1], pre[1]], axis=1))
    plain, adj = welch("y", c, t), cuped("y", "pre", c, t)
    assert adj.diff_high - adj.diff_low < 0.5 * (plain.diff_high - plain.diff_low)  # type: ignore[operator]
    assert adj.diff_low < 2.0 < adj.diff_high  # type: ignore[operator]
    flat = Moments.of(["y", "pre"], np.stack([post[0], np.zeros(4_000)], axis=1))
    assert NO_PRE_PERIOD in cuped("y", "pre", flat, flat).warnings


def test_srm_flags_a_broken_split() -> None:
    broken = sample_ratio(
        {"control": 4_500, "treatment": 5_500}, {"control": 0.5, "treatment": 0.5}
    )
    assert not broken.valid and broken.warnings == ["SRM_DETECTED"]
    assert broken.chi2 == pytest.approx(100.0)
    fine = sample_ratio({"control": 5_030, "treatment": 4_970}, {"control": 0.5, "treatment": 0.5})
    assert fine.valid and fine.p_value == pytest.approx(0.5485, abs=1e-3)


def test_holm_by_hand() -> None:
    assert holm_adjust([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])


def test_non_inferiority_uses_the_margin() -> None:
    rng = np.random.default_rng(5)
    base = rng.normal(100, 20, 20_000)
    c = Moments.of(["y"], base[:10_000])
    t = Moments.of(["y"], base[10_000:] * 0.99)
    e = welch("y", c, t)
    assert non_inferiority(e, 0.03).passed
    assert not non_inferiority(e, 0.001).passed
    assert non_inferiority(e, 0.03, lower_is_better=True).passed  # a fall is good there


def test_power_plan_by_hand() -> None:
    plan = power_plan(10.0, 30.0, 20_000, {"a": 0.5, "b": 0.5}, "a", target_mde=0.05)
    # (1.95996 + 0.84162) * 30 * sqrt(2 / 10000) = 1.1887
    assert plan.mde_absolute == pytest.approx(1.1887, abs=1e-3)
    assert plan.mde_relative == pytest.approx(0.11887, abs=1e-4)
    assert plan.persons_needed_per_arm == 56_512


def test_incrementality_recovers_a_known_share() -> None:
    rng = np.random.default_rng(11)
    n = 50_000
    base = rng.poisson(0.30, size=(2, n)).astype(float)
    # Treatment: 0.10 more purchases per person, and 0.25 attributed per person of
    # which 0.10 are incremental, so the true incremental share is 0.4.
    extra = rng.poisson(0.10, n)
    attributed = extra + rng.binomial(base[1].astype(int), 0.15 / 0.30)
    t = Moments.of(["p", "a"], np.stack([base[1] + extra, attributed], axis=1))
    h = Moments.of(["p", "a"], np.stack([base[0], np.zeros(n)], axis=1))
    inc = incrementality("p", "a", t, h)
    assert inc.low is not None and inc.high is not None
    assert inc.low < 0.4 < inc.high and inc.high - inc.low < 0.15


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30))
def test_holm_never_lowers_a_p_value_and_keeps_the_order(ps: list[float]) -> None:
    adjusted = holm_adjust(ps)
    assert all(a is not None and p <= a <= 1.0 for p, a in zip(ps, adjusted, strict=True))
    pairs = sorted(zip(ps, adjusted, strict=True))
    assert all(a1 <= a2 for (_, a1), (_, a2) in itertools.pairwise(pairs))  # type: ignore[operator]


@given(
    st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=40),
    st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=40),
)
def test_moments_of_shards_add_up(a: list[float], b: list[float]) -> None:
    whole = Moments.of(["y"], np.array(a + b))
    parts = Moments.of(["y"], np.array(a)) + Moments.of(["y"], np.array(b))
    assert parts.n == whole.n
    assert parts.mean("y") == pytest.approx(whole.mean("y"), abs=1e-6)
    assert parts.var("y") == pytest.approx(float(np.var(a + b, ddof=1)), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize(
    ("baseline", "mde", "power", "n"),
    [
        # Textbook two-proportion answers (pooled variance under H0, no continuity correction):
        (0.50, 0.50, 0.90, 77),  # 50% vs 75% at 90% power: 76.7 per group
        (0.10, 0.20, 0.80, 3_841),  # 10% vs 12% at 80% power: 3,840.8 per group
        (0.30, 0.20, 0.80, 963),  # 30% vs 36%
    ],
)
def test_persons_per_arm_known_answers(baseline: float, mde: float, power: float, n: int) -> None:
    assert persons_per_arm(baseline, mde, alpha=0.05, power=power) == n


@given(st.floats(0.01, 0.5), st.floats(0.02, 0.5), st.floats(0.5, 0.95), st.floats(0.01, 0.2))
def test_persons_per_arm_needs_more_for_smaller_effects_and_more_power(
    p: float, mde: float, power: float, alpha: float
) -> None:
    n = persons_per_arm(p, mde, alpha=alpha, power=power)
    assert n >= 1
    assert persons_per_arm(p, mde / 2, alpha=alpha, power=power) > n
    assert persons_per_arm(p, mde, alpha=alpha, power=min(power + 0.04, 0.99)) >= n
    assert persons_per_arm(p, mde, alpha=alpha / 2, power=power) >= n


def test_persons_per_arm_refuses_a_rate_outside_zero_one() -> None:
    with pytest.raises(ValueError):
        persons_per_arm(0.0, 0.1)
    with pytest.raises(ValueError):
        persons_per_arm(1.0, 0.1)


def test_srm_says_not_enough_data_below_five_expected_per_arm() -> None:
    halves = {"control": 0.5, "treatment": 0.5}
    early = sample_ratio({"control": 3, "treatment": 0}, halves)
    assert (early.status, early.valid, early.warnings) == ("not_enough_data", True, [])
    assert early.counts == {"control": 3, "treatment": 0}
    # 9 persons expect 4.5 per arm: still nothing to say; 10 expect 5: a verdict.
    assert sample_ratio({"control": 9}, halves).status == "not_enough_data"
    assert sample_ratio({"control": 6, "treatment": 4}, halves).status == "ok"
    # An uneven split counts the smallest arm's expectation: 40 x 10% = 4.
    assert sample_ratio({"a": 36, "b": 4}, {"a": 0.9, "b": 0.1}).status == "not_enough_data"
    assert sample_ratio({"control": 4_500, "treatment": 5_500}, halves).status == "mismatch"


def test_the_minimum_per_arm_comes_from_the_spec_then_the_plan_then_the_default() -> None:
    def spec(**kw: object) -> ExperimentSpec:
        return World(spec_overrides={"primary_metric": "conversion", **kw}).spec()

    assert minimum_per_arm(spec()) == (100, "default")
    assert minimum_per_arm(spec(baseline_rate=0.1, target_mde=0.2)) == (3_841, "plan")
    assert minimum_per_arm(spec(baseline_rate=0.1, target_mde=0.2, power=0.9)) == (
        persons_per_arm(0.1, 0.2, power=0.9),
        "plan",
    )
    assert minimum_per_arm(spec(baseline_rate=0.1, min_persons_per_arm=500)) == (500, "configured")
    # Never below what the estimates themselves need (stats.MIN_N = 30).
    assert minimum_per_arm(spec(min_persons_per_arm=5)) == (30, "configured")
    assert minimum_per_arm(spec(baseline_rate=0.5, target_mde=0.9)) == (30, "plan")
    # A baseline rate only plans a proportion: revenue per person needs a configured minimum.
    with pytest.raises(ValidationError, match="baseline_rate needs a proportion"):
        spec(baseline_rate=0.1, primary_metric="revenue_per_person")
