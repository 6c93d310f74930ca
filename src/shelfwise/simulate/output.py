"""Where a simulation goes: files (catalog CSV + JSONL, events JSONL, timed
catalog changes, ground truth JSON) or a running server through its public
HTTP API (PUT /v1/products, POST /v1/events, PATCH /v1/products)."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
import orjson

from shelfwise.simulate.sessions import Event, iso

if TYPE_CHECKING:
    from shelfwise.simulate.history import Simulation

CSV_FIELDS = (
    "product_id",
    "parent_id",
    "title",
    "description",
    "category_path",
    "brand",
    "price",
    "currency",
    "cost",
    "stock_qty",
    "shipping_sla_days",
    "tags",
    "season_tags",
    "attr_colour",
    "image_url",
)
FILES = (
    "catalog.csv",
    "catalog.jsonl",
    "events.jsonl",
    "catalog_changes.jsonl",
    "ground_truth.json",
)


def catalog_changes(sim: Simulation) -> list[dict[str, Any]]:
    """Stock changes during the history (the supplier stock-out), as timed patches."""
    w = sim.world
    stockout = w.spec.defects.supplier_stockout
    if stockout.brand is None:
        return []
    b = w.catalog.brands.index(stockout.brand)
    at = iso(w.start_ms + stockout.from_day * 86_400_000)
    return [
        {"at": at, "product_id": pid, "stock_qty": 0}
        for pid, pb in zip(w.ids, w.catalog.brand, strict=True)
        if pb == b
    ]


def final_records(sim: Simulation) -> list[dict[str, Any]]:
    """The catalog as it stands at the end of the history (stock-outs applied)."""
    gone = {c["product_id"] for c in catalog_changes(sim)}
    return [
        {**r, "stock_qty": 0} if r["product_id"] in gone else r for r in sim.world.catalog.records
    ]


def _jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with path.open("wb") as fh:
        for row in rows:
            fh.write(orjson.dumps(row))
            fh.write(b"\n")


def write_files(sim: Simulation, out: Path) -> dict[str, Path]:
    """Write the five files into ``out``; the same simulation writes the same bytes."""
    out.mkdir(parents=True, exist_ok=True)
    records = final_records(sim)
    _jsonl(out / "catalog.jsonl", records)
    with (out / "catalog.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for r in records:
            row = {k: v for k, v in r.items() if k in CSV_FIELDS}
            row["tags"] = "|".join(r["tags"])
            row["season_tags"] = "|".join(r["season_tags"])
            row["attr_colour"] = r["attributes"]["colour"]
            writer.writerow(row)
    _jsonl(out / "events.jsonl", sim.events)
    _jsonl(out / "catalog_changes.jsonl", catalog_changes(sim))
    (out / "ground_truth.json").write_text(
        json.dumps(sim.ground_truth(), indent=2, sort_keys=True) + "\n"
    )
    return {name: out / name for name in FILES}


def batches(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


@dataclass
class PostReport:
    """What the server answered, summed over batches."""

    batches: int = 0
    sent: int = 0
    failed_batches: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # HTTP status or error -> batches

    def fail(self, why: str) -> None:
        self.failed_batches += 1
        self.failures[why] = self.failures.get(why, 0) + 1

    def add(self, body: Any) -> None:
        if isinstance(body, dict):
            for key in ("accepted", "duplicate", "rejected", "inserted", "updated", "unchanged"):
                value = body.get(key)
                n = len(value) if isinstance(value, list) else value
                if isinstance(n, int):
                    self.verdicts[key] = self.verdicts.get(key, 0) + n

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "sent": self.sent,
            "failed_batches": self.failed_batches,
            **({"failures": dict(self.failures)} if self.failures else {}),
            **self.verdicts,
        }


# Answers that say "the same call succeeds later": over a rate limit, a store or a
# proxy briefly unavailable (the API's 503 means nothing was written).
RETRIED = frozenset({429, 502, 503, 504})


class HttpWriter:
    """Posts a store to a server through the public API, in batches.

    A batch the server could not take for now (a connection or read error, 429,
    502, 503, 504) is sent again, up to ``retries`` times, after the answer's
    ``Retry-After`` or 0.5, 1, 2 ... s: every call is idempotent (products are
    upserted, events de-duplicated by ``event_id``, stock set), so a batch the
    server did take before its answer was lost changes nothing the second time.
    A batch still refused then counts as failed, with its last reason."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        batch_size: int = 500,
        client: httpx2.Client | None = None,
        timeout: float = 30.0,
        events_key: str | None = "events",
        retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``events_key``: events are posted as ``{events_key: [...]}``, or as a
        bare JSON list when it is None."""
        self.url = url.rstrip("/")
        self.events_key = events_key
        self.batch_size = batch_size
        self.retries = retries
        self._sleep = sleep
        self._own = client is None
        self._client = client or httpx2.Client(timeout=timeout)
        self._headers = {"X-API-Key": api_key}

    def close(self) -> None:
        if self._own:
            self._client.close()

    def _send(
        self, method: str, path: str, key: str | None, rows: Sequence[Any], report: PostReport
    ) -> PostReport:
        for chunk in batches(rows, self.batch_size):
            report.batches += 1
            report.sent += len(chunk)
            body = list(chunk) if key is None else {key: list(chunk)}
            got = self._request(method, f"{self.url}{path}", body)
            if isinstance(got, str):
                report.fail(got)
            else:
                report.add(got)
        return report

    def _request(self, method: str, url: str, body: Any) -> Any:
        """The answer's JSON body, or why the batch failed (an HTTP status or an
        error's name), after the retries a passing refusal earns."""
        for attempt in range(self.retries + 1):
            wait = 0.5 * 2**attempt
            try:
                r = self._client.request(method, url, json=body, headers=self._headers)
            except httpx2.TransportError as e:
                why = type(e).__name__
            except httpx2.HTTPError as e:
                return type(e).__name__
            else:
                if r.status_code < 300:
                    return r.json()
                why = str(r.status_code)
                if r.status_code not in RETRIED:
                    return why
                after = r.headers.get("Retry-After", "")
                wait = min(float(after), 30.0) if after.isdigit() else wait
            if attempt < self.retries:
                self._sleep(wait)
        return why

    def put_products(self, records: Sequence[dict[str, Any]]) -> PostReport:
        """Catalog records (the feed form) in batches of ``PUT /v1/products``."""
        return self._send("PUT", "/v1/products", "products", records, PostReport())

    def post_events(self, events: Sequence[Event]) -> PostReport:
        return self._send("POST", "/v1/events", self.events_key, events, PostReport())

    def patch_stock(self, changes: Sequence[dict[str, Any]]) -> PostReport:
        rows = [{"product_id": c["product_id"], "stock_qty": c["stock_qty"]} for c in changes]
        return self._send("PATCH", "/v1/products", "changes", rows, PostReport())

    def write(self, sim: Simulation) -> dict[str, dict[str, Any]]:
        """Catalog first (as it stood at the start), then the events, then the stock changes."""
        return {
            "products": self.put_products(sim.world.catalog.records).as_dict(),
            "events": self.post_events(sim.events).as_dict(),
            "stock_changes": self.patch_stock(catalog_changes(sim)).as_dict(),
        }
