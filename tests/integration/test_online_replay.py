"""On the simulator, the governed shelfwise pipeline (sources → rules → learned ranker,
trained on the simulated history) earns more than popularity only, on the same
simulated sessions, and never serves a slate that breaks the rulebook.

Small on purpose (500 products, 800 people, 35 days: the learned ranker needs a
validation and a training window of 14 days each); benchmarks/online_replay.py
runs the default store for the README figure.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shelfwise.config import load_settings
from shelfwise.ranking import RankingSettings
from shelfwise.runtime import Runtime
from shelfwise.simulate import SimulationSpec
from shelfwise.simulate.replay import OnlineReplay, online_replay

pytestmark = pytest.mark.slow  # ~25 s of CPU (a minute of wall time on a busy machine)


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> OnlineReplay:
    tmp: Path = tmp_path_factory.mktemp("replay")
    settings = load_settings(database_url=f"sqlite:///{tmp / 'r.db'}", model_dir=tmp / "models")
    settings = settings.model_copy(update={"ranking": RankingSettings(compile_model=False)})
    spec = SimulationSpec(seed=7, products=500, people=800, days=36)
    return online_replay(
        lambda: Runtime.open(settings), spec, history_days=35, sessions=800, seed=1
    )


def test_the_governed_pipeline_breaks_no_rule(replay: OnlineReplay) -> None:
    governed, popularity = replay.governed.audit, replay.popularity.audit
    assert governed is not None and popularity is not None
    assert governed.slates > 500 and governed.empty == 0
    assert governed.items >= 6 * governed.slates
    assert governed.violation_count == 0, dict(governed.violations)
    # The same check catches what a rule-blind policy serves: the check is live.
    assert popularity.violations["suppressed_brand"] > 0
    assert popularity.violation_count > 100


def test_the_governed_pipeline_earns_more_than_popularity(replay: OnlineReplay) -> None:
    governed, popularity = replay.governed, replay.popularity
    assert governed.audit is not None and popularity.audit is not None
    # The truth's value of the slates served: far apart, no sampling noise in it.
    per_slate = governed.audit.expected_revenue / governed.audit.slates
    assert per_slate > 1.5 * popularity.audit.expected_revenue / popularity.audit.slates
    # What the shoppers then spent, per session (paired sessions).
    r = replay.revenue
    assert r.n == 800 and r.control == pytest.approx(popularity.revenue_per_session)
    assert r.treatment == pytest.approx(governed.revenue_per_session)
    data = replay.as_dict()
    assert data["governed"]["violations"] == 0
    assert data["suppressed_brands"] == list(replay.governance.suppressed_brands)


@pytest.mark.xfail(
    strict=True,
    reason="known regression (issue #17, item 6): since the product-page semantics and the "
    "bounded money term (2026-12-04) the governed pipeline earns 3.06 per session against "
    "popularity's 3.70 here; strict, so the fix turns this red until the mark goes",
)
def test_the_shoppers_spend_more_with_the_governed_pipeline(replay: OnlineReplay) -> None:
    governed, popularity, r = replay.governed, replay.popularity, replay.revenue
    assert governed.revenue_per_session > popularity.revenue_per_session
    assert r.ratio > 1.2 and r.diff_high > r.diff > 0
