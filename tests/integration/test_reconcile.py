"""Product-id reconciliation: misses classified, aliases applied, join rate by segment."""

from __future__ import annotations

from typing import Any

import pytest

from shelfwise.catalog import Product
from shelfwise.contracts.reconcile import canonical, reconcile
from shelfwise.runtime import Runtime
from shelfwise.simulate.defects import format_product_id

T = "2026-11-01T12:00:00Z"


def _view(eid: str, pid: str, platform: str = "web") -> dict[str, Any]:
    return {
        "type": "product_view",
        "event_id": eid,
        "occurred_at": T,
        "anonymous_id": "a",
        "product_id": pid,
        "platform": platform,
    }


def test_misses_are_classified_and_aliases_fix_them(runtime: Runtime) -> None:
    runtime.catalog.upsert(
        [
            Product(product_id="123A", title="Lamp"),
            Product(product_id="OLD", title="Gone", active=False),
        ]
    )
    runtime.ingestor.ingest(
        [
            _view("1", "123A"),
            _view("2", "00123a"),
            _view("3", "123A-XL", "ios_app"),
            _view("4", "OLD"),
            _view("5", "ZZZ", "ios_app"),
            _view("6", "123A", "ios_app"),
        ]
    )
    rep = reconcile(runtime.db, runtime.catalog, runtime.aliases)
    assert (rep.lines, rep.joined) == (6, 2)
    assert rep.misses == {"formatting": 1, "variant": 1, "retired": 1, "unknown": 1}
    assert [(s.event_type, s.platform, s.lines, s.joined) for s in rep.segments] == [
        ("product_view", "ios_app", 3, 1),
        ("product_view", "web", 3, 1),
    ]
    assert rep.fixes == [("00123a", "123A", "formatting"), ("123A-XL", "123A", "variant")]
    runtime.aliases.add_many(rep.fixes)
    after = reconcile(runtime.db, runtime.catalog, runtime.aliases)
    assert (after.joined, after.misses) == (4, {"alias": 2, "retired": 1, "unknown": 1})
    assert runtime.known_product("123A-XL") and not runtime.known_product("ZZZ")


@pytest.mark.parametrize("style", ["lower", "whitespace", "strip_zeros"])
def test_every_way_the_simulator_misformats_an_id_is_formatting(style: str) -> None:
    written = format_product_id("P000120", style)
    assert written != "P000120"
    assert canonical(written) == canonical("P000120") == "P120"
    # Zeros inside a number are kept; only the padding of a run of digits goes.
    assert canonical("00123a") == canonical("123A") != canonical("1023A")
    assert canonical("P0") == "P0" != canonical("P")
