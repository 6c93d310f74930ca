"""FastAPI dependencies for API-key authentication; ``admin`` implies every role."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import Request

from shelfwise.access import ANONYMOUS_ADMIN, KeyRing, Principal
from shelfwise.config import Role
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


def authorize(ring: KeyRing, headers: Mapping[str, str], role: Role) -> Principal:
    """The caller behind ``headers``, who must hold ``role`` (or ``admin``)."""
    if not ring.enabled:
        return ANONYMOUS_ADMIN
    principal = ring.authenticate(key_of(headers))
    if principal is None:
        raise Unauthorized("a valid API key is required (X-API-Key header)")
    if not principal.has(role):
        raise Forbidden(f"this key lacks the {role!r} role", code="role_missing")
    return principal


def require(role: Role) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A FastAPI dependency: the caller must hold ``role`` (or ``admin``).

    ``async`` because it is cheap: a sync dependency costs a thread-pool hop."""

    async def dependency(request: Request) -> Principal:
        return authorize(request.app.state.runtime.keyring, request.headers, role)

    dependency.__name__ = f"require_{role}"
    return dependency
