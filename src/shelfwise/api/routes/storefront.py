"""The tracker at ``/shelfwise.js`` (public) and the demo's small storefront pages.

``/shelfwise.js`` changes with each release of shelfwise, so it is cached for five
minutes; ``/shelfwise-<version>.js`` never changes and is cached for a year (pin it
in a store's pages to upgrade on purpose). The demo storefront (``/demo/store``) is
mounted only by ``shelfwise demo`` and by tests (:func:`demo_router`): its pages
carry a storefront key for anyone to read, as every store's pages do.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from shelfwise.api.deps import RuntimeDep
from shelfwise.errors import NotFound
from shelfwise.storefront import tracker
from shelfwise.values import PATH_ID_PATTERN

router = APIRouter(tags=["storefront"], include_in_schema=False)

TRACKER_PATH = "/shelfwise.js"
DEMO_STORE = "/demo/store"


def _script(request: Request, max_age: int) -> Response:
    t = tracker()
    headers = {
        "Cache-Control": f"public, max-age={max_age}" + (", immutable" if max_age > 300 else ""),
        "ETag": t.etag,
        "X-Shelfwise-Tracker-Version": t.version,
        "Access-Control-Allow-Origin": "*",  # a module script from another origin is CORS
    }
    if request.headers.get("if-none-match") == t.etag:
        return Response(status_code=304, headers=headers)
    return Response(t.source, media_type="text/javascript; charset=utf-8", headers=headers)


@router.get(TRACKER_PATH)
async def tracker_script(request: Request) -> Response:
    """The storefront tracker, this release's (docs/storefront.md)."""
    return _script(request, 300)


@router.get("/shelfwise-{version}.js")
async def tracker_script_pinned(request: Request, version: str) -> Response:
    """The tracker of one version: only this release's is served."""
    if version != tracker().version:
        raise NotFound(
            f"this server serves tracker {tracker().version}, not {version[:32]!r}",
            code="tracker_version_not_found",
        )
    return _script(request, 365 * 24 * 3600)


_pages = Environment(
    loader=PackageLoader("shelfwise.storefront", "."), autoescape=select_autoescape(["html"])
)
# page -> (title, the placement of its slate, the slate's heading)
_PAGES = {
    "home": ("Home goods", "home", "Picked for you"),
    "product": ("", "product_similar", "Similar items"),
    "cart": ("Your cart", "cart", "Goes well with your cart"),
    "thanks": ("Order placed", "home", "You may also like"),
}


def demo_router(key: str) -> APIRouter:
    """The demo storefront's pages, whose tracker uses the storefront key ``key``."""
    demo = APIRouter(prefix=DEMO_STORE, tags=["storefront"], include_in_schema=False)

    def render(runtime: RuntimeDep, page: str, product_id: str | None = None) -> HTMLResponse:
        title, placement, slate_title = _PAGES[page]
        product = None
        if product_id is not None:
            product = runtime.catalog.get(product_id)
            title = product.title
        html = _pages.get_template("demo.html").render(
            page=page,
            title=title,
            placement=placement,
            slate_title=slate_title,
            product=product,
            key=key,
            base=DEMO_STORE,
            currency=runtime.settings.currency,
            tracker_url=TRACKER_PATH,
        )
        return HTMLResponse(html)

    @demo.get("")
    def home(runtime: RuntimeDep) -> HTMLResponse:
        return render(runtime, "home")

    @demo.get("/product/{product_id}")
    def product(
        runtime: RuntimeDep,
        product_id: Annotated[str, Path(min_length=1, max_length=128, pattern=PATH_ID_PATTERN)],
    ) -> HTMLResponse:
        return render(runtime, "product", product_id)

    @demo.get("/cart")
    def cart(runtime: RuntimeDep) -> HTMLResponse:
        return render(runtime, "cart")

    @demo.get("/thanks")
    def thanks(runtime: RuntimeDep) -> HTMLResponse:
        return render(runtime, "thanks")

    return demo
