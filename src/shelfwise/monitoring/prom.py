"""Prometheus view of the money series: the last full hour per placement x category.

A custom collector reads the store at scrape time (cached for ``ttl`` seconds,
so several scrapers do not multiply the queries) and reports gauges; each
process builds its own registry, so nothing is global.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from shelfwise.monitoring.alerts import AlertStore
from shelfwise.monitoring.metrics import compute_metrics
from shelfwise.monitoring.series import floor_hour
from shelfwise.store.engine import Database
from shelfwise.store.types import utcnow

LABELS = ["placement", "category"]
log = logging.getLogger("shelfwise.monitoring.prom")


class MoneyCollector(Collector):
    def __init__(
        self, db: Database, currency: str, ttl: float = 30.0, window_hours: float = 24.0
    ) -> None:
        self.db = db
        self.currency = currency
        self.window_hours = window_hours
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, list[GaugeMetricFamily]] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > self.ttl:
                try:
                    fresh = self._families()
                except SQLAlchemyError as e:
                    # Store down: /metrics keeps answering (the serving gauges matter most
                    # now) with the last money series read; tried again after the TTL.
                    log.warning("money metrics unavailable (%s): serving the last read", e)
                    fresh = self._cached[1] if self._cached is not None else []
                self._cached = (time.monotonic(), fresh)
            families = self._cached[1]
        yield from families

    def _families(self) -> list[GaugeMetricFamily]:
        end = floor_hour(utcnow())
        rep = compute_metrics(
            self.db,
            end - timedelta(hours=1),
            end,
            ("placement", "category"),
            window_hours=self.window_hours,
        )
        fams = {
            "impressions": GaugeMetricFamily(
                "shelfwise_rec_impressions_last_hour",
                "Recommended items shown in the last full hour.",
                labels=LABELS,
            ),
            "clicks": GaugeMetricFamily(
                "shelfwise_rec_clicks_last_hour", "Clicks on recommendations.", labels=LABELS
            ),
            "orders": GaugeMetricFamily(
                "shelfwise_rec_orders_last_hour",
                "Orders with a line attributed to recommendations.",
                labels=LABELS,
            ),
            "revenue": GaugeMetricFamily(
                "shelfwise_rec_revenue_last_hour",
                f"Revenue attributed to recommendations ({self.currency}).",
                labels=LABELS,
            ),
        }
        for r in rep.rows:
            for name, fam in fams.items():
                fam.add_metric([r.placement, r.category], float(getattr(r, name)))
        at_risk = GaugeMetricFamily(
            "shelfwise_alert_revenue_at_risk_per_hour",
            f"Revenue at risk per hour of each open alert ({self.currency}).",
            labels=[*LABELS, "severity"],
        )
        open_alerts = AlertStore(self.db).list(status="open", limit=10_000)
        for a in open_alerts:
            at_risk.add_metric([a.placement, a.category, a.severity], a.at_risk_per_hour)
        count = GaugeMetricFamily("shelfwise_alerts_open", "Open cost-weighted alerts.")
        count.add_metric([], float(len(open_alerts)))
        return [*fams.values(), at_risk, count]


def registry_for(db: Database, currency: str, window_hours: float = 24.0) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MoneyCollector(db, currency, window_hours=window_hours))
    return registry
