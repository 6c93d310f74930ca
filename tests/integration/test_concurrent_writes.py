"""Versioned writes racing each other, on SQLite and PostgreSQL, through the real store
layer from threads: exactly one writer of a version wins, the others are told the
version moved (409 ``stale_version`` / ``version_conflict``) — never a lost update.

On SQLite, 10 deletes with the same version used to succeed up to 6 times, and a
PUT and a DELETE of the same version could both succeed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shelfwise.catalog import Product, ProductPatch
from shelfwise.catalog.model import margin_band_for
from shelfwise.errors import ShelfwiseError
from shelfwise.experiments.model import ExperimentSpec
from shelfwise.rules import parse_rule
from shelfwise.rules.store import RuleStore
from shelfwise.runtime import Runtime

RULE = {"id": "no-lumo", "type": "suppress", "reason": "supplier dispute", "values": ["Lumo"]}
START = datetime(2030, 1, 1, tzinfo=UTC)  # not started: no assignment lock


def race(*calls: Callable[[], Any]) -> list[str]:
    """Run the calls at once, one thread each; each outcome is "ok" or the error code."""
    gate = threading.Barrier(len(calls))
    out: list[str] = [""] * len(calls)

    def run(i: int) -> None:
        gate.wait()
        try:
            calls[i]()
            out[i] = "ok"
        except ShelfwiseError as e:
            out[i] = e.code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_ten_deletes_of_one_version_one_wins(runtime: Runtime) -> None:
    store = RuleStore(runtime.db)
    for round_ in range(3):
        rule_id = f"r{round_}"
        store.save(parse_rule({**RULE, "id": rule_id}), who="ana", why="x", expected_version=0)
        deleting = [
            lambda rule_id=rule_id: store.delete(rule_id, who="ana", why="y", expected_version=1)
        ] * 10
        outcomes = race(*deleting)
        assert sorted(outcomes) == ["ok"] + ["stale_version"] * 9, outcomes
        assert [e.action for e in store.history(rule_id)] == ["create", "delete"]


def test_a_put_and_a_delete_of_one_version_one_wins(runtime: Runtime) -> None:
    store = RuleStore(runtime.db)
    for round_ in range(5):
        rule_id = f"r{round_}"
        store.save(parse_rule({**RULE, "id": rule_id}), who="ana", why="x", expected_version=0)
        changed = parse_rule({**RULE, "id": rule_id, "priority": 7})
        outcomes = race(
            lambda changed=changed: store.save(changed, who="ben", why="y", expected_version=1),
            lambda rule_id=rule_id: store.delete(rule_id, who="cy", why="z", expected_version=1),
        )
        assert sorted(outcomes) == ["ok", "stale_version"], outcomes
        actions = [e.action for e in store.history(rule_id)]
        assert actions in (["create", "update"], ["create", "delete"])
        assert [e.version for e in store.history(rule_id)] == [1, 2]


def _spec(experiment_id: str, **changes: Any) -> ExperimentSpec:
    return ExperimentSpec.model_validate(
        {
            "experiment_id": experiment_id,
            "name": experiment_id,
            "placement": "home",
            "arms": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}],
            "start": START,
            **changes,
        }
    )


def test_experiment_writes_of_one_version_one_wins(runtime: Runtime) -> None:
    repo = runtime.experiments
    repo.create(_spec("exp"))
    stops = [lambda: repo.stop("exp", 1, by="ana")] * 10
    assert sorted(race(*stops)) == ["ok"] + ["version_conflict"] * 9
    assert [h["version"] for h in repo.history("exp")] == [1, 2]

    repo.create(_spec("exp2"))
    outcomes = race(
        lambda: repo.update(_spec("exp2", name="renamed"), 1, by="ana"),
        lambda: repo.stop("exp2", 1, by="ben"),
    )
    assert sorted(outcomes) == ["ok", "version_conflict"], outcomes
    assert repo.get("exp2").version == 2


def test_overlapping_experiments_created_at_once_one_wins(runtime: Runtime) -> None:
    """The layer check reads other rows: without one writer at a time both saw a free
    layer (PostgreSQL too)."""
    repo = runtime.experiments
    creates = [lambda i=i: repo.create(_spec(f"exp{i}")) for i in range(6)]
    assert sorted(race(*creates)) == ["layer_overlap"] * 5 + ["ok"]
    assert len(repo.list()) == 1


def test_concurrent_price_and_cost_patches_keep_the_margin_band_true(runtime: Runtime) -> None:
    """Each patch derives the margin band from the row it read: both must see the other."""
    for round_ in range(4):
        pid = f"P{round_}"
        runtime.catalog.upsert([Product(product_id=pid, title="Lamp", price=100.0, cost=10.0)])
        race(
            lambda pid=pid: runtime.catalog.patch(pid, ProductPatch(price=20.0)),
            lambda pid=pid: runtime.catalog.patch(pid, ProductPatch(cost=18.0)),
        )
        got = runtime.catalog.get(pid)
        assert (got.price, got.cost) == (20.0, 18.0)
        assert got.margin_band == margin_band_for(20.0, 18.0)
