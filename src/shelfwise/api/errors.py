"""The one place where errors become HTTP answers: ``{"error": {code, message, request_id}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shelfwise.errors import RateLimited, ShelfwiseError, validation_details
from shelfwise.store.failures import STORE_ERRORS, classify

log = logging.getLogger("shelfwise.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    503: "service_unavailable",
}


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str | None = None
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorBody


def error_document(
    code: str, message: str, request_id: str | None, details: Any = None
) -> dict[str, Any]:
    """``{"error": {code, message, request_id[, details]}}``: every error answer's body."""
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if details is not None:
        body["details"] = details
    return {"error": body}


_REFUSED = {
    "conflict": (
        409,
        "conflict",
        "the change conflicts with what is stored (a duplicate or a missing reference); "
        "nothing was written",
    ),
    "invalid": (
        422,
        "invalid_value",
        "the store refused a value of this request; nothing was written",
    ),
}


def failure(exc: Exception, request_id: str | None) -> tuple[int, str, str, Any]:
    """A request's exception as (status, code, message, details), logged as it deserves.

    503 only when a store is unreachable (the same call succeeds later); a write the
    store refused is 409 ``conflict`` or 422 ``invalid_value`` (the same call fails
    again); any other store error is a bug: 500. Never leaks ``str(exc)`` of an
    unexpected error: the log has the stack, the client gets the request id."""
    if isinstance(exc, ShelfwiseError):
        if exc.http_status >= 500:
            log.error("request %s failed: %s (%s)", request_id, exc.code, exc.message)
        return exc.http_status, exc.code, exc.message, exc.details
    got = classify(exc)
    if got is not None and got.kind == "unreachable":
        # Writes (events, catalog changes) are refused, never half-done or dropped silently.
        log.error("%s unavailable in request %s: %s", got.store, request_id, type(exc).__name__)
        message = f"the {got.store} is unreachable; nothing was written, retry later"
        return 503, f"{got.store}_unavailable", message, None
    if got is not None and got.kind in _REFUSED:
        log.warning("store refused request %s: %s (%s)", request_id, got.kind, got.constraint)
        status, code, message = _REFUSED[got.kind]
        found = {"constraint": got.constraint, "field": got.column}
        details = {k: v for k, v in found.items() if v is not None} or None
        return status, code, message, details
    log.error("unhandled error in request %s", request_id, exc_info=exc)
    return 500, "internal_error", "internal error; see the server log", None


def failure_headers(exc: Exception, status: int) -> dict[str, str]:
    """The headers an error answer carries: how to authenticate (401), when to retry (429)."""
    if status == 401:
        return {"WWW-Authenticate": "ApiKey"}
    if isinstance(exc, RateLimited):
        return {"Retry-After": str(exc.retry_after)}
    return {}


def request_id_of(request: Request) -> str | None:
    rid = request.scope.get("state", {}).get("request_id")
    return rid if isinstance(rid, str) else None


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = error_document(code, message, request_id_of(request), details)
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "ApiKey"
    return JSONResponse(body, status_code=status, headers=headers or None)


def _allowed_methods(request: Request) -> str:
    """Every method any route serves at this path (one route per method is common)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        route_methods = getattr(route, "methods", None)
        if match != Match.NONE and route_methods:
            methods |= set(route_methods)
    methods.discard("HEAD")
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    async def _failed(request: Request, exc: Exception) -> JSONResponse:
        status, code, message, details = failure(exc, request_id_of(request))
        headers = failure_headers(exc, status)
        return error_response(request, status, code, message, details, headers)

    # Each class by name: Starlette re-raises what only the ``Exception`` handler catches.
    handled: tuple[type[Exception], ...] = (ShelfwiseError, *STORE_ERRORS, Exception)
    for kind in handled:
        app.add_exception_handler(kind, _failed)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(
            request,
            422,
            "invalid_request",
            "the request is not valid",
            validation_details(list(exc.errors())),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return error_response(request, exc.status_code, code, str(exc.detail), headers=headers)
