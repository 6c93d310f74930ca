"""One definition of revenue from recommendations: the same purchases give the same
figure on the dashboard's overview, ``GET /v1/monitoring/metrics`` and an experiment's
readout, on SQLite and PostgreSQL, and the attribution window is the setting's."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from starlette.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.catalog import Product
from shelfwise.config import Settings
from shelfwise.contracts import EventStore
from shelfwise.contracts.events import OrderLine, Purchase, RecClick, RecImpression, ShownItem
from shelfwise.experiments import ExperimentSpec
from shelfwise.experiments.model import Arm
from shelfwise.experiments.report import readout
from shelfwise.monitoring.attribution import attributed, credited_click
from shelfwise.monitoring.metrics import compute_metrics
from shelfwise.monitoring.series import floor_hour
from shelfwise.runtime import Runtime
from shelfwise.store.types import utcnow

U1 = {"anonymous_id": "u1", "session_id": "s1", "platform": "web"}
U2 = {"anonymous_id": "u2", "session_id": "s2", "platform": "web"}
U2_LATER = {"anonymous_id": "u2", "session_id": "s3", "platform": "web"}


def _store(runtime: Runtime, t0: datetime) -> None:
    runtime.catalog.upsert(
        [
            Product.model_validate(
                {"product_id": p, "title": p, "category_path": "home/x", "price": price}
            )
            for p, price in (("A", 50.0), ("B", 20.0), ("C", 30.0))
        ]
    )
    runtime.experiments.create(
        ExperimentSpec(
            experiment_id="rev",
            name="Revenue",
            arms=(Arm(name="control", share=0.5), Arm(name="treat", share=0.5)),
            start=t0 - timedelta(hours=1),
            pre_period_days=0,
        )
    )
    shown = (ShownItem(product_id="A", position=1), ShownItem(product_id="B", position=2))
    EventStore(runtime.db).append(
        [
            RecImpression(
                event_id="i1", occurred_at=t0, rec_id="r1", placement="home", items=shown,
                experiment_id="rev", arm="control", **U1,
            ),
            RecClick(
                event_id="c1", occurred_at=t0 + timedelta(minutes=1), rec_id="r1",
                placement="home", product_id="A", **U1,
            ),
            # A: clicked 2 h before, no rec_id -> counts (home); B: its rec_id -> counts;
            # C: never clicked in a slate -> the session's revenue only.
            Purchase(
                event_id="p1", occurred_at=t0 + timedelta(hours=2), order_id="o1",
                currency="EUR", revenue=100.0,
                lines=(
                    OrderLine(product_id="A", quantity=1, unit_price=50.0),
                    OrderLine(product_id="B", quantity=1, unit_price=20.0, rec_id="r1"),
                    OrderLine(product_id="C", quantity=1, unit_price=30.0),
                ),
                **U1,
            ),
            RecImpression(
                event_id="i2", occurred_at=t0, rec_id="r2", placement="product_similar",
                items=(ShownItem(product_id="C", position=1),),
                experiment_id="rev", arm="treat", **U2,
            ),
            RecClick(
                event_id="c2", occurred_at=t0 + timedelta(minutes=5), rec_id="r2",
                placement="product_similar", product_id="C", **U2,
            ),
            # Two C bought 30 h after the click, in a later session: inside a 48 h window,
            # outside the default 24 h one.
            Purchase(
                event_id="p2", occurred_at=t0 + timedelta(hours=30), order_id="o2",
                currency="EUR", revenue=60.0,
                lines=(OrderLine(product_id="C", quantity=2, unit_price=30.0),),
                **U2_LATER,
            ),
        ]
    )  # fmt: skip


def _three_figures(settings: Settings) -> tuple[float, float, float, str, str]:
    """(overview, monitoring API, experiment readout) revenue from recommendations,
    the overview's and the API's statement of the window."""
    runtime = Runtime.open(settings)
    try:
        with TestClient(create_app(settings, runtime)) as c:
            page = c.get("/dashboard?range=7d").text
            api = c.get("/v1/monitoring/metrics?range=7d").json()
        tile = re.search(r'data-testid="total-revenue" data-value="([0-9.]+)"', page)
        window = re.search(r'data-testid="attribution-window">\(([^)]*)\)', page)
        assert tile is not None and window is not None, page[:3000]
        e = runtime.experiments.get("rev")
        rep = readout(
            runtime.db,
            e,
            attribution_window_hours=settings.attribution_window_hours,
        )
        overall = rep.cells[0]
        assert (overall.placement, overall.category) == ("all", "all")
        assert rep.attribution_window_hours == settings.attribution_window_hours
        by_arm = sum(a.recommendation_revenue for a in overall.arms)
        assert api["attribution_window_hours"] == settings.attribution_window_hours
        assert api["attribution"] == rep.attribution
        return (
            float(tile.group(1)),
            float(api["total"]["revenue"]),
            by_arm,
            window.group(1),
            (api["attribution"]),
        )
    finally:
        runtime.close()


def test_the_same_purchases_give_the_same_revenue_everywhere(settings: Settings) -> None:
    t0 = floor_hour(utcnow()) - timedelta(hours=40)
    base = settings.model_copy(update={"auth_enabled": False})
    first = Runtime.open(base)
    try:
        _store(first, t0)
    finally:
        first.close()
    overview, api, experiment, window, text = _three_figures(base)
    assert (overview, api, experiment) == (70.0, 70.0, 70.0)
    assert window == "24 h attribution window" and "24 h before" in text
    wider = base.model_copy(update={"attribution_window_hours": 48.0})
    overview, api, experiment, window, text = _three_figures(wider)
    assert (overview, api, experiment) == (130.0, 130.0, 130.0)
    assert window == "48 h attribution window" and "48 h before" in text


def test_the_descriptive_session_figure_stays_and_is_labelled(settings: Settings) -> None:
    t0 = floor_hour(utcnow()) - timedelta(hours=40)
    base = settings.model_copy(update={"auth_enabled": False})
    runtime = Runtime.open(base)
    try:
        _store(runtime, t0)
        with TestClient(create_app(base, runtime)) as c:
            page = c.get("/dashboard?range=7d").text
            api = c.get("/v1/monitoring/metrics?range=7d").json()
    finally:
        runtime.close()
    # Sessions that clicked a recommendation: s1 (the whole order, 100) and s2 (no order);
    # s3 bought without interacting.
    interacted = next(s for s in api["sessions"] if s["interacted"])
    other = next(s for s in api["sessions"] if not s["interacted"])
    assert (interacted["sessions"], interacted["revenue"]) == (2, 100.0)
    assert (other["sessions"], other["revenue"]) == (1, 60.0)
    assert "sessions that interacted" in api["note"] and "descriptive" in api["note"]
    assert 'data-testid="interacted-revenue" data-value="100.0"' in page
    assert "Revenue of sessions that interacted with recommendations (descriptive)" in page


@pytest.mark.parametrize(
    ("rec_id", "hours_after", "window", "expected"),
    [
        ("r1", 500.0, 24.0, True),  # a rec_id counts whenever it is bought
        (None, 23.9, 24.0, True),
        (None, 24.1, 24.0, False),
        (None, 24.1, 48.0, True),
        (None, -0.1, 24.0, False),  # a click after the purchase never counts
    ],
)
def test_the_python_form_of_the_definition(
    rec_id: str | None, hours_after: float, window: float, expected: bool
) -> None:
    clicked = floor_hour(utcnow())
    bought = clicked + timedelta(hours=hours_after)
    assert attributed(rec_id, bought, [clicked], window) is expected


def test_a_line_is_credited_to_the_latest_click_within_the_window() -> None:
    t = floor_hour(utcnow())
    clicks = [(t, "home"), (t + timedelta(hours=2), "cart"), (t + timedelta(hours=9), "late")]
    assert credited_click(t + timedelta(hours=3), clicks, 24.0) == "cart"
    assert credited_click(t + timedelta(hours=25), clicks, 24.0) == "late"
    assert credited_click(t + timedelta(hours=40), clicks, 24.0) is None


def test_a_shopper_is_known_by_customer_id_across_devices(runtime: Runtime) -> None:
    """A click on one device and the purchase on another, the same customer id: the
    line counts in the store-wide SQL and in the readout alike; another customer's
    purchase of the same product does not."""
    t0 = floor_hour(utcnow()) - timedelta(hours=10)
    _store(runtime, t0)  # 70.0 from u1 within 24 h, as above
    phone = {"anonymous_id": "d1", "customer_id": "c9", "session_id": "m1", "platform": "ios_app"}
    laptop = {"anonymous_id": "d2", "customer_id": "c9", "session_id": "m2", "platform": "web"}
    stranger = {"anonymous_id": "d3", "customer_id": "c8", "session_id": "m3", "platform": "web"}
    EventStore(runtime.db).append(
        [
            RecImpression(
                event_id="i9", occurred_at=t0, rec_id="r9", placement="cart",
                items=(ShownItem(product_id="B", position=1),),
                experiment_id="rev", arm="treat", **phone,
            ),
            RecClick(
                event_id="c9", occurred_at=t0 + timedelta(minutes=1), rec_id="r9",
                placement="cart", product_id="B", **phone,
            ),
            Purchase(
                event_id="p9", occurred_at=t0 + timedelta(hours=3), order_id="o9",
                currency="EUR", revenue=40.0,
                lines=(OrderLine(product_id="B", quantity=2, unit_price=20.0),),
                **laptop,
            ),
            Purchase(
                event_id="p8", occurred_at=t0 + timedelta(hours=3), order_id="o8",
                currency="EUR", revenue=20.0,
                lines=(OrderLine(product_id="B", quantity=1, unit_price=20.0),),
                **stranger,
            ),
        ]
    )  # fmt: skip
    rep = compute_metrics(runtime.db, t0 - timedelta(hours=1), utcnow(), ("placement",))
    rows = {r.placement: r for r in rep.rows}
    assert (rows["cart"].orders, rows["cart"].revenue) == (1, 40.0)
    assert rep.total.revenue == 110.0
    overall = readout(runtime.db, runtime.experiments.get("rev")).cells[0]
    assert sum(a.recommendation_revenue for a in overall.arms) == 110.0
