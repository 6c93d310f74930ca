"""What a failed store call answers, on SQLite and PostgreSQL: 503 only when the store is
unreachable; a write it refuses is 409 ``conflict`` or 422 ``invalid_value`` with a
stable code and no driver message; the hot path answers as FastAPI's routes do."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.api.errors import failure
from shelfwise.catalog import Product
from shelfwise.config import Settings, load_settings
from shelfwise.runtime import Runtime
from shelfwise.store import Database, connect
from shelfwise.store.failures import classify, unreachable
from shelfwise.store.tables import decisions, products
from shelfwise.store.types import utcnow
from tests.conftest import headers
from tests.e2e.server import free_port


def _raised(action: Callable[[], Any]) -> Exception:
    try:
        action()
    except Exception as e:
        return e
    raise AssertionError("the store accepted it")


def _write(db: Database, stmt: Any) -> Callable[[], None]:
    def run() -> None:
        with db.engine.begin() as conn:
            conn.execute(stmt)

    return run


def _decision(rec_id: str) -> Any:
    return decisions.insert().values(
        rec_id=rec_id, served_at=utcnow(), placement="home", mode="model", request={}, items=[]
    )


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    runtime.catalog.upsert(
        [Product(product_id="P1", title="Lamp", price=10.0, stock_qty=2, availability="preorder")]
    )
    return runtime


def test_a_refused_value_is_422_and_a_clash_409(rt: Runtime) -> None:
    not_null = _raised(_write(rt.db, sa.update(products).values(availability=None)))
    got = classify(not_null)
    assert got is not None
    assert (got.kind, got.constraint, got.column) == ("invalid", "not_null", "availability")
    status, code, _, details = failure(not_null, "rid")
    assert (status, code, details) == (
        422,
        "invalid_value",
        {"constraint": "not_null", "field": "availability"},
    )

    _write(rt.db, _decision("rec-7f3a"))()
    duplicate = _raised(_write(rt.db, _decision("rec-7f3a")))
    got = classify(duplicate)
    assert got is not None and (got.kind, got.constraint) == ("conflict", "unique")
    status, code, message, details = failure(duplicate, "rid")
    assert (status, code, details) == (409, "conflict", {"constraint": "unique"})
    assert "rec-7f3a" not in message and "decisions" not in message


@pytest.mark.postgres
def test_a_value_postgresql_cannot_hold_is_422(pg_schema: str, tmp_path: Path) -> None:
    from tests.conftest import PG_URL

    db = connect(load_settings(database_url=PG_URL, database_schema=pg_schema))
    with db.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (v text)"))
    nul = _raised(_write(db, sa.text("INSERT INTO t VALUES (:v)").bindparams(v="a\x00b")))
    db.dispose()
    assert failure(nul, "rid")[:2] == (422, "invalid_value")


def test_an_unreachable_store_is_the_only_503(settings: Settings, tmp_path: Path) -> None:
    if settings.database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"
    else:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    db = connect(load_settings(database_url=url))
    down = _raised(lambda: db.engine.connect().close())
    db.dispose()
    assert unreachable(down)
    assert failure(down, "rid")[:2] == (503, "database_unavailable")
    # A bad statement is a bug, not an outage: 500, and nothing of it in the answer.
    db = connect(settings)
    bug = _raised(_write(db, sa.text("SELECT * FROM no_such_table")))
    db.dispose()
    assert not unreachable(bug)
    status, code, message, _ = failure(bug, "rid")
    assert (status, code) == (500, "internal_error") and "no_such_table" not in message


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt.settings, rt), raise_server_exceptions=False) as c:
        yield c


def test_http_answers_for_refused_writes(
    client: TestClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reported case: ``availability: null`` was a 503 "retry later"."""
    r = client.patch("/v1/products/P1", json={"availability": None}, headers=headers("admin"))
    assert r.status_code == 422, r.text
    # h-validate's model check or the store's refusal: either way a 4xx the client can act on
    assert r.json()["error"]["code"] in ("invalid_value", "invalid_request")

    # A refusal the store makes, raised inside a route and inside the hot path.
    _write(rt.db, _decision("twice"))()
    duplicate = _raised(_write(rt.db, _decision("twice")))

    def refuse(*_: Any, **__: Any) -> Any:
        raise duplicate

    monkeypatch.setattr(rt.catalog, "patch_many", refuse)
    r = client.patch("/v1/products/P1", json={"stock_qty": 1}, headers=headers("admin"))
    body = r.json()["error"]
    assert (r.status_code, body["code"], body["details"]) == (
        409,
        "conflict",
        {"constraint": "unique"},
    )
    assert body["request_id"] == r.headers["x-request-id"]
    monkeypatch.setattr(rt.recommender, "recommend_json", refuse)
    r = client.get("/v1/recommendations?placement=home", headers=headers("read"))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "conflict")
