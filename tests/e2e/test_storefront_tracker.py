"""The tracker (/shelfwise.js) in Chromium, on the demo storefront: the events a
shopper's visit makes arrive in the store, attributed to the slate clicked, on a
desktop Chrome and on an iPhone's Safari (WebKit's unload behaviour emulated); the
add-to-cart gap the signal report flags is reproduced with a tracker that waits for
``beforeunload``, and gone with the shipped one."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from shelfwise.config import Settings, hash_key
from shelfwise.contracts.quality import quality_report
from shelfwise.runtime import Runtime
from shelfwise.storefront import tracker
from tests.e2e.browser import chromium
from tests.e2e.storefront_server import (
    CHROME_DESKTOP,
    SAFARI_IOS,
    STOREFRONT_KEY,
    WEBKIT_UNLOAD,
    Storefront,
    storefront_server,
)
from tests.waiting import eventually

# What many trackers do: keep the queue in memory and send it when the page unloads.
UNLOAD_ONLY = {"unloadEvents": ["beforeunload"], "persistQueue": False}


@pytest.fixture
def shop(settings: Settings) -> Iterator[Storefront]:
    with storefront_server(settings) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@contextmanager
def _shop_page(
    browser: Any, user_agent: str, options: dict[str, Any] | None = None, webkit: bool = False
) -> Iterator[Any]:
    """A page of a browser of ``user_agent`` (WebKit's unload behaviour with ``webkit``)
    whose tracker gets ``options``."""
    context = browser.new_context(user_agent=user_agent)
    try:
        if webkit:
            context.add_init_script(WEBKIT_UNLOAD)
        if options is not None:
            context.add_init_script(f"window.shelfwiseOptions = {json.dumps(options)};")
        yield context.new_page()
    finally:
        context.close()


def _visit(page: Any, shop: Storefront, from_slate: bool = True) -> str:
    """One new shopper (the page's storage emptied): home, a product (by its slate, or
    straight), add to cart, the cart, the order. The shopper's anonymous id."""
    shown = "document.body.dataset.slate === 'shown'"
    if page.url.startswith(shop.base):
        page.evaluate("localStorage.clear(); sessionStorage.clear()")
    if from_slate:
        page.goto(shop.home)
        page.wait_for_function(shown)
        page.click("#recs a")
    else:
        page.goto(shop.home + "/product/" + _a_product(shop))
    page.wait_for_selector("#add-to-cart")
    page.wait_for_function(shown)
    page.click("#add-to-cart")
    page.wait_for_selector("#checkout")
    page.wait_for_function(shown)
    page.click("#checkout")
    page.wait_for_selector("#order")
    page.wait_for_function(shown)
    # The order page stays open until its events are out.
    page.evaluate("window.shelfwise.flush()")
    page.wait_for_function("window.shelfwise.pending() === 0")
    return str(page.evaluate("window.shelfwise.anonymousId()"))


def _a_product(shop: Storefront) -> str:
    return "P000001"


def _by_type(found: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for e in found:
        out.setdefault(e["type"], []).append(e)
    return out


def test_a_visit_arrives_attributed_to_the_slate_clicked(browser: Any, shop: Storefront) -> None:
    with _shop_page(browser, CHROME_DESKTOP) as page:
        aid = _visit(page, shop)
    shop.wait_for(
        aid, "page_view", "rec_impression", "rec_click", "product_view", "add_to_cart", "purchase"
    )
    # The cart page's impression leaves in its pagehide beacon, which a loaded server may
    # store after the order page's purchase (9 visits in 30 under two CPU burners, by up
    # to 20 ms): wait for an impression of every page's slate, then read the whole visit.
    pages = {"home", "product_similar", "cart"}

    def every_slate_seen() -> list[dict[str, Any]]:
        got = shop.events(aid)
        seen = {e["placement"] for e in got if e["type"] == "rec_impression"}
        return got if pages <= seen else []

    found = eventually(every_slate_seen, what=f"impressions of {sorted(pages)} from {aid}")
    kinds = _by_type(found)
    home = next(e for e in kinds["rec_impression"] if e["placement"] == "home")
    click = kinds["rec_click"][0]
    assert click["rec_id"] == home["rec_id"]
    assert click["payload"]["position"] == 1
    clicked = click["payload"]["product_id"]
    assert clicked == home["payload"]["items"][0]["product_id"]
    view = kinds["product_view"][0]
    assert (view["payload"]["product_id"], view["rec_id"], view["placement"]) == (
        clicked,
        home["rec_id"],
        "home",
    )
    cart = kinds["add_to_cart"][0]
    assert (cart["payload"]["product_id"], cart["rec_id"]) == (clicked, home["rec_id"])
    order = kinds["purchase"][0]
    assert [(line["product_id"], line.get("rec_id")) for line in order["payload"]["lines"]] == [
        (clicked, home["rec_id"])
    ]
    # One session, one browser, every event once.
    assert {e["session_id"] for e in found} == {found[0]["session_id"]}
    assert {(e["platform"], e["browser"]) for e in found} == {("web", "Chrome")}
    assert len({e["event_id"] for e in found}) == len(found)
    assert {e["placement"] for e in kinds["rec_impression"]} == pages


def test_on_webkit_the_add_to_cart_before_leaving_arrives(browser: Any, shop: Storefront) -> None:
    with _shop_page(browser, SAFARI_IOS, webkit=True) as page:
        aid = _visit(page, shop, from_slate=False)
    found = shop.wait_for(aid, "product_view", "add_to_cart", "purchase")
    assert {(e["platform"], e["browser"]) for e in found} == {("mobile_web", "Safari")}
    assert len(_by_type(found)["add_to_cart"]) == 1


def test_failed_batches_are_sent_again_with_the_same_event_ids(
    browser: Any, shop: Storefront
) -> None:
    context = browser.new_context(user_agent=CHROME_DESKTOP)
    refused: list[list[str]] = []

    def flaky(route: Any) -> None:
        if not refused:  # the first batch: the network fails
            refused.append([e["event_id"] for e in json.loads(route.request.post_data)])
            route.abort()
        else:
            route.continue_()

    try:
        context.route("**/v1/events?*", flaky)
        context.add_init_script("window.shelfwiseOptions = {flushInterval: 200};")
        page = context.new_page()
        page.goto(shop.home)
        page.wait_for_function("document.body.dataset.slate === 'shown'")
        page.wait_for_function("window.shelfwise.pending() === 0", timeout=120_000)
        aid = page.evaluate("window.shelfwise.anonymousId()")
    finally:
        context.close()
    stored = {e["event_id"] for e in shop.wait_for(aid, "page_view", "rec_impression")}
    assert refused
    assert set(refused[0]) <= stored


def test_nothing_is_recorded_before_consent(browser: Any, shop: Storefront) -> None:
    context = browser.new_context(user_agent=CHROME_DESKTOP)
    try:
        context.add_init_script("window.shelfwiseOptions = {consent: false};")
        page = context.new_page()
        page.goto(shop.home)
        page.wait_for_function("document.body.dataset.slate === 'shown'")
        assert page.evaluate("window.shelfwise.pending()") == 0
        kept = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('shelfwise:'))")
        assert kept == []
        page.evaluate("window.shelfwise.setConsent(true); window.shelfwise.page('home')")
        aid = page.evaluate("window.shelfwise.anonymousId()")
        page.wait_for_function("window.shelfwise.pending() === 0")
    finally:
        context.close()
    assert [e["type"] for e in shop.wait_for(aid, "page_view")] == ["page_view"]


def test_the_tracker_is_served_versioned(shop: Storefront) -> None:
    import httpx2 as httpx

    r = httpx.get(shop.base + "/shelfwise.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["x-shelfwise-tracker-version"] == tracker().version
    assert f'export const VERSION = "{tracker().version}"' in r.text
    pinned = httpx.get(f"{shop.base}/shelfwise-{tracker().version}.js")
    assert "immutable" in pinned.headers["cache-control"]
    assert httpx.get(shop.base + "/shelfwise-0.0.0.js").status_code == 404
    again = httpx.get(shop.base + "/shelfwise.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


# The report tests a segment from 30 sessions on (docs/events.md#signal-quality-report);
# here from 12 (a visit is most of a second of the browser's time). A tracker that loses
# every Safari add-to-cart shows 0 of 12 product views followed by a cart against 12 of
# 12 elsewhere (Fisher's p ~ 4e-7). Its purchases without a cart (12 of 12) are weighed
# against the rest, which holds the 40 seeded purchases without a cart: that test needs
# the report's 30 sessions, and is the report's own (tests/integration/test_quality_report.py).
SESSIONS = 12


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_safari_add_to_cart_gap_reproduced_then_fixed(browser: Any, settings: Settings) -> None:
    def flagged(
        shop: Storefront, options: dict[str, Any] | None, *expected: str
    ) -> set[tuple[str, ...]]:
        """The report's flags on the visits' segments, once every visit's ``expected``
        events are stored."""
        ids = []
        with (
            _shop_page(browser, SAFARI_IOS, options, webkit=True) as safari,
            _shop_page(browser, CHROME_DESKTOP, options) as chrome,
        ):
            for _ in range(SESSIONS):
                ids += [_visit(safari, shop, from_slate=False), _visit(chrome, shop, False)]
        for aid in ids:
            shop.wait_for(aid, *expected)
        runtime = Runtime.open(shop.settings, load=False)
        try:
            report = quality_report(runtime.db, min_n=SESSIONS)
        finally:
            runtime.close()
        # Only the visits' segments: the seeded purchases (no user agent) have no carts.
        return {(*f.segment, f.metric) for f in report.flags if f.segment[1] != "unknown"}

    # Not asserted: the order deliveries arrive in. A page's last batch, sent as it
    # navigates away, can reach a loaded server after the next page's first:
    # out_of_order_rate measures that transport, and on a busy machine it can flag one
    # browser's 12 visits or the other's (Chrome's was seen flagged in a full suite).
    def funnel(flags: set[tuple[str, ...]]) -> set[tuple[str, ...]]:
        return {f for f in flags if f[3] != "out_of_order_rate"}

    with storefront_server(settings) as shop:
        gap = flagged(shop, UNLOAD_ONLY, "purchase")
    assert ("mobile_web", "Safari", "-", "view_to_cart") in gap
    assert not {f for f in funnel(gap) if f[1] == "Chrome"}
    fresh = settings.model_copy(
        update={"database_url": settings.database_url.replace(".db", "-fixed.db")}
    )
    with storefront_server(fresh) as shop:
        # Every shopper's add_to_cart arrives, on WebKit too: no funnel flag is left.
        fixed = flagged(shop, None, "product_view", "add_to_cart", "purchase")
        assert funnel(fixed) == set()


SHOP_PAGE = """<!doctype html><html><body><div id="recs"></div><script type="module">
import { init } from "%(base)s/shelfwise.js";
const sw = init({ endpoint: "%(base)s", key: "%(key)s", flushInterval: 100 });
window.shelfwise = sw;
sw.page("home");
sw.renderSlate("home", document.querySelector("#recs")).then(
  () => { document.body.dataset.slate = "shown"; },
  (e) => { document.body.dataset.slate = "failed"; });
</script></body></html>"""


@contextmanager
def _store_site(page: dict[str, str]) -> Iterator[str]:
    """The store's own site on another loopback port (its one page: ``page["html"]``,
    set at will): its origin."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page["html"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_store_on_its_own_origin_uses_the_tracker_across_origins(
    browser: Any, shop: Storefront
) -> None:
    """The store's page on its own origin (another port), the tracker and the API on
    shelfwise's: CORS lets the key naming that origin through, and no other key."""
    import httpx2 as httpx

    from tests.conftest import headers

    def key(origins: list[str]) -> str:
        body = {"name": "shop", "roles": ["storefront"], "origins": origins}
        r = httpx.post(shop.base + "/v1/keys", json=body, headers=headers("admin"))
        return str(r.json()["secret"])

    outcomes = {}
    html = {"html": ""}
    with _store_site(html) as site:
        for name, secret in (("ours", key([site])), ("theirs", key([shop.base]))):
            html["html"] = SHOP_PAGE % {"base": shop.base, "key": secret}
            with _shop_page(browser, CHROME_DESKTOP) as page:
                page.goto(site)
                page.wait_for_function("document.body.dataset.slate !== undefined")
                outcomes[name] = page.evaluate("document.body.dataset.slate")
                if name == "ours":
                    page.wait_for_function("window.shelfwise.pending() === 0")
                    aid = page.evaluate("window.shelfwise.anonymousId()")
    assert outcomes == {"ours": "shown", "theirs": "failed"}
    assert {e["type"] for e in shop.wait_for(aid, "page_view", "rec_impression")} == {
        "page_view",
        "rec_impression",
    }


def _decision_person(shop: Storefront, rec_id: str) -> str | None:
    """The ``person`` a served slate was asked for (from its stored decision)."""
    import httpx2 as httpx

    from tests.conftest import headers

    got: list[Any] = []

    def stored() -> bool:
        r = httpx.get(f"{shop.base}/v1/decisions/{rec_id}", headers=headers("read"))
        got[:] = [r.json()] if r.status_code == 200 else []
        return bool(got)

    eventually(stored, what=f"the decision {rec_id}")
    person: str | None = got[0]["request"].get("person")
    return person


def test_a_signed_in_customer_gets_their_slate_and_then_no_one_else_does(
    browser: Any, shop: Storefront
) -> None:
    """The page of a signed-in customer passes the token its backend minted: the slate
    is theirs and their events carry their id. Signed out (no reset), the browser's
    anonymous id is a customer's: the server refuses it, the tracker shows the
    session's slate instead."""
    runtime = Runtime.open(shop.settings, load=False)
    try:
        token = runtime.customer_tokens().mint(hash_key(STOREFRONT_KEY)[:16], "C-777", 600)
    finally:
        runtime.close()
    with _shop_page(browser, CHROME_DESKTOP, {"customerToken": token}) as page:
        page.goto(shop.home)
        page.wait_for_function("document.body.dataset.slate === 'shown'")
        page.evaluate("window.shelfwise.track('login')")
        page.evaluate("window.shelfwise.flush()")
        page.wait_for_function("window.shelfwise.pending() === 0")
        aid = str(page.evaluate("window.shelfwise.anonymousId()"))
        found = _by_type(shop.wait_for(aid, "page_view", "rec_impression", "login"))
        assert {e["customer_id"] for e in shop.events(aid)} == {"C-777"}
        assert _decision_person(shop, found["rec_impression"][0]["rec_id"]) == "C-777"
        slate = page.evaluate(
            "window.shelfwise.setCustomer(null) || window.shelfwise.recommend('home')"
        )
        assert slate["placement"] == "home"
        assert _decision_person(shop, slate["rec_id"]) is None
        session = page.evaluate("localStorage.getItem('shelfwise:sid')")
        assert page.evaluate("localStorage.getItem('shelfwise:anon')") == session
