"""The one place where errors become HTTP answers: ``{"error": {code, message, request_id}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shelfwise.errors import ShelfwiseError

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


def validation_details(errors: list[Any], prefix: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """pydantic's errors as the error document's ``details``: field path, code, message."""
    return [
        {
            "field": ".".join(str(p) for p in (*prefix, *e.get("loc", ()))),
            "code": e.get("type"),
            "message": e.get("msg"),
        }
        for e in errors
    ]


def failure(exc: Exception, request_id: str | None) -> tuple[int, str, str, Any]:
    """A request's exception as (status, code, message, details), logged as it deserves.
    Never leaks ``str(exc)`` of an unexpected error: the log has the stack, the client
    gets the request id."""
    if isinstance(exc, ShelfwiseError):
        if exc.http_status >= 500:
            log.error("request %s failed: %s (%s)", request_id, exc.code, exc.message)
        return exc.http_status, exc.code, exc.message, exc.details
    if isinstance(exc, (DBAPIError, PoolTimeout)):
        # Writes (events, catalog changes) are refused, never half-done or dropped silently.
        log.error("store unavailable in request %s: %s", request_id, type(exc).__name__)
        message = "the store is unreachable; nothing was written, retry later"
        return 503, "database_unavailable", message, None
    log.error("unhandled error in request %s", request_id, exc_info=exc)
    return 500, "internal_error", "internal error; see the server log", None


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
    @app.exception_handler(ShelfwiseError)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(Exception)
    async def _failed(request: Request, exc: Exception) -> JSONResponse:
        return error_response(request, *failure(exc, request_id_of(request)))

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
