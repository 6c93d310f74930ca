"""REES46 and DIGINETICA load through the ingestion path (real files, SQLite)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shelfwise.config import Settings
from shelfwise.importers import load_source
from shelfwise.importers.registry import read_dataset
from shelfwise.runtime import Runtime
from shelfwise.store.tables import events
from tests.datasets import shared_data

DATA = shared_data()


def _types(rt: Runtime) -> dict[str, int]:
    with rt.db.engine.connect() as conn:
        rows = conn.execute(select(events.c.type, func.count()).group_by(events.c.type)).all()
    return {str(t): int(n) for t, n in rows}


def test_rees46_sample(sqlite_settings: Settings) -> None:
    rt = Runtime.open(sqlite_settings, load=False)
    try:
        report = load_source(read_dataset("rees46", None, DATA), rt.catalog, rt.ingestor)
        assert report.rows == 17_434
        assert report.events == {
            "received": 17_434,
            "accepted": 17_434,
            "duplicate": 0,
            "rejected": 0,
        }
        assert report.products["inserted"] == 6_493
        assert _types(rt) == {"product_view": 17_055, "add_to_cart": 165, "purchase": 214}
    finally:
        rt.close()


@pytest.mark.slow
def test_diginetica(sqlite_settings: Settings) -> None:
    rt = Runtime.open(sqlite_settings, load=False)
    try:
        report = load_source(read_dataset("diginetica", None, DATA), rt.catalog, rt.ingestor)
        assert report.rows == 12_391 + 18_025
        assert (
            report.events["rejected"] == 0
            and report.events["accepted"] == report.events["received"]
        )
        types = _types(rt)
        assert types["product_view"] == 12_391
        assert types["purchase"] == report.events["received"] - 12_391
    finally:
        rt.close()
