"""The demo storefront on a real HTTP server (uvicorn in a thread), for browser tests.

The server's storefront key names the server's own origin; the store holds a small
catalog and some purchases, so that every placement has a slate to show.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
import uvicorn

from shelfwise.api import create_app
from shelfwise.cli.demo import listen, local_url
from shelfwise.config import ApiKey, Settings
from shelfwise.runtime import Runtime
from shelfwise.simulate import CatalogSpec, generate_catalog
from shelfwise.store.tables import events
from shelfwise.store.types import utcnow
from tests.waiting import eventually

STOREFRONT_KEY = "demo-storefront-key"
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
CHROME_DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)
# What WebKit does to a tracker that waits for the page to unload: iOS Safari does
# not fire beforeunload, nor unload reliably, when a shopper leaves a page.
WEBKIT_UNLOAD = """
(() => {
  const add = EventTarget.prototype.addEventListener;
  EventTarget.prototype.addEventListener = function (type, ...rest) {
    if (type === "beforeunload" || type === "unload") return;
    return add.call(this, type, ...rest);
  };
  for (const name of ["onbeforeunload", "onunload"])
    Object.defineProperty(window, name, { get: () => null, set: () => {} });
})();
"""


@dataclass
class Storefront:
    base: str
    settings: Settings

    @property
    def home(self) -> str:
        return f"{self.base}/demo/store"

    def events(self, anonymous_id: str | None = None) -> list[dict[str, Any]]:
        engine = sa.create_engine(self.settings.database_url)
        query = sa.select(events).order_by(events.c.occurred_at)
        if anonymous_id is not None:
            query = query.where(events.c.anonymous_id == anonymous_id)
        try:
            with engine.connect() as conn:
                if self.settings.database_schema:
                    conn.execute(sa.text(f'SET search_path TO "{self.settings.database_schema}"'))
                return [dict(r._mapping) for r in conn.execute(query)]
        finally:
            engine.dispose()

    def wait_for(self, anonymous_id: str, *types: str) -> list[dict[str, Any]]:
        """The visitor's events once every type in ``types`` is stored."""
        found: list[dict[str, Any]] = []

        def arrived() -> bool:
            found[:] = self.events(anonymous_id)
            return set(types) <= {e["type"] for e in found}

        eventually(arrived, what=f"events {types} of {anonymous_id}")
        return found


def _seed(settings: Settings) -> None:
    runtime = Runtime.open(settings, load=False)
    try:
        products = generate_catalog(CatalogSpec(n_products=60, seed=3))
        runtime.catalog.upsert(products, source="test")
        now = utcnow() - timedelta(hours=1)
        bought = [
            {
                "event_id": f"seed-{i}",
                "type": "purchase",
                "occurred_at": (now + timedelta(seconds=i)).isoformat(),
                "anonymous_id": f"seed-person-{i % 7}",
                "session_id": f"seed-session-{i}",
                "order_id": f"seed-order-{i}",
                "currency": settings.currency,
                "lines": [
                    {"product_id": p.product_id, "quantity": 1, "unit_price": p.price or 1.0}
                    for p in (products[i % 20], products[(i * 7 + 3) % 20])
                ],
                "revenue": round(
                    sum(p.price or 1.0 for p in (products[i % 20], products[(i * 7 + 3) % 20])), 2
                ),
            }
            for i in range(40)
        ]
        report = runtime.ingestor.ingest(bought, "test")
        assert report.counts()["accepted"] == len(bought), report.counts()
    finally:
        runtime.close()


@contextmanager
def storefront_server(settings: Settings) -> Iterator[Storefront]:
    sock = listen("127.0.0.1", 0)
    base = local_url(sock)
    key = ApiKey(
        name="demo-storefront", secret=STOREFRONT_KEY, roles=("storefront",), origins=(base,)
    )
    # Every test shopper comes from 127.0.0.1: no per-address limit in the way.
    update = {"api_keys": (*settings.api_keys, key), "storefront_ip_rate_limit": "100000/minute"}
    s = settings.model_copy(update=update)
    _seed(s)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(s, demo_store_key=STOREFRONT_KEY),
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        eventually(lambda: server.started, what="the storefront server started")
        yield Storefront(base, s)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
