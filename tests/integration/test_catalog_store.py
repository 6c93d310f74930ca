"""Catalog repository contract, run against SQLite and PostgreSQL."""

from __future__ import annotations

import math

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shelfwise.catalog import CatalogSnapshot, Product, ProductPatch
from shelfwise.errors import NotFound
from shelfwise.runtime import Runtime
from shelfwise.store.tables import metadata


def _p(pid: str, **kw: object) -> Product:
    base: dict[str, object] = {
        "product_id": pid,
        "title": f"Item {pid}",
        "price": 10.0,
        "stock_qty": 5,
    }
    base.update(kw)
    return Product.model_validate(base)


def test_migrations_match_the_table_definitions(runtime: Runtime) -> None:
    with runtime.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_upsert_is_idempotent_and_counts_changes(runtime: Runtime) -> None:
    repo = runtime.catalog
    r1 = repo.upsert([_p("a"), _p("b"), _p("c")])
    assert r1.as_dict() == {"inserted": 3, "updated": 0, "unchanged": 0}
    r2 = repo.upsert([_p("a"), _p("b"), _p("c")])
    assert r2.as_dict() == {"inserted": 0, "updated": 0, "unchanged": 3}
    seq = repo.last_change_seq()
    r3 = repo.upsert([_p("a", price=12.5), _p("b"), _p("d")])
    assert r3.as_dict() == {"inserted": 1, "updated": 1, "unchanged": 1}
    assert repo.count() == 4
    assert repo.get("a").price == 12.5
    _, changed = repo.changed_since(seq)
    assert changed == ["a", "d"]
    assert repo.history("a")[0]["changes"] == {"price": [10.0, 12.5]}


def test_patch_keeps_history_and_derives_availability(runtime: Runtime) -> None:
    repo = runtime.catalog
    repo.upsert([_p("a", cost=4.0)])
    created = repo.get("a").created_at
    out = repo.patch("a", ProductPatch(stock_qty=0))
    assert (out.stock_qty, out.availability) == (0, "out_of_stock")
    assert out.created_at == created and out.updated_at >= created
    out = repo.patch("a", ProductPatch(price=5.0))
    assert out.margin_band == "low"  # (5 - 4) / 5 = 0.2
    changes = [h["changes"] for h in repo.history("a")]
    assert changes[0] == {"price": [10.0, 5.0], "margin_band": ["high", "low"]}
    assert changes[1] == {"stock_qty": [5, 0], "availability": ["in_stock", "out_of_stock"]}


def test_patch_with_nulls_clears_without_breaking_derived_fields(runtime: Runtime) -> None:
    repo = runtime.catalog
    repo.upsert([_p("a", cost=4.0, stock_qty=0)])
    assert repo.get("a").availability == "out_of_stock"
    # A null stock means "no longer tracked": the stated availability stays.
    out = repo.patch("a", ProductPatch(stock_qty=None, cost=None))
    assert (out.stock_qty, out.availability, out.cost, out.margin_band) == (
        None,
        "out_of_stock",
        None,
        None,
    )
    out = repo.patch("a", ProductPatch(cost=9.0))
    assert out.margin_band == "low"  # (10 - 9) / 10 = 0.1


def test_batch_patch_with_unknown_id_changes_nothing(runtime: Runtime) -> None:
    repo = runtime.catalog
    repo.upsert([_p("a")])
    with pytest.raises(NotFound) as e:
        repo.patch_many([("a", ProductPatch(stock_qty=1)), ("zz", ProductPatch(stock_qty=1))])
    assert e.value.details == {"missing": ["zz"]}
    assert repo.get("a").stock_qty == 5


def test_snapshot_sees_a_stock_change_on_the_next_read(runtime: Runtime) -> None:
    runtime.catalog.upsert([_p("a"), _p("b", brand="Gleam", category_path="decor/candles")])
    # A second snapshot stands for another worker: it only talks to the store.
    other = CatalogSnapshot(runtime.catalog)
    other.load()
    i = other.index_of("a")
    assert i is not None and other.stock[i] == 5 and other.available[i]
    runtime.catalog.patch("a", ProductPatch(stock_qty=0, price=9.0))
    assert other.refresh() == 1
    assert other.stock[i] == 0 and not other.available[i] and other.price[i] == 9.0
    runtime.catalog.upsert([_p("c", price=3.0)])
    other.refresh()
    j = other.index_of("c")
    assert j == 2 and other.price[j] == 3.0 and len(other) == 3
    b = other.index_of("b")
    assert b is not None
    assert other.brands.values[other.brand[b]] == "Gleam"
    assert other.categories.values[other.category[b]] == "decor/candles"
    assert math.isnan(float(other.column("price").sum())) is False
