"""``GET /v1/recommendations`` answered straight from ASGI: the storefront's hot path.

A storefront asks for a slate on every page view, and most slates cost the
pipeline well under a millisecond (a kept slate: tens of microseconds). Through
FastAPI's per-request machinery (its middleware chain, routing, the ``Request``
object, the response class and the send wrappers) the same request cost about
three times the pipeline's own work (benchmarks/README.md, ``serve``). Here the
one route is answered by a plain function over the ASGI scope, the only
implementation of ``GET /v1/recommendations``: the FastAPI route of the same path
only describes it in OpenAPI (query parameters, the slate, the error documents).
It answers with the same read-role check, error document and codes and
``X-Request-ID`` as FastAPI's routes.

Every other route, the POST variant included, goes through FastAPI as usual. The
function is answered inside the app's own CORS middleware (:func:`with_cors`,
api/storefront.py), so its answers carry the same CORS headers as every route's,
and a storefront key is held to its origins and rate limits as on every route.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI
from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from starlette.types import ASGIApp, Receive, Scope, Send

from shelfwise.access import Principal
from shelfwise.api.auth import authorize
from shelfwise.api.customers import TOKEN_HEADER, TOKEN_PARAM, check_slate
from shelfwise.api.errors import error_document, failure, failure_headers
from shelfwise.api.middleware import new_request_id
from shelfwise.api.storefront import KeyedCors, client_of
from shelfwise.config import Role
from shelfwise.errors import InvalidInput, validation_details
from shelfwise.pipeline import RecommendRequest
from shelfwise.runtime import Runtime

RECOMMENDATIONS = "/v1/recommendations"
READERS: tuple[Role, ...] = ("read", "storefront")  # who may ask for a slate
CLOCK_HEADER = "x-shelfwise-now"
_JSON = (b"content-type", b"application/json")
_HEADERS = frozenset(
    (
        b"x-api-key",
        b"authorization",
        b"x-request-id",
        b"x-shelfwise-now",
        b"origin",
        b"x-customer-token",
    )
)


def clock_of(headers: Mapping[str, str], allowed: bool) -> datetime | None:
    """The request's clock from ``X-Shelfwise-Now`` where settings allow it (tests, replays)."""
    raw = headers.get(CLOCK_HEADER)
    if raw is None or not allowed:
        return None
    try:
        now = datetime.fromisoformat(raw)
    except ValueError as e:
        raise InvalidInput(f"{CLOCK_HEADER} must be an ISO datetime", code="invalid_clock") from e
    if now.tzinfo is None:
        raise InvalidInput(f"{CLOCK_HEADER} needs a time zone", code="invalid_clock")
    return now


def _last(pairs: list[tuple[str, str]], name: str) -> str | None:
    return next((v for n, v in reversed(pairs) if n == name), None) or None


def slate_json(
    runtime: Runtime,
    principal: Principal,
    req: RecommendRequest,
    token: str | None,
    now: datetime | None,
) -> bytes:
    """The slate's JSON answer; a storefront key's held to the customer-token checks
    (api/customers.py)."""
    if not principal.storefront:
        return runtime.recommender.recommend_json(req, now)
    asked, guard = check_slate(
        principal, req, token, runtime.customer_tokens, runtime.known_customers
    )
    return runtime.recommender.recommend_json(asked, now, guard)


def _ids_of(values: list[str]) -> tuple[str, ...]:
    """``item=a&item=b`` and ``item=a,b`` both work."""
    return tuple(v.strip() for raw in values for v in raw.split(",") if v.strip())


def within_max_k(req: RecommendRequest, max_k: int) -> RecommendRequest:
    """``req`` when its ``k`` is at most ``max_k``; pydantic's ValidationError
    (``k_too_large`` at ``k``) otherwise, as for any other invalid parameter."""
    if req.k is None or req.k <= max_k:
        return req
    error = PydanticCustomError("k_too_large", "k is at most {max_k}", {"max_k": max_k})
    raise ValidationError.from_exception_data(
        "RecommendRequest", [InitErrorDetails(type=error, loc=("k",), input=req.k)]
    )


def request_of(pairs: list[tuple[str, str]], max_k: int) -> RecommendRequest:
    """The query string's parameters as a request (raises pydantic's ValidationError,
    locations as given: the callers prefix ``query``). A repeated single-valued
    parameter: the last one counts; ``k`` is at most ``max_k``."""
    one: dict[str, str] = {}
    many: dict[str, list[str]] = {"item": [], "cart": []}
    for name, value in pairs:
        if name in many:
            many[name].append(value)
        else:
            one[name] = value
    raw: dict[str, Any] = {
        "placement": one.get("placement"),
        "person": one.get("person") or None,
        "session": one.get("session") or None,
        "item": _ids_of(many["item"]),
        "cart": _ids_of(many["cart"]),
    }
    if one.get("k"):
        raw["k"] = one["k"]
    if one.get("explain"):
        raw["explain"] = one["explain"]
    return within_max_k(RecommendRequest.model_validate(raw), max_k)


async def _answer(
    send: Send, status: int, body: bytes, rid: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    headers = [_JSON, (b"content-length", b"%d" % len(body)), (b"x-request-id", rid.encode())]
    headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def recommendations(app: FastAPI, scope: Scope, send: Send) -> None:
    """Answer one ``GET /v1/recommendations`` (the request body, if any, is ignored)."""
    started = time.perf_counter()
    headers: dict[str, str] = {}
    for key, value in scope["headers"]:
        if key in _HEADERS:
            headers.setdefault(key.decode("latin-1"), value.decode("latin-1"))
    rid = headers.get("x-request-id", "")[:64] or new_request_id()
    scope.setdefault("state", {})["request_id"] = rid
    runtime = app.state.runtime
    status: int = 200
    extra: tuple[tuple[bytes, bytes], ...] = ()
    try:
        pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        query_key = next((v for n, v in pairs if n == "key"), None)
        principal = authorize(runtime.keyring, headers, *READERS, query_key=query_key)
        if principal.storefront:
            app.state.gate.admit(principal, headers.get("origin"), client_of(scope))
        req = request_of(pairs, runtime.settings.max_k)
        now = clock_of(headers, runtime.settings.allow_clock_header)
        token = headers.get(TOKEN_HEADER) or _last(pairs, TOKEN_PARAM)
        body = slate_json(runtime, principal, req, token, now)
    except ValidationError as e:
        status = 422
        details = validation_details(e.errors(include_url=False), ("query",))
        body = orjson.dumps(
            error_document("invalid_request", "the request is not valid", rid, details)
        )
    except Exception as e:  # the same answers as api/errors.py gives FastAPI's routes
        status, code, message, details = failure(e, rid)
        extra = tuple(
            (k.lower().encode(), v.encode()) for k, v in failure_headers(e, status).items()
        )
        body = orjson.dumps(error_document(code, message, rid, details))
    await _answer(send, status, body, rid, extra)
    runtime.metrics.http(RECOMMENDATIONS, "GET", status, time.perf_counter() - started)


class ShelfwiseAPI(FastAPI):
    """The FastAPI app, with ``GET /v1/recommendations`` answered by :func:`recommendations`
    (through :attr:`hot`: the function itself, or the function inside CORS)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hot: ASGIApp = self._recommendations

    async def _recommendations(self, scope: Scope, receive: Receive, send: Send) -> None:
        await recommendations(self, scope, send)

    def with_cors(self, origins: Callable[[], Collection[str]]) -> None:
        """Answer the hot path inside the app's CORS middleware (the same origins)."""
        self.hot = KeyedCors(self._recommendations, origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == RECOMMENDATIONS
            and scope["method"] == "GET"
        ):
            await self.hot(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
