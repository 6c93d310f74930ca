"""FastAPI dependencies for API-key authentication; ``admin`` implies every role.

An operation may accept several roles (``require("read", "storefront")``); a
``storefront`` key is then also held to its origins and rate limits
(api/storefront.py)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import Request

from shelfwise.access import ANONYMOUS_ADMIN, KeyRing, Principal
from shelfwise.api.storefront import client_of
from shelfwise.config import STOREFRONT, Role
from shelfwise.errors import Forbidden, Unauthorized

__all__ = ["Principal", "authorize", "key_of", "presented_key", "require"]


def key_of(headers: Mapping[str, str]) -> str | None:
    """The API key a request presents: ``X-API-Key`` or ``Authorization: Bearer``."""
    key = headers.get("x-api-key")
    if key:
        return key
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


def presented_key(request: Request) -> str | None:
    return key_of(request.headers)


def authorize(
    ring: KeyRing, headers: Mapping[str, str], *roles: Role, query_key: str | None = None
) -> Principal:
    """The caller behind ``headers``, who must hold one of ``roles`` (or ``admin``).

    ``query_key``: the ``?key=`` of the URL, taken when no header names a key, and
    from a storefront key only (it is public anyway): ``navigator.sendBeacon`` cannot
    set a header, and a header would cost a browser a CORS preflight per URL."""
    if not ring.enabled:
        return ANONYMOUS_ADMIN
    secret = key_of(headers)
    in_url = secret is None and query_key is not None
    principal = ring.authenticate(query_key if in_url else secret)
    if principal is not None and in_url and not principal.storefront:
        raise Unauthorized("only a storefront key may be given in the URL (?key=)")
    if principal is None:
        raise Unauthorized("a valid API key is required (X-API-Key header)")
    if not any(principal.has(role) for role in roles):
        wanted = " or ".join(repr(r) for r in roles)
        raise Forbidden(f"this key lacks the {wanted} role", code="role_missing")
    return principal


def require(*roles: Role) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A FastAPI dependency: the caller must hold one of ``roles`` (or ``admin``); a
    storefront key must also pass its origin and rate limits.

    ``async`` because it is cheap: a sync dependency costs a thread-pool hop."""

    async def dependency(request: Request) -> Principal:
        ring = request.app.state.runtime.keyring
        query_key = request.query_params.get("key") if STOREFRONT in roles else None
        principal = authorize(ring, request.headers, *roles, query_key=query_key)
        if principal.storefront:
            origin = request.headers.get("origin")
            request.app.state.gate.admit(principal, origin, client_of(request.scope))
        return principal

    # api/errordocs.py reads the roles from the name.
    dependency.__name__ = "require_" + "|".join(roles)
    return dependency
