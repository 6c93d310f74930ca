"""Identity stitching through the ingestion path (SQLite + PostgreSQL)."""

from __future__ import annotations

from typing import Any

from shelfwise.runtime import Runtime

T = "2026-11-01T12:00:00Z"


def _ev(eid: str, type_: str = "page_view", **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"type": type_, "event_id": eid, "occurred_at": T}
    if type_ == "page_view":
        base["page_type"] = "home"
    return {**base, **kw}


def test_two_devices_two_logins_one_person(runtime: Runtime) -> None:
    ingest = runtime.ingestor.ingest
    report = ingest(
        [
            _ev("1", anonymous_id="a1", device_id="phone", session_id="s1"),
            _ev("2", anonymous_id="a1b", session_id="s1"),
            _ev("3", "login", anonymous_id="a1", customer_id="c1", session_id="s1"),
            _ev("4", anonymous_id="a2", device_id="laptop", session_id="s2"),
        ]
    )
    assert report.counts()["accepted"] == 4
    ingest([_ev("5", "login", anonymous_id="a2", customer_id="c1", session_id="s2")])
    g = runtime.identity
    assert {g.resolve(x) for x in ("a1", "a1b", "a2", "phone", "laptop", "c1")} == {"customer:c1"}
    assert g.profile("c1") == [
        "anonymous:a1",
        "anonymous:a1b",
        "anonymous:a2",
        "customer:c1",
        "device:laptop",
        "device:phone",
    ]
    assert g.resolve("stranger") == "customer:stranger"  # unknown ids resolve to themselves


def test_placeholders_never_link(runtime: Runtime) -> None:
    runtime.ingestor.ingest(
        [
            _ev("1", "login", anonymous_id="undefined", customer_id="c1", session_id="s1"),
            _ev("2", "login", anonymous_id="a2", customer_id="0", device_id="null"),
            _ev("3", "login", anonymous_id="anonymous", customer_id="c3", device_id=" "),
        ]
    )
    assert runtime.identity.count() == 0
    assert runtime.identity.resolve("a2", kind="anonymous") == "anonymous:a2"


def test_size_cap_raises_a_finding_and_unmerge_restores(runtime: Runtime) -> None:
    g = runtime.identity
    g.max_ids = 3
    runtime.ingestor.ingest(
        [
            _ev("1", anonymous_id="a1", device_id="kiosk"),
            _ev("2", anonymous_id="a2", device_id="kiosk"),
            _ev("3", anonymous_id="a3", device_id="kiosk"),
        ]
    )
    assert g.profile("kiosk") == ["anonymous:a1", "anonymous:a2", "device:kiosk"]
    assert [(f["kind"], f["a"], f["b"], f["size"]) for f in g.findings()] == [
        ("profile_too_large", "anonymous:a3", "device:kiosk", 4)
    ]
    before = g.resolve("a1")
    g.max_ids = 10
    runtime.ingestor.ingest([_ev("4", "login", anonymous_id="a1", customer_id="c9")])
    assert g.resolve("a1") == "customer:c9"
    newest = g.merges(limit=1)[0]
    assert (newest["a"], newest["b"]) == ("anonymous:a1", "customer:c9")
    g.unmerge(int(newest["id"]))  # type: ignore[call-overload]
    assert g.resolve("a1") == before == "anonymous:a1"
    assert g.resolve("c9") == "customer:c9"
    # an undone merge is not re-created by the same evidence
    runtime.ingestor.ingest([_ev("5", "login", anonymous_id="a1", customer_id="c9")])
    assert g.resolve("a1") == "anonymous:a1"
