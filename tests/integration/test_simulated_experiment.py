"""An A/B test on the simulator with a known truth: the readout finds the lift in one
category and the loss in another, and its incremental share covers the true one.

Three arms, a third each, assigned by shelfwise's hash: ``control`` recommends the
truly best kitchen items for each shopper, ``treatment`` the truly best bedding
items, ``holdout`` nothing. The same sessions played with everyone in each arm
give the truth for exactly these people (see docs/simulator.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shelfwise.config import load_settings
from shelfwise.experiments.report import Comparison, Report
from shelfwise.runtime import Runtime
from shelfwise.simulate import SimulationSpec
from shelfwise.simulate.experiment import KnownLift, known_lift_experiment

pytestmark = pytest.mark.slow  # ~25 s of CPU (a minute of wall time on a busy machine)

SPEC = SimulationSpec(seed=11, products=300, people=3_000, days=10, rec_share=0.9)


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> KnownLift:
    tmp: Path = tmp_path_factory.mktemp("experiment")
    settings = load_settings(database_url=f"sqlite:///{tmp / 'e.db'}", model_dir=tmp / "models")
    return known_lift_experiment(
        lambda: Runtime.open(settings), SPEC, pre_days=3, sessions=8_000, seed=11
    )


def _comparison(report: Report, category: str, arm: str = "treatment") -> Comparison:
    cell = next(c for c in report.cells if (c.placement, c.category) == ("all", category))
    return next(c for c in cell.comparisons if c.arm == arm)


def test_the_split_is_sound_and_every_arm_was_served(known: KnownLift) -> None:
    rep = known.report
    assert rep.valid and "SRM_DETECTED" not in rep.warnings
    assert sum(rep.srm.counts.values()) == known.persons
    assert set(rep.srm.counts) == {"control", "treatment", "holdout"}
    assert min(rep.srm.counts.values()) > known.persons / 3 - 3 * (known.persons / 4.5) ** 0.5
    assert set(known.served) == {"control", "treatment", "holdout"}
    overall = next(c for c in rep.cells if (c.placement, c.category) == ("all", "all"))
    by_arm = {a.arm: a for a in overall.arms}
    assert by_arm["holdout"].impressions == 0 and by_arm["holdout"].ctr is None
    assert by_arm["treatment"].impressions > 0 and by_arm["control"].impressions > 0


def test_the_truth_has_a_lift_and_a_loss(known: KnownLift) -> None:
    assert known.truth.lift["bedding"] > 0.5
    assert known.truth.lift["kitchen"] < -0.3


@pytest.mark.parametrize(("category", "sign"), [("bedding", 1), ("kitchen", -1)])
def test_the_readout_finds_the_lift_and_the_loss(
    known: KnownLift, category: str, sign: int
) -> None:
    est = _comparison(known.report, category).estimates["revenue_per_person"]
    truth = known.truth.lift[category]
    assert est.lift is not None and est.lift_low is not None and est.lift_high is not None
    assert est.p_adjusted is not None and est.p_adjusted < 0.05  # Holm over every cell
    assert (est.lift_low > 0) if sign > 0 else (est.lift_high < 0)
    assert est.lift_low < truth < est.lift_high


def test_the_incremental_share_covers_the_truth(known: KnownLift) -> None:
    inc = _comparison(known.report, "all").incrementality
    assert inc is not None and inc.low is not None and inc.high is not None
    assert inc.low < known.incrementality < inc.high
    assert inc.attributed_treatment is not None and inc.attributed_treatment > 0
    # The holdout is not compared with itself.
    assert _comparison(known.report, "all", "holdout").incrementality is None
