"""The preview's money estimate on real logged data.

Simulated shoppers are served by the request path with the learned ranker (every
slate in the decision log); their events (clicks, carts, purchase lines carrying
the rec_id) go through ingestion. The preview of a draft must then give a money
estimate (not "no estimate"), equal to the one computed here straight from the
simulator's own events and slates (units bought by position over the logged slates,
times the catalog's price, before and after the draft), and its interval must hold
the simulator's true change (``simulate.slate_attributed_revenue``).

On SQLite, on the store trained once per test run (tests/integration/governed.py,
shared with test_preview_accuracy.py): the estimate reads the decision log and the
purchases through the same code on both backends, and tests/integration/
test_rules_preview.py checks it against hand-counted figures on SQLite and PostgreSQL.

Sessions are served in batches until the shown slates carry enough purchase lines
(one line per 150 to 300 sessions), so the test never rests on a handful.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from benchmarks.preview import Recording, drafts, money_truth, reserve

from shelfwise.config import Settings
from shelfwise.contracts.reconcile import canonical
from shelfwise.pipeline.preview import MONEY_METHOD
from shelfwise.runtime import Runtime
from shelfwise.simulate import SimulationSpec
from shelfwise.simulate.replay import draw_traffic, replay_sessions
from tests.integration.governed import governed_copy

pytestmark = pytest.mark.slow  # a bundle with a ranker is trained: minutes on a busy machine

SPEC = SimulationSpec(seed=7, products=500, people=800, days=36)
LINES = 4  # purchase lines carrying a shown slate's rec_id, at the least
BATCH, BATCHES = 300, 12  # 3,600 sessions carry 12 such lines at the least rate seen


def attributed_lines(events: list[dict[str, Any]], shown: set[str]) -> list[dict[str, Any]]:
    return [
        ln
        for e in events
        if e["type"] == "purchase"
        for ln in e["lines"]
        if ln.get("rec_id") in shown
    ]


def expected_money(
    shop: Runtime, recording: Recording, lines: list[dict[str, Any]], after: dict[str, Any]
) -> tuple[int, int, float, float]:
    """(purchase lines, units, before, after) by the estimate's method, from the
    simulator's events and the slates as served and as the draft serves them."""
    price = {p.product_id: p.price or 0.0 for p in shop.snapshot.products}
    units: dict[str, Counter[str]] = defaultdict(Counter)
    for ln in lines:
        units[ln["rec_id"]][canonical(ln["product_id"])] += ln["quantity"]
    slates: Counter[str] = Counter()
    bought: dict[str, Counter[int]] = defaultdict(Counter)
    worth: dict[str, dict[str, Counter[int]]] = {
        "before": defaultdict(Counter),
        "after": defaultdict(Counter),
    }
    n_lines = n_units = 0
    for s in recording.served:
        name = s.req.placement
        slates[name] += 1
        for pos, pid in enumerate(s.items):
            got = units[s.rec_id][canonical(pid)]
            bought[name][pos] += got
            n_lines += got > 0
            n_units += got
            worth["before"][name][pos] += price[pid]
        for pos, pid in enumerate(after[s.rec_id]):
            worth["after"][name][pos] += price[pid]
    money = {
        when: sum(
            bought[name][pos] / slates[name] * value
            for name, by in prices.items()
            for pos, value in by.items()
        )
        for when, prices in worth.items()
    }
    return n_lines, n_units, money["before"], money["after"]


def test_the_money_estimate_on_logged_slates_and_purchases(
    sqlite_settings: Settings, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    world, shop = governed_copy(tmp_path_factory, sqlite_settings, SPEC, tmp_path / "store")
    try:
        recording = Recording(shop, others=False)  # only what the shoppers see
        events: list[dict[str, Any]] = []
        for batch in range(BATCHES):
            traffic = draw_traffic(world, BATCH, SPEC.seed + batch, SPEC.days - 1, 1)
            events += replay_sessions(world, recording, traffic, prefix=f"money{batch}").events
            if len(attributed_lines(events, set(recording.shown))) >= LINES:
                break
        lines = attributed_lines(events, set(recording.shown))
        assert len(lines) >= LINES, f"{len(lines)} attributed purchase lines in {batch + 1} batches"
        shop.decisions.flush()
        served = recording.served
        draft = drafts(shop, served)[0]  # suppress the brand in most slates
        saved = shop.rules.store.save(draft, who="test", why="the truth")
        after = reserve(shop, served)
        shop.rules.store.delete(
            draft.id, who="test", why="measured", expected_version=saved.version
        )
        truth = money_truth(world, recording, after)
        verdicts = shop.ingestor.ingest(events, source="simulator").verdicts
        assert {v.status for v in verdicts} == {"accepted"}

        report = shop.preview([draft], last=len(served))
        m = report.money
        assert report.requests == len(served) and report.not_replayed == []
        assert m.method == MONEY_METHOD and m.change is not None
        n_lines, n_units, before, after_worth = expected_money(shop, recording, lines, after)
        assert (
            (m.purchases, m.units)
            == (n_lines, n_units)
            == (len(lines), sum(ln["quantity"] for ln in lines))
        )
        assert m.before == pytest.approx(before, abs=0.01)
        assert m.after == pytest.approx(after_worth, abs=0.01)
        assert m.change == pytest.approx(after_worth - before, abs=0.02)
        assert m.change != 0.0  # the draft moves money
        assert m.low is not None and m.high is not None
        assert m.low <= truth <= m.high, (m, truth)
    finally:
        shop.close()
