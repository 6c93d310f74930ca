"""Readouts from the store find a known lift and a known loss, and a broken split."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from shelfwise.config import Settings
from shelfwise.contracts.eventstore import EventStore
from shelfwise.errors import Conflict, NotFound
from shelfwise.experiments import ExperimentSpec
from shelfwise.experiments.report import Report, readout
from shelfwise.experiments.synthetic import START, World
from shelfwise.runtime import Runtime


def _run(runtime: Runtime, world: World) -> Report:
    return _run_at(runtime, world, START + timedelta(days=30))


def _run_at(runtime: Runtime, world: World, at: datetime) -> Report:
    runtime.catalog.upsert(world.catalog())
    e = runtime.experiments.create(world.spec())
    EventStore(runtime.db).append(world.events(e))
    return readout(runtime.db, e, at=at)


def _cell(rep: Report, placement: str, category: str) -> dict[str, object]:
    cell = next(c for c in rep.cells if (c.placement, c.category) == (placement, category))
    return {"arms": cell.arms, "comp": cell.comparisons[0]}


def test_readout_finds_the_lift_the_loss_and_the_incremental_share(runtime: Runtime) -> None:
    world = World(persons=3_000)
    rep = _run(runtime, world)
    assert rep.valid and rep.warnings == []
    assert sum(rep.srm.counts.values()) == 3_000
    decor = _cell(rep, "all", "decor")["comp"]
    kitchen = _cell(rep, "all", "kitchen")["comp"]
    bedding = _cell(rep, "all", "bedding")["comp"]
    d = decor.estimates["revenue_per_person"]  # type: ignore[attr-defined]
    k = kitchen.estimates["revenue_per_person"]  # type: ignore[attr-defined]
    b = bedding.estimates["revenue_per_person"]  # type: ignore[attr-defined]
    # True lifts: decor +40%, kitchen -25%, bedding 0.
    assert d.lift_low > 0 and d.p_adjusted < 0.01
    assert d.lift_low < 0.40 < d.lift_high
    assert k.lift_high < 0 and k.p_adjusted < 0.01
    assert k.lift_low < -0.25 < k.lift_high
    assert b.lift_low < 0 < b.lift_high
    inc = _cell(rep, "all", "all")["comp"].incrementality  # type: ignore[attr-defined]
    truth = world.true_incrementality()  # (0.12 - 0.10) / (0.21 + 0.09 + 0.04) = 0.0588
    assert truth == pytest.approx(0.02 / 0.34)
    assert inc.low < truth < inc.high
    decor_inc = decor.incrementality  # type: ignore[attr-defined]
    assert decor_inc.low < 0.12 / 0.21 < decor_inc.high
    # Attribution, exposure and CTR are read from the events the world wrote.
    arms = {a.arm: a for a in _cell(rep, "all", "all")["arms"]}  # type: ignore[attr-defined]
    assert arms["holdout"].ctr == 0.0 and arms["recs"].ctr > 0
    assert arms["recs"].oos_share == pytest.approx(1 / 6, abs=0.03)
    assert 0.02 < arms["recs"].return_rate < 0.09
    assert {c.placement for c in rep.cells} == {"all", "home", "product"}
    # Net value subtracts 15/day x 14 days x 50% of traffic.
    assert rep.net_value["recs"].operating_cost == pytest.approx(105.0)
    assert [g.metric for g in rep.guardrails["recs"]] == ["return_rate"]
    assert {s.value for s in rep.segments} == {"web", "ios_app"}
    # CUPED on pre-period revenue: same data read without it gives a wider interval.
    cuped = _cell(rep, "all", "all")["comp"].estimates["revenue_per_person"]  # type: ignore[attr-defined]
    e = runtime.experiments.get("recs-vs-holdout")
    plain_spec = e.spec.model_copy(update={"pre_period_days": 0})
    plain = readout(
        runtime.db, e.model_copy(update={"spec": plain_spec}), at=START + timedelta(days=30)
    )
    welch = plain.cells[0].comparisons[0].estimates["revenue_per_person"]
    assert (cuped.method, welch.method) == ("cuped", "welch")
    assert cuped.diff_high - cuped.diff_low < 0.8 * (welch.diff_high - welch.diff_low)


def test_a_broken_45_55_split_is_flagged_and_marks_results_invalid(
    sqlite_settings: Settings,
) -> None:
    runtime = Runtime.open(sqlite_settings)
    try:
        rep = _run(runtime, World(persons=1_500, broken_split=0.55, seed=4))
    finally:
        runtime.close()
    assert not rep.valid and "SRM_DETECTED" in rep.warnings
    # 825 against 675 where 750/750 was due: chi2 = 2 x 75^2 / 750 = 15, p = 1.1e-4.
    assert rep.srm.counts == {"holdout": 675, "recs": 825}
    assert rep.srm.chi2 == pytest.approx(15.0)
    assert rep.srm.p_value == pytest.approx(1.075e-4, rel=1e-2)
    est = rep.cells[0].comparisons[0].estimates["revenue_per_person"]
    assert "SRM_DETECTED" in est.warnings


def test_a_global_holdout_that_shows_nothing_is_read_by_assignment(
    sqlite_settings: Settings,
) -> None:
    world = World(
        persons=2_000,
        holdout_impressions=False,
        spec_overrides={"global_holdout": True, "population": "active", "segments": ()},
    )
    runtime = Runtime.open(sqlite_settings)
    try:
        rep = _run(runtime, world)
    finally:
        runtime.close()
    assert rep.valid and sum(rep.srm.counts.values()) == 2_000
    assert {c.placement for c in rep.cells} == {"all"}
    overall = _cell(rep, "all", "all")
    holdout = next(a for a in overall["arms"] if a.arm == "holdout")  # type: ignore[attr-defined]
    assert holdout.impressions == 0 and holdout.persons > 900
    inc = overall["comp"].incrementality  # type: ignore[attr-defined]
    assert inc.low < world.true_incrementality() < inc.high


def test_versions_and_stale_writes(runtime: Runtime) -> None:
    spec = World().spec()
    repo = runtime.experiments
    e1 = repo.create(spec, by="ana")
    with pytest.raises(Conflict) as exists:
        repo.create(spec)
    assert exists.value.code == "experiment_exists"
    e2 = repo.update(spec.model_copy(update={"name": "renamed"}), 1, by="ana")
    assert (e2.version, e2.spec.name) == (2, "renamed")
    with pytest.raises(Conflict) as stale:
        repo.update(spec.model_copy(update={"name": "late"}), 1, by="bob")
    assert stale.value.code == "version_conflict"
    assert stale.value.details == {"current_version": 2}
    with pytest.raises(Conflict) as locked:
        repo.update(spec.model_copy(update={"salt": "reshuffle"}), 2)
    assert locked.value.code == "assignment_locked"
    stopped = repo.stop(e1.experiment_id, 2, by="ana", now=START + timedelta(days=2))
    assert stopped.status == "stopped" and stopped.spec.end == START + timedelta(days=2)
    assert repo.running() == []
    assert [h["version"] for h in repo.history(e1.experiment_id)] == [1, 2, 3]
    with pytest.raises(NotFound):
        repo.get("nope")


def test_overlapping_layers_are_refused(runtime: Runtime) -> None:
    base = World().spec()
    runtime.experiments.create(base.model_copy(update={"placement": "home", "traffic": 0.5}))
    other = ExperimentSpec.model_validate(
        {**base.model_dump(), "experiment_id": "second", "placement": "home"}
    )
    with pytest.raises(Conflict) as overlap:
        runtime.experiments.create(other)
    assert overlap.value.code == "layer_overlap"
    beside = other.model_copy(update={"layer_offset": 0.5, "traffic": 0.5})
    assert runtime.experiments.create(beside).version == 1
    elsewhere = other.model_copy(update={"experiment_id": "third", "placement": "cart"})
    assert runtime.experiments.create(elsewhere).version == 1


def test_runtime_assigns_from_the_running_experiments(runtime: Runtime) -> None:
    now = START + timedelta(days=1)
    assert runtime.assignments.assign("home", "p1", now) is None
    runtime.experiments.create(World().spec())
    runtime.assignments.refresh_seconds = 0.0
    got = runtime.assignments.assign("home", "p1", now)
    assert got is not None and got.log_fields()["experiment_id"] == "recs-vs-holdout"
    runtime.experiments.stop("recs-vs-holdout")
    assert runtime.assignments.assign("home", "p1", now) is None


def test_a_readout_collects_data_until_every_arm_has_the_planned_minimum(
    runtime: Runtime,
) -> None:
    # Conversion planned at 30% with a 20% relative MDE: 963 persons per arm.
    plan = {"baseline_rate": 0.3, "target_mde": 0.2, "primary_metric": "conversion"}
    world = World(persons=400, spec_overrides=plan)
    at = START + timedelta(days=7)
    rep = _run_at(runtime, world, at)
    counts = rep.srm.counts
    assert sum(counts.values()) == 400 and rep.srm.status == "ok" and rep.valid
    assert rep.status == "collecting_data"
    assert rep.sample.persons_per_arm == counts
    assert (rep.sample.min_persons_per_arm, rep.sample.min_source) == (963, "plan")
    # Everyone enrolled in the first 3 days of 7: the rate is per day of the window.
    slow = min(counts.values())
    assert rep.sample.daily_persons_per_arm == {a: n / 7 for a, n in counts.items()}
    assert rep.sample.expected_date == at + timedelta(days=(963 - slow) / (slow / 7))
    # The same data against a configured minimum it already has: ready.
    e = runtime.experiments.get("recs-vs-holdout")
    enough = e.spec.model_copy(update={"min_persons_per_arm": 150})
    ready = readout(runtime.db, e.model_copy(update={"spec": enough}), at=at)
    assert (ready.status, ready.sample.min_source, ready.sample.expected_date) == (
        "ready",
        "configured",
        at,
    )


def test_a_readout_with_nobody_exposed_has_no_expected_date(runtime: Runtime) -> None:
    e = runtime.experiments.create(World().spec())
    rep = readout(runtime.db, e, at=START + timedelta(days=2))
    assert (rep.status, rep.srm.status) == ("collecting_data", "not_enough_data")
    assert rep.sample.persons_per_arm == {"holdout": 0, "recs": 0}
    assert (rep.sample.min_persons_per_arm, rep.sample.expected_date) == (100, None)
