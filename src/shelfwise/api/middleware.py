"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware): request ids, body limits and
per-route HTTP metrics."""

from __future__ import annotations

import random
import time

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shelfwise.api.errors import error_document
from shelfwise.documents import load_json
from shelfwise.errors import ShelfwiseError

_ids = random.Random()


def new_request_id() -> str:
    """Unique enough to correlate logs, and ~20x cheaper than uuid4 (no syscall)."""
    return f"{_ids.getrandbits(128):032x}"


class _HttpMiddleware:
    """A middleware that sees HTTP requests (:meth:`http`) and passes the rest on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class RequestIdMiddleware(_HttpMiddleware):
    """Give each request an id (or keep the caller's ``X-Request-ID``) and echo it back."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                rid = value.decode("latin-1")[:64]
                break
        rid = rid or new_request_id()
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodyLimitMiddleware:
    """Bounds on request bodies, answered before the app parses anything.

    A body over ``max_bytes`` is refused with 413 ``payload_too_large``, whether it
    declares its length or comes in chunks (read here, so a route's body parsing
    never turns the overflow into a 400). A JSON body nested deeper than
    ``documents.MAX_DEPTH`` is refused with 422 ``document_too_deep`` (and one
    with too many values with 413 ``document_too_large``) before any recursive
    parser sees it. Bodies are read in full here; every route reads its whole
    body anyway, and the limit bounds the memory.

    ``POST /v1/events`` is spared the JSON check: it parses with orjson itself (no
    recursion), validation never descends into a nested value, and quarantine
    bounds what it keeps; checking there would parse every event batch twice.
    """

    own_parsers = frozenset({"/v1/events"})

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, scope: Scope, send: Send, status: int, code: str, message: str) -> None:
        rid = scope.get("state", {}).get("request_id")
        body = orjson.dumps(error_document(code, message, rid))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _too_large(self, scope: Scope, send: Send) -> None:
        message = f"request body exceeds {self.max_bytes} bytes"
        await self._reject(scope, send, 413, "payload_too_large", message)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        is_json = False
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(scope, send)
                return
            if key == b"content-type":
                media = value.split(b";", 1)[0].strip().lower()
                is_json = media == b"application/json" or media.endswith(b"+json")
        chunks: list[bytes] = []
        seen = 0
        last: Message | None = None
        while True:
            message = await receive()
            if message["type"] != "http.request":
                last = message  # the client went away: the app sees it as it would
                break
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._too_large(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if is_json and body and scope["path"] not in self.own_parsers:
            problem = _json_problem(body)
            if problem is not None:
                await self._reject(scope, send, *problem)
                return
        pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
        if last is not None:
            pending.append(last)

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        await self.app(scope, replay, send)


def _json_problem(body: bytes) -> tuple[int, str, str] | None:
    """(status, code, message) when a JSON body nests too deep or holds too much; a
    body that is not JSON at all is left to the route (it says so its own way)."""
    try:
        load_json(body)
    except ShelfwiseError as e:
        return None if e.code == "invalid_json" else (e.http_status, e.code, e.message)
    return None


class HttpMetricsMiddleware(_HttpMiddleware):
    """Count each answer by route template, method and status, and time it, on
    ``/metrics`` (``shelfwise_http_requests``, ``shelfwise_http_request_seconds``).
    The hot path (api/hotpath.py) records its own, the same way."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before starting

        async def send_and_see(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_see)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or getattr(route, "path", "unmatched")
            runtime = getattr(scope["app"].state, "runtime", None)
            if runtime is not None:
                seconds = time.perf_counter() - started
                runtime.metrics.http(template, scope["method"], status, seconds)
