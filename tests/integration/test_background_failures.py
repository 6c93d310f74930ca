"""Background threads never die on one bad row, on SQLite and PostgreSQL.

Each test poisons a thread's work directly (bypassing the API, which refuses such
input at its entry) and checks: the thread is alive afterwards, the good rows before
and after the bad one are stored, the bad one is in ``dead_letters``, and
``shelfwise_background_failures_total`` moved.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.config import Settings, load_settings
from shelfwise.monitoring.alerts import EVALUATOR, Alert, AlertStore
from shelfwise.monitoring.schedule import AlertScheduler
from shelfwise.runtime import Runtime
from shelfwise.serving.decisions import WRITER, Decision, DecisionLog
from shelfwise.serving.metrics import ServingMetrics
from shelfwise.store.deadletters import Backoff, DeadLetters
from shelfwise.store.types import utcnow
from tests.conftest import PG_URL, headers
from tests.integration.outage import Proxy
from tests.waiting import eventually

AT = datetime(2026, 11, 2, 9, tzinfo=UTC)


def _wait(condition: Callable[[], Any]) -> None:
    eventually(condition, "the background thread's signal", every=0.02)


def _failures(metrics: ServingMetrics, thread: str, kind: str) -> float:
    got = metrics.registry.get_sample_value(
        "shelfwise_background_failures_total", {"thread": thread, "kind": kind}
    )
    return got or 0.0


def _slate(rec_id: str, person: str | None = "cust-eve", **changes: Any) -> Decision:
    d = Decision(rec_id, AT, "home", "model", {"placement": "home"}, [], person_id=person)
    return Decision(**{**d.__dict__, **changes})


def _sample(metrics: ServingMetrics, name: str) -> float:
    got = metrics.registry.get_sample_value(name)
    assert got is not None, name
    return got


def _stored(rt: Runtime) -> set[str]:
    return {d.rec_id for d in DecisionLog(rt.db).recent(limit=100)}


# A row every store refuses (NOT NULL), and one only PostgreSQL refuses (a NUL byte:
# `GET /v1/recommendations?person=%00` used to kill the writer this way).
POISONS = {"mode_missing": {"mode": None}, "nul_in_person": {"person_id": "eve\x00"}}


@pytest.mark.parametrize("poison", sorted(POISONS))
def test_a_poisoned_slate_is_set_aside_and_the_writer_goes_on(
    runtime: Runtime, poison: str
) -> None:
    log, metrics = runtime.decisions, runtime.metrics
    log.record(_slate("good-1"))
    log.record(_slate("bad", **POISONS[poison]))
    log.record(_slate("good-2"))
    _wait(lambda: log.pending == 0)
    refused = poison == "mode_missing" or runtime.db.backend == "postgresql"
    assert _stored(runtime) == ({"good-1", "good-2"} if refused else {"good-1", "good-2", "bad"})
    assert _failures(metrics, WRITER, "row") == (1.0 if refused else 0.0)
    letters = log.dead_letters.list()
    if refused:
        (letter,) = letters
        assert (letter.thread, letter.item_key) == (WRITER, "bad")
        assert letter.payload["rec_id"] == "bad"
        expected = {"mode_missing": "invalid:not_null:mode", "nul_in_person": "invalid"}
        assert letter.error.split(" ")[0] == expected[poison]
        if poison == "nul_in_person":
            assert letter.payload["person_id"] == "eve\x00"  # kept as sent, escaped in JSON
    else:
        assert letters == []

    log.record(_slate("good-3"))  # the same thread writes what comes next
    _wait(lambda: log.pending == 0)
    assert log._thread is not None and log._thread.is_alive()
    assert "good-3" in _stored(runtime)


def test_after_a_poisoned_slate_the_api_still_reads_and_erases(runtime: Runtime) -> None:
    """The reported sequel on PostgreSQL: drift and erasure answered 500, and an erased
    person's slates were still served from the writer's memory."""
    runtime.ingestor.ingest(
        [
            {
                "type": "product_view",
                "event_id": "e1",
                "occurred_at": "2026-11-02T09:00:00Z",
                "product_id": "P1",
                "customer_id": "cust-eve",
                "session_id": "s-eve",
            }
        ]
    )
    runtime.decisions.record(_slate("eve-1"))
    runtime.decisions.record(_slate("bad", mode=None))
    runtime.decisions.record(_slate("eve-2"))
    with TestClient(create_app(runtime.settings, runtime), raise_server_exceptions=False) as c:
        r = c.get("/v1/monitoring/drift", headers=headers("read"))
        assert r.status_code == 200, r.text
        r = c.delete("/v1/people/customer:cust-eve", headers=headers("admin"))
        assert r.status_code == 200, r.text
        assert r.json()["counts"]["decisions"] == 2
        assert runtime.decisions.get("eve-1") is None and runtime.decisions.get("eve-2") is None
        text = c.get("/metrics", headers=headers("read")).text
    line = f'shelfwise_background_failures_total{{kind="row",thread="{WRITER}"}} 1.0'
    assert line in text


def test_pending_slates_are_written_at_shutdown_around_a_bad_one(runtime: Runtime) -> None:
    counted: list[tuple[str, str]] = []
    log = DecisionLog(runtime.db, flush_seconds=60, on_failure=lambda *k: counted.append(k))
    for rec_id in ("s1", "s2"):
        log.record(_slate(rec_id))
    log.record(_slate("s-bad", mode=None))
    log.record(_slate("s3"))
    log.close()
    assert log.pending == 0 and {"s1", "s2", "s3"} <= _stored(runtime)
    assert "s-bad" not in _stored(runtime) and counted == [(WRITER, "row")]


@pytest.mark.postgres
def test_the_writer_waits_out_an_unreachable_store(pg_schema: str, tmp_path: Any) -> None:
    """Through a proxy the test cuts: rows wait (nothing set aside), the writer backs
    off and retries, and stores them once the store is back."""
    with Proxy(("127.0.0.1", 5432)) as proxy:
        url = PG_URL.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        settings = load_settings(
            database_url=url, database_schema=pg_schema, model_dir=tmp_path, model_watch_seconds=0
        )
        rt = Runtime.open(settings, load=False)
        metrics, log = rt.metrics, rt.decisions
        log.record(_slate("before"))
        _wait(lambda: log.pending == 0)
        proxy.cut()
        log.record(_slate("during-1"))
        log.record(_slate("during-2"))
        queued_at = time.time()
        _wait(lambda: _failures(metrics, WRITER, "unreachable") >= 2)
        assert log.pending == 2 and log._thread is not None and log._thread.is_alive()
        assert log.get("during-1") is not None  # still answered from the queue
        # /metrics says so: two pending, nothing stored since before they were queued.
        _wait(lambda: _sample(metrics, "shelfwise_decisions_pending") == 2)
        assert _sample(metrics, "shelfwise_decisions_written_total") == 1
        assert _sample(metrics, "shelfwise_decisions_stored_through_timestamp_seconds") < queued_at
        proxy.restore()
        back = time.time()
        # The drain's own signal, not a guess at how long it takes.
        _wait(
            lambda: _sample(metrics, "shelfwise_decisions_stored_through_timestamp_seconds") > back
        )
        assert log.pending == 0 and {"before", "during-1", "during-2"} <= _stored(rt)
        assert _sample(metrics, "shelfwise_decisions_written_total") == 3
        assert _sample(metrics, "shelfwise_decisions_pending") == 0
        assert _failures(metrics, WRITER, "row") == 0.0 and log.dead_letters.list() == []
        rt.close()


def test_a_refused_slate_stays_queued_when_the_store_goes_while_it_is_set_aside(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Setting a refused row aside needs the store too: gone by then, the row waits
    in the queue with the others (it used to be dropped, kept only in a log line)."""
    log = DecisionLog(runtime.db, flush_seconds=60)
    log.record(_slate("ok-1"))
    log.record(_slate("bad", mode=None))
    log.record(_slate("ok-2"))

    def store_gone(*args: Any) -> None:
        raise sa.exc.OperationalError("INSERT INTO dead_letters", {}, ConnectionError("gone"))

    monkeypatch.setattr(log.dead_letters, "keep", store_gone)
    with pytest.raises(sa.exc.OperationalError):
        log.flush()
    assert log.pending == 2 and log.get("bad") is not None
    monkeypatch.undo()
    assert log.flush() == 1  # ok-2; "bad" set aside this time
    assert log.pending == 0 and {"ok-1", "ok-2"} <= _stored(runtime)
    assert [letter.item_key for letter in log.dead_letters.list()] == ["bad"]
    log.close()


@pytest.mark.postgres
def test_a_row_is_not_set_aside_into_an_unreachable_store(pg_schema: str, tmp_path: Any) -> None:
    with Proxy(("127.0.0.1", 5432)) as proxy:
        url = PG_URL.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        settings = load_settings(
            database_url=url, database_schema=pg_schema, model_dir=tmp_path, model_watch_seconds=0
        )
        rt = Runtime.open(settings, load=False)
        letters = DeadLetters(rt.db, "t")
        proxy.cut()
        with pytest.raises(sa.exc.OperationalError):
            letters.keep("k", {"a": 1}, ValueError("refused"))
        rt.close()


def test_backoff_grows_to_a_ceiling_and_resets() -> None:
    b = Backoff(0.5, most=3.0)
    assert [b.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.next() == 0.5


def _alert(alert_id: str, category: str) -> Alert:
    now = utcnow() - timedelta(hours=24)  # last seen a day ago: quiet long enough to resolve
    return Alert(
        alert_id=alert_id,
        placement="home",
        category=category,
        severity="ticket",
        status="open",
        stage="clicks",
        since=now - timedelta(hours=3),
        opened_at=now,
        updated_at=now,
        resolved_at=None,
        at_risk_per_hour=12.0,
        expected_per_hour=40.0,
        observed_per_hour=28.0,
        burn_rate=3.0,
        p_value=0.001,
        window_hours=6,
        currency="EUR",
        dashboard_path="/dashboard",
        notified_at=None,
    )


def test_the_alert_evaluator_sets_a_refused_alert_aside(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Open alerts with nothing left to alert on (for a day) are resolved at the next round; the one
    the store refuses to save (a NOT NULL column emptied) must not keep the others open."""
    store = AlertStore(runtime.db)
    for alert_id, category in (("a-good", "bedding"), ("a-bad", "poison"), ("b-good", "lamps")):
        store.save(_alert(alert_id, category))
    real = AlertStore.save

    def save(self: AlertStore, alert: Alert) -> None:
        if alert.category == "poison":
            alert = Alert.model_construct(**{**alert.__dict__, "stage": None})
        real(self, alert)

    monkeypatch.setattr(AlertStore, "save", save)
    metrics = runtime.metrics
    scheduler = AlertScheduler(
        runtime.db, runtime.settings, 0.05, on_failure=metrics.background_failure
    )
    scheduler.start()
    try:
        _wait(lambda: scheduler.evaluations >= 1)
        status = {a.alert_id: a.status for a in store.list()}
        assert status == {"a-good": "resolved", "a-bad": "open", "b-good": "resolved"}
        store.save(_alert("c-good", "rugs"))  # a later one is resolved by the same thread
        _wait(lambda: {a.alert_id: a.status for a in store.list()}["c-good"] == "resolved")
        assert scheduler._thread is not None and scheduler._thread.is_alive()
    finally:
        scheduler.stop()
    assert _failures(metrics, EVALUATOR, "row") >= 1.0
    letter = DeadLetters(runtime.db, EVALUATOR).list()[-1]
    assert letter.item_key == "a-bad" and letter.error.startswith("invalid:not_null:stage ")
    assert letter.payload["category"] == "poison"


def test_a_round_that_fails_is_counted_and_retried(sqlite_settings: Settings) -> None:
    rt = Runtime.open(sqlite_settings, load=False)
    calls: list[int] = []

    def flaky() -> Any:
        calls.append(1)
        raise RuntimeError("a bug in one round")

    metrics = rt.metrics
    s = AlertScheduler(
        rt.db, sqlite_settings, 0.02, evaluate=flaky, on_failure=metrics.background_failure
    )
    s.start()
    try:
        _wait(lambda: _failures(metrics, EVALUATOR, "error") >= 2)
        assert s._thread is not None and s._thread.is_alive()
    finally:
        s.stop()
        rt.close()
    assert len(calls) >= 2
