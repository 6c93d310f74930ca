"""A regression corpus of hostile input, on SQLite and PostgreSQL.

Every case was found on main by fuzzing or by hand (issue #19): each must be
refused at entry with its exact status and stable code, never a 500 or a 503,
and whatever good data came with it must be stored (rows are counted).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.config import Settings
from shelfwise.dashboard.session import CSRF_FIELD
from shelfwise.store.tables import events, products, quarantine, rules
from tests.conftest import KEYS, headers
from tests.e2e.server import run_cli_session, running_server, settings_env
from tests.e2e.test_api_events import view_event as _view

READ, INGEST, ADMIN, MERCH = (headers(r) for r in ("read", "ingest", "admin", "merchandiser"))
JSON = {"content-type": "application/json"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _count(c: TestClient, table: sa.Table, *where: Any) -> int:
    with c.app.state.runtime.db.engine.connect() as conn:  # type: ignore[attr-defined]
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()
        )


def _error(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def _detail_codes(r: httpx.Response) -> list[str]:
    return [d["code"] for d in r.json()["error"]["details"]]


def _verdicts(r: httpx.Response) -> list[tuple[str, list[str]]]:
    assert r.status_code == 200, r.text
    return [(v["status"], [p["code"] for p in v["problems"]]) for v in r.json()["verdicts"]]


# --- ids ----------------------------------------------------------------------------


def test_a_nul_in_a_request_id_is_refused_at_entry(client: TestClient) -> None:
    for query in ("person=%00", "session=s%00", "item=P%00", "placement=ho%00me"):
        r = client.get(f"/v1/recommendations?placement=home&{query}", headers=READ)
        assert _error(r) == (422, "invalid_request"), query
        assert "string_pattern_mismatch" in _detail_codes(r)
    r = client.post(
        "/v1/recommendations", json={"placement": "home", "person": "\x00"}, headers=READ
    )
    assert _error(r) == (422, "invalid_request")
    # The store and the decision log were never touched: the next request is served.
    assert (
        client.get("/v1/recommendations?placement=home&person=p1", headers=READ).status_code == 200
    )
    for path in ("/v1/products/%00", "/v1/rules/r%00", "/v1/identity/a%00"):
        hdrs = MERCH if "rules" in path else READ
        assert _error(client.get(path, headers=hdrs)) == (422, "invalid_request"), path


def test_a_nul_in_an_event_id_rejects_that_event_only(client: TestClient) -> None:
    batch = [
        _view("good-1"),
        _view("bad\x00"),
        _view("good-2"),
        _view("nul-in-text", browser="a\x00"),
    ]
    r = client.post("/v1/events", json=batch, headers=INGEST)
    assert _verdicts(r) == [
        ("accepted", []),
        ("rejected", ["invalid_format"]),
        ("accepted", []),
        ("rejected", ["invalid_format"]),
    ]
    assert _count(client, events) == 2
    assert _count(client, quarantine) == 2
    listed = client.get("/v1/quarantine", headers=ADMIN).json()
    # What was sent is kept, escaped: a replay cannot turn it into a valid event.
    kept = sorted(json.loads(e["payload"]["unstorable_payload"])["event_id"] for e in listed)
    assert kept == ["bad\x00", "nul-in-text"]
    assert client.post("/v1/quarantine/replay", headers=ADMIN).json()["still_rejected"] == 2
    assert _count(client, events) == 2


def test_a_lone_surrogate_makes_the_body_invalid_json(client: TestClient) -> None:
    # orjson refuses a lone surrogate escape: the batch is not valid JSON, nothing is stored.
    batch = json.dumps([_view("good-1"), _view("\ud800x")])
    r = client.post("/v1/events", content=batch, headers={**INGEST, **JSON})
    assert _error(r) == (422, "invalid_json")
    assert _count(client, events) == 0


def test_product_ids_are_path_segments(client: TestClient) -> None:
    rows = [
        {"product_id": "A/B", "title": "slash"},
        {"product_id": "P\ud800", "title": "lone surrogate"},
        {"product_id": "x" * 129, "title": "too long"},
        {"product_id": "OK-1", "title": "fine"},
    ]
    r = client.put(
        "/v1/products", content=json.dumps({"products": rows}), headers={**MERCH, **JSON}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["inserted"] == 1
    assert [(x["row"], x["product_id"], x["errors"][0]["code"]) for x in body["rejected"]] == [
        (0, "A/B", "string_pattern_mismatch"),
        (1, None, "string_unicode"),
        (2, None, "string_too_long"),
    ]
    assert _count(client, products) == 1
    assert client.get("/v1/products/OK-1", headers=READ).status_code == 200


def test_an_id_of_spaces_is_refused_in_a_path_as_in_a_body(client: TestClient) -> None:
    """The published id pattern says an id holds a character that is not a space."""
    for path in ("/v1/products/%20", "/v1/rules/%E3%80%80", "/v1/experiments/%C2%A0"):
        r = client.get(path, headers=ADMIN)
        assert _error(r) == (422, "invalid_request")
        assert _detail_codes(r) == ["string_pattern_mismatch"]
    r = client.get("/v1/recommendations?placement=%20", headers=READ)
    assert _error(r) == (422, "invalid_request") and _detail_codes(r) == ["string_too_short"]


def test_shopper_ids_may_hold_a_slash(client: TestClient) -> None:
    r = client.post("/v1/events", json=[_view("e/1", anonymous_id="tok/en+==")], headers=INGEST)
    assert _verdicts(r) == [("accepted", [])]
    r = client.get("/v1/identity/tok/en+==", headers=READ)
    assert r.status_code == 200 and r.json()["person_id"]


# --- timestamps -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("occurred_at", "code"),
    [
        ("0001-01-01T00:00:00+01:00", "timestamp_out_of_range"),
        ("1999-12-31T23:59:59Z", "timestamp_out_of_range"),
        ("9999-12-31T23:59:59-01:00", "timestamp_out_of_range"),
        ("20261101", "invalid_timestamp"),
        (1790000000, "invalid_timestamp"),
        (1790000000.5, "invalid_timestamp"),
        (True, "invalid_timestamp"),
        ("2026-11-01", "invalid_timestamp"),
        ("2026-11-01T12:00:00", "naive_timestamp"),
    ],
)
def test_a_bad_timestamp_rejects_its_event_and_keeps_the_good_ones(
    client: TestClient, occurred_at: Any, code: str
) -> None:
    r = client.post(
        "/v1/events",
        json=[_view("good-1"), _view("bad", occurred_at=occurred_at), _view("good-2")],
        headers=INGEST,
    )
    assert _verdicts(r) == [("accepted", []), ("rejected", [code]), ("accepted", [])]
    assert _count(client, events) == 2
    assert _count(client, quarantine, quarantine.c.event_id == "bad") == 1
    # What was stored can be read back and reported on, now and after a restart.
    assert client.get("/v1/signals/report", headers=READ).status_code == 200


def test_key_expiry_is_an_aware_timestamp_in_range(client: TestClient) -> None:
    for expires_at, code in (
        ("2030-01-01T00:00:00", "timezone_aware"),
        ("9999-12-31T23:59:59-01:00", "timestamp_range"),
        (1893456000, "timestamp_format"),
    ):
        body = {"name": "k1", "roles": ["read"], "expires_at": expires_at}
        r = client.post("/v1/keys", json=body, headers=ADMIN)
        assert _error(r) == (422, "invalid_request")
        assert _detail_codes(r) == [code]
    r = client.post("/v1/keys", json={"name": "k/1", "roles": ["read"]}, headers=ADMIN)
    assert _error(r) == (422, "invalid_request")
    body = {"name": "k1", "roles": ["read"], "expires_at": "2099-01-01T00:00:00+02:00"}
    assert client.post("/v1/keys", json=body, headers=ADMIN).status_code == 201
    # The range is the year as written, as the published pattern says (2100 in UTC).
    body = {"name": "k2", "roles": ["read"], "expires_at": "2099-12-31T23:00:00-12:00"}
    assert client.post("/v1/keys", json=body, headers=ADMIN).status_code == 201


def test_monitoring_bounds_are_timestamps(client: TestClient) -> None:
    """Found by the OpenAPI fuzzing: ``start=0.0`` was read as the epoch."""
    for start, end, codes in (
        ("0.0", "1.0", ["timestamp_format", "timestamp_format"]),
        ("2026-11-01T00:00:00", "2026-11-02T00:00:00Z", ["timezone_aware"]),
        ("1999-11-01T00:00:00Z", "2026-11-02T00:00:00Z", ["timestamp_range"]),
    ):
        r = client.get(f"/v1/monitoring/metrics?start={start}&end={end}", headers=READ)
        assert _error(r) == (422, "invalid_request")
        assert _detail_codes(r) == codes
    ok = "start=2026-11-01T00:00:00Z&end=2026-11-02T00:00:00%2B01:00"
    r = client.get(f"/v1/monitoring/metrics?{ok}", headers=READ)
    assert r.status_code == 200, r.text
    assert r.json()["start"].startswith("2026-11-01T00:00:00")


# --- numbers ------------------------------------------------------------------------


@pytest.mark.parametrize("k", ["101", "1000000000", "99999999999999999999999"])
def test_k_over_max_k_is_422_on_get_and_post(client: TestClient, k: str) -> None:
    r = client.get(f"/v1/recommendations?placement=home&k={k}", headers=READ)
    assert _error(r) == (422, "invalid_request")
    assert r.json()["error"]["details"] == [
        {"field": "query.k", "code": "k_too_large", "message": "k is at most 100"}
    ]
    r = client.post("/v1/recommendations", json={"placement": "home", "k": int(k)}, headers=READ)
    assert _error(r) == (422, "invalid_request") and _detail_codes(r) == ["k_too_large"]
    assert client.get("/v1/recommendations?placement=home&k=100", headers=READ).status_code == 200


def test_nan_and_infinity_are_refused_where_numbers_are_expected(client: TestClient) -> None:
    batch = (
        '{"products": [{"product_id": "N1", "title": "t", "attributes": {"x": NaN}},'
        ' {"product_id": "N2", "title": "t", "price": Infinity},'
        ' {"product_id": "N3", "title": "t", "price": 10}]}'
    )
    r = client.put("/v1/products", content=batch, headers={**MERCH, **JSON})
    # Python's json reads NaN and Infinity; they are refused per row.
    assert r.status_code == 200, r.text
    assert [(x["product_id"], x["errors"][0]["code"]) for x in r.json()["rejected"]] == [
        ("N1", "finite_number"),
        ("N2", "finite_number"),
    ]
    assert _count(client, products) == 1
    rule = '{"id": "nan", "type": "exclude", "reason": "r", "when": {"attr": "price", "op": "lt", "value": NaN}}'
    r = client.post("/v1/rules", content=rule, headers={**MERCH, **JSON})
    assert _error(r) == (422, "invalid_request") and _detail_codes(r) == ["finite_number"]
    assert _count(client, rules) == 0
    spec = {
        "experiment_id": "x1",
        "name": "x",
        "arms": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}],
        "start": "2026-01-01T00:00:00Z",
        "operating_cost_per_day": {"home": "INF"},
    }
    text = json.dumps(spec).replace('"INF"', "Infinity")
    r = client.post("/v1/experiments", content=text, headers={**MERCH, **JSON})
    assert _error(r) == (422, "invalid_request") and _detail_codes(r) == ["finite_number"]


def test_booleans_are_not_numbers(client: TestClient) -> None:
    rows = [
        {"product_id": "B1", "title": "t", "price": True},
        {"product_id": "B2", "title": "t", "stock_qty": False},
        {"product_id": "B3", "title": "t", "price": 2.5, "stock_qty": 3},
    ]
    r = client.put("/v1/products", json={"products": rows}, headers=MERCH)
    assert [(x["product_id"], x["errors"][0]["code"]) for x in r.json()["rejected"]] == [
        ("B1", "bool_not_number"),
        ("B2", "bool_not_number"),
    ]
    assert client.get("/v1/products/B3", headers=READ).json()["price"] == 2.5
    assert _error(client.get("/v1/products/B1", headers=READ)) == (404, "product_not_found")
    r = client.post("/v1/events", json=[_view("e1", price=True), _view("e2")], headers=INGEST)
    assert _verdicts(r) == [("rejected", ["wrong_type"]), ("accepted", [])]


def test_numbers_beyond_2_53_are_refused_however_they_are_spelled(client: TestClient) -> None:
    """Found by the OpenAPI fuzzing: 1e300 was taken as an attribute value or a rule's
    comparison value while the same number written out as an integer was refused."""
    rows = [
        {"product_id": "N1", "title": "t", "attributes": {"weight": 1e300}},
        {"product_id": "N2", "title": "t", "attributes": {"weight": 10**300}},
        {"product_id": "N3", "title": "t", "attributes": {"weight": 2.0**53}},
    ]
    r = client.put("/v1/products", json={"products": rows}, headers=MERCH)
    assert [(x["product_id"], x["errors"][0]["code"]) for x in r.json()["rejected"]] == [
        ("N1", "number_too_large"),
        ("N2", "number_too_large"),
    ]
    assert client.get("/v1/products/N3", headers=READ).json()["attributes"] == {"weight": 2.0**53}
    rule = {
        "id": "big",
        "type": "exclude",
        "reason": "fuzz",
        "when": {"attr": "price", "op": "gt", "value": -1e300},
    }
    r = client.post("/v1/rules", json=rule, headers=MERCH)
    assert _error(r) == (422, "invalid_request") and _detail_codes(r) == ["number_too_large"]
    assert _count(client, rules) == 0


# --- sizes ----------------------------------------------------------------------------


def test_a_long_model_version_is_refused(client: TestClient) -> None:
    for version in ("v" * 5000, "../etc", ".hidden"):
        r = client.post("/v1/models/reload", json={"version": version}, headers=ADMIN)
        assert _error(r) == (422, "invalid_request"), version


@pytest.mark.parametrize("path", ["/v1/events", "/v1/rules", "/v1/products", "/v1/experiments"])
def test_deep_json_bodies_are_refused_before_parsing(client: TestClient, path: str) -> None:
    for depth in (40, 900, 5000):
        body = "[" * depth + "]" * depth
        method = client.put if path == "/v1/products" else client.post
        r = method(path, content=body, headers={**ADMIN, **JSON})
        if path == "/v1/events" and depth < 1024:
            # Parsed without recursion; the one "event" is not an object.
            assert _verdicts(r) == [("rejected", ["not_an_object"])]
            continue
        assert _error(r) == (422, "document_too_deep"), (path, depth)
    if path == "/v1/events":
        deep = {"x": json.loads("[" * 900 + "]" * 900)}
        r = client.post(path, json=[_view("good"), _view("deep", **deep)], headers=INGEST)
        assert _verdicts(r) == [("accepted", []), ("rejected", ["unknown_field"])]
        assert _count(client, events) == 1
        return
    predicate = '{"not": ' * 5000 + '{"attr": "price", "op": "lt", "value": 1}' + "}" * 5000
    rule = '{"id": "d", "type": "exclude", "reason": "r", "when": ' + predicate + "}"
    r = client.post("/v1/rules", content=rule, headers={**MERCH, **JSON})
    assert _error(r) == (422, "document_too_deep")
    assert client.get("/health").status_code == 200


def test_the_dashboard_preview_refuses_a_deep_draft(client: TestClient) -> None:
    assert client.post("/dashboard/login", data={"api_key": KEYS["merchandiser"]}).status_code in (
        200,
        303,
    )
    page = client.get("/dashboard/rules").text
    found = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', page)
    assert found, page[-2000:]
    for draft in ("[" * 5000 + "]" * 5000, "{a: " * 5000 + "1" + "}" * 5000, "[" * 40 + "]" * 40):
        r = client.post("/dashboard/rules", data={"draft": draft, CSRF_FIELD: found.group(1)})
        assert r.status_code == 200
        assert "nests deeper than 32 levels" in r.text


def test_a_chunked_body_over_the_limit_is_413_on_the_real_server(settings: Settings) -> None:
    env = settings_env(settings, SHELFWISE_MAX_BODY_BYTES="100000")

    def chunks() -> Iterator[bytes]:
        yield b"["
        for _ in range(12):
            yield b'"' + b"x" * 10_000 + b'",'
        yield b"1]"

    with running_server(env) as base:
        for path, method in (
            ("/v1/events", "POST"),
            ("/v1/products", "PUT"),
            ("/v1/rules", "POST"),
        ):
            r = httpx.request(method, base + path, content=chunks(), headers={**ADMIN, **JSON})
            assert _error(r) == (413, "payload_too_large"), path
        r = httpx.get(f"{base}/v1/recommendations?placement=home&person=%00", headers=READ)
        assert _error(r) == (422, "invalid_request")
        ok = httpx.post(f"{base}/v1/events", json=[_view("after")], headers=INGEST)
        assert ok.json()["accepted"] == 1


# --- the CLI --------------------------------------------------------------------------


def test_the_cli_refuses_hostile_files_and_keeps_the_good_rows(
    settings: Settings, tmp_path: Path
) -> None:
    env = settings_env(settings)
    lines = [
        json.dumps(_view("good-1")),
        json.dumps(_view("bad-1", occurred_at="20261101")),
        json.dumps(_view("bad\x00")),
        "[" * 5000 + "]" * 5000,
        json.dumps(_view("good-2")),
    ]
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        "\n".join(
            [
                json.dumps({"product_id": "A/B", "title": "t"}),
                '{"product_id": "N1", "title": "t", "price": NaN}',
                json.dumps({"product_id": "B1", "title": "t", "price": True}),
                "[" * 5000 + "]" * 5000,
                json.dumps({"product_id": "OK", "title": "t"}),
            ]
        )
        + "\n"
    )
    deep_rules = tmp_path / "rules.yaml"
    deep_rules.write_text("rules: " + "[" * 5000 + "]" * 5000 + "\n")
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "experiment_id": "x1",
                "name": "x",
                "arms": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}],
                "start": "0001-01-01T00:00:00+01:00",
            }
        )
    )
    # One process runs the four commands, each through the CLI's entry point.
    events_out, catalog_out, rules_out, spec_out = run_cli_session(
        [
            ["events", "import", str(jsonl), "--json"],
            ["catalog", "import", str(feed), "--json"],
            ["rules", "apply", str(deep_rules)],
            ["experiments", "create", str(spec)],
        ],
        env,
    )
    assert events_out.returncode == 0, events_out.stderr
    result = json.loads(events_out.stdout)
    assert (result["received"], result["accepted"], result["rejected"]) == (5, 2, 3)

    assert catalog_out.returncode == 0, catalog_out.stderr
    catalog = json.loads(catalog_out.stdout)
    assert (catalog["inserted"], catalog["rejected"]) == (1, 4)

    assert rules_out.returncode == 2 and "[rule_file_invalid]" in rules_out.stderr
    assert "deeper than 32" in rules_out.stderr

    assert spec_out.returncode == 2 and "[spec_invalid]" in spec_out.stderr
    assert "timestamp_range" in spec_out.stderr
