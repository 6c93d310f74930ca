"""The signal-quality report against the simulator's ground truth: the defects that
were injected are found where they were injected, and nothing else is flagged.

The history goes through the real ingestion path (``Runtime.ingestor``, which the
HTTP and file entry points share); the catalog is the simulated store as it stood at
the start. Business incidents (a module's CTR drop, a supplier's stock-out) are real
changes in behaviour, not broken signals: the report must stay quiet about them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shelfwise.config import load_settings
from shelfwise.contracts.quality import QualityReport, quality_report
from shelfwise.contracts.reconcile import ReconciliationReport, reconcile
from shelfwise.runtime import Runtime
from shelfwise.simulate import (
    CtrDrop,
    Defects,
    IdentitySplit,
    IdFormat,
    SafariCartLoss,
    Simulation,
    SimulationSpec,
    SupplierStockout,
    simulate,
)

SAFARI = ("mobile_web", "Safari")
ANDROID_APP = ("android_app", "shelfwise-app")
BROKEN = Defects(
    safari_cart_loss=SafariCartLoss(share=0.4),
    id_format=IdFormat(share=1.0, surface="android_app", style="strip_zeros"),
    identity_split=IdentitySplit(share=0.5),
    ctr_drop=CtrDrop(drop=0.6, category="kitchen/cookware", from_day=5),
    supplier_stockout=SupplierStockout(brand="Vireo", from_day=4),
)


class Ingested:
    def __init__(self, sim: Simulation, runtime: Runtime) -> None:
        self.sim = sim
        self.runtime = runtime
        self.quality: QualityReport = quality_report(runtime.db)
        self.reconciliation: ReconciliationReport = reconcile(
            runtime.db, runtime.catalog, runtime.aliases
        )


def _ingest(defects: Defects, tmp: Path, seed: int) -> Iterator[Ingested]:
    sim = simulate(SimulationSpec(seed=seed, products=300, people=1_200, days=14, defects=defects))
    settings = load_settings(database_url=f"sqlite:///{tmp / 's.db'}", model_dir=tmp / "models")
    runtime = Runtime.open(settings)
    try:
        runtime.catalog.upsert(sim.world.catalog.products)
        for start in range(0, len(sim.events), 2_000):
            verdicts = runtime.ingestor.ingest(sim.events[start : start + 2_000])
            assert verdicts.count("rejected") == 0, verdicts.reasons()
        yield Ingested(sim, runtime)
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingested]:
    yield from _ingest(BROKEN, tmp_path_factory.mktemp("broken"), seed=3)


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingested]:
    yield from _ingest(Defects(), tmp_path_factory.mktemp("healthy"), seed=3)


def test_a_healthy_store_is_not_flagged(healthy: Ingested) -> None:
    assert len(healthy.quality.segments) >= 10  # every surface of the simulator shows up
    assert healthy.quality.flags == []
    assert healthy.reconciliation.misses == {}
    assert healthy.reconciliation.join_rate == 1.0
    assert healthy.runtime.identity.findings() == []


def test_the_flags_are_exactly_the_injected_segments_and_metrics(broken: Ingested) -> None:
    truth = broken.sim.ground_truth()["defects"]
    assert truth["safari_cart_loss"]["add_to_cart_dropped"] > 0
    assert truth["id_format"]["product_ids_reformatted"] > 0
    by_segment: dict[tuple[str, str], set[str]] = {}
    for flag in broken.quality.flags:
        by_segment.setdefault(flag.segment[:2], set()).add(flag.metric)
    # Mobile Safari is named for the carts it loses (purchases with no add-to-cart,
    # and fewer sessions with one); the Android app for ids that do not join.
    assert set(by_segment) == {SAFARI, ANDROID_APP}
    assert "purchase_without_cart" in by_segment[SAFARI]
    assert by_segment[SAFARI] <= {"purchase_without_cart", "view_to_cart"}
    assert by_segment[ANDROID_APP] == {"join_rate"}
    # Every Android app version is broken (the defect is the surface's, share 1.0).
    android_versions = {s.segment for s in broken.quality.segments if s.segment[:2] == ANDROID_APP}
    assert {f.segment for f in broken.quality.flags if f.metric == "join_rate"} == android_versions
    for flag in broken.quality.flags:
        if flag.metric == "join_rate":
            # The rest includes the other (also broken) app versions.
            assert flag.rate == 0.0 and flag.rest_rate > 0.95
        if flag.metric == "purchase_without_cart":
            assert flag.rest_rate == 0.0 and flag.revenue_at_stake > 0


def test_the_safari_purchases_without_a_cart_are_the_broken_sessions(broken: Ingested) -> None:
    """The count the report gives is the count the ground truth implies."""
    hit = set(broken.sim.ground_truth()["defects"]["safari_cart_loss"]["session_ids"])
    bought_blind = {
        e["session_id"]
        for e in broken.sim.events
        if e["type"] == "purchase" and e["session_id"] in hit
    }
    safari = next(s for s in broken.quality.segments if s.segment[:2] == SAFARI)
    assert safari.counts["purchases_without_cart"] == len(bought_blind) > 0


def test_the_id_misses_are_classified_as_formatting_and_the_aliases_fix_them(
    broken: Ingested,
) -> None:
    truth = broken.sim.ground_truth()["defects"]["id_format"]
    rec = broken.reconciliation
    assert set(rec.misses) == {"formatting"}
    assert set(rec.examples["formatting"]) <= set(truth["examples"].values()) | {
        pid
        for e in broken.sim.events
        if e.get("platform") == "android_app"
        for pid in [e.get("product_id")]
        if isinstance(pid, str)
    }
    # Every reformatted id maps back to the catalog id it was written from.
    fixes = {alias: target for alias, target, kind in rec.fixes if kind == "formatting"}
    for original, written in truth["examples"].items():
        assert fixes[written] == original
    segments = {(s.event_type, s.platform): s.rate for s in rec.segments}
    assert all(rate == 0.0 for (_, p), rate in segments.items() if p == "android_app")
    assert all(rate == 1.0 for (_, p), rate in segments.items() if p != "android_app")
    broken.runtime.aliases.add_many(rec.fixes)
    after = reconcile(broken.runtime.db, broken.runtime.catalog, broken.runtime.aliases)
    assert after.join_rate == 1.0 and set(after.misses) == {"alias"}


def test_the_identity_split_leaves_exactly_the_injected_devices_unlinked(
    broken: Ingested,
) -> None:
    """An identity split is silent in the per-segment report (it is spread over
    every surface) and raises no identity finding; the identity graph shows it:
    the devices the ground truth names resolve to someone other than their owner."""
    unlinked = broken.sim.ground_truth()["defects"]["identity_split"]["unlinked_anonymous_ids"]
    assert len(unlinked) >= 10
    graph = broken.runtime.identity
    for customer, anons in sorted(unlinked.items())[:25]:
        for anon in anons:
            assert graph.resolve(anon, "anonymous") != f"customer:{customer}"
    assert graph.findings() == []
