"""The signal-quality report names a broken segment and leaves healthy ones alone."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from shelfwise.catalog import Product
from shelfwise.contracts.quality import quality_report
from shelfwise.runtime import Runtime
from shelfwise.store.types import utcnow

SEGMENTS = [
    ("web", "Chrome", None),
    ("web", "Firefox", None),
    ("mobile_web", "Safari", None),
    ("mobile_web", "Chrome", None),
    ("ios_app", None, "3.2.0"),
]


def _shop(seed: int = 7, sessions: int = 300, broken: bool = True) -> list[dict[str, Any]]:
    """Each session views; 35% add to cart; half of those buy. Mobile Safari loses the
    add_to_cart event in 40% of the sessions that had one (a tracking bug)."""
    rng = random.Random(seed)
    start = utcnow() - timedelta(minutes=30)
    out: list[dict[str, Any]] = []
    for platform, browser, version in SEGMENTS:
        for n in range(sessions):
            sid = f"{platform}-{browser}-{n}"
            common = {
                "anonymous_id": f"a-{sid}",
                "session_id": sid,
                "platform": platform,
                "browser": browser,
                "app_version": version,
            }
            common = {k: v for k, v in common.items() if v is not None}
            pid = f"P{rng.randrange(20)}"
            at = start + timedelta(seconds=n)
            out.append(
                {
                    "type": "product_view",
                    "event_id": f"v-{sid}",
                    "product_id": pid,
                    "occurred_at": at.isoformat(),
                    **common,
                }
            )
            if rng.random() >= 0.35:
                continue
            lost = broken and (platform, browser) == ("mobile_web", "Safari") and rng.random() < 0.4
            if not lost:
                out.append(
                    {
                        "type": "add_to_cart",
                        "event_id": f"c-{sid}",
                        "product_id": pid,
                        "occurred_at": (at + timedelta(seconds=1)).isoformat(),
                        **common,
                    }
                )
            if rng.random() < 0.5:
                out.append(
                    {
                        "type": "purchase",
                        "event_id": f"p-{sid}",
                        "order_id": f"o-{sid}",
                        "currency": "EUR",
                        "revenue": 20.0,
                        "lines": [{"product_id": pid, "quantity": 1, "unit_price": 20.0}],
                        "occurred_at": (at + timedelta(seconds=2)).isoformat(),
                        **common,
                    }
                )
    return out


def test_missing_add_to_cart_on_mobile_safari_is_named(runtime: Runtime) -> None:
    runtime.catalog.upsert([Product(product_id=f"P{i}", title=f"Item {i}") for i in range(20)])
    events = _shop()
    assert runtime.ingestor.ingest(events).counts()["rejected"] == 0
    report = quality_report(runtime.db)
    flagged = {(f.segment, f.metric) for f in report.flags}
    assert flagged == {
        (("mobile_web", "Safari", "-"), "purchase_without_cart"),
        (("mobile_web", "Safari", "-"), "view_to_cart"),
    }
    without_cart = next(f for f in report.flags if f.metric == "purchase_without_cart")
    safari = next(s for s in report.segments if s.segment == ("mobile_web", "Safari", "-"))
    assert without_cart.revenue_at_stake == 20.0 * safari.counts["purchases_without_cart"] > 0
    assert without_cart.rest_rate == 0.0
    assert report.totals["events"] == len(events)
    assert report.totals["lines"] == report.totals["joined_lines"]
    as_json = report.as_dict()
    assert as_json["flags"][0]["segment"] == "mobile_web / Safari / -"


def test_healthy_shop_flags_nothing(runtime: Runtime) -> None:
    runtime.ingestor.ingest(_shop(seed=11, broken=False))
    assert quality_report(runtime.db).flags == []


def test_out_of_order_events_are_counted(runtime: Runtime) -> None:
    start = utcnow() - timedelta(minutes=10)

    def view(eid: str, seconds: int) -> dict[str, Any]:
        return {
            "type": "product_view",
            "event_id": eid,
            "anonymous_id": "a",
            "session_id": "s",
            "product_id": "P1",
            "occurred_at": (start + timedelta(seconds=seconds)).isoformat(),
        }

    runtime.ingestor.ingest([view("1", 10), view("2", 20)])
    runtime.ingestor.ingest([view("3", 5), view("4", 30)])  # "3" happened before "2" arrived
    seg = quality_report(runtime.db).segments[0]
    assert (seg.counts["out_of_order"], seg.counts["events"]) == (1, 4)
