"""A ranker trained on both kinds of request (``new_item_requests``): each window's
all-items requests with the all-items blend, and its new-items requests (history
excluded) with the new-items blend, as each is served."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shelfwise.candidates.base import RecContext
from shelfwise.candidates.config import PlacementChain, SourcesConfig
from shelfwise.candidates.log import InteractionLog
from shelfwise.candidates.model import fit_all
from shelfwise.catalog.model import Product
from shelfwise.config import load_settings
from shelfwise.ranking.dataset import TrainingSet
from shelfwise.ranking.features import FeatureSpec
from shelfwise.ranking.training import (
    RANKED_SOURCES,
    RankerTrainingConfig,
    build_windows,
    item_columns,
    label_of,
    propose_all,
    requests_of,
    window_protocols,
)
from shelfwise.runtime import Runtime
from shelfwise.simulate import SimulationSpec, simulate
from shelfwise.training.reader import read_log

WIDTH = len(FeatureSpec.of(RANKED_SOURCES).names)
ALL = PlacementChain(blend={"buy_again": 2.0, "popular": 1.0})
NEW = PlacementChain(blend={"factors": 1.0, "popular": 0.5})


def tiny(requests: int, label: int) -> TrainingSet:
    rows = 3 * requests
    return TrainingSet(
        np.full((rows, WIDTH), float(label)),
        np.full(rows, label, dtype=np.int64),
        np.full(requests, 3),
        [f"p{label}"] * requests,
        np.arange(rows),
        [],
    )


def test_the_request_kinds_each_config_needs() -> None:
    plain = RankerTrainingConfig()
    both = plain.model_copy(update={"new_item_requests": True})
    new = plain.model_copy(update={"new_items_only": True})
    assert window_protocols([plain]) == (False,)
    assert window_protocols([new]) == (True,)
    assert window_protocols([plain, both]) == (False, True)
    assert label_of(both) == "ranker(windows=5, leaves=63, new-item requests)"
    assert label_of(plain) == "ranker(windows=5, leaves=63)"


def test_requests_of_joins_each_windows_two_kinds_latest_first() -> None:
    built = {False: [tiny(2, 0), tiny(3, 1)], True: [tiny(1, 2), tiny(4, 3)]}
    both = RankerTrainingConfig(new_item_requests=True)
    joined = requests_of(built, both)
    assert [w.groups.tolist() for w in joined] == [[3, 3, 3], [3] * 7]
    assert joined[0].persons == ["p0", "p0", "p2"]
    assert joined[1].y.tolist() == [1] * 9 + [3] * 12
    assert requests_of(built, RankerTrainingConfig()) is built[False]
    assert requests_of(built, RankerTrainingConfig(new_items_only=True)) is built[True]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    sim = simulate(SimulationSpec(seed=5, products=60, people=300, days=8))
    folder: Path = tmp_path_factory.mktemp("newreq")
    runtime = Runtime.open(load_settings(database_url=f"sqlite:///{folder / 'db.sqlite'}"))
    runtime.catalog.upsert([Product.model_validate(r) for r in sim.world.catalog.records])
    runtime.ingestor.ingest(sim.events)
    runtime.snapshot.load()
    yield runtime
    runtime.close()


def test_new_item_requests_read_the_new_items_blend(store: Any) -> None:
    """The new-items windows built with ``new_chain`` are those built with that chain
    alone; the all-items windows are those of ``chain``: each kind as it is served."""
    products = list(store.snapshot.products)
    log = read_log(store.db, items=list(store.snapshot.ids))
    artifacts = fit_all(log, products, SourcesConfig())
    items = item_columns(artifacts, products, log.item_prices())
    end = int(log.end) + 1
    cfg = RankerTrainingConfig(horizon_days=2.0, train_windows=1, depth=20)
    fits: dict[int, Any] = {}

    def fitted(before: InteractionLog) -> Any:  # one source fit per decision time
        if len(before) not in fits:
            fits[len(before)] = fit_all(before, products, SourcesConfig())
        return fits[len(before)]

    def built(chain: PlacementChain, new_chain: PlacementChain | None = None) -> Any:
        return build_windows(
            log, products, items, SourcesConfig(), end, cfg,
            protocols=(False, True), chain=chain, new_chain=new_chain, fit_sources=fitted,
        )  # fmt: skip

    mixed, only_all, only_new = built(ALL, NEW), built(ALL), built(NEW)
    blend = FeatureSpec.of(RANKED_SOURCES).source_columns()["blend"][0]
    for n in range(2):
        assert len(mixed[True][n].groups) > 5
        np.testing.assert_array_equal(mixed[False][n].x, only_all[False][n].x)
        np.testing.assert_array_equal(mixed[True][n].x, only_new[True][n].x)
        np.testing.assert_array_equal(mixed[True][n].y, only_new[True][n].y)
    # the two blends differ on the new-items requests: the chain is really read
    assert not np.array_equal(
        mixed[True][0].x[:, blend], only_all[True][0].x[:, blend], equal_nan=True
    )
    joined = requests_of(mixed, cfg.model_copy(update={"new_item_requests": True}))
    assert len(joined[0].groups) == len(mixed[False][0].groups) + len(mixed[True][0].groups)


@pytest.mark.parametrize("chain", [None, ALL, PlacementChain(blend={"factors": 1.0}, depth=20)])
def test_the_blend_reuses_the_sources_own_proposals_and_proposes_the_same(
    store: Any, chain: PlacementChain | None
) -> None:
    """``propose_all`` hands the blend each source's proposal it already made for the
    request (same context, same depth): the blend's items, scores and reasons are those
    of a blend that asks every source afresh, fallbacks included."""
    products = list(store.snapshot.products)
    log = read_log(store.db, items=list(store.snapshot.ids))
    artifacts = fit_all(log, products, SourcesConfig())
    propose = propose_all(artifacts, 20, chain)
    fresh = artifacts.blend()
    asked = 0
    for person in log.people[:40]:
        for placement in ("home", "cart", "product_similar"):
            ctx = RecContext(placement, datetime.fromtimestamp(log.end, UTC), person_id=person)
            got = propose(ctx)
            want = fresh.propose(ctx, 20, chain)
            assert got[-1].source == "blend"
            np.testing.assert_array_equal(got[-1].items, want.items)
            np.testing.assert_array_equal(got[-1].scores, want.scores)
            assert got[-1].reasons == want.reasons
            assert [p.source for p in got[:-1]] == list(artifacts.sources())
            asked += len(want.items)
    assert asked > 0
