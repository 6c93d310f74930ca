"""Evaluation and the promotion guard measure the served pipeline with the store's rules in
force, read from the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shelfwise.candidates.config import SourcesConfig
from shelfwise.cli.evaluate import served_parts
from shelfwise.evaluation import compare
from shelfwise.pipeline.stages import chain_of
from shelfwise.ranking.training import RANKER_CHOICES, RankerChoice
from shelfwise.rules import parse_rule
from shelfwise.runtime import Runtime
from shelfwise.training import job
from shelfwise.training.job import guard_pipeline, home_chain, home_training
from shelfwise.training.reader import read_log
from tests import shop_fixture

NO_KITCHEN = {
    "id": "no-kitchen",
    "type": "exclude",
    "reason": "kitchen is sold out for the season",
    "when": {"attr": "category", "op": "eq", "value": "home/kitchen"},
}


def test_evaluate_serves_the_store_rules_and_counts_the_targets_they_forbid(
    runtime: Runtime,
) -> None:
    shop_fixture.fill(runtime)
    runtime.rules.store.save(parse_rule(NO_KITCHEN), who="test", why="season")
    log = read_log(runtime.db, items=list(runtime.snapshot.ids))
    parts = served_parts(runtime)
    assert [r.id for r in parts["rules"]] == ["no-kitchen"] and parts["rulebook_version"] >= 1
    cutoff = shop_fixture.START + timedelta(days=45)
    products = list(runtime.snapshot.products)
    kwargs = {"products": products, "ks": (10,), "tune": False, "resamples": 0}
    ruled = compare(log, cutoff, with_baselines=False, **kwargs, **parts)  # type: ignore[arg-type]
    free = compare(log, cutoff, with_baselines=False, **kwargs)  # type: ignore[arg-type]
    kitchen = {i for i, p in enumerate(products) if p.category_path == "home/kitchen"}
    forbidden = ruled.models[0].forbidden
    # a quarter of the people buy kitchen items: their targets are out of reach
    assert 0 < forbidden["all"] < ruled.target_items["all"]
    assert free.models[0].forbidden["all"] == 0
    assert ruled.as_dict()["models"][0]["targets_forbidden_by_rules"] == forbidden
    assert "rulebook version" in ruled.notes["served"]
    guard = guard_pipeline(runtime, with_ranker=False)
    assert [r.id for r in guard.rules] == ["no-kitchen"] and not guard.ranked
    assert guard.placement is not None and guard.placement.name == "home"
    assert kitchen  # the fixture has a kitchen


def test_the_guard_and_the_bundle_train_the_home_ranker_with_the_settings_cap(
    runtime: Runtime,
) -> None:
    guard = guard_pipeline(runtime, with_ranker=True)
    assert guard.ranked and [c.task for c in guard.choices] == ["requests"] * 3
    assert {c.max_people for c in guard.choices} == {runtime.settings.ranker_max_people}
    assert runtime.settings.ranker_max_people == 4_000
    # the backtest's designs, capped
    assert [c.model_copy(update={"max_people": None}) for c in guard.choices] == list(
        RANKER_CHOICES
    )
    capped = runtime.settings.model_copy(update={"ranker_max_people": 300})
    assert {c.max_people for c in home_training(capped)} == {300}
    uncapped = capped.model_copy(update={"ranker_max_people": None})
    assert {c.max_people for c in home_training(uncapped)} == {None}


class Captured(Exception):
    """Stops the training job once the home ranker's arguments are seen."""


def test_the_bundle_trains_the_home_ranker_on_the_chain_the_placement_serves(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The home ranker's ``blend`` feature is the home placement's blend, as the
    placement serves it, as the guard judges it and as the backtest measures it; not
    the sources config's ``home`` blend (other sources and weights)."""
    guard = guard_pipeline(runtime, with_ranker=True)
    assert guard.placement is not None
    served = chain_of(guard.placement)
    assert home_chain(runtime.settings) == served
    assert served.blend != SourcesConfig().placements["home"].blend  # the old feature
    shop_fixture.fill(runtime)
    seen: dict[str, Any] = {}

    def spy(*args: Any, **kwargs: Any) -> None:
        seen.update(kwargs, choices=args[5])
        raise Captured

    monkeypatch.setattr(job, "chosen_rankers", spy)
    with pytest.raises(Captured):
        job.train(runtime, with_ranker=True, force=True)
    assert seen["chain"] == served and seen["chain"].blend == guard.placement.sources
    assert seen["choices"] == {False: guard.choices}  # the guard's designs
    # a store without a home placement: the sources config's home blend, as before
    only_cart = tmp_path / "placements.yaml"
    only_cart.write_text(
        "placements:\n  - name: cart\n    page: cart\n    rule_scope: cart\n    sources: {cooccurrence: 1.0}\n"
    )
    settings = runtime.settings.model_copy(update={"placements_file": only_cart})
    assert home_chain(settings) is None


def test_a_store_whose_blend_orders_the_validation_window_best_ships_no_home_ranker(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the blend ranker wins the home ranker's choice, the bundle has no
    ``requests`` ranker (serving ranks home with the blend), its metrics say so, and
    the training's summary names the choice."""
    shop_fixture.fill(runtime)
    scores = {"blend": 0.5, "ranker(windows=5, leaves=63)": 0.4}

    def blend_wins(*args: Any, **kwargs: Any) -> dict[bool, Any]:
        return {False: (None, RankerChoice(None, scores))}

    monkeypatch.setattr(job, "chosen_rankers", blend_wins)
    result = job.train(runtime, with_ranker=True, force=True)
    assert not (result.bundle.path / "ranker").exists()
    metrics = result.bundle.info.metrics
    assert metrics["ranker_chosen_blend"] == 1.0
    assert metrics["ranker_choice[blend]"] == 0.5
    assert result.ranker_choice() == (
        "home ranker: the blend ranker (validation NDCG@10: blend 0.5000, "
        "ranker(windows=5, leaves=63) 0.4000)"
    )
    runtime.load_last_good_bundle()
    view = runtime.recommender.bundle_view()
    assert view is not None and view.version == result.bundle.version
    assert runtime.recommender.learned.of(view) is None  # home is ranked by the blend
