"""FastAPI dependencies for API-key authentication; ``admin`` implies every role."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request

from shelfwise.access import KeyRing, Principal
from shelfwise.api.hotpath import key_of
from shelfwise.config import Role
from shelfwise.errors import Forbidden, Unauthorized

ANONYMOUS_ADMIN = Principal(name="anonymous", roles=frozenset({"admin"}))

__all__ = ["ANONYMOUS_ADMIN", "Principal", "presented_key", "require"]


def presented_key(request: Request) -> str | None:
    return key_of(request.headers)


def require(role: Role) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A FastAPI dependency: the caller must hold ``role`` (or ``admin``).

    ``async`` because it is cheap: a sync dependency costs a thread-pool hop."""

    async def dependency(request: Request) -> Principal:
        ring: KeyRing = request.app.state.runtime.keyring
        if not ring.enabled:
            return ANONYMOUS_ADMIN
        principal = ring.authenticate(presented_key(request))
        if principal is None:
            raise Unauthorized("a valid API key is required (X-API-Key header)")
        if not principal.has(role):
            raise Forbidden(f"this key lacks the {role!r} role", code="role_missing")
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency
