"""The simulated history: contract-valid, deterministic, realistic shares, and
every injected defect exactly where the ground truth says it is."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shelfwise.contracts.events import parse_event
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
    write_files,
)
from shelfwise.simulate.output import catalog_changes, final_records
from shelfwise.simulate.platforms import expected_platform_shares

DEFECTS = Defects(
    safari_cart_loss=SafariCartLoss(share=0.4),
    id_format=IdFormat(share=1.0, surface="android_app", style="strip_zeros"),
    identity_split=IdentitySplit(share=0.5),
    ctr_drop=CtrDrop(drop=0.6, category="kitchen/cookware", from_day=7),
    supplier_stockout=SupplierStockout(brand="Vireo", from_day=5),
)
SPEC = SimulationSpec(seed=5, products=400, people=1_500, days=14, defects=DEFECTS)


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(SPEC)


def sessions_of(sim: Simulation) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in sim.events:
        out[e["session_id"]].append(e)
    return out


def test_every_event_is_contract_valid_unique_and_in_time_order(sim: Simulation) -> None:
    parsed = [parse_event(e) for e in sim.events]
    assert len({e.event_id for e in parsed}) == len(parsed)
    times = [e.occurred_at for e in parsed]
    assert times == sorted(times)
    assert SPEC.start <= times[0] and times[-1] < SPEC.end
    types = Counter(e.type for e in parsed)
    assert set(types) == {
        "page_view",
        "product_view",
        "add_to_cart",
        "remove_from_cart",
        "purchase",
        "return",
        "rec_impression",
        "rec_click",
        "login",
    }
    assert types["page_view"] == sim.sessions
    assert types["purchase"] == sim.orders
    for e in parsed:
        if e.type == "purchase":
            assert e.revenue == pytest.approx(sum(ln.quantity * ln.unit_price for ln in e.lines))


def test_funnel_rates_look_like_a_store(sim: Simulation) -> None:
    types = Counter(e["type"] for e in sim.events)
    assert 0.05 < types["add_to_cart"] / types["product_view"] < 0.2
    assert 0.03 < types["rec_click"] / types["rec_impression"] < 0.3
    assert 0.02 < sim.orders / sim.sessions < 0.15


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path, sim: Simulation) -> None:
    small = SimulationSpec(seed=5, products=120, people=150, days=5, defects=DEFECTS)
    a = write_files(simulate(small), tmp_path / "a")
    b = write_files(simulate(small), tmp_path / "b")
    for name in a:
        assert a[name].read_bytes() == b[name].read_bytes(), name
    other = write_files(simulate(small.model_copy(update={"seed": 6})), tmp_path / "c")
    assert other["events.jsonl"].read_bytes() != a["events.jsonl"].read_bytes()


def test_platform_shares_of_sessions_match_the_configured_shares(sim: Simulation) -> None:
    first = [ev[0] for ev in sessions_of(sim).values()]
    counts = Counter(e["platform"] for e in first)
    for platform, share in expected_platform_shares().items():
        assert counts[platform] / len(first) == pytest.approx(share, abs=0.05), platform
    browsers = Counter((e["platform"], e["browser"]) for e in first)
    assert browsers[("mobile_web", "Safari")] > browsers[("web", "Safari")]
    assert browsers[("webview", "Instagram")] > 0
    apps = [e for e in first if e["platform"] in ("ios_app", "android_app")]
    assert all(e["device_id"] and e["app_version"] for e in apps)
    assert all("device_id" not in e for e in first if e["platform"] == "mobile_web")


def test_safari_cart_loss_hits_the_configured_share_of_mobile_safari_sessions(
    sim: Simulation,
) -> None:
    truth = sim.ground_truth()["defects"]["safari_cart_loss"]
    hit = set(truth["session_ids"])
    assert truth["sessions_affected"] / truth["mobile_safari_sessions"] == pytest.approx(
        0.4, abs=0.06
    )
    bought_without_cart = defaultdict(list)
    for sid, events in sessions_of(sim).items():
        types = {e["type"] for e in events}
        safari = events[0]["platform"] == "mobile_web" and events[0]["browser"] == "Safari"
        if sid in hit:
            assert "add_to_cart" not in types
        if "purchase" in types:
            bought_without_cart[safari].append("add_to_cart" not in types)
    # Every purchase follows an add_to_cart, except in the broken Safari sessions.
    assert not any(bought_without_cart[False])
    share = sum(bought_without_cart[True]) / len(bought_without_cart[True])
    assert share == pytest.approx(0.4, abs=0.15)


def test_id_format_defect_only_on_the_configured_surface(sim: Simulation) -> None:
    known = set(sim.world.ids)
    truth = sim.ground_truth()["defects"]["id_format"]
    hit = set(truth["session_ids"])
    assert truth["product_ids_reformatted"] > 0
    for e in sim.events:
        pid = e.get("product_id")
        if pid is None:
            continue
        assert (pid not in known) == (e["session_id"] in hit)
        if e["session_id"] in hit:
            assert e["platform"] == "android_app" and not pid.startswith("P0")


def test_identity_split_never_links_the_other_devices(sim: Simulation) -> None:
    split = sim.ground_truth()["defects"]["identity_split"]["unlinked_anonymous_ids"]
    assert len(split) > 5
    unlinked = {a: c for c, anons in split.items() for a in anons}
    linked_anons = defaultdict(set)
    for e in sim.events:
        assert e.get("customer_id") is None or e["anonymous_id"] not in unlinked
        if e.get("customer_id") in split:
            linked_anons[e["customer_id"]].add(e["anonymous_id"])
    assert linked_anons  # their main device still logs in


def test_supplier_stockout_stops_carts_and_lands_in_the_catalog(sim: Simulation) -> None:
    truth = sim.ground_truth()["defects"]["supplier_stockout"]
    vireo = set(truth["product_ids"])
    assert len(vireo) == truth["products"] > 0
    from_ts = datetime(2026, 10, 10, tzinfo=UTC)  # day 5

    def canonical(pid: str) -> str:  # undo the id-format defect
        return "P" + pid[1:].zfill(6)

    carts = [e for e in sim.events if e["type"] == "add_to_cart"]
    late = [e for e in carts if datetime.fromisoformat(e["occurred_at"]) >= from_ts]
    early = [e for e in carts if datetime.fromisoformat(e["occurred_at"]) < from_ts]
    assert not [e for e in late if canonical(e["product_id"]) in vireo]
    assert [e for e in early if canonical(e["product_id"]) in vireo]
    changes = [c["product_id"] for c in catalog_changes(sim)]
    assert set(changes) == vireo
    stock = {r["product_id"]: r["stock_qty"] for r in final_records(sim)}
    assert all(stock[v] == 0 for v in vireo)


def test_ctr_drop_cuts_clicks_for_the_category_on_the_placement_from_the_day(
    sim: Simulation,
) -> None:
    w = sim.world
    cookware = w.catalog.in_category(4)[:5]
    lamps = w.catalog.in_category(12)[:5]
    for day, factor in ((6, 1.0), (7, 0.4), (13, 0.4)):
        page = w.truth.click_prob(0, cookware, day, "product_page")
        home = w.truth.click_prob(0, cookware, day, "home")
        assert page == pytest.approx(home * factor)
        assert w.truth.click_prob(0, lamps, day, "product_page") == pytest.approx(
            w.truth.click_prob(0, lamps, day, "home")
        )


def test_cookies_reset_and_people_use_several_devices(sim: Simulation) -> None:
    people = sim.world.people
    resets = sum(len(d.anonymous_ids) > 1 for devs in people.devices for d in devs)
    assert resets > 20
    gt = sim.ground_truth()
    assert gt["people_with_several_devices"] / gt["people"] == pytest.approx(0.35, abs=0.05)
    assert gt["registered_people"] / gt["people"] == pytest.approx(0.45, abs=0.05)
    logins = [e for e in sim.events if e["type"] == "login"]
    assert logins and all(e["customer_id"].startswith("C") for e in logins)


def test_promotions_lower_the_prices_in_events(sim: Simulation) -> None:
    w = sim.world
    assert w.promotions
    discounted = 0
    for e in sim.events:
        if e["type"] == "product_view" and e["product_id"] in w.index:
            i = w.index[e["product_id"]]
            day = w.day_of(datetime.fromisoformat(e["occurred_at"]))
            assert e["price"] == pytest.approx(
                round(w.catalog.price[i] * (1 - w.calendar.discount(day)[i]), 2)
            )
            discounted += e["price"] < w.catalog.price[i]
    assert discounted > 0
