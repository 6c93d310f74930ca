"""Prometheus metrics of the serving path.

With several workers, ``shelfwise serve`` sets ``PROMETHEUS_MULTIPROC_DIR``
before the workers start; each worker then writes its samples there and
``/metrics`` aggregates every worker's (prometheus_client's multiprocess mode).
Each :class:`ServingMetrics` has its own registry, so tests can build many.
"""

from __future__ import annotations

import os
from typing import Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 1.0)


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.latency = Histogram(
            "shelfwise_recommendation_seconds",
            "Time to build a slate, by placement (in-process, excluding HTTP).",
            ["placement"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.slates = Counter(
            "shelfwise_slates",
            "Slates served, by placement and mode.",
            ["placement", "mode"],
            registry=r,
        )
        self.fallback = Counter(
            "shelfwise_fallback_slates",
            "Slates that needed a fallback source (fallback share = this / slates).",
            ["placement"],
            registry=r,
        )
        self.rule_drops = Counter(
            "shelfwise_rule_drops",
            "Candidates removed by a rule, by placement and rule.",
            ["placement", "rule"],
            registry=r,
        )
        self.slate_cache = Counter(
            "shelfwise_slate_cache",
            "Slate cache lookups of requests nothing personal shapes, by placement and"
            " result: hit, miss (computed and kept) or bypass (explain=true, or a trace"
            " to keep that the entry lacks: computed fresh).",
            ["placement", "result"],
            registry=r,
        )

        self.http_requests = Counter(
            "shelfwise_http_requests",
            "HTTP answers, by route (its path template; unmatched paths as 'unmatched'),"
            " method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "shelfwise_http_request_seconds",
            "Time to answer an HTTP request inside the app (request received to answer"
            " sent), by route and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._http_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.ingest_verdicts = Counter(
            "shelfwise_ingested_events",
            "Events judged by the API's ingestion, by source (api, segment, snowplow) and"
            " verdict (accepted, duplicate, rejected, ignored).",
            ["source", "verdict"],
            registry=r,
        )

        def gauge(
            name: str, doc: str, mode: Literal["livemax", "livemin", "livesum"] = "livemax"
        ) -> Gauge:
            # livemax / livemin / livesum: the highest / lowest value / the sum of the live workers
            return Gauge(name, doc, registry=r, multiprocess_mode=mode)

        self.snapshot_age = gauge(
            "shelfwise_catalog_snapshot_age_seconds",
            "Seconds since the catalog snapshot last confirmed it is current.",
        )
        self.bundle_age = gauge(
            "shelfwise_model_bundle_age_seconds",
            "Age of the loaded model bundle (-1 = none loaded: degraded mode).",
        )
        self.bundle_loaded = gauge(
            "shelfwise_model_bundle_loaded",
            "1 while a verified model bundle is served (0 = none: degraded mode).",
            "livemin",
        )
        self.bundle_created = gauge(
            "shelfwise_model_bundle_created_timestamp_seconds",
            "Unix time the served model bundle was written, lowest over the workers (0 = a"
            " worker serves none): once it reaches a promoted bundle's, every worker serves it.",
            "livemin",
        )
        self.bundle_refused = gauge(
            "shelfwise_model_bundle_refused",
            "1 while the last bundle asked for (the promoted one at start, by the watch or"
            " a reload) failed verification; the last good bundle, or none, is served.",
        )
        self.bundle_failures = Counter(
            "shelfwise_model_bundle_verification_failures",
            "Bundles refused at load (missing, truncated or altered files, an unknown"
            " version), by code; each bundle and reason counts once per worker.",
            ["code"],
            registry=r,
        )
        self.session_degraded = gauge(
            "shelfwise_session_backend_degraded",
            "1 while Redis is unreachable and sessions fall back to in-process state.",
        )
        self.decisions_dropped = Counter(
            "shelfwise_decisions_dropped",
            "Slates not written to the decision log because its queue was full.",
            registry=r,
        )
        self.decisions_written = Counter(
            "shelfwise_decisions_written",
            "Slates the decision log wrote to the store.",
            registry=r,
        )
        self.decisions_pending = gauge(
            "shelfwise_decisions_pending",
            "Slates queued for the decision log, not written yet (all workers).",
            "livesum",
        )
        self.decisions_stored_through = gauge(
            "shelfwise_decisions_stored_through_timestamp_seconds",
            "Unix time before which every served slate is stored (or set aside in"
            " dead_letters): the last moment the decision log's queue was empty, lowest"
            " over the workers. Behind by the length of an outage until it is drained.",
            "livemin",
        )

        self.background_failures = Counter(
            "shelfwise_background_failures",
            "Failures of a background thread (which goes on), by thread and kind: row (one"
            " item refused and set aside: a row kept in the dead_letters table, a promoted"
            " bundle not loaded), unreachable (a round that found the store down: retried"
            " after a delay), error (a round that failed otherwise: logged, retried).",
            ["thread", "kind"],
            registry=r,
        )

    def http(self, route: str, method: str, status: int, seconds: float) -> None:
        """One HTTP answer: ``route`` is the path template (``/v1/rules/{rule_id}``)."""
        key = (route, method, status)
        children = self._http_children.get(key)
        if children is None:
            children = self._http_children[key] = (
                self.http_requests.labels(route=route, method=method, status=str(status)),
                self.http_latency.labels(route=route, method=method),
            )
        children[0].inc()
        children[1].observe(seconds)

    def ingested(self, source: str, counts: dict[str, int]) -> None:
        for verdict, n in counts.items():
            if verdict != "received" and n:
                self.ingest_verdicts.labels(source=source, verdict=verdict).inc(n)

    def background_failure(self, thread: str, kind: str) -> None:
        self.background_failures.labels(thread=thread, kind=kind).inc()

    def set_session_degraded(self, degraded: bool) -> None:
        self.session_degraded.set(1 if degraded else 0)

    def drop_decisions(self, n: int) -> None:
        self.decisions_dropped.inc(n)

    def decision_progress(self, written: int, pending: int, stored_through: float) -> None:
        """What the decision log's writer did (``DecisionLog.on_progress``)."""
        if written:
            self.decisions_written.inc(written)
        self.decisions_pending.set(pending)
        self.decisions_stored_through.set(stored_through)

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition: every worker's samples in multiprocess mode."""
        if multiprocess_mode():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
