"""``/docs`` (Swagger UI) and ``/redoc`` served from the installed package, no CDN.

FastAPI's own pages load Swagger UI and ReDoc from a CDN (and ReDoc's fonts from
Google), so behind a firewall or offline they are blank. The assets here come
from ``fastapi-offline``, a maintained MIT package that ships the Swagger UI
(5.x, which reads OpenAPI 3.1) and ReDoc bundles as package data; it is a runtime
dependency, so a plain ``pip install shelfwise`` serves both pages. Only its
static folder is used: the pages themselves are FastAPI's, pointed at it, and sent
with a Content-Security-Policy that lets the browser load nothing from elsewhere.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

ASSETS = "/docs/assets"
# Nothing but the server itself: ReDoc's sidebar shows a logo from its vendor's CDN,
# which the browser is told not to fetch (the page hides a logo that does not load).
# The pages' own inline start-up script and styles, ReDoc's blob: worker and inline
# images are all they need besides.
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'"
)
DOCS = "/docs"
REDOC = "/redoc"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def asset_folder() -> Path:
    folder = Path(str(files("fastapi_offline") / "static"))
    if not (folder / "swagger-ui-bundle.js").is_file():  # a release that moved its assets
        raise RuntimeError(f"fastapi-offline ships no Swagger UI bundle in {folder}")
    return folder


def _own_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CSP
    return page


def install(app: FastAPI) -> None:
    """Serve the two documentation pages and their assets (the app is built with
    ``docs_url=None, redoc_url=None``)."""
    app.mount(ASSETS, StaticFiles(directory=asset_folder()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", ""))

    @app.get(DOCS, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        return _own_only(
            get_swagger_ui_html(
                openapi_url=f"{base}{openapi_url}",
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{base}{ASSETS}/swagger-ui-bundle.js",
                swagger_css_url=f"{base}{ASSETS}/swagger-ui.css",
                swagger_favicon_url=f"{base}{ASSETS}/favicon.png",
                oauth2_redirect_url=f"{base}{OAUTH2_REDIRECT}",
                swagger_ui_parameters={"persistAuthorization": True},
            )
        )

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return _own_only(
            get_redoc_html(
                openapi_url=f"{base}{openapi_url}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{base}{ASSETS}/redoc.standalone.js",
                redoc_favicon_url=f"{base}{ASSETS}/favicon.png",
                with_google_fonts=False,
            )
        )
