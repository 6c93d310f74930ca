"""The server's alert schedule: a lease in the store so one worker evaluates,
new alerts stored and posted to the webhook, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from starlette.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.api.server import with_alert_schedule
from shelfwise.config import Settings
from shelfwise.monitoring.alerts import AlertStore, Evaluation, evaluate_alerts
from shelfwise.monitoring.schedule import DEFAULT_EVERY_SECONDS, AlertScheduler, Lease
from shelfwise.monitoring.synthetic import generate, incident_spec
from shelfwise.runtime import Runtime
from shelfwise.store.types import utcnow
from tests.waiting import eventually


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        _Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    server.shutdown()
    server.server_close()


def _wait(condition: Any) -> None:
    eventually(condition, "the scheduler's signal")


def test_a_lease_has_one_holder_until_it_is_released_or_expires(runtime: Runtime) -> None:
    now = [utcnow()]
    a = Lease(runtime.db, "job", holder="a", clock=lambda: now[0])
    b = Lease(runtime.db, "job", holder="b", clock=lambda: now[0])
    assert a.acquire(60) and not b.acquire(60)
    assert a.acquire(60)  # the holder renews
    now[0] += timedelta(seconds=61)
    assert b.acquire(60) and not a.acquire(60)  # expired: taken over
    b.release()
    assert a.acquire(60)
    assert Lease(runtime.db, "other", holder="b").acquire(60)  # leases are per name


def test_the_schedule_stores_the_incident_alert_and_posts_it_once(
    runtime: Runtime, webhook: str
) -> None:
    settings = runtime.settings.model_copy(update={"alert_webhook_url": webhook})
    spec = incident_spec(seed=11)
    store = generate(spec)
    hours = settings.alert_reference_days * 24 + 72
    series = store.series.window(store.series.hours - hours, store.series.hours)
    now = series.time_of(series.hours)

    def replay() -> Evaluation:
        return evaluate_alerts(runtime.db, settings, now=now, series=series)

    first = AlertScheduler(runtime.db, settings, 0.1, evaluate=replay)
    second = AlertScheduler(runtime.db, settings, 0.1, evaluate=replay)
    first.start()
    _wait(lambda: first.evaluations >= 1)
    second.start()  # another worker: the lease keeps it idle
    _wait(lambda: first.evaluations >= 4)
    second.stop()  # first: once the holder stops, it releases the lease
    first.stop()
    assert second.evaluations == 0
    (alert,) = AlertStore(runtime.db).list(status="open")
    # Three days into the 2% loss, the last 3 hours alone stay short of the page
    # threshold under the calibrated variance, but the last windows together pass the
    # sequential test, and the money they lose burns the budget at the page rate.
    assert (alert.placement, alert.category, alert.severity) == (
        "home_top_picks",
        "bedding",
        "page",
    )
    assert alert.notified_at == now
    (posted,) = _Hook.received  # later rounds update the alert without posting again
    assert [a["alert_id"] for a in posted["alerts"]] == [alert.alert_id]
    assert posted["alerts"][0]["summary"].startswith("PAGE home_top_picks / bedding")
    assert posted["alerts"][0]["at_risk_per_hour"] == alert.at_risk_per_hour


def test_a_failing_round_does_not_stop_the_schedule(runtime: Runtime) -> None:
    calls = []

    def flaky() -> Evaluation:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("store away")
        return Evaluation(utcnow(), 0, [], [], [], 0)

    s = AlertScheduler(runtime.db, runtime.settings, 0.05, evaluate=flaky)
    s.start()
    _wait(lambda: s.evaluations >= 1)
    s.stop()
    assert len(calls) >= 2 and s.last is not None and s.last.series == 0


def test_the_server_runs_the_schedule_only_when_asked(sqlite_settings: Settings) -> None:
    assert sqlite_settings.alert_evaluate_every_seconds is None
    assert (
        with_alert_schedule(sqlite_settings).alert_evaluate_every_seconds == DEFAULT_EVERY_SECONDS
    )
    off = sqlite_settings.model_copy(update={"alert_evaluate_every_seconds": 0.0})
    assert with_alert_schedule(off).alert_evaluate_every_seconds == 0.0
    with TestClient(create_app(sqlite_settings)) as c:
        assert c.app.state.alert_scheduler is None  # type: ignore[attr-defined]
    on = sqlite_settings.model_copy(update={"alert_evaluate_every_seconds": 0.05})
    with TestClient(create_app(on)) as c:
        scheduler = c.app.state.alert_scheduler  # type: ignore[attr-defined]
        _wait(lambda: scheduler.evaluations >= 1)
        assert scheduler.last.series == 0  # an empty store: nothing to alert on
    assert not scheduler._thread.is_alive()
