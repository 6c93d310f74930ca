"""/metrics counts HTTP answers per route template, method and status (the hot path
too), times them, and counts ingestion verdicts per source."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from shelfwise.api import create_app
from shelfwise.config import Settings
from tests.conftest import headers

GOOD = {
    "event_id": "m-1",
    "type": "page_view",
    "occurred_at": "2026-11-01T12:00:00Z",
    "anonymous_id": "a-1",
    "page_type": "home",
}


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_answers_and_verdicts_are_counted(settings: Settings) -> None:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        for _ in range(2):
            assert (
                c.get("/v1/recommendations?placement=home", headers=headers("read")).status_code
                == 200
            )
        assert (
            c.get("/v1/recommendations?placement=nowhere", headers=headers("read")).status_code
            == 404
        )
        assert c.get("/v1/rules/no-such-rule", headers=headers("merchandiser")).status_code == 404
        assert c.get("/no/such/page").status_code == 404
        r = c.post(
            "/v1/events",
            json=[GOOD, {**GOOD, "event_id": "m-2", "type": "nope"}],
            headers=headers("ingest"),
        )
        assert r.json()["accepted"] == 1
        segment = {
            "type": "track",
            "event": "Something Else",
            "anonymousId": "a",
            "messageId": "s-1",
            "timestamp": "2026-11-01T12:00:00Z",
        }
        assert (
            c.post("/v1/events/segment", json=segment, headers=headers("ingest")).status_code == 200
        )
        got = _samples(c.get("/metrics", headers=headers("read")).text)

    def count(route: str, method: str, status: int) -> float:
        labels = frozenset({"route": route, "method": method, "status": str(status)}.items())
        return got.get(("shelfwise_http_requests_total", labels), 0.0)

    assert count("/v1/recommendations", "GET", 200) == 2
    assert count("/v1/recommendations", "GET", 404) == 1
    assert count("/v1/rules/{rule_id}", "GET", 404) == 1
    assert count("unmatched", "GET", 404) == 1
    assert count("/v1/events", "POST", 200) == 1
    timed = frozenset({"route": "/v1/recommendations", "method": "GET"}.items())
    assert got[("shelfwise_http_request_seconds_count", timed)] == 3
    assert got[("shelfwise_http_request_seconds_sum", timed)] > 0

    def verdicts(source: str, verdict: str) -> float:
        labels = frozenset({"source": source, "verdict": verdict}.items())
        return got.get(("shelfwise_ingested_events_total", labels), 0.0)

    assert (verdicts("api", "accepted"), verdicts("api", "rejected")) == (1, 1)
    assert verdicts("segment", "ignored") == 1
