"""``shelfwise demo``: the whole system on the embedded default (SQLite), in one command.

Starts the server, then — through the public HTTP API, as a store would —
loads a simulated home-goods store and a few weeks of its history, trains and
reloads a model bundle, adds the merchant's rules, starts an A/B test on the
home page, and keeps a live trickle of simulated shoppers (with the mobile
Safari add-to-cart defect) reacting to the slates they are shown. A small
storefront at ``/demo/store`` uses the tracker (``/shelfwise.js``) with a
storefront key.

The demo binds its listening socket before anything else happens, and talks
only to the address it holds: on a busy port it stops with
``error [port_in_use]`` and exit code 3, having sent nothing to whoever holds
the port.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import httpx2 as httpx
import typer
from rich.markup import escape

from shelfwise.cli.common import console, err_console, settings_of
from shelfwise.config import ApiKey, Settings
from shelfwise.errors import InvalidInput, ShelfwiseError

if TYPE_CHECKING:
    from shelfwise.simulate.live import LiveTraffic

# The server, the simulator and training are imported where the demo runs them: every
# other command (and `--help`) loads this module too, and need none of them.

DEMO_KEY = "demo-admin-key"
# The demo storefront's key (/demo/store): public, as every storefront key is.
DEMO_STOREFRONT_KEY = "demo-storefront-key"
CANNOT_LISTEN_EXIT = 3  # the same exit code as `shelfwise serve` when it cannot listen

DEMO_RULES: tuple[dict[str, Any], ...] = (
    {
        "id": "premium-decor-no-parts",
        "type": "pairing",
        "reason": "premium decor pages show no replacement parts or utility items",
        "scope": {"placements": ["product_page"]},
        "context": {"attr": "category", "op": "prefix", "value": "decor/premium"},
        "forbid": {"attr": "tags", "op": "in", "value": ["replacement-part", "utility"]},
    },
    {
        "id": "no-slow-shipping",
        "type": "exclude",
        "reason": "never recommend items that ship in more than 10 days",
        "when": {"attr": "sla_days", "op": "gt", "value": 10},
    },
    {
        "id": "one-per-variant-group",
        "type": "dedupe_variants",
        "reason": "one colour of a product per slate",
    },
)


def _demo_experiment(now: datetime) -> dict[str, Any]:
    return {
        "experiment_id": "home-ranker-vs-popular",
        "name": "Home page: governed ranked slates vs popularity",
        "placement": "home",
        "arms": [
            {"name": "popular", "share": 0.5, "sources": ["popular"], "ranker": False},
            {"name": "ranked", "share": 0.5},
        ],
        "start": (now - timedelta(minutes=1)).isoformat(),
    }


class CannotListen(ShelfwiseError):
    """The demo's address cannot be bound: ``port_in_use``, ``host_unknown`` or ``cannot_listen``."""

    code = "cannot_listen"


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` (port 0: one the system picks), bound
    before the demo sends anything, so that it only ever talks to itself."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn and `serve` do
    try:
        *_, address = socket.getaddrinfo(
            host, port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )[0]
    except socket.gaierror as e:
        raise CannotListen(f"cannot listen on {host!r}: unknown host", code="host_unknown") from e
    try:
        # SO_REUSEADDR (set by create_server) only skips TIME_WAIT; a live listener still wins.
        return socket.create_server(address, family=family)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise CannotListen(
                f"port {port} on {host} is already in use by another process (nothing was "
                f"sent to it); choose another: shelfwise demo --port N, or make demo PORT=N",
                code="port_in_use",
            ) from e
        raise CannotListen(f"cannot listen on {host}:{port}: {e.strerror}") from e


def local_url(sock: socket.socket) -> str:
    """The URL of the server behind ``sock`` (a wildcard address is reached on loopback)."""
    host, port = sock.getsockname()[:2]
    ip = ipaddress.ip_address(host)
    if ip.is_unspecified:
        ip = ipaddress.ip_address("::1" if ip.version == 6 else "127.0.0.1")
    return f"http://[{ip}]:{port}" if ip.version == 6 else f"http://{ip}:{port}"


def _wait_ready(base: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server at {base} did not become ready")


class DemoFlow(threading.Thread):
    """Everything after the server is up, in the order a store would do it."""

    def __init__(
        self, settings: Settings, base: str, key: str, spec_kw: dict[str, Any], rate: float
    ) -> None:
        super().__init__(name="shelfwise-demo", daemon=True)
        self.settings, self.base, self.key = settings, base, key
        self.spec_kw, self.rate = spec_kw, rate
        self.live: LiveTraffic | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # shown to the user; the server keeps serving
            self.error = e
            console.print(f"[bold red]demo setup failed[/]: {e!r}")
        finally:
            self.ready.set()

    def _run(self) -> None:
        from shelfwise.runtime import Runtime
        from shelfwise.simulate.history import simulate
        from shelfwise.simulate.live import demo_spec, ingest_history, start_live_traffic
        from shelfwise.training.job import load_sources_config
        from shelfwise.training.job import train as run_training

        _wait_ready(self.base)
        headers = {"X-API-Key": self.key}
        t0 = time.monotonic()
        with console.status("simulating a home-goods store and its history"):
            sim = simulate(demo_spec(**self.spec_kw))
        with console.status(f"ingesting {len(sim.events):,} events through POST /v1/events"):
            report = ingest_history(sim, self.base, self.key)
        console.print(
            f"ingested {report['products']['sent']:,} products and "
            f"{report['events']['sent']:,} events ({time.monotonic() - t0:.0f} s)"
        )
        with console.status("training the candidate sources and the ranker"):
            runtime = Runtime.open(self.settings, load=True)
            try:
                config = load_sources_config(self.settings.sources_config)
                try:
                    result = run_training(runtime, config=config, force=True, with_ranker=True)
                except InvalidInput as e:  # a tiny store may not have enough history
                    console.print(f"no learned ranker ({e.message}); serving the blend")
                    result = run_training(runtime, config=config, force=True)
            finally:
                runtime.close()
        with httpx.Client(base_url=self.base, headers=headers, timeout=60) as c:
            c.post("/v1/models/reload").raise_for_status()
            for rule in DEMO_RULES:
                r = c.post("/v1/rules", json={**rule, "author": "demo"})
                if r.status_code not in (201, 409):
                    r.raise_for_status()
            r = c.post("/v1/experiments", json=_demo_experiment(datetime.now(UTC)))
            if r.status_code not in (201, 409):
                r.raise_for_status()
        console.print(
            f"model bundle {result.bundle.info.version} trained and loaded; rules and an A/B test on"
        )
        self.live = start_live_traffic(sim, self.base, self.key, sessions_per_second=self.rate)
        self._print_help(sim.world.catalog.records[0]["product_id"])

    def _print_help(self, product: str) -> None:
        b, k = self.base, self.key
        console.print(f"\n[bold green]shelfwise demo is live[/] at {b}")
        console.print(f"  dashboard  {b}/dashboard   (sign in with the key {k})")
        console.print(f"  API docs   {b}/docs")
        console.print(
            f"  a storefront using the tracker ({b}/shelfwise.js): {b}/demo/store "
            f"(storefront key {DEMO_STOREFRONT_KEY})"
        )
        console.print("  a product page slate, explained:")
        console.print(
            f"    curl -H 'X-API-Key: {k}' "
            f"'{b}/v1/recommendations?placement=product_similar&item={product}&explain=true'"
        )
        console.print("  suppress a brand for two weeks, effective on the next request:")
        console.print(
            f"    curl -X POST -H 'X-API-Key: {k}' -H 'Content-Type: application/json' "
            f'{b}/v1/rules -d \'{{"id": "pause-brand", "type": "suppress", '
            f'"reason": "supplier dispute", "attribute": "brand", "values": ["Vireo"], '
            f'"window": {{"start": "<now>", "end": "<now + 14 days>"}}}}\''
        )
        console.print(
            f"  the A/B test     curl -H 'X-API-Key: {k}' {b}/v1/experiments/home-ranker-vs-popular/report"
        )
        console.print("  Ctrl-C stops the demo.\n")


def demo(
    ctx: typer.Context,
    products: Annotated[int, typer.Option(min=50, max=100_000, help="Catalog size.")] = 2_000,
    people: Annotated[int, typer.Option(min=10, help="Shoppers in the simulated history.")] = 1_500,
    days: Annotated[int, typer.Option(min=1, max=365, help="Days of history.")] = 28,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same store).")] = 7,
    host: Annotated[
        str | None, typer.Option(help="Address to serve on (default: SHELFWISE_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65_535,
            help="Port to serve on (default: SHELFWISE_PORT or 8000; 0: any free port).",
        ),
    ] = None,
    rate: Annotated[float, typer.Option(help="Live shopper sessions started per second.")] = 0.5,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
) -> None:
    """Run the whole system on SQLite: a simulated store, trained models, rules, an A/B test, live traffic.

    The port is bound first: if another program holds it the demo sends it
    nothing, reports the error code port_in_use and exits with code 3.
    """
    settings = settings_of(ctx)
    # The demo drives its own server through the API, so it always adds its admin key;
    # its storefront page's key is good from any origin (the demo may be reached by
    # any of the machine's names).
    demo_key = ApiKey(name="demo-admin", secret=DEMO_KEY, roles=("admin",))
    shop_key = ApiKey(
        name="demo-storefront", secret=DEMO_STOREFRONT_KEY, roles=("storefront",), origins=("*",)
    )
    settings = settings.model_copy(update={"api_keys": (*settings.api_keys, demo_key, shop_key)})
    given = {"host": host, "port": port}
    settings = settings.model_copy(update={k: v for k, v in given.items() if v is not None})
    try:
        sock = listen(settings.host, settings.port)
    except CannotListen as e:
        err_console.print(f"[bold red]error[/] {escape(f'[{e.code}] {e.message}')}")
        raise typer.Exit(code=CANNOT_LISTEN_EXIT) from e
    import uvicorn

    from shelfwise.api import create_app
    from shelfwise.api.server import with_alert_schedule

    base = local_url(sock)
    settings = with_alert_schedule(settings.model_copy(update={"port": sock.getsockname()[1]}))
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, demo_store_key=DEMO_STOREFRONT_KEY),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
        )
    )
    flow = DemoFlow(
        settings,
        base,
        DEMO_KEY,
        {"seed": seed, "products": products, "people": people, "days": days},
        rate,
    )
    flow.start()
    if duration is not None:
        threading.Timer(duration, lambda: setattr(server, "should_exit", True)).start()
    console.print(f"starting shelfwise on {base} ({settings.database_url}); setting up the demo…")
    # uvicorn re-raises Ctrl-C after its graceful shutdown; the demo then ends normally.
    with contextlib.suppress(KeyboardInterrupt), sock:
        server.run(sockets=[sock])
    if flow.live is not None:
        flow.live.stop()
    if flow.error is not None:
        raise typer.Exit(code=1)
