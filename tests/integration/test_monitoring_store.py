"""Metrics, drift and alerts read from the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from shelfwise.catalog import Product
from shelfwise.contracts import EventStore
from shelfwise.contracts.events import (
    AddToCart,
    OrderLine,
    PageView,
    Purchase,
    RecClick,
    RecImpression,
    ShownItem,
)
from shelfwise.monitoring.alerts import Alert, AlertStore, send_webhook
from shelfwise.monitoring.metrics import compute_metrics, hourly_series
from shelfwise.monitoring.served import drift_report
from shelfwise.monitoring.signing import verify
from shelfwise.runtime import Runtime
from shelfwise.simulate import CatalogSpec, generate_catalog
from tests.monitoring_data import make_events

T0 = datetime(2026, 11, 2, 10, tzinfo=UTC)


def _catalog(runtime: Runtime) -> None:
    runtime.catalog.upsert(
        [
            Product.model_validate(
                {
                    "product_id": "A",
                    "title": "Duvet",
                    "category_path": "bedding/duvets",
                    "price": 50.0,
                    "stock_qty": 3,
                }
            ),
            Product.model_validate(
                {
                    "product_id": "B",
                    "title": "Pan",
                    "category_path": "kitchen/pans",
                    "price": 20.0,
                    "stock_qty": 0,
                }
            ),
        ]
    )


def test_metrics_by_placement_and_category(runtime: Runtime) -> None:
    _catalog(runtime)
    c1 = {"anonymous_id": "u1", "session_id": "s1", "platform": "web"}
    c2 = {"anonymous_id": "u2", "session_id": "s2", "platform": "ios_app"}
    items = (ShownItem(product_id="A", position=1), ShownItem(product_id="B", position=2))
    EventStore(runtime.db).append(
        [
            RecImpression(
                event_id="i1", occurred_at=T0, rec_id="r1", placement="home", items=items, **c1
            ),
            RecImpression(
                event_id="i2", occurred_at=T0, rec_id="r2", placement="cart", items=items, **c2
            ),
            RecClick(
                event_id="c1",
                occurred_at=T0 + timedelta(minutes=1),
                rec_id="r1",
                placement="home",
                product_id="A",
                **c1,
            ),
            AddToCart(
                event_id="a1",
                occurred_at=T0 + timedelta(minutes=2),
                product_id="A",
                unit_price=50.0,
                rec_id="r1",
                **c1,
            ),
            Purchase(
                event_id="p1",
                occurred_at=T0 + timedelta(minutes=3),
                order_id="o1",
                currency="EUR",
                revenue=70.0,
                lines=(
                    OrderLine(product_id="A", quantity=1, unit_price=50.0, rec_id="r1"),
                    OrderLine(product_id="B", quantity=1, unit_price=20.0),
                ),
                **c1,
            ),
            PageView(
                event_id="v2", occurred_at=T0, page_type="home", anonymous_id="u3", session_id="s3"
            ),
            Purchase(
                event_id="p3",
                occurred_at=T0 + timedelta(minutes=5),
                order_id="o3",
                currency="EUR",
                revenue=40.0,
                lines=(OrderLine(product_id="B", quantity=2, unit_price=20.0),),
                anonymous_id="u3",
                session_id="s3",
            ),
        ]
    )
    rep = compute_metrics(runtime.db, T0, T0 + timedelta(hours=1), by=("placement",))
    rows = {r.placement: r for r in rep.rows}
    assert (rows["home"].impressions, rows["home"].clicks, rows["home"].add_to_carts) == (2, 1, 1)
    assert (rows["home"].orders, rows["home"].revenue) == (1, 50.0)
    assert rows["home"].ctr == 0.5 and rows["home"].out_of_stock_share == 0.5
    assert (rows["cart"].impressions, rows["cart"].clicks, rows["cart"].revenue) == (2, 0, 0.0)
    assert rep.total.impressions == 4 and rep.total.revenue == 50.0
    with_recs, without = rep.sessions
    assert (with_recs.sessions, with_recs.orders, with_recs.revenue) == (1, 1, 70.0)
    # s2 (impression only) and s3 (page view and an order) did not interact.
    assert (without.sessions, without.orders, without.revenue) == (2, 1, 40.0)
    assert (rep.buyers, rep.repeat_buyers) == (2, 0)
    by_cat = compute_metrics(
        runtime.db, T0, T0 + timedelta(hours=1), by=("placement", "category", "time"), grain="hour"
    )
    home_bedding = [r for r in by_cat.rows if (r.placement, r.category) == ("home", "bedding")]
    assert len(home_bedding) == 1 and home_bedding[0].period_start == T0
    assert home_bedding[0].revenue == 50.0
    series = hourly_series(runtime.db, T0, T0 + timedelta(hours=2))
    assert series.keys == [
        ("cart", "bedding"),
        ("cart", "kitchen"),
        ("home", "bedding"),
        ("home", "kitchen"),
    ]
    assert series.impressions[:, 0].tolist() == [1, 1, 1, 1]
    assert series.revenue[2].tolist() == [50.0, 0.0]


def _store_catalog(runtime: Runtime) -> list[Product]:
    products = generate_catalog(CatalogSpec(n_products=200, seed=3))
    runtime.catalog.upsert(products)
    return products


def test_a_price_shift_is_drift_and_a_stationary_replay_is_not(runtime: Runtime) -> None:
    products = _store_catalog(runtime)
    store = EventStore(runtime.db)
    ref = (T0, T0 + timedelta(days=7))
    store.append(make_events(products, ref[0], 7, seed=1, slates_per_hour=1))
    # A stationary replay: same behaviour, fresh randomness.
    same = (ref[1], ref[1] + timedelta(days=2))
    store.append(make_events(products, same[0], 2, seed=2, slates_per_hour=2))
    # A catalog change that moves price bands: the same behaviour at 1.6x prices.
    moved = (same[1], same[1] + timedelta(days=2))
    store.append(make_events(products, moved[0], 2, seed=3, slates_per_hour=2, price_factor=1.6))

    calm = drift_report(runtime.db, ref, same, catalog_size=len(products))
    assert calm.drifted == []
    shifted = drift_report(runtime.db, ref, moved, catalog_size=len(products))
    assert shifted.drifted == ["price of viewed and bought items"]
    price = shifted.results[0]
    assert price.psi > price.threshold and price.js > 0
    exp = calm.exposure_reference
    assert 0 < exp.coverage <= 1 and 0 < exp.gini < 1 and exp.novelty_bits > 0


class _Sink(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    raw: list[tuple[bytes, dict[str, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Sink.received.append(json.loads(body))
        _Sink.raw.append((body, dict(self.headers)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Sink.received = []
    _Sink.raw = []
    server = HTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def _alert(**kw: Any) -> Alert:
    base: dict[str, Any] = {
        "alert_id": "a1",
        "placement": "home_top_picks",
        "category": "bedding",
        "severity": "page",
        "status": "open",
        "stage": "click_through",
        "since": T0,
        "opened_at": T0 + timedelta(hours=3),
        "updated_at": T0 + timedelta(hours=3),
        "resolved_at": None,
        "at_risk_per_hour": 1250.0,
        "expected_per_hour": 60_000.0,
        "observed_per_hour": 58_750.0,
        "burn_rate": 12.5,
        "p_value": 1e-6,
        "window_hours": 3,
        "currency": "EUR",
        "dashboard_path": "/dashboard/categories?placement=home_top_picks&category=bedding",
        "notified_at": None,
    }
    base.update(kw)
    return Alert.model_validate(base)


def test_alerts_are_stored_listed_and_posted(runtime: Runtime, webhook: str) -> None:
    alerts = AlertStore(runtime.db)
    alerts.save(_alert())
    alerts.save(_alert(alert_id="a2", category="kitchen", status="resolved"))
    alerts.save(_alert(at_risk_per_hour=1400.0))
    assert [a.alert_id for a in alerts.list(status="open")] == ["a1"]
    assert alerts.list(status="open")[0].at_risk_per_hour == 1400.0
    assert len(alerts.list()) == 2
    assert send_webhook(webhook, alerts.list(status="open"))
    (payload,) = _Sink.received
    assert payload["alerts"][0]["at_risk_per_hour"] == 1400.0
    assert payload["alerts"][0]["summary"].startswith("PAGE home_top_picks / bedding: 1,400 EUR/h")
    assert not send_webhook("http://127.0.0.1:9/none", alerts.list())
    assert "X-Shelfwise-Signature" not in _Sink.raw[0][1]  # no secret, no signature


def test_webhooks_are_signed_with_a_secret(runtime: Runtime, webhook: str) -> None:
    secret = "webhook-secret-0123456789"
    assert send_webhook(webhook, [_alert()], secret=secret)
    ((body, got),) = _Sink.raw
    stamp, signed = got["X-Shelfwise-Timestamp"], got["X-Shelfwise-Signature"]
    assert signed.startswith("v1=")
    assert verify(secret, body, stamp, signed)
    assert not verify("another-secret-0123456789", body, stamp, signed)


def test_the_incident_opens_one_alert_posts_it_and_resolves_when_it_ends(
    runtime: Runtime, webhook: str
) -> None:
    from shelfwise.monitoring.alerts import evaluate_alerts
    from shelfwise.monitoring.synthetic import SyntheticSpec, generate, incident_spec

    settings = runtime.settings.model_copy(update={"alert_webhook_url": webhook})
    spec = incident_spec(seed=11)
    store = generate(spec)
    hours = 28 * 24 + 72
    lo = store.series.hours - hours
    series = store.series.window(lo, store.series.hours)
    now = series.time_of(series.hours)
    ev = evaluate_alerts(runtime.db, settings, now=now, series=series)
    (alert,) = ev.opened
    big = spec.incidents[0]
    s = series.keys.index((big.placement, big.category))
    truth = store.truth_per_hour(s, big.start_hour, store.series.hours)
    assert (alert.placement, alert.category, alert.stage) == (
        "home_top_picks",
        "bedding",
        "click_through",
    )
    assert abs(alert.at_risk_per_hour - truth) / truth < 0.2
    assert abs((alert.since - store.series.time_of(big.start_hour)).total_seconds()) <= 6 * 3600
    assert alert.dashboard_path == "/dashboard/categories?placement=home_top_picks&category=bedding"
    assert ev.notified == 1 and _Sink.received[0]["alerts"][0]["alert_id"] == alert.alert_id
    # The next hour the same series is still losing: the alert is updated, not duplicated.
    again = evaluate_alerts(runtime.db, settings, now=now, series=series)
    assert [a.alert_id for a in again.updated] == [alert.alert_id] and again.opened == []
    assert len(_Sink.received) == 1
    # A calm store resolves it, once the series has been quiet for alert_resolve_after_hours
    # (a loss that dips below the thresholds for a few hours is the same episode).
    calm = generate(SyntheticSpec(seed=11)).series.window(lo, store.series.hours)
    quiet = timedelta(hours=settings.alert_resolve_after_hours)
    early = evaluate_alerts(runtime.db, settings, now=now + quiet / 2, series=calm)
    assert early.resolved == [] and early.opened == []
    done = evaluate_alerts(runtime.db, settings, now=now + quiet, series=calm)
    assert [a.alert_id for a in done.resolved] == [alert.alert_id]
    assert AlertStore(runtime.db).list(status="open") == []


def test_an_alert_the_level_test_raises_states_its_fit_of_the_loss(runtime: Runtime) -> None:
    # A 2% drop under day-to-day noise (the benchmark's calibration drop 1100), 5 h on:
    # the stored and listed alert states the level test's onset and money per hour
    # (money_estimate "level"), the figures money_at_risk gives for that finding.
    import numpy as np

    from shelfwise.monitoring.alerts import detector_config, evaluate_alerts
    from shelfwise.monitoring.detector import evaluate, fit_baseline
    from shelfwise.monitoring.money import money_at_risk
    from shelfwise.monitoring.synthetic import (
        NOISE_FAMILIES,
        Incident,
        SyntheticSpec,
        generate,
        peak_hour,
    )

    at = peak_hour(SyntheticSpec(), 31 + int(np.random.default_rng(1100).integers(0, 7)))
    spec = SyntheticSpec(
        days=(at + 72) // 24 + 1,
        seed=1100,
        incidents=(Incident("home_top_picks", "bedding", 0.02, at),),
        **NOISE_FAMILIES["day_to_day"],
    )
    store = generate(spec)
    ref = runtime.settings.alert_reference_days * 24
    series = store.series.window(at + 5 - 72 - ref, at + 5)
    ev = evaluate_alerts(
        runtime.db, runtime.settings, now=series.time_of(series.hours), series=series
    )
    (alert,) = [a for a in ev.opened if (a.placement, a.category) == ("home_top_picks", "bedding")]
    cfg = detector_config(runtime.settings)
    base = fit_baseline(series.window(0, ref))
    (f,) = [
        f
        for f in evaluate(base, series, series.hours, cfg)
        if f.key == (alert.placement, alert.category)
    ]
    assert f.level is not None
    assert money_at_risk(base, series, f, series.hours, cfg) == f.level
    assert alert.at_risk_per_hour == round(f.level.at_risk_per_hour, 2)
    assert alert.expected_per_hour == round(f.level.expected_revenue_per_hour, 2)
    assert alert.since == series.time_of(f.level.start) == store.series.time_of(at)
    (listed,) = [a for a in AlertStore(runtime.db).list() if a.alert_id == alert.alert_id]
    assert listed.at_risk_per_hour == alert.at_risk_per_hour


def test_calibration_needs_the_reference_before_the_replayed_weeks(runtime: Runtime) -> None:
    from shelfwise.errors import InvalidInput
    from shelfwise.monitoring.alerts import calibrate_store

    with pytest.raises(InvalidInput) as e:
        calibrate_store(runtime.db, runtime.settings, weeks=2)
    assert e.value.code == "not_enough_history"
    assert "45 days" in e.value.message  # 2 weeks + 28 reference days + 72 h look-back
